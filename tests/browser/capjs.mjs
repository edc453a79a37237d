// The UNMODIFIED @cap.js/widget 0.1.57 with @cap.js/wasm 0.0.6 (CAP-PROTOCOL §6), hosted from the
// site's own origin exactly as the dashboard's snippet says, against our Cap endpoints: click the
// widget, post the form cross-origin, land on the thank-you page, and the receiver gets the
// contract envelope without the token. The page talks to no host but 127.0.0.1.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  assert, createSite, expectEnvelope, launchBrowser, run, shot, startOrigin, startReceiver, startServer, waitFor,
} from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const CAP_JS = readFileSync(path.join(here, "node_modules/@cap.js/widget/cap.min.js"));
const CAP_WASM = readFileSync(path.join(here, "node_modules/@cap.js/wasm/browser/cap_wasm_bg.wasm"));
const ACCOUNT = "owner@example.com";
const FIELDS = { email: "visitor@example.com", message: "Hello from the Cap widget" };

await run("capjs: the unmodified @cap.js/widget against our Cap endpoints", async () => {
  const started = Date.now();
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: ACCOUNT,
    CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery",
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
  });
  let page = "";
  const served = [];
  const site = await startOrigin((req, res, url) => {
    served.push(url.pathname);
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(page);
    }
    if (url.pathname === "/cap/cap.min.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      return res.end(CAP_JS);
    }
    if (url.pathname === "/cap/cap_wasm_bg.wasm") {
      res.writeHead(200, { "content-type": "application/wasm" });
      return res.end(CAP_WASM);
    }
    return false;
  });
  const browser = await launchBrowser();
  try {
    const created = await createSite(server, {
      account: ACCOUNT, name: "Cap widget", webhook: receiver.url, challenges: 8, difficulty: 3,
    });
    const key = created.site_key;
    const action = created.forwarder_url;
    assert(action === `${server.base}/f/${key}`, `forwarder URL: ${action}`);
    assert(created.cap_endpoint === `${server.base}/v1/cap/${key}/`, `Cap endpoint: ${created.cap_endpoint}`);
    page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Contact (Cap widget)</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:34rem}label{display:block;margin:.6rem 0}</style>
<script>window.CAP_CUSTOM_WASM_URL="/cap/cap_wasm_bg.wasm"</script><script src="/cap/cap.min.js"></script>
</head><body>
<h1>Contact us</h1>
<form action="${action}" method="POST">
  <label>Email <input type="email" name="email" value="${FIELDS.email}" required></label>
  <label>Message <textarea name="message" required>${FIELDS.message}</textarea></label>
  <cap-widget data-cap-api-endpoint="${created.cap_endpoint}" data-cap-hidden-field-name="caputchin-token"></cap-widget>
  <button type="submit">Send</button>
</form>
<script>
  window.__events = [];
  for (const t of ["solve", "error"]) document.addEventListener(t, (e) => window.__events.push({ type: t, detail: e.detail }));
</script>
</body></html>`;

    const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
    context.setDefaultTimeout(30_000);
    try {
      const tab = await context.newPage();
      const hosts = new Set();
      tab.on("request", (r) => {
        const url = new URL(r.url());
        // A Worker's blob: URL carries the origin that made it.
        hosts.add(url.protocol === "blob:" ? new URL(url.pathname).hostname : url.hostname);
      });
      await tab.goto(`${site.origin}/`);
      const trigger = tab.locator("cap-widget .captcha-trigger");
      await trigger.waitFor();
      await tab.waitForFunction(() => {
        const t = document.querySelector("cap-widget")?.shadowRoot?.querySelector(".captcha-trigger");
        return t && !t.hasAttribute("disabled");
      }, null, { timeout: 30_000 });
      await shot(tab, "capjs-01-ready");

      await trigger.click();
      const field = tab.locator("input[name=caputchin-token]");
      await waitFor("the Cap token in the hidden field", async () => (await field.inputValue()) !== "", 30_000);
      const events = await tab.evaluate(() => window.__events);
      const token = await field.inputValue();
      assert(events.some((e) => e.type === "solve" && e.detail.token === token), `solve event: ${JSON.stringify(events)}`);
      assert(!events.some((e) => e.type === "error"), `no error event: ${JSON.stringify(events)}`);
      assert(served.includes("/cap/cap_wasm_bg.wasm"), "the widget loaded our hosted wasm");
      await tab.waitForTimeout(1000); // let the widget's check-mark animation finish
      await shot(tab, "capjs-02-verified");

      const before = receiver.requests.length;
      await Promise.all([tab.waitForURL(action), tab.getByRole("button", { name: "Send" }).click()]);
      await tab.locator("h1", { hasText: "Thank you" }).waitFor();
      await shot(tab, "capjs-03-thank-you");
      await expectEnvelope(receiver, before, { siteKey: key, fields: FIELDS, token, since: started });
      assert([...hosts].every((h) => h === "127.0.0.1"), `the page talked only to 127.0.0.1: ${[...hosts].join(", ")}`);
    } finally {
      await context.close();
    }
  } finally {
    await browser.close();
    await server.stop();
    await site.close();
    await receiver.close();
  }
});

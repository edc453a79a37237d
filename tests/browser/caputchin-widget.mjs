// Caputchin's own widget, @caputchin/widget 3.5.0 (SPEC §13), UNMODIFIED but for its verify
// host: the vendored build in ../shared/vendor/ (BUILD.md), retargeted here at the test
// forwarder's origin by replacing its placeholder origin, exactly as the README tells site owners.
// A static page on another loopback origin, served with the strict Content-Security-Policy the
// README recommends, hosts the widget in a form. For each trigger (auto, click, form-submit,
// manual): the widget bootstraps, starts and passes against our endpoints, fills the hidden
// caputchin-token, and the form posts through the forwarder to exactly one webhook delivery with
// the contract envelope; the same token replayed is timeout-or-duplicate. A site that restricts
// its origins refuses the page's origin and the widget fires `error`. The browser talks only to
// 127.0.0.1, and no CSP violation is reported.
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  assert, createSite, expectEnvelope, launchBrowser, root, run, shot, startOrigin, startReceiver, startServer,
  waitFor,
} from "./harness.mjs";

const VENDOR = path.resolve(root, "../shared/vendor/caputchin-widget-3.5.0");
const PLACEHOLDER = "http://127.0.0.1:47999";
const ACCOUNT = "owner@example.com";
const FIELDS = { email: "visitor@example.com", message: "Hello from Caputchin's widget" };

/** The README's policy for a page that hosts the widget itself and posts to the forwarder. */
function strictCsp(forwarder) {
  return `default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src blob:; ` +
    `connect-src 'self' ${forwarder}; style-src 'unsafe-inline'; img-src data:; ` +
    `base-uri 'none'; form-action ${forwarder}`;
}

// Records the widget's events and any CSP violation (a file of its own: the policy allows no
// inline script).
const PAGE_JS = `window.__events = [];
window.__violations = [];
for (const type of ["start", "pass", "error", "degraded"]) {
  document.addEventListener(type, (e) => {
    if (e.target && e.target.localName === "caputchin-widget") window.__events.push({ type, detail: e.detail });
  }, true);
}
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective + " " + e.blockedURI);
});
`;

await run("caputchin-widget: the vendored @caputchin/widget 3.5.0 against our forwarder", async () => {
  const started = Date.now();
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: ACCOUNT,
    CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery",
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
  });
  const vendored = readFileSync(path.join(VENDOR, "widget.js"), "utf8");
  assert(vendored.split(PLACEHOLDER).length - 1 === 3, "the vendored build has its placeholder origin 3 times");
  const widgetJs = vendored.split(PLACEHOLDER).join(server.base);
  assert(!widgetJs.includes("47999"), "every occurrence retargeted");
  const wasm = readFileSync(path.join(VENDOR, "cap_wasm_bg.wasm"));

  const pages = new Map();
  const served = [];
  const csp = strictCsp(server.base);
  const site = await startOrigin((req, res, url) => {
    served.push(url.pathname);
    if (pages.has(url.pathname)) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-security-policy": csp });
      return res.end(pages.get(url.pathname));
    }
    if (url.pathname === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      return res.end(PAGE_JS);
    }
    if (url.pathname === "/caputchin/widget.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      return res.end(widgetJs);
    }
    if (url.pathname === "/caputchin/cap_wasm_bg.wasm") {
      res.writeHead(200, { "content-type": "application/wasm" });
      return res.end(wasm);
    }
    return false;
  });
  const page = (key, trigger) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Contact (Caputchin widget, ${trigger})</title>
<script src="/page.js"></script>
<script src="/caputchin/widget.js"></script>
<script>window.__inlineRan = true;</script>
</head><body style="font:16px system-ui,sans-serif;margin:2rem;max-width:34rem">
<h1>Contact us</h1>
<p>Caputchin's widget, <code>trigger="${trigger}"</code></p>
<form action="${server.base}/f/${key}" method="POST" style="display:grid;gap:.75rem">
  <label style="display:grid;gap:.25rem">Email <input type="email" name="email" value="${FIELDS.email}" required></label>
  <label style="display:grid;gap:.25rem">Message <textarea name="message" rows="3" required>${FIELDS.message}</textarea></label>
  <caputchin-widget sitekey="${key}" trigger="${trigger}"></caputchin-widget>
  <button type="submit" style="justify-self:start">Send</button>
</form>
</body></html>`;

  const browser = await launchBrowser();
  try {
    const open = await createSite(server, {
      account: ACCOUNT, name: "Caputchin widget", webhook: receiver.url, challenges: 8, difficulty: 3,
    });
    const restricted = await createSite(server, {
      account: ACCOUNT, name: "Restricted", webhook: receiver.url, origins: ["https://www.example.com"],
      challenges: 8, difficulty: 3,
    });
    const action = `${server.base}/f/${open.site_key}`;
    for (const trigger of ["auto", "click", "form-submit", "manual"]) pages.set(`/${trigger}`, page(open.site_key, trigger));
    pages.set("/restricted", page(restricted.site_key, "auto"));

    const context = await browser.newContext({ viewport: { width: 760, height: 560 } });
    context.setDefaultTimeout(30_000);
    const hosts = new Set();
    const apiCalls = [];
    context.on("request", (r) => {
      const url = new URL(r.url());
      // A Worker's blob: URL carries the origin that made it.
      hosts.add(url.protocol === "blob:" ? new URL(url.pathname).hostname : url.hostname);
      if (url.origin === server.base && url.pathname.startsWith("/v1/")) apiCalls.push(`${r.method()} ${url.pathname}`);
    });
    const pageErrors = [];
    const events = (tab) => tab.evaluate(() => window.__events);
    const field = (tab) => tab.locator("input[name=caputchin-token]");
    const tokenOf = async (tab) => (await field(tab).count()) ? field(tab).inputValue() : "";

    /** Opens a trigger's page; resolves once the widget has mounted (its shield is shown). */
    async function visit(name) {
      const tab = await context.newPage();
      tab.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
      await tab.goto(`${site.origin}/${name}`);
      await tab.locator('caputchin-widget [part="simple-shield-box"]').waitFor();
      return tab;
    }

    /** Waits for the widget to pass; checks the events, the hidden field and the page's policy. */
    async function passed(tab, name) {
      const token = await waitFor(`${name}: the hidden caputchin-token`, () => tokenOf(tab), 30_000);
      const seen = await events(tab);
      const pass = seen.find((e) => e.type === "pass");
      assert(pass && pass.detail.token === token && pass.detail.score === null && pass.detail.durationMs === null,
        `${name}: pass event carries the field's token: ${JSON.stringify(seen)}`);
      assert(seen.findIndex((e) => e.type === "start") >= 0 && seen.findIndex((e) => e.type === "start") < seen.indexOf(pass),
        `${name}: start, then pass: ${JSON.stringify(seen)}`);
      assert(!seen.some((e) => e.type === "error" || e.type === "degraded"), `${name}: no error or degraded event: ${JSON.stringify(seen)}`);
      assert((await tab.locator("form input[name=caputchin-token]").count()) === 1, `${name}: one hidden field, in the form`);
      // The policy is in force (the page's inline-script probe was blocked, its one violation)
      // and the widget broke none of it.
      const { violations, inlineRan } = await tab.evaluate(() => ({ violations: window.__violations, inlineRan: window.__inlineRan }));
      assert(inlineRan === undefined, `${name}: the strict policy blocks inline scripts`);
      assert(violations.length === 1 && violations[0].startsWith("script-src-elem inline"),
        `${name}: no CSP violation by the widget under the strict policy: ${violations.join("; ")}`);
      return token;
    }

    /** Sends the form, lands on the thank-you page, checks the one delivery and the replay. */
    async function submitted(tab, name, token) {
      const before = receiver.requests.length;
      await Promise.all([tab.waitForURL(action), tab.getByRole("button", { name: "Send" }).click()]);
      await tab.locator("h1", { hasText: "Thank you" }).waitFor();
      await expectEnvelope(receiver, before, { siteKey: open.site_key, fields: FIELDS, token, since: started });
      const replay = await fetch(action, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", origin: site.origin },
        body: new URLSearchParams({ ...FIELDS, "caputchin-token": token }).toString(),
      });
      const body = await replay.json();
      assert(replay.status === 403 && body.error === "timeout-or-duplicate", `${name}: replay refused: ${replay.status} ${JSON.stringify(body)}`);
      assert(receiver.requests.length === before + 1, `${name}: the replay delivered nothing`);
    }

    console.log("  1. trigger=auto: verifies on mount");
    let tab = await visit("auto");
    let token = await passed(tab, "auto");
    await tab.waitForTimeout(500);
    await shot(tab, "caputchin-widget-01-auto-verified");
    await submitted(tab, "auto", token);
    await shot(tab, "caputchin-widget-02-auto-thank-you");
    await tab.close();

    console.log("  2. trigger=click: nothing until the shield is clicked");
    tab = await visit("click");
    await tab.waitForTimeout(1500);
    assert((await events(tab)).length === 0 && (await tokenOf(tab)) === "", "click: no verification before the click");
    await shot(tab, "caputchin-widget-03-click-ready");
    await tab.locator('caputchin-widget [part="simple-shield-box"]').click();
    token = await passed(tab, "click");
    await tab.waitForTimeout(500);
    await shot(tab, "caputchin-widget-04-click-verified");
    await submitted(tab, "click", token);
    await tab.close();

    console.log("  3. trigger=form-submit: Send starts the verification and the form posts itself");
    tab = await visit("form-submit");
    await tab.waitForTimeout(1000);
    assert((await events(tab)).length === 0, "form-submit: no verification before the submit");
    let before = receiver.requests.length;
    await Promise.all([tab.waitForURL(action), tab.getByRole("button", { name: "Send" }).click()]);
    await tab.locator("h1", { hasText: "Thank you" }).waitFor();
    await shot(tab, "caputchin-widget-05-form-submit-thank-you");
    const delivered = await expectEnvelope(receiver, before, { siteKey: open.site_key, fields: FIELDS, since: started });
    assert(delivered.json.caputchin.session_id.startsWith("ses_"), "a real session id");
    await tab.close();

    console.log("  4. trigger=manual: only element.start() verifies");
    tab = await visit("manual");
    await tab.waitForTimeout(1000);
    await tab.locator('caputchin-widget [part="simple-shield-box"]').click();
    await tab.waitForTimeout(1000);
    assert((await events(tab)).length === 0 && (await tokenOf(tab)) === "", "manual: a click does not start it");
    await tab.evaluate(() => document.querySelector("caputchin-widget").start());
    token = await passed(tab, "manual");
    await tab.waitForTimeout(500);
    await shot(tab, "caputchin-widget-06-manual-verified");
    await submitted(tab, "manual", token);
    await tab.close();

    console.log("  5. a site that allows only https://www.example.com refuses this page's origin");
    before = receiver.requests.length;
    const callsBefore = apiCalls.length;
    tab = await visit("restricted");
    const failed = await waitFor("the error event", async () => (await events(tab)).find((e) => e.type === "error"), 30_000);
    assert(failed.detail.code === "verification-failed" && failed.detail.originalCode === "cap-solve-failed",
      `restricted: verification-failed / cap-solve-failed: ${JSON.stringify(failed.detail)}`);
    const seen = await events(tab);
    assert(seen.some((e) => e.type === "degraded" && e.detail.reason === "network"), `restricted: the refused bootstrap degrades: ${JSON.stringify(seen)}`);
    assert(!seen.some((e) => e.type === "pass") && (await tokenOf(tab)) === "", "restricted: no token");
    const restrictedCalls = apiCalls.slice(callsBefore);
    assert(restrictedCalls.includes("POST /v1/verify/start") && !restrictedCalls.includes("POST /v1/verify/pass"),
      `restricted: start refused, pass never sent: ${restrictedCalls.join(", ")}`);
    await tab.waitForTimeout(500);
    await shot(tab, "caputchin-widget-07-restricted-refused");
    assert(receiver.requests.length === before, "restricted: nothing delivered");
    await tab.close();

    assert(served.includes("/caputchin/cap_wasm_bg.wasm"), "the widget loaded its wasm from the page's origin");
    // The browser does not report its preflights (OPTIONS) as requests; the cross-origin JSON
    // POSTs above could not have been sent without them.
    for (const call of ["GET /v1/widget/bootstrap", "POST /v1/verify/start", "POST /v1/verify/pass"]) {
      assert(apiCalls.includes(call), `the widget sent ${call}: ${apiCalls.join(", ")}`);
    }
    assert(!apiCalls.some((c) => c.includes("/v1/cap/")), "the widget's own protocol, not Cap's URLs");
    assert(pageErrors.length === 0, `no page errors: ${pageErrors.join("; ")}`);
    assert([...hosts].every((h) => h === "127.0.0.1"), `the browser talked only to 127.0.0.1: ${[...hosts].join(", ")}`);
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    await site.close();
    await receiver.close();
  }
});

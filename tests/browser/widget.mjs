// Our <caputchin-widget> (static/widget.js) in a real browser: a site's own page on another
// origin loads the widget from the forwarder, solves, posts the form cross-origin and lands on the
// thank-you page (or the site's redirect), and the receiver gets the contract envelope once,
// without the token. Every trigger mode, invisible, the failure paths, the CAP-PROTOCOL §9
// vectors through the widget's own solver (Workers, main thread, CSP), and /widget.js caching.
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  assert, createSite, expectEnvelope, launchBrowser, root, run, shot, startOrigin, startReceiver, startServer, waitFor,
} from "./harness.mjs";

const ACCOUNT = "owner@example.com";
const FIELDS = { name: "Ada Lovelace", message: "Hello — from the analytical engine, ü" };
const T1 = "0123456789abcdef0123456789abcdef0123456789abcdef01";
const T2 = "e5ad0e2ea6655bb5c8af9ed5ce967cbaa9ace4ec75345aa481";
const T2_SOLUTIONS = [3060, 99772, 19448, 246900, 17099, 38344, 49757, 6071, 56204, 5733, 107999, 93812,
  187654, 2753, 37942, 46445, 22866, 229512, 61464, 35006, 4950, 28610, 27291, 146807, 8882, 77302, 74953,
  44113, 21453, 88561, 7678, 9041, 99236, 7383, 7158, 67832, 34665, 36895, 118960, 199404, 54777, 46726,
  15781, 27891, 210027, 80524, 32994, 20532, 61129, 41483];
// CAP-PROTOCOL §9: [token, {c, s, d}, smallest nonces].
const VECTORS = {
  "t1-3-32-4": [T1, { c: 3, s: 32, d: 4 }, [20759, 12490, 71352]],
  "t1-2-7-5": [T1, { c: 2, s: 7, d: 5 }, [634795, 86496]],
  "t1-1-20-3": [T1, { c: 1, s: 20, d: 3 }, [10413]],
  "t2-50-32-4": [T2, { c: 50, s: 32, d: 4 }, T2_SOLUTIONS],
};

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");

/** The site owner's page: two text fields and our widget, loaded from the forwarder. */
function formPage(base, q) {
  const attrs = [
    q.get("key") !== null ? `sitekey="${esc(q.get("key"))}"` : "",
    q.get("trigger") ? `trigger="${esc(q.get("trigger"))}"` : "",
    q.get("invisible") ? "invisible" : "",
    q.get("api") ? `api-host="${esc(q.get("api"))}"` : "",
  ].filter(Boolean).join(" ");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Contact</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:34rem}label{display:block;margin:.6rem 0}
input{font:inherit}button[type=submit]{font:inherit;margin-top:.8rem}</style></head><body>
<h1>Contact us</h1>
<form id="contact" action="${esc(q.get("action"))}" method="POST">
<label>Name <input name="name" value="${esc(FIELDS.name)}"></label>
<label>Message <input name="message" value="${esc(FIELDS.message)}" size="40"></label>
<caputchin-widget ${attrs}></caputchin-widget>
<div><button type="submit" id="send">Send</button></div>
</form>
<script>for (const t of ["pass", "error"]) document.addEventListener(t, (e) => window.__report && window.__report(t, e.detail));</script>
<script src="${esc(base)}/widget.js" async></script>
</body></html>`;
}

/** Manual widgets whose Cap endpoints (api-host = this origin) the test answers with page.route. */
function vectorsPage(base, origin) {
  const widgets = Object.keys(VECTORS).map((k) => `<caputchin-widget id="${k}" sitekey="${k}" trigger="manual" api-host="${esc(origin)}"></caputchin-widget>`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Vectors</title></head><body>
<form>${widgets.join("\n")}</form><script src="${esc(base)}/widget.js"></script>
<script src="${esc(base)}/widget.js?again"></script></body></html>`;
}

await run("widget: every trigger mode, failures, vectors, caching", async () => {
  const started = Date.now();
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: ACCOUNT,
    CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery",
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
  });
  const base = server.base;
  let origin;
  const site = await startOrigin((req, res, url) => {
    const html = (body, headers = {}) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...headers });
      res.end(body);
    };
    if (url.pathname === "/form") return html(formPage(base, url.searchParams));
    if (url.pathname === "/thanks") return html("<!doctype html><title>Thanks</title><h1>Thanks from the site itself</h1>");
    if (url.pathname === "/vectors") {
      const csp = url.searchParams.get("csp") ? { "content-security-policy": "worker-src 'none'" } : {};
      return html(vectorsPage(base, origin), csp);
    }
    return false;
  });
  origin = site.origin;
  assert(new URL(origin).port !== new URL(base).port, "the page is on its own origin");
  const browser = await launchBrowser();
  try {
    const plain = await createSite(server, { account: ACCOUNT, name: "Plain", webhook: receiver.url, challenges: 12, difficulty: 3 });
    const redirecting = await createSite(server, {
      account: ACCOUNT, name: "Redirecting", webhook: receiver.url, challenges: 12, difficulty: 3,
      origins: [origin], redirect: `${origin}/thanks`,
    });
    const hard = await createSite(server, { account: ACCOUNT, name: "Hard", webhook: receiver.url, challenges: 40, difficulty: 5 });
    const key = plain.site_key;
    const action = `${base}/f/${key}`;
    const formUrl = (params) => `${origin}/form?${new URLSearchParams({ action, ...params })}`;

    // A fresh context and page that reports the widget's events and every host it talks to.
    const pageErrors = [];
    async function open(options = {}) {
      const context = await browser.newContext({ viewport: { width: 900, height: 640 }, ...options });
      context.setDefaultTimeout(30_000);
      const events = [];
      const hosts = new Set();
      if (options.javaScriptEnabled !== false) {
        await context.exposeFunction("__report", (type, detail) => { events.push({ type, detail }); });
      }
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
      page.on("request", (r) => {
        const url = new URL(r.url());
        // A Worker's blob: URL carries the origin that made it.
        hosts.add(url.protocol === "blob:" ? `blob:${new URL(url.pathname).hostname}` : url.hostname);
      });
      return { context, page, events, hosts };
    }
    const widgetState = (page) => page.evaluate(() => document.querySelector("caputchin-widget").state);
    const waitState = (page, state) => page.waitForFunction(
      (s) => document.querySelector("caputchin-widget")?.state === s, state, { timeout: 30_000 });
    const tokenField = (page) => page.$eval("form > input[type=hidden][name=caputchin-token]", (el) => el.value);

    const expectDelivery = (before, siteKey, token, fields = FIELDS) =>
      expectEnvelope(receiver, before, { siteKey, token, fields, since: started });

    // Sends the form and waits for the forwarder's thank-you page (or the given redirect target).
    async function submitAndExpectThanks(page, expectUrl = action, heading = "Thank you") {
      await Promise.all([page.waitForURL((u) => u.href === expectUrl), page.locator("#send").click()]);
      await page.locator("h1", { hasText: heading }).waitFor();
    }

    console.log("  /widget.js: size, ETag, Cache-Control, 304");
    {
      const res = await fetch(`${base}/widget.js`);
      const body = await res.text();
      const etag = res.headers.get("etag");
      assert(res.status === 200 && res.headers.get("content-type").startsWith("text/javascript"), "served as JavaScript");
      assert(body === readFileSync(path.join(root, "static/widget.js"), "utf8"),
        "the server serves static/widget.js as it is on disk (rebuild with cargo build)");
      assert(Buffer.byteLength(body) < 20_000, `widget.js is ${Buffer.byteLength(body)} bytes`);
      assert(etag && /max-age=\d+/.test(res.headers.get("cache-control") || ""), "ETag and a max-age");
      const again = await fetch(`${base}/widget.js`, { headers: { "If-None-Match": etag } });
      assert(again.status === 304 && (await again.text()) === "", `If-None-Match gives 304, got ${again.status}`);
      console.log(`  widget.js ${Buffer.byteLength(body)} bytes, ETag ${etag}`);
    }

    console.log("  trigger=click (pointer, then keyboard on a second page)");
    {
      const { context, page, events, hosts } = await open();
      try {
        await page.goto(formUrl({ key, trigger: "click" }));
        await waitState(page, "ready");
        const button = page.getByRole("button", { name: "Verify you are human" });
        await button.waitFor();
        assert((await page.getByRole("status").count()) === 1, "a status region");
        await shot(page, "widget-01-ready");
        await button.click();
        await waitState(page, "verified");
        assert(await page.getByRole("button", { name: "Verified" }).isVisible(), "Verified shown");
        assert((await page.getByRole("status").textContent()).includes("Verified"), "verified announced");
        await shot(page, "widget-03-verified");
        await page.emulateMedia({ colorScheme: "dark" });
        await shot(page, "widget-03-verified-dark");
        const token = await tokenField(page);
        assert(token.length > 20, "the hidden input holds the token");
        await waitFor("the pass event", () => events.length > 0, 5_000);
        assert(events.length === 1 && events[0].type === "pass" && events[0].detail.token === token, `one pass event: ${JSON.stringify(events)}`);
        const before = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before, key, token);
        assert([...hosts].every((h) => h === "127.0.0.1" || h === "blob:127.0.0.1"), `only loopback: ${[...hosts]}`);

        await page.goto(formUrl({ key, trigger: "click" }));
        await waitState(page, "ready");
        await page.getByRole("button", { name: "Verify you are human" }).focus();
        await page.keyboard.press("Space");
        await waitState(page, "verified");
        const before2 = receiver.requests.length;
        await page.locator("#send").focus();
        await Promise.all([page.waitForURL(action), page.keyboard.press("Enter")]);
        await expectDelivery(before2, key, null);
      } finally {
        await context.close();
      }
    }

    console.log("  trigger=auto");
    {
      const { context, page, events } = await open();
      try {
        await page.goto(formUrl({ key, trigger: "auto" }));
        await waitState(page, "verified");
        const token = await tokenField(page);
        await waitFor("the pass event", () => events.some((e) => e.type === "pass" && e.detail.token === token), 5_000);
        const before = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before, key, token);
      } finally {
        await context.close();
      }
    }

    console.log("  trigger=form-submit");
    {
      const { context, page, events } = await open();
      try {
        await page.goto(formUrl({ key, trigger: "form-submit" }));
        await waitState(page, "ready");
        const before = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before, key, null);
        await waitFor("the pass event", () => events.length > 0, 5_000);
        assert(events.filter((e) => e.type === "pass").length === 1 && !events.some((e) => e.type === "error"), `one pass, no error: ${JSON.stringify(events)}`);
      } finally {
        await context.close();
      }
    }

    console.log("  trigger=manual");
    {
      const { context, page } = await open();
      const challenges = [];
      page.on("request", (r) => { if (r.url().includes("/challenge")) challenges.push(r.url()); });
      try {
        await page.goto(formUrl({ key, trigger: "manual" }));
        await waitState(page, "ready");
        await page.waitForTimeout(700);
        assert(challenges.length === 0 && (await widgetState(page)) === "ready", "manual waits for start()");
        const token = await page.evaluate(() => document.querySelector("caputchin-widget").start());
        assert(typeof token === "string" && token === (await tokenField(page)), "start() resolves with the token in the field");
        assert(challenges.length === 1, "one challenge");
        const before = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before, key, token);
      } finally {
        await context.close();
      }
    }

    console.log("  invisible (form-submit by default inside a form), and invisible + auto");
    {
      const { context, page } = await open();
      try {
        await page.goto(formUrl({ key, invisible: "1" }));
        await waitState(page, "ready");
        assert(!(await page.locator("caputchin-widget .w").isVisible()), "no visible UI");
        assert((await page.locator("caputchin-widget").getByRole("button").count()) === 0, "no button exposed");
        assert((await page.getByRole("status").count()) === 1, "a status region for screen readers");
        const before = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before, key, null);

        await page.goto(formUrl({ key, invisible: "1", trigger: "auto" }));
        await waitState(page, "verified");
        assert((await page.getByRole("status").textContent()).includes("Verified"), "verified announced while invisible");
        const box = await page.locator("caputchin-widget").boundingBox();
        assert(!box || box.height <= 1, `takes no room: ${JSON.stringify(box)}`);
        const before2 = receiver.requests.length;
        await submitAndExpectThanks(page);
        await expectDelivery(before2, key, null);
      } finally {
        await context.close();
      }
    }

    console.log("  a site with allowed origins and a redirect URL");
    {
      const { context, page } = await open();
      try {
        const rkey = redirecting.site_key;
        await page.goto(`${origin}/form?${new URLSearchParams({ action: `${base}/f/${rkey}`, key: rkey, trigger: "click" })}`);
        await page.getByRole("button", { name: "Verify you are human" }).click();
        await waitState(page, "verified");
        const token = await tokenField(page);
        const before = receiver.requests.length;
        await submitAndExpectThanks(page, `${origin}/thanks`, "Thanks from the site itself");
        await expectDelivery(before, rkey, token);
      } finally {
        await context.close();
      }
    }

    console.log("  verifying with progress, then reset() cancels");
    {
      const { context, page } = await open();
      try {
        const hkey = hard.site_key;
        await page.goto(`${origin}/form?${new URLSearchParams({ action: `${base}/f/${hkey}`, key: hkey, trigger: "click" })}`);
        await page.getByRole("button", { name: "Verify you are human" }).click();
        await page.waitForFunction(() => /^[1-9]\d?%$/.test(
          document.querySelector("caputchin-widget").shadowRoot.querySelector(".p").textContent), null, { timeout: 30_000 });
        assert((await widgetState(page)) === "verifying", "verifying");
        assert((await page.getByRole("status").textContent()).includes("Verifying"), "verifying announced");
        await shot(page, "widget-02-verifying");
        await page.evaluate(() => document.querySelector("caputchin-widget").reset());
        assert((await widgetState(page)) === "ready" && (await tokenField(page)) === "", "reset goes back to ready");
      } finally {
        await context.close();
      }
    }

    console.log("  an unknown sitekey: error state with Retry; with form-submit the post goes without token");
    {
      const { context, page, events } = await open();
      try {
        await page.goto(formUrl({ key: "cpt_pub_000000000000000000000000", trigger: "click" }));
        await page.getByRole("button", { name: "Verify you are human" }).click();
        await waitState(page, "error");
        await waitFor("the error event", () => events.length > 0, 5_000);
        const errors = events.filter((e) => e.type === "error");
        assert(errors.length === 1 && errors[0].detail.code === "challenge-failed" && errors[0].detail.message === "Unknown site key",
          `challenge-failed with the server's message: ${JSON.stringify(events)}`);
        const retry = page.getByRole("button", { name: "Retry verification" });
        assert(await retry.isVisible(), "a Retry button");
        assert((await page.getByRole("status").textContent()).includes("Unknown site key"), "error announced");
        await shot(page, "widget-04-error");
        await retry.focus();
        await page.keyboard.press("Enter");
        await waitFor("a second error", () => events.filter((e) => e.type === "error").length === 2, 10_000);

        const before = receiver.requests.length;
        await page.goto(formUrl({ key: "cpt_pub_000000000000000000000000", trigger: "form-submit" }));
        await waitState(page, "ready");
        await Promise.all([page.waitForURL(action), page.locator("#send").click()]);
        assert((await page.content()).includes("missing-token"), "the forwarder answers missing-token");
        assert(receiver.requests.length === before, "nothing delivered");
      } finally {
        await context.close();
      }
    }

    console.log("  no sitekey: error event missing-sitekey, inert");
    {
      const { context, page, events } = await open();
      try {
        await page.goto(formUrl({ trigger: "auto" }));
        await waitFor("missing-sitekey", () => events.some((e) => e.type === "error" && e.detail.code === "missing-sitekey"), 10_000);
        assert((await widgetState(page)) === "error", "error state");
        assert((await page.locator("form > input[name=caputchin-token]").count()) === 0, "no token input added");
        await page.locator("caputchin-widget").getByRole("button").click({ force: true });
        await page.waitForTimeout(200);
        assert(!events.some((e) => e.type === "pass") && (await widgetState(page)) === "error", "stays inert");
        await shot(page, "widget-05-missing-sitekey");
      } finally {
        await context.close();
      }
    }

    console.log("  JavaScript disabled: missing-token, nothing delivered");
    {
      const { context, page } = await open({ javaScriptEnabled: false });
      try {
        const before = receiver.requests.length;
        await page.goto(formUrl({ key, trigger: "form-submit" }));
        await Promise.all([page.waitForURL(action), page.locator("#send").click()]);
        assert((await page.content()).includes("missing-token"), "missing-token page");
        await page.waitForTimeout(300);
        assert(receiver.requests.length === before, "nothing delivered");
        await shot(page, "widget-06-no-javascript");
      } finally {
        await context.close();
      }
    }

    console.log("  CAP-PROTOCOL §9 vectors through the widget's own solver");
    const rates = {};
    for (const [label, setup, url] of [
      ["workers", null, `${origin}/vectors`],
      ["main thread (no Worker)", () => { window.Worker = function () { throw new Error("refused by the test"); }; }, `${origin}/vectors`],
      ["main thread (CSP worker-src 'none')", null, `${origin}/vectors?csp=1`],
    ]) {
      const { context, page } = await open();
      try {
        if (setup) await context.addInitScript(setup);
        const redeemed = {};
        await page.route(`${origin}/v1/cap/**`, async (route) => {
          const [, , , vkey, step] = new URL(route.request().url()).pathname.split("/");
          const [token, challenge] = VECTORS[vkey];
          if (step === "challenge") {
            return route.fulfill({ json: { challenge, token, expires: Date.now() + 600_000 } });
          }
          redeemed[vkey] = route.request().postDataJSON();
          return route.fulfill({ json: { success: true, token: `vector-${vkey}`, expires: Date.now() + 600_000 } });
        });
        const workers = [];
        page.on("worker", (w) => workers.push(w));
        await page.goto(url);
        for (const [vkey, [token, , expected]] of Object.entries(VECTORS)) {
          const took = await page.evaluate(async (id) => {
            const t = performance.now();
            await document.getElementById(id).start();
            return performance.now() - t;
          }, vkey);
          const got = redeemed[vkey];
          assert(got && got.token === token && JSON.stringify(got.solutions) === JSON.stringify(expected),
            `${label} ${vkey}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got && got.solutions)}`);
          const hashes = expected.reduce((sum, n) => sum + n + 1, 0);
          rates[`${label} ${vkey}`] = `${(hashes / took / 1000).toFixed(2)} MH/s (${hashes} hashes, ${took.toFixed(0)} ms)`;
        }
        const cores = await page.evaluate(() => navigator.hardwareConcurrency);
        if (label === "workers") {
          // One pool per start(): min(cores, 8, challenges) Workers each.
          const pools = Object.values(VECTORS).reduce((sum, [, { c }]) => sum + Math.min(cores, 8, c), 0);
          assert(workers.length === pools, `Workers used: ${workers.length}, expected ${pools}`);
          console.log(`  navigator.hardwareConcurrency = ${cores}`);
        } else {
          assert(workers.length === 0, `${label}: no Worker ran, got ${workers.length}`);
        }
      } finally {
        await context.close();
      }
    }
    for (const [what, rate] of Object.entries(rates)) console.log(`  ${what}: ${rate}`);

    console.log("  expiry: the field is cleared, back to ready, error event expired");
    {
      const { context, page, events } = await open();
      try {
        await page.clock.install();
        await page.goto(formUrl({ key, trigger: "auto" }));
        await waitState(page, "verified");
        assert((await tokenField(page)) !== "", "a token");
        await page.clock.fastForward("09:30");
        assert((await widgetState(page)) === "verified", "still valid before its expiry");
        await page.clock.fastForward("00:45");
        await waitState(page, "ready");
        assert((await tokenField(page)) === "", "the expired token is cleared");
        await waitFor("the expired event", () => events.some((e) => e.type === "error" && e.detail.code === "expired"), 5_000);
        assert((await page.getByRole("status").textContent()).includes("expired"), "expiry announced");
        assert(await page.getByRole("button", { name: "Verify you are human" }).isVisible(), "ready to verify again");
      } finally {
        await context.close();
      }
    }

    console.log("  the preview page GET /f/{key}");
    {
      const { context, page } = await open();
      try {
        await page.goto(action);
        await waitState(page, "ready");
        await shot(page, "preview-01-before");
        const before = receiver.requests.length;
        await page.getByRole("button", { name: "Send" }).click();
        await page.locator("h1", { hasText: "Thank you" }).waitFor();
        await shot(page, "preview-02-after");
        await waitFor("the preview delivery", () => receiver.requests.length > before, 10_000);
        const body = receiver.requests[before].body;
        assert(receiver.requests.length === before + 1 && !body.includes("caputchin-token"), "one delivery without the token");
      } finally {
        await context.close();
      }
    }
    assert(pageErrors.length === 0, `no page errors: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
    await server.stop();
    await site.close();
    await receiver.close();
  }
});

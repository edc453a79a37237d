// Cross-origin JSON submissions and file inputs in a real browser (SPEC §3):
// - a site's page on an allowed loopback origin gets a token from our widget (trigger manual) and
//   posts JSON with fetch(): the CORS preflight is answered, the answer is {"ok":true,…} and the
//   receiver gets one envelope without the token;
// - the same from a loopback origin the site does not allow: the preflight is refused, fetch()
//   rejects, nothing is delivered (and the unused token still works from the allowed origin);
// - a plain multipart form with a file input: a chosen file gives 415 file-upload-not-supported
//   and nothing is delivered; left empty, the form is delivered with its other fields.
import {
  assert, createSite, expectEnvelope, launchBrowser, run, shot, startOrigin, startReceiver, startServer,
} from "./harness.mjs";

const ACCOUNT = "owner@example.com";
const UPLOAD_FIELDS = { name: "Ada Lovelace", message: "Notes on the engine, attached ü" };

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");

/** A site's page that gets a token with our widget and submits JSON with fetch(). */
function fetchPage(base, key) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fetch contact</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:40rem}pre{background:#f4f4f4;padding:.6rem;white-space:pre-wrap}</style>
</head><body>
<h1>Contact (fetch + JSON)</h1>
<p>Page origin: <code id="origin"></code></p>
<caputchin-widget id="w" sitekey="${esc(key)}" trigger="manual"></caputchin-widget>
<pre id="out">not sent yet</pre>
<script>
document.getElementById("origin").textContent = location.origin;
window.__errors = [];
document.addEventListener("error", (e) => { if (e.detail) window.__errors.push(e.detail); });
// Posts {name, caputchin-token} as JSON to the forwarder; resolves with what the page could see.
window.send = async (token) => {
  const out = document.getElementById("out");
  try {
    const res = await fetch(${JSON.stringify(`${base}/f/${key}`)}, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ name: "Ada", "caputchin-token": token }),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch (e) { /* shown as text */ }
    out.textContent = "HTTP " + res.status + "\\n" + text;
    return { status: res.status, json, text };
  } catch (e) {
    out.textContent = "fetch() rejected: " + e.name + ": " + e.message;
    return { rejected: true, name: e.name, message: e.message };
  }
};
</script>
<script src="${esc(base)}/widget.js"></script>
</body></html>`;
}

/** A plain multipart form with a file input and our widget (trigger form-submit). */
function uploadPage(base, key) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Apply</title>
<style>body{font:16px system-ui,sans-serif;margin:2rem;max-width:34rem}label{display:block;margin:.6rem 0}
input{font:inherit}button[type=submit]{font:inherit;margin-top:.8rem}</style></head><body>
<h1>Apply</h1>
<form id="apply" action="${esc(`${base}/f/${key}`)}" method="POST" enctype="multipart/form-data">
<label>Name <input name="name" value="${esc(UPLOAD_FIELDS.name)}"></label>
<label>Message <input name="message" value="${esc(UPLOAD_FIELDS.message)}" size="40"></label>
<label>CV <input type="file" name="cv"></label>
<caputchin-widget sitekey="${esc(key)}" trigger="form-submit"></caputchin-widget>
<div><button type="submit" id="send">Send</button></div>
</form>
<script>
// Reports what is really posted: the submit that goes through (after the widget's hold).
document.getElementById("apply").addEventListener("submit", (e) => {
  const data = new FormData(e.target);
  const cv = data.get("cv");
  window.__report && window.__report({ defaultPrevented: e.defaultPrevented, token: data.get("caputchin-token"),
    cv: cv && { name: cv.name, size: cv.size } });
});
</script>
<script src="${esc(base)}/widget.js" async></script>
</body></html>`;
}

await run("cors: cross-origin fetch() JSON, a refused origin, file inputs", async () => {
  const started = Date.now();
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: ACCOUNT,
    CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery",
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
  });
  const base = server.base;
  let key = "";
  const handler = (req, res, url) => {
    const html = (body) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(body);
    };
    if (url.pathname === "/fetch") return html(fetchPage(base, key));
    if (url.pathname === "/upload") return html(uploadPage(base, key));
    return false;
  };
  // Two page origins of their own: one the site allows, one it does not.
  const allowed = await startOrigin(handler);
  const other = await startOrigin(handler);
  const browser = await launchBrowser();
  try {
    const ports = new Set([base, allowed.origin, other.origin].map((o) => new URL(o).port));
    assert(ports.size === 3, "three distinct loopback origins");
    const site = await createSite(server, {
      account: ACCOUNT, name: "CORS", webhook: receiver.url, origins: [allowed.origin], challenges: 8, difficulty: 3,
    });
    key = site.site_key;
    const action = `${base}/f/${key}`;

    const pageErrors = [];
    async function open() {
      const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
      context.setDefaultTimeout(30_000);
      const submits = [];
      await context.exposeFunction("__report", (s) => { submits.push(s); });
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));
      // Every request the page makes to /f/{key}. playwright-core's page.on("request") does not
      // report CORS preflights (Chromium's network service sends them itself), so those are read
      // from the DevTools protocol's Network events of the page.
      const seen = [];
      page.on("request", (r) => {
        if (r.url() === action) seen.push({ method: r.method(), request: r });
      });
      const cdp = await context.newCDPSession(page);
      const preflights = [];
      cdp.on("Network.requestWillBeSent", (e) => {
        if (e.request.url === action && e.request.method === "OPTIONS") preflights.push(e);
      });
      cdp.on("Network.responseReceived", (e) => {
        const p = preflights.find((x) => x.requestId === e.requestId);
        if (p) p.response = e.response;
      });
      await cdp.send("Network.enable");
      return { context, page, seen, preflights, submits };
    }
    const getToken = (page) => page.evaluate(() => document.getElementById("w").start());

    // What the server itself answers a preflight, read outside the browser.
    const preflight = (origin) => fetch(action, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });

    console.log("  the server's preflight answers: allowed origin, other origin");
    {
      const ok = await preflight(allowed.origin);
      await ok.arrayBuffer();
      assert(ok.status === 204 || ok.status === 200, `preflight for the allowed origin: ${ok.status}`);
      assert(ok.headers.get("access-control-allow-origin") === allowed.origin,
        `Access-Control-Allow-Origin echoes the allowed origin: ${ok.headers.get("access-control-allow-origin")}`);
      assert(/\bPOST\b/i.test(ok.headers.get("access-control-allow-methods") || ""), "POST is an allowed method");
      assert(/content-type/i.test(ok.headers.get("access-control-allow-headers") || ""), "Content-Type is an allowed header");
      const no = await preflight(other.origin);
      const body = await no.text();
      assert(no.status === 403 && body.includes("origin-not-allowed"), `preflight for another origin: ${no.status} ${body}`);
      assert(no.headers.get("access-control-allow-origin") === null, "no Access-Control-Allow-Origin for another origin");
    }

    let spare = null; // a token obtained on the allowed origin, tried from the other one
    console.log("  fetch() JSON from the allowed origin");
    {
      const { context, page, seen, preflights } = await open();
      try {
        await page.goto(`${allowed.origin}/fetch`);
        await page.waitForFunction(() => document.getElementById("w")?.state === "ready");
        const token = await getToken(page);
        assert(typeof token === "string" && token.length > 20, "the widget gave a token");
        spare = await page.evaluate(() => {
          const w = document.getElementById("w");
          w.reset();
          return w.start();
        });
        assert(spare !== token, "a second, different token");
        const before = receiver.requests.length;
        const answer = await page.evaluate((t) => window.send(t), token);
        assert(!answer.rejected, `fetch() resolved: ${JSON.stringify(answer)}`);
        assert(answer.status === 200, `HTTP 200, got ${answer.status}: ${answer.text}`);
        const { json } = answer;
        assert(json && JSON.stringify(Object.keys(json)) === JSON.stringify(["ok", "session_id"]) && json.ok === true &&
          typeof json.session_id === "string" && json.session_id.length > 0, `{"ok":true,"session_id":…}: ${answer.text}`);
        const req = await expectEnvelope(receiver, before, { siteKey: key, fields: { name: "Ada" }, token, since: started });
        assert(req.json.caputchin.session_id === json.session_id, "the answer's session_id is the envelope's");

        // The preflight happened, and passed.
        const methods = seen.map((s) => s.method);
        assert(methods.filter((m) => m === "POST").length === 1, `one POST to /f/{key}: ${methods}`);
        assert(preflights.length === 1, `one preflight OPTIONS to /f/{key} (DevTools): ${preflights.length}`);
        const p = preflights[0];
        assert(p.request.headers.Origin === allowed.origin || p.request.headers.origin === allowed.origin,
          `preflight Origin: ${JSON.stringify(p.request.headers)}`);
        assert(p.response && (p.response.status === 204 || p.response.status === 200),
          `preflight answered 2xx: ${p.response && p.response.status}`);
        const acao = Object.entries(p.response.headers).find(([k]) => k.toLowerCase() === "access-control-allow-origin");
        assert(acao && acao[1] === allowed.origin, `preflight allowed the origin: ${JSON.stringify(p.response.headers)}`);
        const post = seen.find((s) => s.method === "POST").request;
        const postResponse = await post.response();
        assert(postResponse && (await postResponse.headerValue("access-control-allow-origin")) === allowed.origin,
          "the POST answer carries Access-Control-Allow-Origin");
        console.log(`  preflight ${p.request.method} ${p.response.status}, seen by page.on("request"): ${methods.includes("OPTIONS")}`);
        await shot(page, "cors-01-allowed-origin");
      } finally {
        await context.close();
      }
    }

    console.log("  fetch() JSON from an origin the site does not allow");
    {
      const { context, page, seen, preflights } = await open();
      try {
        await page.goto(`${other.origin}/fetch`);
        await page.waitForFunction(() => document.getElementById("w")?.state === "ready");
        // Our widget cannot even get a challenge there: the Cap endpoint refuses the origin too,
        // without Access-Control-Allow-Origin, so the browser keeps the answer from the page and
        // the widget sees only that the server could not be read.
        const refused = await page.evaluate(() => document.getElementById("w").start().then(
          (t) => ({ token: t }), (e) => ({ code: e.code, message: e.message })));
        assert(refused.token === undefined && refused.code === "network-error",
          `the widget is refused a challenge: ${JSON.stringify(refused)}`);
        await shot(page, "cors-02-other-origin-widget");

        const before = receiver.requests.length;
        const answer = await page.evaluate((t) => window.send(t), spare);
        assert((answer.rejected && answer.name === "TypeError") ||
          (answer.status === 403 && answer.json && answer.json.error === "origin-not-allowed"),
          `the browser refuses (TypeError) or the server answers 403 origin-not-allowed: ${JSON.stringify(answer)}`);
        if (answer.rejected) {
          assert(preflights.length === 1, `one preflight: ${preflights.length}`);
          const p = preflights[0];
          assert(p.response && p.response.status === 403, `the preflight was refused with 403: ${p.response && p.response.status}`);
          // Chromium may still report the POST, but only as a failed request.
          const posts = seen.filter((s) => s.method === "POST");
          assert(posts.every((s) => s.request.failure() !== null), "no POST went through");
        }
        console.log(`  from ${other.origin}: ${answer.rejected ? `fetch() rejected (${answer.name}: ${answer.message}), preflight ${preflights[0]?.response?.status}` : `HTTP ${answer.status}`}`);
        await shot(page, "cors-03-other-origin-refused");
        await page.waitForTimeout(500);
        assert(receiver.requests.length === before, "nothing delivered");
      } finally {
        await context.close();
      }
    }

    console.log("  the refused request never reached the forwarder: its token still works from the allowed origin");
    {
      const { context, page } = await open();
      try {
        await page.goto(`${allowed.origin}/fetch`);
        const before = receiver.requests.length;
        const answer = await page.evaluate((t) => window.send(t), spare);
        assert(answer.status === 200 && answer.json && answer.json.ok === true, `delivered: ${JSON.stringify(answer)}`);
        await expectEnvelope(receiver, before, { siteKey: key, fields: { name: "Ada" }, token: spare, since: started });
      } finally {
        await context.close();
      }
    }

    console.log("  a multipart form with a file chosen: 415 file-upload-not-supported");
    {
      const { context, page, submits } = await open();
      try {
        await page.goto(`${allowed.origin}/upload`);
        await page.waitForFunction(() => document.querySelector("caputchin-widget")?.state === "ready");
        await page.setInputFiles("input[name=cv]", {
          name: "cv.txt", mimeType: "text/plain", buffer: Buffer.from("Augusta Ada King, Countess of Lovelace\n"),
        });
        await shot(page, "upload-01-file-chosen");
        const before = receiver.requests.length;
        const [response] = await Promise.all([
          page.waitForResponse((r) => r.url() === action && r.request().method() === "POST"),
          page.locator("#send").click(),
        ]);
        await page.waitForURL(action);
        assert(response.status() === 415, `HTTP 415, got ${response.status()}`);
        const sent = response.request().headers()["content-type"] || "";
        assert(sent.startsWith("multipart/form-data"), `posted as multipart: ${sent}`);
        assert(submits.length === 1 && !submits[0].defaultPrevented && submits[0].token && submits[0].token.length > 20 &&
          submits[0].cv && submits[0].cv.name === "cv.txt" && submits[0].cv.size > 0,
          `posted once, with the widget's token and the file: ${JSON.stringify(submits)}`);
        await page.locator("h1", { hasText: "not sent" }).waitFor();
        assert((await page.content()).includes("file-upload-not-supported"), "the page shows file-upload-not-supported");
        await shot(page, "upload-02-refused");
        await page.waitForTimeout(500);
        assert(receiver.requests.length === before, "nothing delivered");
      } finally {
        await context.close();
      }
    }

    console.log("  the same form with the file input left empty: delivered without it");
    {
      const { context, page, submits } = await open();
      try {
        await page.goto(`${allowed.origin}/upload`);
        await page.waitForFunction(() => document.querySelector("caputchin-widget")?.state === "ready");
        const before = receiver.requests.length;
        const [response] = await Promise.all([
          page.waitForResponse((r) => r.url() === action && r.request().method() === "POST"),
          page.locator("#send").click(),
        ]);
        await page.waitForURL(action);
        assert(submits.length === 1 && submits[0].token && submits[0].cv && submits[0].cv.name === "" && submits[0].cv.size === 0,
          `posted once, with the token and an empty file input: ${JSON.stringify(submits)}`);
        const posted = response.request().postData();
        if (posted) assert(/name="cv"; filename=""/.test(posted), "the browser sent the empty file part");
        assert(response.status() === 200, `HTTP 200, got ${response.status()}`);
        await page.locator("h1", { hasText: "Thank you" }).waitFor();
        await shot(page, "upload-03-empty-file-delivered");
        await expectEnvelope(receiver, before, { siteKey: key, fields: UPLOAD_FIELDS, since: started });
      } finally {
        await context.close();
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    assert(receiver.requests.length === 3, `three deliveries in all, got ${receiver.requests.length}`);
    assert(pageErrors.length === 0, `no page errors: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
    await server.stop();
    await allowed.close();
    await other.close();
    await receiver.close();
  }
});

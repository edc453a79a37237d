// The newcomer's path in a real browser, at desktop and at phone width: the one-time setup link,
// a new site (a difficulty out of range, the live solve-time estimate, comma-separated origins),
// the created page (snippet first, webhook check, Copy), the snippet pasted into a static page on
// an allowed origin, the dashboard's test form, Test delivery against a 200, a 500, a closed port
// and a blocked address, the statistics, a secret rotation with a grace period and the deletion.
import http from "node:http";
import {
  assert, expectEnvelope, freePort, launchBrowser, run, shot, startOrigin, startReceiver, startServer, waitFor,
} from "./harness.mjs";

const EMAIL = "newcomer@example.com";
const PASSWORD = "correct horse battery";
const FIELDS = { email: "visitor@example.com", message: "Hello from a static page" };

/** A webhook receiver that records requests and answers 500. */
async function startFailingReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      requests.push({ headers: req.headers });
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("receiver is broken");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/**
 * What sticks out past the right edge of the viewport, outside any container that scrolls
 * sideways: the page then scrolls sideways on a phone. Lists the text that does.
 */
function overflowing() {
  // Under isMobile, window.innerWidth grows to fit content wider than the page; the layout
  // viewport (the root's clientWidth) stays the phone's width.
  const vw = Math.min(window.innerWidth, document.documentElement.clientWidth);
  const scrolls = (node) => {
    for (let a = node.parentElement; a; a = a.parentElement) {
      if (/auto|scroll|hidden|clip/.test(getComputedStyle(a).overflowX) && a.scrollWidth > a.clientWidth) return true;
    }
    return false;
  };
  // Text overflows its box without widening it: look at the text itself.
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    if (!t.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    const r = range.getBoundingClientRect();
    if (r.width === 0 || r.right <= vw + 1 || scrolls(t)) continue;
    const el = t.parentElement;
    out.push(`<${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className ? `.${String(el.className).split(" ").join(".")}` : ""}> text to x=${r.right.toFixed(0)}: "${t.textContent.trim().replace(/\s+/g, " ").slice(0, 50)}…"`);
  }
  return { width: vw, docWidth: document.documentElement.scrollWidth, out: out.slice(0, 4) };
}

/** Clicks `button` and resolves with the status of the navigation's document response. */
async function submit(page, button) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()),
    button.click(),
  ]);
  await page.waitForLoadState("load");
  return response.status();
}

async function newcomer(label, contextOptions) {
  const name = (n) => `newcomer-${label}-${n}`;
  const started = Date.now();
  const receiver = await startReceiver();
  const failing = await startFailingReceiver();
  const downPort = await freePort();
  let snippet = null;
  const staticPage = await startOrigin((req, res, url) => {
    if (url.pathname !== "/" || snippet === null) return false;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>My static page</title></head>
<body>${snippet}</body></html>`);
  });
  const server = await startServer({ CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8" });
  const browser = await launchBrowser();
  const pageErrors = [];
  // Layout defects seen on the way: collected, so every step still runs, and asserted at the end.
  const problems = [];
  const expect = (ok, what) => { if (!ok) { problems.push(what); console.log(`  PROBLEM: ${what}`); } };
  // Every screenshot also checks that the page does not scroll sideways.
  const look = async (p, n) => {
    const o = await p.evaluate(overflowing);
    expect(o.docWidth <= o.width + 1, `${n}: the page is ${o.docWidth} px wide in a ${o.width} px viewport: ${o.out.join("; ")}`);
    await shot(p, name(n));
  };
  try {
    const context = await browser.newContext(contextOptions);
    context.setDefaultTimeout(20_000);
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.base });
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(`${page.url()}: ${e.message}`));

    console.log(`  [${label}] 1. the setup link from the server's log`);
    const link = await waitFor("the setup link on stderr", () => {
      const m = server.log().match(/http:\/\/\S+\/setup\?token=\S+/);
      return m && m[0];
    }, 10_000);
    assert(link.startsWith(`${server.base}/setup?token=`), `setup link on this server: ${link}`);
    await page.goto(`${server.base}/dashboard`);
    assert(!page.url().endsWith("/dashboard"), `no account yet: /dashboard is not open (at ${page.url()})`);
    await page.goto(link);
    assert((await page.locator("h1").textContent()).includes("Create the first account"), "the setup page");
    assert((await page.locator("#password-help").textContent()).includes("10 to 256 characters"), "the password rule in characters");
    await look(page, "01-setup");
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/dashboard");
    assert((await page.locator("h1").textContent()).trim() === "Sites", "landed on the site list");
    assert(await page.getByRole("link", { name: "Create your first site" }).isVisible(), "the empty list offers a first site");
    await look(page, "02-dashboard-empty");

    console.log(`  [${label}] 2. new site: difficulty 9, the estimate, then a good one`);
    await page.getByRole("link", { name: "New site" }).first().click();
    await page.waitForURL("**/sites/new");
    await page.getByLabel("Name").fill("Contact form");
    await page.getByLabel("Webhook URL").fill(receiver.url);
    await page.getByLabel("Allowed origins").fill(`${staticPage.origin}, http://localhost:1`);
    await page.getByLabel("Challenges", { exact: true }).fill("32");
    await page.getByLabel("Difficulty").fill("9");
    const status = await submit(page, page.getByRole("button", { name: "Create site" }));
    assert(status === 422, `difficulty 9 answers 422, got ${status}`);
    const difficulty = page.locator("#difficulty");
    assert((await difficulty.getAttribute("aria-invalid")) === "true", "Difficulty is marked invalid");
    assert((await difficulty.getAttribute("aria-describedby") || "").split(" ").includes("difficulty-error"), "Difficulty described by its error");
    const diffError = (await page.locator("#difficulty-error").textContent()).trim();
    assert(diffError === "Difficulty must be between 1 and 8.", `difficulty error text: ${JSON.stringify(diffError)}`);
    assert((await page.locator("#challenge_count").getAttribute("aria-invalid")) === null, "Challenges not marked invalid");
    assert((await page.locator("#challenges-error").count()) === 0, "no Challenges error");
    assert(await page.locator("#difficulty-error").isVisible(), "the error is visible");
    assert((await page.getByLabel("Allowed origins").inputValue()).includes(staticPage.origin), "the typed origins are kept");
    await look(page, "03-difficulty-error");

    const estimate = page.locator("#solve-estimate");
    const warning = estimate.locator(".estimate-warning");
    await difficulty.fill("5");
    await warning.waitFor({ state: "visible", timeout: 5_000 });
    const slowText = await estimate.locator(".estimate-text").textContent();
    assert(slowText.includes("on a laptop") && slowText.includes("on a mid-range phone"), `estimate text: ${slowText}`);
    assert((await warning.textContent()).includes("3 seconds on a phone"), "the warning says why");
    assert((await difficulty.getAttribute("aria-invalid")) === null, "an edited field drops its invalid mark");
    assert(!(await page.locator("#difficulty-error").isVisible()), "and its stale message");
    await look(page, "04-estimate-warning");
    await difficulty.fill("4");
    await page.getByLabel("Challenges", { exact: true }).fill("32");
    await warning.waitFor({ state: "hidden", timeout: 5_000 });
    const okText = await estimate.locator(".estimate-text").textContent();
    assert(okText.includes("on a laptop") && okText.includes("on a mid-range phone"), `estimate text at 32 × 4: ${okText}`);
    assert(okText !== slowText, "the estimate follows the fields");
    const createStatus = await submit(page, page.getByRole("button", { name: "Create site" }));
    assert(createStatus === 200, `Create site answers 200, got ${createStatus}`);

    console.log(`  [${label}] 3. site created: snippet first, webhook check, Copy`);
    assert((await page.locator("h1").textContent()).trim() === "Site created", "the created page");
    const order = await page.evaluate(() => {
      const a = document.getElementById("snippet-widget"), b = document.getElementById("secret");
      return a && b ? a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING : -1;
    });
    assert(order > 0, "the snippet comes before the secret");
    const check = (await page.locator("#webhook-check").textContent()).trim();
    assert(check.includes("delivery is allowed") && check.includes("127.0.0.1"), `webhook check: ${check}`);
    const copies = page.locator("button.copy");
    assert((await copies.count()) === 2, `two Copy buttons, got ${await copies.count()}`);
    for (let i = 0; i < 2; i++) assert(await copies.nth(i).isVisible(), `Copy button ${i} visible`);
    snippet = await page.locator("#snippet-widget").inputValue();
    const firstSecret = await page.locator("#secret").inputValue();
    assert(firstSecret.startsWith("cpt_sec_"), "the secret is shown");
    const copySnippet = page.getByRole("button", { name: "Copy the snippet" });
    await copySnippet.click();
    await waitFor("Copied", async () => (await copySnippet.textContent()) === "Copied", 5_000);
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert(copied === snippet, `the clipboard holds the snippet: ${JSON.stringify(copied.slice(0, 80))}`);
    assert(snippet.includes(`action="${server.base}/f/cpt_pub_`) && snippet.includes("<caputchin-widget"), "a form posting to the forwarder");
    await look(page, "05-created");

    console.log(`  [${label}] 4. the snippet on a static page of an allowed origin`);
    await page.getByRole("link", { name: "Continue to the site" }).click();
    await page.waitForURL(/\/sites\/[^/]+$/);
    const siteUrl = page.url();
    const siteKey = (await page.locator("#site-key").textContent()).trim();
    const origins = await page.locator("#allowed-origins code").allTextContents();
    assert(JSON.stringify(origins) === JSON.stringify([staticPage.origin, "http://localhost:1"]), `both origins kept: ${origins}`);
    const visitor = await context.newPage();
    visitor.on("pageerror", (e) => pageErrors.push(`${visitor.url()}: ${e.message}`));
    await visitor.goto(`${staticPage.origin}/`);
    const email = visitor.getByLabel("Email");
    const message = visitor.getByLabel("Message");
    assert((await email.getAttribute("type")) === "email" && (await email.isVisible()), "a labelled email input");
    assert((await message.evaluate((el) => el.tagName)) === "TEXTAREA" && (await message.isVisible()), "a labelled message textarea");
    const send = visitor.getByRole("button", { name: "Send" });
    assert(await send.isVisible(), "a visible Send button");
    const box = await send.boundingBox();
    const width = visitor.viewportSize().width;
    assert(box && box.x >= 0 && box.x + box.width <= width, `Send inside the viewport: ${JSON.stringify(box)}`);
    const emailBox = await email.boundingBox();
    assert(emailBox.x + emailBox.width <= width, `email field inside the viewport: ${JSON.stringify(emailBox)}`);
    await visitor.waitForFunction(() => document.querySelector("caputchin-widget")?.state === "ready");
    await look(visitor, "06-static-form");
    await email.fill(FIELDS.email);
    await message.fill(FIELDS.message);
    const before = receiver.requests.length;
    await send.click();
    await visitor.locator("h1", { hasText: "Thank you" }).waitFor({ timeout: 30_000 });
    const back = visitor.getByRole("link", { name: /^Back to http/ });
    const backHref = await back.getAttribute("href");
    assert(backHref && backHref.startsWith(staticPage.origin), `the way back goes to the static page: ${backHref}`);
    const real = await expectEnvelope(receiver, before, { siteKey, fields: FIELDS, since: started });
    assert(real.json.caputchin.test === undefined, "no test mark on a real delivery");
    await look(visitor, "07-thank-you");
    await visitor.close();

    console.log(`  [${label}] 5. the dashboard's test form, although the forwarder's origin is not allowed`);
    const tryLink = page.locator(".head-actions").getByRole("link", { name: "Test form" });
    const tryHref = await tryLink.getAttribute("href");
    assert(/^\/sites\/[^/]+\/try$/.test(tryHref), `Test form href: ${tryHref}`);
    assert(!origins.includes(server.base), "the forwarder's own origin is not allowed");
    await tryLink.click();
    await page.waitForURL(`**${tryHref}`);
    await page.waitForFunction(() => document.querySelector("caputchin-widget")?.state === "ready");
    await look(page, "08-test-form");
    const beforeTry = receiver.requests.length;
    await page.getByRole("button", { name: "Send" }).click();
    const h1 = page.locator("h1", { hasText: /Test delivered|Thank you|refused|not allowed/i });
    await h1.waitFor({ timeout: 30_000 });
    const heading = (await page.locator("h1").textContent()).trim();
    assert(heading === "Test delivered", `the test form lands on "Test delivered", got ${JSON.stringify(heading)} at ${page.url()}: ${(await page.locator("main").textContent()).trim().slice(0, 300)}`);
    assert(await page.getByRole("link", { name: "Back to the site" }).isVisible(), "a way back to the site");
    await waitFor("the test form's delivery", () => receiver.requests.length > beforeTry, 10_000);
    await page.waitForTimeout(300);
    assert(receiver.requests.length === beforeTry + 1, `one delivery from the test form, got ${receiver.requests.length - beforeTry}`);
    const tried = receiver.requests[beforeTry];
    assert(tried.headers["x-caputchin-test"] === "1", `x-caputchin-test: ${tried.headers["x-caputchin-test"]}`);
    assert(tried.json && tried.json.caputchin.test === true, `marked as a test: ${tried.body}`);
    assert(tried.json.form.email === "preview@example.com", `the test form's email: ${tried.body}`);
    await look(page, "09-test-delivered");
    await page.getByRole("link", { name: "Back to the site" }).click();
    await page.waitForURL(siteUrl);

    console.log(`  [${label}] 6. Test delivery: 200, 500, nothing listening, a blocked address`);
    async function testDelivery() {
      await page.getByRole("button", { name: "Send test delivery" }).click();
      const result = page.locator("#test-result");
      await result.waitFor();
      return { text: (await result.textContent()).replace(/\s+/g, " ").trim(), cls: await result.getAttribute("class") };
    }
    async function setWebhook(url) {
      await page.locator(".head-actions").getByRole("link", { name: "Edit" }).click();
      await page.waitForURL("**/edit");
      await page.getByLabel("Webhook URL").fill(url);
      const saved = await submit(page, page.getByRole("button", { name: "Save changes" }));
      assert(saved === 200, `Save changes answers 200, got ${saved}`);
      assert((await page.getByRole("status").first().textContent()).includes("Saved"), "Saved notice");
      const card = page.locator("section", { has: page.locator("#check-title") });
      assert(await card.isVisible(), "the saved page shows the webhook destination check");
      return (await card.textContent()).replace(/\s+/g, " ").trim();
    }
    const beforeTest = receiver.requests.length;
    let r = await testDelivery();
    assert(r.text.includes("delivered") && r.text.includes("HTTP 200") && r.cls.includes("good"), `200: ${r.text}`);
    assert(receiver.requests.length === beforeTest + 1 && receiver.requests[beforeTest].headers["x-caputchin-test"] === "1", "the test reached the receiver as a test");
    await look(page, "10-test-200");

    let card = await setWebhook(failing.url);
    assert(card.includes("delivery is allowed"), `the 500 receiver is an allowed destination: ${card}`);
    r = await testDelivery();
    assert(r.text.includes("HTTP 500") && r.cls.includes("bad") && !/^webhook delivered/.test(r.text) && r.text.startsWith("webhook http-5xx"), `500: ${r.text}`);
    assert(failing.requests.length === 1, `the 500 receiver got the test, ${failing.requests.length}`);
    assert(r.text.includes("receiver is broken"), `the response body is shown: ${r.text}`);
    await look(page, "11-test-500");

    card = await setWebhook(`http://127.0.0.1:${downPort}/hook`);
    assert(card.includes("delivery is allowed"), `a closed port is still an allowed destination: ${card}`);
    r = await testDelivery();
    assert(r.text.startsWith("webhook connect") && r.cls.includes("bad"), `nothing listening: ${r.text}`);
    await look(page, "12-test-connect");

    card = await setWebhook("http://10.1.2.3/hook");
    assert(card.includes("CAPUTCHIN_EGRESS_ALLOW") && card.includes("blocked"), `the blocked destination names the way out: ${card}`);
    await look(page, "13-blocked-saved");
    r = await testDelivery();
    assert(r.text.includes("blocked-destination") && r.text.includes("CAPUTCHIN_EGRESS_ALLOW") && r.cls.includes("bad"), `blocked: ${r.text}`);
    await look(page, "14-test-blocked");

    card = await setWebhook(receiver.url);
    assert(card.includes("delivery is allowed"), `back to the 200 receiver: ${card}`);

    console.log(`  [${label}] 7. statistics`);
    await page.locator(".head-actions").getByRole("link", { name: "Statistics" }).click();
    await page.waitForURL("**/stats**");
    await page.getByRole("link", { name: "Today" }).click();
    await page.waitForURL(/range=/);
    const tile = async (id) => (await page.locator(`#${id}`).textContent()).trim();
    assert((await tile("tile-webhook-delivered")) === "1", `webhook delivered tile: ${await tile("tile-webhook-delivered")}`);
    assert((await tile("tile-rejected")) === "0", `rejected tile: ${await tile("tile-rejected")}`);
    assert((await tile("tile-webhook-failed")) === "0", `webhook failed tile (tests are apart): ${await tile("tile-webhook-failed")}`);
    assert((await tile("tile-email-delivered")) === "0", `email delivered tile (no email destination): ${await tile("tile-email-delivered")}`);
    assert((await tile("tile-email-failed")) === "0", `email failed tile (no email destination): ${await tile("tile-email-failed")}`);
    assert((await page.content()).includes("badge test"), "test deliveries are listed and labelled");
    const layout = await page.evaluate(() => {
      const scrolls = (el) => {
        for (let a = el.parentElement; a; a = a.parentElement) {
          const s = getComputedStyle(a);
          if (/auto|scroll/.test(s.overflowX) && a.scrollWidth > a.clientWidth) return true;
        }
        return false;
      };
      const hidden = (el) => {
        for (let a = el; a; a = a.parentElement) {
          const s = getComputedStyle(a);
          if (s.display === "none" || s.clip === "rect(0px, 0px, 0px, 0px)") return true;
        }
        return false;
      };
      // window.innerWidth, except that under isMobile it grows to fit overflowing content.
      const vw = Math.min(window.innerWidth, document.documentElement.clientWidth);
      const clipped = [];
      let checked = 0;
      for (const el of document.querySelectorAll("main table td, main table th")) {
        if (hidden(el)) continue;
        checked++;
        const r = el.getBoundingClientRect();
        if (r.right <= vw + 1 || scrolls(el)) continue;
        clipped.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" right=${r.right.toFixed(1)}`);
      }
      const chart = document.querySelector(".chart").getBoundingClientRect();
      // The latest bar with data (the one a newcomer just caused) must be in view.
      const bars = [...document.querySelectorAll(".chart svg g:not(.legend) rect")];
      const latest = bars[bars.length - 1];
      const lr = latest && latest.getBoundingClientRect();
      const latestHidden = latest && (lr.left < chart.left - 1 || lr.right > chart.right + 1)
        ? latest.parentElement.querySelector("title")?.textContent : null;
      const legend = document.querySelector("#chart-legend").getBoundingClientRect();
      const legendHidden = legend.width === 0 || legend.right > vw + 1;
      const texts = [...document.querySelectorAll(".chart svg text")].map((t) => ({
        text: t.textContent, h: t.getBoundingClientRect().height,
      }));
      return { checked, bars: bars.length, latestHidden, legendHidden, clipped, texts, cells: document.querySelectorAll("main table td, main table th").length, width: vw, docWidth: document.documentElement.scrollWidth };
    });
    assert(layout.cells > 0, "the statistics have tables");
    assert(layout.clipped.length === 0, `table cells clipped at ${layout.width} px: ${layout.clipped.join("; ")}`);
    assert(layout.texts.length > 0, "the chart has axis text");
    const small = layout.texts.filter((t) => t.h < 10.5);
    assert(small.length === 0, `chart text under 10.5 px: ${JSON.stringify(small.slice(0, 5))}`);
    assert(layout.bars >= 1, "the chart has a bar for the real delivery");
    expect(!layout.latestHidden, `stats: the chart's latest bar (${layout.latestHidden}) is outside the visible part of the chart, which scrolls sideways: at first sight the chart looks empty`);
    expect(!layout.legendHidden, "stats: the chart's legend is not in view");
    assert(layout.docWidth <= layout.width + 1, `the page itself does not scroll sideways: ${layout.docWidth} > ${layout.width}`);
    console.log(`  [${label}] ${layout.checked} of ${layout.cells} cells shown and none clipped, chart text ${Math.min(...layout.texts.map((t) => t.h)).toFixed(1)}–${Math.max(...layout.texts.map((t) => t.h)).toFixed(1)} px`);
    await look(page, "15-stats-today");
    await page.locator(".head-actions").getByRole("link", { name: "Site" }).click();
    await page.waitForURL(siteUrl);

    console.log(`  [${label}] 8. edit with a bad difficulty: refused on its own field, nothing changed`);
    await page.locator(".head-actions").getByRole("link", { name: "Edit" }).click();
    await page.waitForURL("**/edit");
    await page.getByLabel("Difficulty").fill("0");
    const badEdit = await submit(page, page.getByRole("button", { name: "Save changes" }));
    assert(badEdit === 422, `difficulty 0 on edit answers 422, got ${badEdit}`);
    const editDifficulty = page.locator("#difficulty");
    assert((await editDifficulty.getAttribute("aria-invalid")) === "true", "edit: Difficulty is marked invalid");
    const editError = (await page.locator("#difficulty-error").textContent()).trim();
    assert(editError === "Difficulty must be between 1 and 8.", `edit: difficulty error text: ${JSON.stringify(editError)}`);
    assert((await page.locator("#challenge_count").getAttribute("aria-invalid")) === null, "edit: Challenges not marked invalid");
    assert((await page.locator("#challenges-error").count()) === 0, "edit: no Challenges error");
    assert((await page.getByLabel("Webhook URL").inputValue()) === receiver.url, "edit: the other fields are kept");
    await look(page, "16-edit-difficulty-error");
    await page.goto(siteUrl);
    const shape = (await page.locator("dt", { hasText: "Proof of work" }).locator("xpath=following-sibling::dd[1]").textContent()).trim();
    assert(shape.startsWith("32 challenges × difficulty 4"), `the refused edit changed nothing: ${shape}`);

    console.log(`  [${label}] 9. rotate the secret with a 1-hour grace`);
    assert((await page.locator("#previous-secret").count()) === 0, "no previous secret before rotating");
    await page.getByRole("link", { name: "Rotate secret…" }).click();
    await page.waitForURL("**/rotate");
    assert((await page.getByLabel("No: it stops at once").isChecked()), "no grace is the default");
    await page.getByLabel("For 1 hour").check();
    assert(await page.locator("#grace-1h").isChecked(), "1 hour chosen");
    for (const id of ["grace-none", "grace-1h", "grace-24h"]) {
      const radio = await page.locator(`#${id}`).boundingBox();
      const text = await page.locator(`label[for=${id}]`).boundingBox();
      const gap = text.x - (radio.x + radio.width);
      expect(radio.width <= 32 && gap >= 0 && gap <= 16,
        `rotate: radio #${id} is ${radio.width.toFixed(0)} px wide and ${gap.toFixed(0)} px from its label (label ${text.width.toFixed(0)}×${text.height.toFixed(0)} px)`);
    }
    await look(page, "17-rotate-confirm");
    const rotated = await submit(page, page.getByRole("button", { name: "Rotate secret" }));
    assert(rotated === 200, `Rotate secret answers 200, got ${rotated}`);
    const newSecret = await page.locator("#secret").inputValue();
    assert(newSecret.startsWith("cpt_sec_") && newSecret !== firstSecret, "a new secret, not the old one");
    const prev = (await page.locator("#previous-secret").textContent()).trim();
    assert(prev.includes("keeps working until"), `the grace is stated: ${prev}`);
    await look(page, "18-new-secret");
    await page.getByRole("link", { name: "Continue to the site" }).click();
    await page.waitForURL(siteUrl);
    assert(await page.locator("#previous-secret").isVisible(), "the site page shows the grace");
    assert((await page.locator("#previous-secret").textContent()).includes("keeps working until"), "the site page's grace text");
    assert(!(await page.content()).includes(newSecret), "the new secret is not shown again");
    await page.locator("#previous-secret").scrollIntoViewIfNeeded();
    await look(page, "19-site-previous-secret");

    console.log(`  [${label}] 10. delete the site`);
    await page.getByRole("link", { name: "Delete site…" }).click();
    await page.waitForURL("**/delete");
    assert((await page.locator("h1").textContent()).includes("Contact form"), "the confirmation names the site");
    await page.getByRole("button", { name: "Delete site" }).click();
    await page.waitForURL(/\/dashboard(\?|$)/);
    assert(await page.locator("#deleted-notice").isVisible(), "the deleted notice");
    assert(await page.getByRole("link", { name: "Create your first site" }).isVisible(), "the list is empty again");
    const gone = await fetch(`${server.base}/f/${siteKey}`);
    await gone.arrayBuffer();
    assert(gone.status === 404, `the forwarder URL is gone: ${gone.status}`);
    await look(page, "20-deleted");

    assert(pageErrors.length === 0, `no page errors: ${pageErrors.join("; ")}`);
    assert(problems.length === 0, `${problems.length} layout problem(s) at ${label} width:\n    ${problems.join("\n    ")}`);
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    await staticPage.close();
    await failing.close();
    await receiver.close();
  }
}

await run("newcomer at desktop width: setup link to deletion", () =>
  newcomer("desktop", { viewport: { width: 1280, height: 900 } }));
await run("newcomer at phone width: setup link to deletion", () =>
  newcomer("phone", { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }));

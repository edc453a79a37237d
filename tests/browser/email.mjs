// The email destination in a real browser: a site with no webhook at all, made in the dashboard
// with two addresses; its snippet on a static page; a visitor submits through the widget and the
// owner's email arrives at a real SMTP server (tests/smtp/server.py), with Reply-To set to the
// visitor; then a webhook is added, Test delivery shows both destinations' results, and the
// statistics show email and webhook tiles side by side.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import {
  assert, launchBrowser, root, run, shot, startOrigin, startReceiver, startServer, waitFor,
} from "./harness.mjs";

const ACCOUNT = "owner@example.com";
const PASSWORD = "correct horse battery";
const INBOXES = ["owner@example.com", "team@example.com"];
const FIELDS = { email: "visitor@example.com", message: "Hello — <b>not bold</b>, from a page without a backend" };

/** tests/smtp/server.py without TLS on a free port, writing each accepted message to a folder. */
async function startSmtp() {
  const out = mkdtempSync(path.join(os.tmpdir(), "cf-browser-mail-"));
  // tests/deps installs aiosmtpd in this virtual environment.
  const venv = path.join(root, "tests/smtp/.venv/bin/python");
  const python = existsSync(venv) ? venv : "python3";
  const proc = spawn(python, [path.join(root, "tests/smtp/server.py"), "--tls", "none", "--out", out],
    { stdio: ["pipe", "pipe", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => { log += d.toString(); });
  const port = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout });
    lines.once("line", (line) => resolve(Number(line.trim())));
    proc.once("exit", (code) => reject(new Error(`the SMTP server exited (${code}):\n${log}`)));
  });
  assert(Number.isInteger(port) && port > 0, `the SMTP server's port: ${port}`);
  return {
    url: `smtp://127.0.0.1:${port}/?tls=none`,
    messages: () => readdirSync(out).filter((f) => f.endsWith(".eml")).sort()
      .map((f) => readFileSync(path.join(out, f), "utf8")),
    stop: () => { proc.stdin.end(); proc.kill(); rmSync(out, { recursive: true, force: true }); },
  };
}

/** The message parsed by Python's email package (a real MIME parser). */
function parse(raw) {
  const script = `
import email, email.policy, json, sys
m = email.message_from_string(sys.stdin.read(), policy=email.policy.default)
parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
print(json.dumps({"subject": m["subject"], "from": m["from"], "to": m.get_all("to"),
  "reply_to": m.get_all("reply-to"), "text": parts.get("text/plain"), "html": parts.get("text/html")}))`;
  return JSON.parse(execFileSync("python3", ["-c", script], { input: raw, encoding: "utf8" }));
}

await run("email: an email-only site end to end, then Test delivery and statistics per destination", async () => {
  const smtp = await startSmtp();
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: ACCOUNT,
    CAPUTCHIN_BOOTSTRAP_PASSWORD: PASSWORD,
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
    CAPUTCHIN_SMTP_URL: smtp.url,
    CAPUTCHIN_MAIL_FROM: "Forms <forms@example.com>",
  });
  let snippet = null;
  const staticPage = await startOrigin((req, res, url) => {
    if (url.pathname !== "/" || snippet === null) return false;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No backend</title></head><body>${snippet}</body></html>`);
  });
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(20_000);
    const page = await context.newPage();
    await page.goto(`${server.base}/login`);
    await page.getByLabel("Email").fill(ACCOUNT);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL("**/dashboard");

    console.log("  1. a site with email only: a bad address first, then two good ones");
    await page.getByRole("link", { name: "New site" }).first().click();
    await page.getByLabel("Name").fill("Newsletter signup");
    assert((await page.locator("#webhook_url").getAttribute("required")) === null, "the webhook is optional with a relay");
    await page.getByLabel("Email to").fill("owner@example.com\nnot-an-address");
    await page.getByLabel("Allowed origins").fill(staticPage.origin);
    await page.getByLabel("Challenges", { exact: true }).fill("3");
    await page.getByLabel("Difficulty").fill("2");
    await page.getByRole("button", { name: "Create site" }).click();
    const emailError = (await page.locator("#email-error").textContent()).trim();
    assert(emailError.includes("not-an-address"), `the bad address is named next to its field: ${emailError}`);
    assert((await page.locator("#email_to").getAttribute("aria-invalid")) === "true", "Email to is marked invalid");
    await shot(page, "email-01-bad-address");
    await page.getByLabel("Email to").fill(INBOXES.join("\n"));
    await page.getByRole("button", { name: "Create site" }).click();
    assert((await page.locator("h1").textContent()).trim() === "Site created", "the created page");
    snippet = await page.locator("#snippet-widget").inputValue();
    await shot(page, "email-02-created");
    await page.getByRole("link", { name: "Continue to the site" }).click();
    await page.waitForURL(/\/sites\/[^/]+$/);
    const siteUrl = page.url();
    const head = (await page.locator(".page-head").textContent()).replace(/\s+/g, " ");
    assert(head.includes("webhook none") && INBOXES.every((a) => head.includes(a)), `the site shows its destinations: ${head}`);
    await shot(page, "email-03-site");

    console.log("  2. a visitor submits the snippet's form; the email arrives");
    const visitor = await context.newPage();
    await visitor.goto(`${staticPage.origin}/`);
    await visitor.waitForFunction(() => document.querySelector("caputchin-widget")?.state === "ready");
    await visitor.getByLabel("Email").fill(FIELDS.email);
    await visitor.getByLabel("Message").fill(FIELDS.message);
    await visitor.getByRole("button", { name: "Send" }).click();
    await visitor.locator("h1", { hasText: "Thank you" }).waitFor({ timeout: 30_000 });
    await shot(visitor, "email-04-thank-you");
    const [raw] = await waitFor("the email", () => smtp.messages().length > 0 && smtp.messages(), 10_000);
    await visitor.waitForTimeout(300);
    assert(smtp.messages().length === 1, `one email, got ${smtp.messages().length}`);
    const mail = parse(raw);
    assert(mail.subject === "New submission — Newsletter signup", `subject: ${mail.subject}`);
    assert(mail.from === "Forms <forms@example.com>", `from: ${mail.from}`);
    assert(JSON.stringify(mail.to) === JSON.stringify([INBOXES.join(", ")]), `to: ${JSON.stringify(mail.to)}`);
    assert(JSON.stringify(mail.reply_to) === JSON.stringify([FIELDS.email]), `reply-to: ${JSON.stringify(mail.reply_to)}`);
    assert(mail.text.includes(FIELDS.message) && mail.text.indexOf("email") < mail.text.indexOf("message"), `text part: ${mail.text}`);
    assert(mail.html.includes("&lt;b&gt;not bold&lt;/b&gt;") && !mail.html.includes("<b>not bold"), "the HTML part escapes values");
    assert(!raw.includes("caputchin-token"), "the token is stripped");
    assert(receiver.requests.length === 0, "no webhook was called");
    // The owner's inbox, as a mail client renders the HTML part.
    const inbox = await context.newPage();
    await inbox.setContent(`<!doctype html><meta charset="utf-8"><title>Inbox</title>
<div style="font:14px system-ui;margin:1rem;border-bottom:1px solid #ccc">
<p><b>From:</b> ${mail.from.replace(/</g, "&lt;")}<br><b>To:</b> ${mail.to.join(", ")}<br>
<b>Reply-To:</b> ${mail.reply_to.join(", ")}<br><b>Subject:</b> ${mail.subject}</p></div>${mail.html}`);
    await shot(inbox, "email-05-arrived");
    await inbox.close();
    await visitor.close();

    console.log("  3. a webhook beside the email; Test delivery runs both");
    await page.goto(siteUrl);
    await page.locator(".head-actions").getByRole("link", { name: "Edit" }).click();
    await page.getByLabel("Webhook URL").fill(receiver.url);
    await page.getByRole("button", { name: /Save/ }).click();
    await page.locator(".notice", { hasText: "Saved." }).waitFor();
    const saved = (await page.locator(".page-head").textContent()).replace(/\s+/g, " ");
    assert(saved.includes(receiver.url) || saved.includes("127.0.0.1"), `the webhook is shown: ${saved}`);
    assert(INBOXES.every((a) => saved.includes(a)), `the addresses are kept: ${saved}`);
    await page.getByRole("button", { name: "Send test delivery" }).click();
    await page.locator("#test-result").waitFor();
    const webhookResult = (await page.locator("#test-result-webhook").textContent()).replace(/\s+/g, " ");
    const emailResult = (await page.locator("#test-result-email").textContent()).replace(/\s+/g, " ");
    assert(webhookResult.includes("delivered") && webhookResult.includes("HTTP 200"), `webhook result: ${webhookResult}`);
    assert(emailResult.includes("delivered") && /SMTP 250/.test(emailResult), `email result: ${emailResult}`);
    assert((await page.locator("#test-result").getAttribute("class")).includes("good"), "both delivered: good");
    await shot(page, "email-06-test-delivery");
    await waitFor("the test email", () => smtp.messages().length === 2, 10_000);
    assert(parse(smtp.messages()[1]).subject.startsWith("[Test] "), "the test email says so");
    assert(receiver.requests.length === 1 && receiver.requests[0].headers["x-caputchin-test"] === "1", "the webhook got the test");

    console.log("  4. the statistics: email and webhook tiles side by side");
    await page.locator(".head-actions").getByRole("link", { name: "Statistics" }).click();
    await page.getByRole("link", { name: "Today" }).click();
    const tile = async (id) => (await page.locator(`#${id}`).textContent()).replace(/\s+/g, " ").trim();
    for (const id of ["tile-webhook-delivered", "tile-webhook-failed", "tile-email-delivered", "tile-email-failed"]) {
      assert(await page.locator(`#${id}`).isVisible(), `${id} is shown`);
    }
    const emailDelivered = await tile("tile-email-delivered");
    const webhookDelivered = await tile("tile-webhook-delivered");
    assert(/\b1\b/.test(emailDelivered), `one email delivered (tests apart): ${emailDelivered}`);
    assert(/\b0\b/.test(webhookDelivered), `no real webhook delivery yet: ${webhookDelivered}`);
    await shot(page, "email-07-statistics");
  } finally {
    await browser.close();
    await staticPage.close();
    await receiver.close();
    await server.stop();
    smtp.stop();
  }
});

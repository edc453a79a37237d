// The dashboard in a real browser: log in, create a site pointing at a local receiver, read the
// site page and its snippet, press Test delivery, open the statistics — with screenshots.
import { assert, launchBrowser, run, shot, startReceiver, startServer } from "./harness.mjs";

await run("dashboard: log in, create a site, Test delivery, statistics", async () => {
  const receiver = await startReceiver();
  const server = await startServer({
    CAPUTCHIN_BOOTSTRAP_EMAIL: "owner@example.com",
    CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery",
    CAPUTCHIN_EGRESS_ALLOW: "127.0.0.0/8",
  });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.base}/`);
    assert(page.url().endsWith("/login"), `redirected to login, got ${page.url()}`);
    await shot(page, "01-login");

    await page.getByLabel("Email").fill("owner@example.com");
    await page.getByLabel("Password").fill("wrong password!");
    await page.getByRole("button", { name: "Log in" }).click();
    assert(await page.getByRole("alert").textContent().then((t) => t.includes("Wrong email or password")), "login error shown");
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL("**/dashboard");
    await shot(page, "02-sites-empty");

    await page.getByRole("link", { name: "New site" }).first().click();
    await page.getByLabel("Name").fill("Contact form");
    await page.getByLabel("Webhook URL").fill("ftp://not-allowed.example/");
    await page.getByRole("button", { name: "Create site" }).click();
    assert((await page.locator("#webhook-error").textContent()).includes("http or https"), "webhook error next to its field");
    await shot(page, "03-site-form-error");
    await page.getByLabel("Webhook URL").fill(receiver.url);
    await page.getByLabel("Challenges", { exact: true }).fill("3");
    await page.getByLabel("Difficulty").fill("2");
    await page.getByRole("button", { name: "Create site" }).click();
    const secret = await page.locator("#secret").inputValue();
    assert(secret.startsWith("cpt_sec_"), "secret shown once");
    await shot(page, "04-secret-once");

    await page.getByRole("link", { name: "Continue to the site" }).click();
    const key = (await page.locator("#site-key").textContent()).trim();
    assert(key.startsWith("cpt_pub_"), "site key on the site page");
    const snippet = await page.locator("#snippet-widget").inputValue();
    assert(snippet.includes(`<caputchin-widget sitekey="${key}"`), "snippet carries the key");
    assert(snippet.includes(`action="${server.base}/f/${key}"`), "snippet posts to the forwarder URL");
    assert(!(await page.content()).includes(secret), "secret not shown again");
    await shot(page, "05-site-page");

    await page.getByRole("button", { name: "Send test delivery" }).click();
    const result = page.locator("#test-result");
    await result.waitFor();
    const text = await result.textContent();
    assert(text.includes("delivered") && text.includes("HTTP 200"), `test delivery delivered: ${text}`);
    assert(text.includes("127.0.0.1"), "resolved address shown");
    assert(receiver.requests.length === 1, `receiver got one request, got ${receiver.requests.length}`);
    assert(receiver.requests[0].headers["x-caputchin-test"] === "1", "test header");
    assert(receiver.requests[0].json.caputchin.test === true, "test envelope");
    await shot(page, "06-test-delivery");

    await page.locator(".head-actions").getByRole("link", { name: "Statistics" }).click();
    await page.getByRole("link", { name: "Today" }).click();
    assert((await page.locator("#tile-webhook-delivered").textContent()).trim() === "0", "tests kept out of the tiles");
    assert((await page.content()).includes("badge test"), "the test delivery is listed and labelled");
    assert((await page.locator("h1").textContent()).includes("Contact form"), "the site's own statistics");
    await shot(page, "07-site-stats");

    await page.goto(`${server.base}/stats?range=28d`);
    await shot(page, "08-account-stats");

    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.context().addCookies(await page.context().cookies());
    await phone.goto(page.url().replace(/\/stats.*$/, "/dashboard"));
    await shot(phone, "09-sites-phone");
  } finally {
    await browser.close();
    await server.stop();
    await receiver.close();
  }
});

// Shared pieces of the browser tests: a free loopback port, the real forwarder binary on a
// temporary database, a real local webhook receiver, headless Debian chromium, screenshots.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const artifacts = path.join(root, "artifacts");
mkdirSync(artifacts, { recursive: true });

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A webhook receiver on 127.0.0.1 recording every request (headers and parsed JSON body). */
export async function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json = null;
      try { json = JSON.parse(body); } catch { /* recorded as text */ }
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, json });
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"received":true}');
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Starts the release or debug binary on a free port with a temporary database. */
export async function startServer(env = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "cf-browser-"));
  const base = `http://127.0.0.1:${port}`;
  const proc = spawn(binary, ["serve"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      RUST_LOG: "warn",
      CAPUTCHIN_BIND: `127.0.0.1:${port}`,
      CAPUTCHIN_PUBLIC_URL: base,
      CAPUTCHIN_DATABASE: path.join(dir, "data/forwarder.db"),
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  proc.stderr.on("data", (d) => { log += d.toString(); });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline || proc.exitCode !== null) {
      throw new Error(`forwarder did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    dir,
    log: () => log,
    stop: async () => {
      proc.kill("SIGTERM");
      await new Promise((resolve) => proc.once("exit", resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The forwarder binary the browser tests run. */
export const binary =
  process.env.FORWARDER_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(root, "target"), "debug/caputchin-forwarder");

/** Runs the CLI against a running server's database; resolves with its standard output. */
export function cli(server, args) {
  return new Promise((resolve, reject) => {
    execFile(binary, args, {
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        CAPUTCHIN_DATABASE: path.join(server.dir, "data/forwarder.db"),
        CAPUTCHIN_PUBLIC_URL: server.base,
      },
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${args.join(" ")} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Creates a site with the CLI and waits (at most 10 s) until the running server answers for it.
 * Options: account (email), name, webhook, origins [], redirect, challenges, difficulty.
 * Resolves with the CLI's JSON (`site_key`, `secret`, `forwarder_url`, `cap_endpoint`, …).
 */
export async function createSite(server, options) {
  const args = ["site", "create", "--account", options.account, "--name", options.name || "Browser test",
    "--webhook", options.webhook, "--json"];
  for (const origin of options.origins || []) args.push("--origin", origin);
  if (options.redirect) args.push("--redirect", options.redirect);
  if (options.challenges) args.push("--challenges", String(options.challenges));
  if (options.difficulty) args.push("--difficulty", String(options.difficulty));
  const site = JSON.parse(await cli(server, args));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${server.base}/v1/cap/${site.site_key}/challenge`, { method: "POST" });
    await res.arrayBuffer();
    if (res.status !== 404) return site;
    if (Date.now() > deadline) throw new Error(`the server never picked up site ${site.site_key}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A web page origin of its own on 127.0.0.1 (another port than the forwarder, so requests
 * between them are cross-origin). `handler(req, res, url)` answers; it may return false to 404.
 */
export async function startOrigin(handler) {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    try {
      if ((await handler(req, res, url)) === false && !res.headersSent) {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found");
      }
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(e));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

/** Polls `check` (sync or async) until it returns a truthy value; fails after `ms`. */
export async function waitFor(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits for exactly one new request at the receiver (after `before` requests) and checks it is the
 * webhook contract's envelope for a real submission: `caputchin` metadata without game data and
 * `form` equal to `fields` (in order), with no trace of the token field or of `token`.
 */
export async function expectEnvelope(receiver, before, { siteKey, fields, token = null, since = 0 }) {
  await waitFor("the delivery", () => receiver.requests.length > before, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  assert(receiver.requests.length === before + 1, `one delivery, got ${receiver.requests.length - before}`);
  const req = receiver.requests[before];
  const { caputchin, form, ...rest } = req.json || {};
  assert(Object.keys(rest).length === 0 && caputchin && form, `envelope shape: ${req.body}`);
  assert(JSON.stringify(Object.keys(caputchin).sort()) ===
    JSON.stringify(["duration_ms", "game_id", "score", "session_id", "site_key", "verified_at"]), `caputchin keys: ${req.body}`);
  assert(caputchin.site_key === siteKey, "site_key");
  assert(typeof caputchin.session_id === "string" && caputchin.session_id.length > 0, "session_id");
  assert(caputchin.game_id === null && caputchin.score === null && caputchin.duration_ms === null, "no game metadata");
  assert(typeof caputchin.verified_at === "number" && caputchin.verified_at >= since && caputchin.verified_at <= Date.now(), "verified_at");
  assert(JSON.stringify(form) === JSON.stringify(fields), `form fields in order: ${JSON.stringify(form)}`);
  assert(!req.body.includes("caputchin-token") && (!token || !req.body.includes(token)), "the token is stripped");
  assert(req.headers["x-caputchin-test"] === undefined, "a real delivery, not a test");
  return req;
}

/** Headless Debian chromium with the flags that keep it off the network. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run",
    ],
  });
}

export async function shot(page, name) {
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  screenshot ${path.relative(root, file)}`);
}

/** Runs named async steps, printing each; exits non-zero on the first failure. */
export async function run(name, body) {
  console.log(`browser test: ${name}`);
  const started = Date.now();
  try {
    await body();
    console.log(`ok: ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    console.error(`FAILED: ${name}\n${e.stack || e}`);
    process.exitCode = 1;
  }
}

// Shared pieces of the browser tests: a free loopback port, the real forwarder binary on a
// temporary database, a real local webhook receiver, headless Debian chromium, screenshots.
import { spawn } from "node:child_process";
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
  const binary = process.env.FORWARDER_BIN || path.join(root, "target/debug/caputchin-forwarder");
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

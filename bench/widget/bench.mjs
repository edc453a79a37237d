// Browser proof-of-work solver benchmark: our <caputchin-widget> (static/widget.js, JS SHA-256 in
// Web Workers) against @cap.js/widget 0.1.57 with @cap.js/wasm 0.0.6, in ONE headless Debian
// chromium run, on the same challenges, loopback only.
//
// Both widgets run unmodified, from a page on this script's own node:http server that also plays
// a tiny Cap endpoint (POST /v1/cap/{key}/challenge returns a fixed token and {c,s,d}; redeem
// checks every nonce with node's SHA-256 and answers success). Measured:
//   solver  the Worker code each widget builds for itself (its blob: URL is recorded when the
//           widget creates it), driven by this page: 1 Worker, then N Workers taking challenges
//           from one queue. Each Worker first solves a small warm-up challenge (spawn, wasm
//           instantiation and JIT are not timed). Cap's Worker gets the wasm Module as the widget
//           sends it ({salt, target, wasmModule}) and calls solve_pow the widget's way.
//   widget  the real elements end to end: el.start() / capWidget.solve() = challenge + solve with
//           the widget's own Worker pool and scheduling + redeem. "1 worker" forces
//           navigator.hardwareConcurrency = 1 in its browser context (both widgets size their pool
//           from it); "default" lets each widget choose (ours min(8, cores, c), Cap's cores).
// Hashes done = sum over challenges of (smallest nonce + 1): both solvers count up from 0.
//
// Then, against the real forwarder (the binary, on its own loopback port, one site at the default
// difficulty): whole verifications with our widget (api-host = the forwarder, Cap's endpoints) and
// with Caputchin's own widget, the vendored @caputchin/widget 3.5.0 build in
// ../shared/vendor/ retargeted at the forwarder (its /v1/widget/bootstrap, /v1/verify/start and
// /v1/verify/pass), each on its own page (both define <caputchin-widget>), alternating. Timed from
// start() to the token (ours: start()'s promise; Caputchin's: its `pass` event); the hashes come
// from the solutions each widget posts. Skipped when ../shared/vendor/ is not there.
// Usage: bench/widget/run [--reps N] [--default-tokens K]
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { binary, createSite, launchBrowser, startServer } from "../../tests/browser/harness.mjs";

const started = Date.now();
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const modules = path.join(root, "tests/browser/node_modules");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REPS = arg("--reps", 5);
const DEFAULT_TOKENS = arg("--default-tokens", 5);
// Chrome's CPU throttling (DevTools' "4x slowdown", Lighthouse's stand-in for a mid-range phone).
const CPU_SLOWDOWN = arg("--cpu-slowdown", 1);
const LIMIT_MS = 170_000;

const WIDGET_JS = readFileSync(path.join(root, "static/widget.js"));
const CAP_JS = readFileSync(path.join(modules, "@cap.js/widget/cap.min.js"));
const CAP_WASM = readFileSync(path.join(modules, "@cap.js/wasm/browser/cap_wasm_bg.wasm"));
const CAP_VERSION = JSON.parse(readFileSync(path.join(modules, "@cap.js/widget/package.json"), "utf8")).version;
const WASM_VERSION = JSON.parse(readFileSync(path.join(modules, "@cap.js/wasm/package.json"), "utf8")).version;

// src/captcha/cap.rs: DEFAULT_CHALLENGE_COUNT = 32, SALT_CHARS = 32, DEFAULT_DIFFICULTY = 4.
function siteDefaults() {
  const src = readFileSync(path.join(root, "src/captcha/cap.rs"), "utf8");
  const num = (name) => Number(new RegExp(`pub const ${name}: \\w+ = (\\d+);`).exec(src)[1]);
  return { c: num("DEFAULT_CHALLENGE_COUNT"), s: num("SALT_CHARS"), d: num("DEFAULT_DIFFICULTY") };
}
const DEFAULTS = siteDefaults();

// CAP-PROTOCOL §9: T2 with {c:50, s:32, d:4} and its smallest nonces.
const T2 = "e5ad0e2ea6655bb5c8af9ed5ce967cbaa9ace4ec75345aa481";
const T2_SOLUTIONS = [3060, 99772, 19448, 246900, 17099, 38344, 49757, 6071, 56204, 5733, 107999, 93812,
  187654, 2753, 37942, 46445, 22866, 229512, 61464, 35006, 4950, 28610, 27291, 146807, 8882, 77302, 74953,
  44113, 21453, 88561, 7678, 9041, 99236, 7383, 7158, 67832, 34665, 36895, 118960, 199404, 54777, 46726,
  15781, 27891, 210027, 80524, 32994, 20532, 61129, 41483];

// CAP-PROTOCOL §2.
function prng(seed, len) {
  let h = 0x811c9dc5;
  for (const ch of seed) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  let out = "";
  while (out.length < len) {
    h ^= h << 13; h >>>= 0; h ^= h >>> 17; h ^= h << 5; h >>>= 0;
    out += h.toString(16).padStart(8, "0");
  }
  return out.slice(0, len);
}
const derive = (token, { c, s, d }) => Array.from({ length: c }, (_, k) => [prng(`${token}${k + 1}`, s), prng(`${token}${k + 1}d`, d)]);
const sha256hex = (text) => createHash("sha256").update(text).digest("hex");
const hashesOf = (nonces) => nonces.reduce((sum, n) => sum + n + 1, 0);

// The scenarios the mock endpoint serves, by the part of the site key before "~".
const SCENARIOS = {
  warm: [sha256hex("bench warm-up").slice(0, 50), { c: 4, s: 32, d: 2 }],
  t2: [T2, { c: 50, s: 32, d: 4 }],
};
for (let k = 0; k < DEFAULT_TOKENS; k++) SCENARIOS[`def${k}`] = [sha256hex(`bench default ${k}`).slice(0, 50), DEFAULTS];

const t2List = derive(T2, SCENARIOS.t2[1]);
if (t2List[0][0] !== "46766851e4fdb00f0d73575194b1d73d" || t2List[0][1] !== "f117") throw new Error("prng differs from CAP-PROTOCOL §9");
const T2_HASHES = hashesOf(T2_SOLUTIONS);

// ---- the page server and mock Cap endpoint --------------------------------------------------
const redeemed = new Map(); // site key -> solutions
const PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Solver bench</title>
<script>window.CAP_CUSTOM_WASM_URL = "/cap/cap_wasm_bg.wasm";</script>
<script src="/cap/cap.min.js"></script>
<script src="/widget.js"></script>
</head><body><h1>Solver bench</h1><div id="slot"></div>
<script>
"use strict";
const slot = document.getElementById("slot");
const capModule = fetch("/cap/cap_wasm_bg.wasm").then((r) => r.arrayBuffer()).then((b) => WebAssembly.compile(b));
window.bench = {
  // Mounts a widget for site key "key"; run() then times one whole verification.
  mount(kind, key) {
    const el = document.createElement(kind === "ours" ? "caputchin-widget" : "cap-widget");
    if (kind === "ours") {
      el.setAttribute("sitekey", key);
      el.setAttribute("trigger", "manual");
      el.setAttribute("api-host", location.origin);
    } else {
      el.setAttribute("data-cap-api-endpoint", "/v1/cap/" + key + "/");
    }
    el.id = "w";
    slot.replaceChildren(el);
  },
  async run(kind) {
    const el = document.getElementById("w");
    const t0 = performance.now();
    if (kind === "ours") {
      await el.start();
    } else {
      const r = await el.solve();
      if (!r || !r.success) throw new Error("cap-widget did not solve: " + JSON.stringify(r));
    }
    const ms = performance.now() - t0;
    el.remove();
    return ms;
  },
  // The Worker code each widget made for itself (recorded blob: URLs, see the init script).
  async workerUrls() {
    const found = {};
    for (const { url, blob } of window.__blobs) {
      const text = await blob.text();
      if (text.includes("serve(self)")) found.ours = url;
      if (text.includes("solve_pow")) found.cap = url;
    }
    return found;
  },
  // Solves list with n of the widget's Workers, each taking the next challenge when free.
  async solver(kind, url, n, list) {
    const mod = kind === "cap" ? await capModule : null;
    const msg = (salt, target, i) => kind === "ours" ? { i, salt, target } : { salt, target, wasmModule: mod };
    const ask = (w, m) => new Promise((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => reject(new Error("worker error: " + e.message));
      w.postMessage(m);
    });
    const workers = Array.from({ length: n }, () => new Worker(url));
    try {
      await Promise.all(workers.map((w) => ask(w, msg("warm-up-" + Math.random(), "abc", -1))));
      const nonces = new Array(list.length);
      let next = 0;
      const t0 = performance.now();
      await Promise.all(workers.map(async (w) => {
        while (next < list.length) {
          const i = next++;
          const d = await ask(w, msg(list[i][0], list[i][1], i));
          if (kind === "cap" && !d.found) throw new Error("cap worker failed: " + d.error);
          nonces[i] = Number(d.nonce);
        }
      }));
      return { ms: performance.now() - t0, nonces };
    } finally {
      workers.forEach((w) => w.terminate());
    }
  },
};
</script></body></html>`;

function reply(res, status, type, body) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

// Caputchin's own widget, retargeted at the forwarder once it runs (see forwarderRows).
const VENDOR = path.resolve(root, "../shared/vendor/caputchin-widget-3.5.0");
let vendoredJs = null;
const VENDORED_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Caputchin widget bench</title>
<script src="/caputchin/widget.js"></script>
</head><body><h1>Caputchin widget bench</h1><div id="slot"></div>
<script>
"use strict";
const slot = document.getElementById("slot");
window.bench = {
  // Mounts Caputchin's widget; resolves once it has bootstrapped and shows its shield.
  async mount(key) {
    const el = document.createElement("caputchin-widget");
    el.setAttribute("sitekey", key);
    el.setAttribute("trigger", "manual");
    el.id = "w";
    slot.replaceChildren(el);
    for (let i = 0; i < 200 && !el.shadowRoot?.querySelector('[part="simple-shield-box"]'); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  },
  // One whole verification: start() until the pass event (an error event fails it).
  run() {
    const el = document.getElementById("w");
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      el.addEventListener("pass", () => { resolve(performance.now() - t0); el.remove(); }, { once: true });
      el.addEventListener("error", (e) => reject(new Error("caputchin-widget error: " + JSON.stringify(e.detail))), { once: true });
      el.start();
    });
  },
};
</script></body></html>`;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (req.method === "GET") {
    if (url.pathname === "/bench.html") return reply(res, 200, "text/html; charset=utf-8", PAGE);
    if (url.pathname === "/vendored.html" && vendoredJs) return reply(res, 200, "text/html; charset=utf-8", VENDORED_PAGE);
    if (url.pathname === "/caputchin/widget.js" && vendoredJs) return reply(res, 200, "text/javascript; charset=utf-8", vendoredJs);
    if (url.pathname === "/caputchin/cap_wasm_bg.wasm" && vendoredJs) {
      return reply(res, 200, "application/wasm", readFileSync(path.join(VENDOR, "cap_wasm_bg.wasm")));
    }
    if (url.pathname === "/widget.js") return reply(res, 200, "text/javascript; charset=utf-8", WIDGET_JS);
    if (url.pathname === "/cap/cap.min.js") return reply(res, 200, "text/javascript; charset=utf-8", CAP_JS);
    if (url.pathname === "/cap/cap_wasm_bg.wasm") return reply(res, 200, "application/wasm", CAP_WASM);
    if (url.pathname === "/favicon.ico") return reply(res, 204, "image/x-icon", "");
    return reply(res, 404, "text/plain", "not found");
  }
  const m = /^\/v1\/cap\/([^/]+)\/(challenge|redeem)$/.exec(url.pathname);
  if (req.method !== "POST" || !m) return reply(res, 404, "text/plain", "not found");
  const key = decodeURIComponent(m[1]);
  const scenario = SCENARIOS[key.split("~")[0]];
  if (!scenario) return reply(res, 404, "application/json", '{"error":"Unknown site key"}');
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const [token, challenge] = scenario;
    const expires = Date.now() + 600_000;
    if (m[2] === "challenge") return reply(res, 200, "application/json", JSON.stringify({ challenge, token, expires }));
    let body = null;
    try { body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { /* refused below */ }
    const list = derive(token, challenge);
    const ok = body && body.token === token && Array.isArray(body.solutions) && body.solutions.length === list.length &&
      list.every(([salt, target], i) => Number.isSafeInteger(body.solutions[i]) && sha256hex(salt + body.solutions[i]).startsWith(target));
    if (!ok) return reply(res, 200, "application/json", JSON.stringify({ success: false, error: "Invalid solution" }));
    redeemed.set(key, body.solutions);
    return reply(res, 200, "application/json", JSON.stringify({ success: true, token: `bench:${key}`, expires }));
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// ---- the run --------------------------------------------------------------------------------
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const guard = setTimeout(() => {
  console.error(`bench: over ${LIMIT_MS / 1000} s, giving up`);
  process.exit(2);
}, LIMIT_MS);

const browser = await launchBrowser();
const hosts = new Set();
const errors = [];
let serial = 0;

async function openContext(cores) {
  const context = await browser.newContext();
  context.setDefaultTimeout(60_000);
  // Records the blob: URLs pages make (the widgets' Worker code); nothing else is changed.
  await context.addInitScript(() => {
    const create = URL.createObjectURL;
    window.__blobs = [];
    URL.createObjectURL = function (obj) {
      const url = create.call(URL, obj);
      if (obj instanceof Blob) window.__blobs.push({ url, blob: obj });
      return url;
    };
  });
  if (cores) {
    await context.addInitScript((n) => {
      Object.defineProperty(Navigator.prototype, "hardwareConcurrency", { get: () => n, configurable: true });
    }, cores);
  }
  const page = await context.newPage();
  if (CPU_SLOWDOWN > 1) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: CPU_SLOWDOWN });
  }
  let workers = 0;
  page.on("worker", () => { workers++; });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
  page.on("request", (r) => {
    const u = new URL(r.url());
    hosts.add(u.protocol === "blob:" ? new URL(u.pathname).host : u.host);
  });
  await page.goto(`${origin}/bench.html`);
  await page.waitForFunction(() => customElements.get("caputchin-widget") && customElements.get("cap-widget"));
  // One whole verification with a widget; returns its time, the solutions, the Workers it started.
  const widget = async (kind, scenario) => {
    const key = `${scenario}~${kind}-${++serial}`;
    await page.evaluate(([k, key]) => window.bench.mount(k, key), [kind, key]);
    // Cap starts one idle speculative Worker per element when it connects: let that one be
    // reported before counting the Workers the verification itself starts.
    await page.waitForTimeout(300);
    const before = workers;
    const ms = await page.evaluate((k) => window.bench.run(k), kind);
    const solutions = redeemed.get(key);
    if (!solutions) throw new Error(`${kind} ${scenario}: nothing redeemed`);
    return { ms, solutions, workers: workers - before };
  };
  // Warm-up: both widgets once (loads the wasm, makes both Worker blobs).
  await widget("ours", "warm");
  await widget("cap", "warm");
  const urls = await page.evaluate(() => window.bench.workerUrls());
  if (!urls.ours || !urls.cap) throw new Error(`worker code not found: ${JSON.stringify(urls)}`);
  const solver = (kind, n, list) => page.evaluate(([k, u, n, l]) => window.bench.solver(k, u, n, l), [kind, urls[kind], n, list]);
  const cpus = await page.evaluate(() => navigator.hardwareConcurrency);
  return { context, page, widget, solver, cpus };
}

// Whole verifications against the real forwarder: ours and Caputchin's own widget, alternating.
async function forwarderRows(count) {
  if (!existsSync(path.join(VENDOR, "widget.js"))) {
    console.log(`  against the forwarder: skipped (no vendored @caputchin/widget at ${VENDOR})`);
    return;
  }
  const account = "bench@example.com";
  const forwarder = await startServer({ CAPUTCHIN_BOOTSTRAP_EMAIL: account, CAPUTCHIN_BOOTSTRAP_PASSWORD: "correct horse battery" });
  try {
    vendoredJs = readFileSync(path.join(VENDOR, "widget.js"), "utf8").split("http://127.0.0.1:47999").join(forwarder.base);
    // The site's default challenge count and difficulty: no --challenges / --difficulty.
    const site = await createSite(forwarder, { account, name: "Bench", webhook: "https://hooks.example.com/bench" });
    const context = await browser.newContext();
    context.setDefaultTimeout(60_000);
    const solved = [];
    context.on("request", (r) => {
      const u = new URL(r.url());
      hosts.add(u.protocol === "blob:" ? new URL(u.pathname).host : u.host);
      if (r.method() === "POST" && /\/(redeem|verify\/pass)$/.test(u.pathname)) solved.push(JSON.parse(r.postData()).solutions);
    });
    const ours = await context.newPage();
    const theirs = await context.newPage();
    for (const page of [ours, theirs]) {
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });
    }
    await ours.goto(`${origin}/bench.html`);
    await theirs.goto(`${origin}/vendored.html`);
    const once = {
      ours: async () => {
        await ours.evaluate(([key, api]) => {
          const el = document.createElement("caputchin-widget");
          el.setAttribute("sitekey", key);
          el.setAttribute("trigger", "manual");
          el.setAttribute("api-host", api);
          el.id = "w";
          document.getElementById("slot").replaceChildren(el);
        }, [site.site_key, forwarder.base]);
        return ours.evaluate(() => window.bench.run("ours"));
      },
      theirs: async () => {
        await theirs.evaluate((key) => window.bench.mount(key), site.site_key);
        return theirs.evaluate(() => window.bench.run());
      },
    };
    await once.ours();
    await once.theirs(); // warm-up: wasm compiled, workers made
    const times = { ours: [], theirs: [] };
    const hashes = { ours: 0, theirs: 0 };
    for (let k = 0; k < count; k++) {
      for (const kind of k % 2 ? ["theirs", "ours"] : ["ours", "theirs"]) {
        const before = solved.length;
        times[kind].push(await once[kind]());
        if (solved.length !== before + 1) throw new Error(`${kind}: expected one redeem, saw ${solved.length - before}`);
        hashes[kind] += hashesOf(solved[solved.length - 1]);
      }
    }
    await context.close();
    const cell = (kind) => `${mean(times[kind]).toFixed(0)} ms (${Math.min(...times[kind]).toFixed(0)}-${Math.max(...times[kind]).toFixed(0)})`;
    const rate = (kind) => fmtRate(hashes[kind], times[kind].reduce((a, b) => a + b, 0)).toFixed(2);
    const table = [
      ["widget, against the forwarder", `wall time, mean (min-max) of ${count}`, "MH/s"],
      [`ours: static/widget.js (Cap endpoints)`, cell("ours"), rate("ours")],
      ["Caputchin's: @caputchin/widget 3.5.0 vendored (verify/start, verify/pass)", cell("theirs"), rate("theirs")],
    ];
    const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
    const line = (r) => `| ${r.map((c, i) => c.padEnd(w[i])).join(" | ")} |`;
    console.log("");
    console.log(`  against the forwarder (${forwarder.base}, ${path.relative(root, binary)}), site default c=${DEFAULTS.c} s=${DEFAULTS.s} d=${DEFAULTS.d}, each widget's own Worker pool, alternating:`);
    console.log(line(table[0]));
    console.log(`|${w.map((n) => "-".repeat(n + 2)).join("|")}|`);
    for (const r of table.slice(1)) console.log(line(r));
    console.log(`  Caputchin's / ours, wall time: ${(mean(times.theirs) / mean(times.ours)).toFixed(2)}; every token redeemed once by the forwarder`);
  } finally {
    await forwarder.stop();
  }
}

const rows = [];
const fmtRate = (hashes, ms) => hashes / ms / 1000; // MH/s
function check(what, got, expected) {
  if (!same(got, expected)) throw new Error(`${what}: wrong nonces ${JSON.stringify(got)}`);
}

try {
  const full = await openContext(null);
  const one = await openContext(1);
  const cores = full.cpus;
  const ourPool = Math.max(1, Math.min(8, cores, SCENARIOS.t2[1].c));
  const capPool = Math.min(cores, 16) || 8;
  const browserVersion = browser.version();
  console.log(`bench: chromium ${browserVersion}, navigator.hardwareConcurrency = ${cores}, ${REPS} runs per cell (median), loopback ${origin}${CPU_SLOWDOWN > 1 ? `, CPU slowed ${CPU_SLOWDOWN}x` : ""}`);
  console.log(`  ours: static/widget.js (${WIDGET_JS.length} B); Cap: @cap.js/widget ${CAP_VERSION} + @cap.js/wasm ${WASM_VERSION} (${CAP_WASM.length} B wasm)`);
  console.log(`  same challenges: T2 {c:50,s:32,d:4} = ${T2_HASHES} hashes; site default {c:${DEFAULTS.c},s:${DEFAULTS.s},d:${DEFAULTS.d}} x ${DEFAULT_TOKENS} tokens`);

  // Runs `fn(kind)` REPS times for both, alternating, and records the median rate.
  async function cell(label, fn, detail = () => "") {
    const times = { ours: [], cap: [] };
    const extra = { ours: null, cap: null };
    for (let r = 0; r < REPS; r++) {
      for (const kind of r % 2 ? ["cap", "ours"] : ["ours", "cap"]) {
        const got = await fn(kind);
        check(`${label} ${kind}`, got.nonces, T2_SOLUTIONS);
        times[kind].push(got.ms);
        extra[kind] = got;
      }
    }
    const ours = fmtRate(T2_HASHES, median(times.ours));
    const cap = fmtRate(T2_HASHES, median(times.cap));
    rows.push({ label, ours: `${ours.toFixed(2)} MH/s  ${median(times.ours).toFixed(0).padStart(5)} ms`,
      cap: `${cap.toFixed(2)} MH/s  ${median(times.cap).toFixed(0).padStart(5)} ms`, ratio: (ours / cap).toFixed(2), note: detail(extra) });
    process.stdout.write(`  measured: ${label}\n`);
  }

  await cell("solver, 1 worker, T2", (kind) => full.solver(kind, 1, t2List));
  await cell(`solver, ${cores} workers (one queue), T2`, (kind) => full.solver(kind, cores, t2List));
  await cell("widget, 1 worker (cores = 1), T2", async (kind) => {
    const r = await one.widget(kind, "t2");
    return { ms: r.ms, nonces: r.solutions, workers: r.workers };
  }, (x) => `workers started: ours ${x.ours.workers}, Cap ${x.cap.workers}`);
  await cell(`widget, default pool, T2`, async (kind) => {
    const r = await full.widget(kind, "t2");
    return { ms: r.ms, nonces: r.solutions, workers: r.workers };
  }, (x) => `pool: ours min(8, cores, c) = ${ourPool}, Cap cores = ${capPool}; workers started: ours ${x.ours.workers}, Cap ${x.cap.workers}`);

  // The site default difficulty: wall time of a whole verification with each widget's own pool.
  const wall = { ours: [], cap: [] };
  let defHashes = 0;
  for (let k = 0; k < DEFAULT_TOKENS; k++) {
    const got = {};
    for (const kind of k % 2 ? ["cap", "ours"] : ["ours", "cap"]) {
      got[kind] = await full.widget(kind, `def${k}`);
      wall[kind].push(got[kind].ms);
    }
    if (!same(got.ours.solutions, got.cap.solutions)) throw new Error(`def${k}: the widgets found different nonces`);
    defHashes += hashesOf(got.ours.solutions);
  }
  process.stdout.write("  measured: site default difficulty\n");
  const wallCell = (xs) => `${mean(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;
  const defRate = (xs) => fmtRate(defHashes, xs.reduce((a, b) => a + b, 0));
  rows.push({ label: `widget, default pool, c=${DEFAULTS.c} d=${DEFAULTS.d}: wall time, mean (min-max)`,
    ours: wallCell(wall.ours), cap: wallCell(wall.cap), ratio: (mean(wall.cap) / mean(wall.ours)).toFixed(2),
    note: `${(defHashes / DEFAULT_TOKENS / 1e6).toFixed(2)} M hashes per verification on average; ${defRate(wall.ours).toFixed(2)} vs ${defRate(wall.cap).toFixed(2)} MH/s; ratio = wasm time / our time` });

  const cols = ["label", "ours", "cap", "ratio"];
  const head = { label: "measurement", ours: "ours (JS Workers)", cap: `Cap wasm ${WASM_VERSION}`, ratio: "ours/wasm" };
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => String(r[c]).length))]));
  const line = (r) => `| ${cols.map((c) => String(r[c]).padEnd(width[c])).join(" | ")} |`;
  console.log("");
  console.log(line(head));
  console.log(`|${cols.map((c) => "-".repeat(width[c] + 2)).join("|")}|`);
  for (const r of rows) console.log(line(r));
  console.log("");
  for (const r of rows) if (r.note) console.log(`  ${r.label}: ${r.note}`);
  const headline = rows[0];
  console.log(`  goal ours/wasm >= 0.5 on hash rate (solver, 1 worker): ${headline.ratio} ${Number(headline.ratio) >= 0.5 ? "met" : "NOT met"}`);
  const foreign = [...hosts].filter((h) => !h.startsWith("127.0.0.1:"));
  if (foreign.length) throw new Error(`the page talked to other hosts: ${foreign.join(", ")}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  await forwarderRows(DEFAULT_TOKENS);
  const foreignAfter = [...hosts].filter((h) => !h.startsWith("127.0.0.1:"));
  if (foreignAfter.length) throw new Error(`the pages talked to other hosts: ${foreignAfter.join(", ")}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(`  every solution checked; loopback only; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await full.context.close();
  await one.context.close();
} catch (e) {
  console.error(`bench failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  clearTimeout(guard);
  await browser.close();
  server.closeAllConnections();
  server.close();
}

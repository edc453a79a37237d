// <caputchin-widget>: the forwarder's Cap-compatible proof-of-work widget (SPEC §2, CAP-PROTOCOL
// §2-3). Attributes: sitekey (required), api-host (default: this script's origin), trigger =
// auto|click (default)|form-submit|manual, invisible (no UI; trigger click then acts as
// form-submit in a form, else manual). start() -> Promise<token>; reset(); .state; .token.
// Events "pass" {token}, "error" {code, message}: missing-sitekey, network-error,
// challenge-failed, redeem-failed, solve-failed, expired. The token fills one hidden
// caputchin-token input of the enclosing form. On expiry the input is cleared, the widget goes
// back to ready and fires "error" with code "expired"; it does not solve again by itself.
(function () {
"use strict";
var NAME = "caputchin-widget", FIELD = "caputchin-token";
if (!window.customElements || customElements.get(NAME)) return;

// The solver; its source is also the Worker's code, so it uses nothing from outside.
function kit() {
  "use strict";
  // SHA-256 constants: fractions of the cube and square roots of the primes.
  var K = new Int32Array(64), IV = [], W = new Int32Array(64), R = new Int32Array(8),
    B = new Uint8Array(128), p = 2, n = 0, j;
  for (; n < 64; p++) {
    for (j = 2; j * j <= p && p % j; j++);
    if (j * j > p) {
      if (n < 8) IV.push(Math.sqrt(p) % 1 * 4294967296 | 0);
      K[n++] = Math.cbrt(p) % 1 * 4294967296 | 0;
    }
  }

  // CAP-PROTOCOL §2: FNV-1a of the seed seeds xorshift32; 8 hex digits per output, cut to len.
  function prng(seed, len) {
    var h = 0x811c9dc5 | 0, out = "", i;
    for (i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193);
    while (out.length < len) {
      h ^= h << 13; h ^= h >>> 17; h ^= h << 5;
      out += ("0000000" + (h >>> 0).toString(16)).slice(-8);
    }
    return out.slice(0, len);
  }

  function challenges(token, c, s, d) {
    for (var l = [], i = 1; i <= c; i++) l.push([prng(token + i, s), prng(token + i + "d", d)]);
    return l;
  }

  // Rounds from..to-1 over W from state S, into R.
  function rounds(S, from, to) {
    var a = S[0], b = S[1], c = S[2], d = S[3], e = S[4], f = S[5], g = S[6], h = S[7], i, x, y;
    for (i = 16; i < to; i++) {
      x = W[i - 15]; y = W[i - 2];
      W[i] = (((x >>> 7 | x << 25) ^ (x >>> 18 | x << 14) ^ (x >>> 3)) + W[i - 7] +
        ((y >>> 17 | y << 15) ^ (y >>> 19 | y << 13) ^ (y >>> 10)) + W[i - 16]) | 0;
    }
    for (i = from; i < to; i++) {
      x = (h + ((e >>> 6 | e << 26) ^ (e >>> 11 | e << 21) ^ (e >>> 25 | e << 7)) +
        (g ^ (e & (f ^ g))) + K[i] + W[i]) | 0;
      y = (((a >>> 2 | a << 30) ^ (a >>> 13 | a << 19) ^ (a >>> 22 | a << 10)) +
        ((a & b) | (c & (a | b)))) | 0;
      h = g; g = f; f = e; e = (d + x) | 0; d = c; c = b; b = a; a = (x + y) | 0;
    }
    R[0] = a; R[1] = b; R[2] = c; R[3] = d; R[4] = e; R[5] = f; R[6] = g; R[7] = h;
  }

  function pack(o, j0, j1) {
    for (var j = j0, q; j < j1; j++) {
      q = o + 4 * j;
      W[j] = B[q] << 24 | B[q + 1] << 16 | B[q + 2] << 8 | B[q + 3];
    }
  }

  function block(S, o) {
    pack(o, 0, 16);
    rounds(S, 0, 64);
    for (var j = 0; j < 8; j++) S[j] = (S[j] + R[j]) | 0;
  }

  function load(x, digits, at) {
    for (var q = 0; q < x.tail; q++) B[q] = x.rest.charCodeAt(q);
    for (q = 0; q < digits.length; q++) B[at + q] = digits.charCodeAt(q);
  }

  // Per challenge: midstate of whole salt blocks, target as words and masks (an odd length masks
  // a nibble), and the last block's first rounds, which see salt bytes only.
  function prepare(salt, target) {
    var len = salt.length, full = len - len % 64, mid = new Int32Array(IV), tw = [], tm = [], o, q, part;
    for (o = 0; o < full; o += 64) {
      for (q = 0; q < 64; q++) B[q] = salt.charCodeAt(o + q);
      block(mid, 0);
    }
    for (q = 0; q < target.length && q < 64; q += 8) {
      part = target.slice(q, q + 8);
      tw.push(parseInt(part + "0000000".slice(part.length - 1), 16) | 0);
      tm.push(-1 << (32 - 4 * part.length));
    }
    var x = { len: len, tail: len - full, k: (len - full) >> 2, rest: salt.slice(full), mid: mid, tw: tw, tm: tm };
    load(x, "", 0);
    pack(0, 0, x.k);
    rounds(mid, 0, x.k);
    x.pre = new Int32Array(R);
    return x;
  }

  function hit(x, S) {
    for (var q = 0; q < x.tw.length; q++) if (((S[q] ^ x.tw[q]) & x.tm[q]) !== 0) return false;
    return true;
  }

  // Terminator, zeros and bit length after nd digits; the message ends at byte end.
  function pad(x, nd, end) {
    var q = x.tail + nd, bits = (x.len + nd) * 8;
    for (B[q++] = 128; q < end - 4; q++) B[q] = 0;
    B[q++] = bits >>> 24; B[q++] = bits >>> 16; B[q++] = bits >>> 8; B[q] = bits;
    pack(0, 0, 16);
  }

  // The smallest matching nonce in [start, start + count), or -1. The digits count up in place
  // and only the words they changed are rewritten.
  function solve(x, start, count) {
    var tail = x.tail, k = x.k, pre = x.pre, mid = x.mid, n = start, ds = String(start), nd = ds.length, q;
    var t0 = x.tw[0] | 0, m0 = x.tm[0] | 0, h0 = mid[0];
    if (tail + nd + 9 > 64) return slow(x, n, count);
    load(x, ds, tail);
    pad(x, nd, 64);
    for (;;) {
      rounds(pre, k, 64);
      if ((((h0 + R[0]) ^ t0) & m0) === 0) {
        for (q = 0; q < 8; q++) R[q] += mid[q];
        if (hit(x, R)) return n;
      }
      if (--count <= 0) return -1;
      n++;
      for (q = tail + nd - 1; q >= tail && B[q] === 57; q--) B[q] = 48;
      if (q >= tail) {
        B[q]++;
        pack(0, q >> 2, ((tail + nd - 1) >> 2) + 1);
      } else {
        if (tail + ++nd + 9 > 64) return slow(x, n, count);
        load(x, String(n), tail);
        pad(x, nd, 64);
      }
    }
  }

  // Salt tail and nonce needing two blocks (never with s = 32): the whole message each time.
  function slow(x, n, count) {
    for (var S = new Int32Array(8), ds, end; count > 0; count--, n++) {
      ds = String(n); end = x.tail + ds.length + 9 > 64 ? 128 : 64;
      load(x, ds, x.tail);
      pad(x, ds.length, end);
      S.set(x.mid);
      block(S, 0);
      if (end > 64) block(S, 64);
      if (hit(x, S)) return n;
    }
    return -1;
  }

  function serve(scope) {
    scope.onmessage = function (e) {
      var m = e.data;
      scope.postMessage({ i: m.i, nonce: solve(prepare(m.salt, m.target), 0, Infinity) });
    };
  }

  return { challenges: challenges, prepare: prepare, solve: solve, serve: serve };
}

var solver = kit(), workerUrl = null, script = document.currentScript, scriptOrigin = location.origin;
try { if (script && script.src) scriptOrigin = new URL(script.src, location.href).origin; } catch (e) { /* the page's */ }

function failure(code, message) {
  var e = new Error(message);
  e.code = code;
  return e;
}

// One Worker per core (1..8) taking challenges in turn; on the main thread in ~40 ms slices
// when Workers are refused or fail.
function solveAll(list, progress, job) {
  return new Promise(function (resolve, reject) {
    var c = list.length, out = [], done = 0, next = 0, pool = [], fellBack = false, i, w;
    function stop() {
      pool.forEach(function (w) { w.terminate(); });
      pool = [];
    }
    function finish(i, nonce) {
      if (out[i] !== undefined) return;
      out[i] = nonce;
      progress(++done / c);
      if (done === c) { stop(); resolve(out); }
    }
    function feed(w) {
      if (next < c) w.postMessage({ i: next, salt: list[next][0], target: list[next++][1] });
    }
    function fallback() {
      if (fellBack || job.cancelled) return;
      fellBack = true;
      stop();
      var todo = [], t = 0, x = null, n = 0, r;
      for (i = 0; i < c; i++) if (out[i] === undefined) todo.push(i);
      (function slice() {
        if (job.cancelled) return;
        try {
          for (var began = Date.now(); t < todo.length && Date.now() - began < 40;) {
            if (!x) { x = solver.prepare(list[todo[t]][0], list[todo[t]][1]); n = 0; }
            r = solver.solve(x, n, 4096);
            if (r >= 0) { x = null; finish(todo[t++], r); } else n += 4096;
          }
        } catch (e) {
          return reject(failure("solve-failed", "The proof of work could not be computed."));
        }
        if (t < todo.length) setTimeout(slice, 0);
      })();
    }
    job.stop = stop;
    if (!c) return resolve(out);
    try {
      workerUrl = workerUrl || URL.createObjectURL(new Blob(["(" + kit + ")().serve(self)"], { type: "text/javascript" }));
      for (i = Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1, c)); i > 0; i--) {
        pool.push(w = new Worker(workerUrl));
        w.onmessage = function (e) {
          if (fellBack || job.cancelled) return;
          finish(e.data.i, e.data.nonce);
          feed(e.target);
        };
        w.onerror = function (e) { e.preventDefault(); fallback(); };
      }
    } catch (e) {
      return fallback();
    }
    pool.forEach(feed);
  });
}

// POST to a Cap endpoint; JSON answer. No cookies, 30 s at most.
function post(url, body, job, code) {
  var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, 30000);
  var init = { method: "POST", credentials: "omit", cache: "no-store", signal: ctl.signal };
  if (body) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  job.abort = function () { ctl.abort(); };
  return fetch(url, init).then(function (res) {
    return res.text().then(function (text) {
      try { return JSON.parse(text); } catch (e) {
        throw failure(code, "The verification server answered " + res.status + ".");
      }
    });
  }).then(function (v) { clearTimeout(timer); return v; }, function (e) {
    clearTimeout(timer);
    throw e && e.code ? e : failure("network-error", "The verification server is unreachable.");
  });
}

var CSS = ":host{display:inline-block;font:14px/1.4 system-ui,sans-serif;--bg:#fff;--fg:#1f2328;--mu:#59636e;" +
  "--ln:#c8d0d8;--ac:#0969da;--ok:#1a7f37;--no:#cf222e}@media (prefers-color-scheme:dark){:host{--bg:#161b22;" +
  "--fg:#e6edf3;--mu:#9198a1;--ln:#3d444d;--ac:#4493f8;--ok:#3fb950;--no:#f85149}}:host([hidden]){display:none}" +
  ":host([invisible]) .w{display:none}.w{display:flex;align-items:center;" +
  "flex-wrap:wrap;gap:.3em .8em;min-width:14em;padding:.5em .7em;border:1px solid var(--ln);border-radius:8px;" +
  "background:var(--bg);color:var(--fg)}.b{display:inline-flex;align-items:center;gap:.6em;margin:0;" +
  "padding:.25em .3em;border:0;border-radius:5px;background:none;color:inherit;font:inherit;cursor:pointer}" +
  ".b[aria-disabled=true]{cursor:default}.b:focus-visible{outline:2px solid var(--ac);" +
  "outline-offset:2px}.i{display:inline-grid;place-items:center;width:1.6em;height:1.6em;" +
  "border:2px solid var(--ln);border-radius:4px;font-weight:700}" +
  "[data-s=verifying] .i{border-radius:50%;border-top-color:var(--ac);" +
  "animation:r .8s linear infinite}[data-s=verified] .i{border-color:var(--ok);background:var(--ok);color:#fff}" +
  "[data-s=verified] .i::after{content:'\\2713'}[data-s=error] .i{border-color:var(--no);color:var(--no)}" +
  "[data-s=error] .i::after{content:'!'}.p{color:var(--mu);font-variant-numeric:tabular-nums}" +
  ".m{flex-basis:100%;color:var(--no);font-size:.85em}.m:empty,.p:empty{display:none}.sr{position:absolute;" +
  "width:1px;height:1px;margin:-1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}" +
  "@keyframes r{to{transform:rotate(1turn)}}@media (prefers-reduced-motion:reduce){.i{animation:none!important}}";

var LABELS = { ready: "Verify you are human", verifying: "Verifying\u2026", verified: "Verified", error: "Retry" };
var SAY = { ready: "", verifying: "Verifying you are human\u2026", verified: "Verified. You can send the form." };
var CANCELLED = "cancelled", NOKEY = "This widget has no sitekey.";

class CaputchinWidget extends HTMLElement {
  static get observedAttributes() { return ["sitekey"]; }

  constructor() {
    super();
    this._state = "ready";
    this._token = "";
    this._onSubmit = this._onSubmit.bind(this);
    this._onReset = this.reset.bind(this);
  }

  get state() { return this._state; }
  get token() { return this._token; }

  connectedCallback() {
    if (!this.shadowRoot) this._render();
    var form = this.closest("form");
    if (form !== this._form) {
      this._unlisten();
      if ((this._form = form)) {
        form.addEventListener("submit", this._onSubmit, true);
        form.addEventListener("reset", this._onReset);
      }
    }
    this._init();
  }

  disconnectedCallback() {
    this._unlisten();
    this._form = null;
    if (this._job) this.reset();
  }

  attributeChangedCallback(name, old, value) {
    if (this.shadowRoot && this.isConnected && !old !== !value) this._init();
  }

  start() {
    var self = this, key = this.getAttribute("sitekey"), job;
    if (this._token) return Promise.resolve(this._token);
    if (this._promise) return this._promise;
    if (!key) {
      this._init();
      return Promise.reject(failure("missing-sitekey", NOKEY));
    }
    job = this._job = { cancelled: false, stop: function () {}, abort: function () {} };
    this._show("verifying", 0);
    return (this._promise = this._run(key, job).then(function (res) {
      if (job.cancelled) throw failure(CANCELLED, CANCELLED);
      self._promise = self._job = null;
      self._pass(res.token, res.expires);
      return res.token;
    }, function (e) {
      if (job.cancelled) throw failure(CANCELLED, CANCELLED);
      self._promise = self._job = null;
      self._fail(e = e && e.code ? e : failure("solve-failed", "The proof of work failed."));
      throw e;
    }));
  }

  reset() {
    var job = this._job;
    if (job) {
      job.cancelled = true;
      job.stop();
      job.abort();
    }
    this._job = this._promise = null;
    this._clear();
    if (this.getAttribute("sitekey")) this._show("ready");
  }

  _init() {
    if (!this.getAttribute("sitekey")) {
      this.reset();
      this._show("error", 0, NOKEY, true);
      setTimeout(this._emit.bind(this, "error", { code: "missing-sitekey", message: NOKEY }));
      return;
    }
    this._field(true);
    if (!this._promise && !this._token) {
      this._show("ready");
      if (this._trigger() === "auto") this.start().catch(function () {});
    }
  }

  _trigger() {
    var t = (this.getAttribute("trigger") || "").toLowerCase();
    if (!/^(auto|form-submit|manual)$/.test(t)) t = this.hasAttribute("invisible") ? (this._form ? "form-submit" : "manual") : "click";
    return t;
  }

  _run(key, job) {
    var self = this, seed, shown = 0,
      base = (this.getAttribute("api-host") || scriptOrigin).replace(/\/+$/, "") + "/v1/cap/" + encodeURIComponent(key) + "/";
    return post(base + "challenge", null, job, "challenge-failed").then(function (r) {
      var ch = r && r.challenge;
      if (!ch || r.error || typeof r.token !== "string") {
        throw failure("challenge-failed", (r && r.error) || "No challenge was received.");
      }
      seed = r.token;
      return solveAll(Array.isArray(ch) ? ch : solver.challenges(seed, ch.c, ch.s, ch.d), function (f) {
        var pct = Math.floor(f * 100);
        if (pct !== shown && !job.cancelled) self._show("verifying", shown = pct);
      }, job);
    }).then(function (solutions) {
      if (job.cancelled) throw failure(CANCELLED, CANCELLED);
      return post(base + "redeem", { token: seed, solutions: solutions }, job, "redeem-failed");
    }).then(function (r) {
      if (!r || r.success !== true || typeof r.token !== "string") {
        throw failure("redeem-failed", (r && r.error) || "The proof of work was not accepted.");
      }
      return r;
    });
  }

  _pass(token, expires) {
    var self = this, ms = Number(expires) - Date.now(), input = this._field(true);
    this._token = token;
    if (input) input.value = token;
    // A clock far off the server's: assume the token lifetime (SPEC §2).
    if (!(ms > 0 && ms <= 864e5)) ms = 6e5;
    this._timer = setTimeout(function () {
      self._clear();
      self._show("ready");
      self._say("Verification expired.");
      self._emit("error", { code: "expired", message: "The verification expired." });
    }, ms);
    this._show("verified");
    this._emit("pass", { token: token });
  }

  _fail(e) {
    this._clear();
    this._show("error", 0, e.message);
    this._emit("error", { code: e.code, message: e.message });
  }

  _clear() {
    var input = this._field(false);
    clearTimeout(this._timer);
    this._token = "";
    if (input) input.value = "";
  }

  _field(create) {
    var form = this._form, input = this._input;
    if (!form) return null;
    if (!input || !form.contains(input)) input = form.querySelector('input[name="' + FIELD + '"]');
    if (!input && create) {
      form.appendChild(input = document.createElement("input"));
      input.type = "hidden";
      input.name = FIELD;
    }
    return (this._input = input);
  }

  // form-submit: hold the post until verified, then post once (tokenless on failure: missing-token).
  _onSubmit(ev) {
    var self = this, form = this._form, submitter = ev.submitter, input = this._field(false);
    if (this._passing || this._trigger() !== "form-submit" || !this.getAttribute("sitekey")) return;
    if (this._token && input && input.value) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    if (this._waiting) return;
    this._waiting = true;
    this.start().then(function () { return true; }, function (e) {
      self._clear();
      return e.code !== CANCELLED;
    }).then(function (send) {
      self._waiting = false;
      if (!send || self._form !== form) return;
      self._passing = true;
      try {
        if (form.requestSubmit) form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
        else HTMLFormElement.prototype.submit.call(form);
      } finally {
        self._passing = false;
      }
    });
  }

  _unlisten() {
    if (this._form) {
      this._form.removeEventListener("submit", this._onSubmit, true);
      this._form.removeEventListener("reset", this._onReset);
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail: detail, bubbles: true, composed: true }));
  }

  _render() {
    var self = this, root = this.attachShadow({ mode: "open" });
    root.innerHTML = '<style></style><div class="w" part="widget"><button type="button" class="b" part="button">' +
      '<span class="i" aria-hidden="true"></span><span class="t"></span><span class="p" aria-hidden="true"></span>' +
      '</button><span class="m" part="message"></span></div><div class="sr" role="status" aria-live="polite"></div>';
    root.firstChild.textContent = CSS;
    root.querySelector("button").addEventListener("click", function () {
      if (self._state === "ready" || (self._state === "error" && self.getAttribute("sitekey"))) {
        self.start().catch(function () {});
      }
    });
  }

  _show(state, pct, message, inert) {
    var root = this.shadowRoot, changed = state !== this._state || state === "error", label = inert ? "Unavailable" : LABELS[state];
    function $(s) { return root.querySelector(s); }
    this._state = state;
    if (!root) return;
    $(".w").setAttribute("data-s", state);
    $(".t").textContent = label;
    $(".p").textContent = state === "verifying" ? pct + "%" : "";
    $(".m").textContent = state === "error" ? message : "";
    $("button").setAttribute("aria-label", state === "error" && !inert ? "Retry verification" : label);
    $("button").setAttribute("aria-disabled", String(state === "verifying" || state === "verified" || !!inert));
    if (changed) this._say(state === "error" ? "Verification failed: " + message : SAY[state]);
  }

  _say(text) {
    if (this.shadowRoot) this.shadowRoot.lastChild.textContent = text;
  }
}

customElements.define(NAME, CaputchinWidget);
})();

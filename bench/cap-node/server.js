// @cap.js/server behind a minimal node:http server, for bench/run: the Cap endpoints a site
// owner would mount, with the library's in-memory store (no state file).
//   POST /challenge  -> cap.createChallenge({c, s, d})
//   POST /redeem     -> cap.redeemChallenge({token, solutions})
//   POST /siteverify -> cap.validateToken(response)
// Usage: node server.js PORT [c s d]   (prints "listening PORT" once bound)
"use strict";
const http = require("node:http");
const Cap = require("@cap.js/server");

const port = Number(process.argv[2] || 0);
const [c, s, d] = [3, 4, 5].map((i, k) => Number(process.argv[i] || [1, 32, 1][k]));
const cap = new Cap({ noFSState: true });
const shape = { challengeCount: c, challengeSize: s, challengeDifficulty: d };

function send(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= 16 * 1024) chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        resolve(null);
      }
    });
  });
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method !== "POST") return send(res, 405, { error: "method" });
    if (req.url === "/challenge") {
      req.resume();
      return send(res, 200, await cap.createChallenge(shape));
    }
    const body = await readJson(req);
    if (!body) return send(res, 400, { success: false, error: "Invalid body" });
    if (req.url === "/redeem") {
      const answer = await cap.redeemChallenge(body);
      return send(res, answer.success ? 200 : 403, answer);
    }
    if (req.url === "/siteverify") {
      return send(res, 200, await cap.validateToken(body.response));
    }
    send(res, 404, { error: "not-found" });
  } catch (e) {
    send(res, 500, { error: String(e) });
  }
});
server.keepAliveTimeout = 30000;
server.listen(port, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});

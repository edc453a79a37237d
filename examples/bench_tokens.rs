//! Pre-solves proof-of-work for `bench/run`, before its timed part, through the real Cap HTTP
//! endpoints of a server (ours or `@cap.js/server`; both speak CAP-PROTOCOL format 1).
//!
//! `tokens` asks a challenge, solves it with `captcha::cap::solve` and redeems it: one fresh
//! verification token per line. `challenges` stops before redeeming: one `token<TAB>n1,n2,…` line
//! per solved, never redeemed challenge (for timing redeem itself).
//!
//! `cargo run --release --example bench_tokens -- (tokens|challenges) ENDPOINT COUNT OUT [CONNS]`
//! where ENDPOINT is the Cap endpoint ending in `/`, e.g. `http://127.0.0.1:8080/v1/cap/KEY/`.
//!
//! Plain HTTP/1.1 over `std::net::TcpStream`, one keep-alive connection per thread: nothing here
//! needs more, and it keeps the helper's own cost out of the way.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use caputchin_forwarder::captcha::cap::{ChallengeParams, solve};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tokens,
    Challenges,
}

/// Where to send requests: `host:port` and the endpoint's path prefix (ending in `/`).
struct Endpoint {
    authority: String,
    prefix: String,
}

impl Endpoint {
    fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("the endpoint must be an http:// URL"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut prefix = format!("/{path}");
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Endpoint {
            authority: authority.to_owned(),
            prefix,
        })
    }
}

/// One keep-alive connection.
struct Conn<'a> {
    endpoint: &'a Endpoint,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn<'_> {
    /// POSTs a JSON body to `prefix + name`; the status and the parsed JSON answer.
    fn post(&mut self, name: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        // A keep-alive connection the server closed is retried once on a new one.
        match self.try_post(name, body) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stream = None;
                self.try_post(name, body)
            }
        }
    }

    fn try_post(&mut self, name: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.endpoint.authority)
                .with_context(|| format!("connecting to {}", self.endpoint.authority))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let reader = self
            .stream
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        let request = format!(
            "POST {}{name} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.endpoint.prefix,
            self.endpoint.authority,
            body.len()
        );
        reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
        let mut length = None;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "content-length" {
                    length = value.parse::<usize>().ok();
                } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                    close = true;
                } else if name == "transfer-encoding" {
                    bail!("chunked answers are not supported");
                }
            }
        }
        let length = length.ok_or_else(|| anyhow!("no content-length"))?;
        let mut buf = vec![0u8; length];
        reader.read_exact(&mut buf)?;
        if close {
            self.stream = None;
        }
        let value = serde_json::from_slice(&buf).context("the answer is not JSON")?;
        Ok((status, value))
    }
}

/// Gets, solves and (in `tokens` mode) redeems one challenge; the output line.
fn one(conn: &mut Conn<'_>, mode: Mode) -> anyhow::Result<String> {
    let (status, issued) = conn.post("challenge", "{}")?;
    if status != 200 {
        bail!("challenge answered {status}: {issued}");
    }
    let token = issued["token"]
        .as_str()
        .ok_or_else(|| anyhow!("no challenge token in {issued}"))?;
    let shape = &issued["challenge"];
    let field = |name: &str| {
        shape[name]
            .as_u64()
            .ok_or_else(|| anyhow!("no challenge.{name} in {issued}"))
    };
    let params = ChallengeParams {
        count: u16::try_from(field("c")?)?,
        size: u8::try_from(field("s")?)?,
        difficulty: u8::try_from(field("d")?)?,
    };
    let solutions = solve(token, params);
    let list = solutions
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if mode == Mode::Challenges {
        return Ok(format!("{token}\t{list}"));
    }
    let body = serde_json::json!({"token": token, "solutions": solutions}).to_string();
    let (status, redeemed) = conn.post("redeem", &body)?;
    match redeemed["token"].as_str() {
        Some(t) if status == 200 && redeemed["success"] == Value::Bool(true) => Ok(t.to_owned()),
        _ => bail!("redeem answered {status}: {redeemed}"),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_tokens (tokens|challenges) ENDPOINT COUNT OUT [CONNS]";
    if args.len() < 4 {
        bail!(usage);
    }
    let mode = match args[0].as_str() {
        "tokens" => Mode::Tokens,
        "challenges" => Mode::Challenges,
        _ => bail!(usage),
    };
    let endpoint = Endpoint::parse(&args[1])?;
    let count: usize = args[2].parse().context("COUNT must be a number")?;
    let out = &args[3];
    let conns: usize = match args.get(4) {
        Some(n) => n.parse().context("CONNS must be a number")?,
        None => 8,
    };

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = AtomicUsize::new(0);
    let lines = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..conns.max(1))
            .map(|_| {
                let (next, failures, endpoint) = (Arc::clone(&next), &failures, &endpoint);
                scope.spawn(move || -> anyhow::Result<Vec<String>> {
                    let mut conn = Conn {
                        endpoint,
                        stream: None,
                    };
                    let mut lines = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        match one(&mut conn, mode) {
                            Ok(line) => lines.push(line),
                            Err(e) => {
                                // A few failures are retried; many mean something is wrong.
                                if failures.fetch_add(1, Ordering::Relaxed) >= 100 {
                                    return Err(e.context("too many failures"));
                                }
                                next.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(lines)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for worker in workers {
            all.extend(worker.join().map_err(|_| anyhow!("a worker panicked"))??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;

    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {out}"))?,
    );
    for line in &lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bench_tokens: {} {} in {secs:.1} s ({:.0}/s), {} retried failures",
        lines.len(),
        if mode == Mode::Tokens {
            "tokens"
        } else {
            "challenges"
        },
        lines.len() as f64 / secs.max(1e-9),
        failures.load(Ordering::Relaxed)
    );
    Ok(())
}

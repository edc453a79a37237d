//! The benchmark's SMTP sink: a plain SMTP server (no TLS, no AUTH, with PIPELINING and, unless
//! `--no-chunking` comes first, CHUNKING, as Postfix and Exim offer them) that accepts
//! every message at once and throws it away, counting messages and connections. `bench/run` points
//! `CAPUTCHIN_SMTP_URL=smtp://127.0.0.1:PORT/?tls=none` at it for the webhook + email row. It
//! writes `messages connections` to the file given second, so the benchmark
//! can check that every delivered email arrived and how many connections carried them. The file
//! is rewritten every 20 ms when a count changed, never per message: the sink's own cost stays
//! out of the figures.
//!
//! `cargo run --release --example bench_smtp -- [--no-chunking] 127.0.0.1:PORT COUNT_FILE`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    connections: AtomicU64,
}

impl Counts {
    fn write(&self, path: &str) {
        let line = format!(
            "{} {}\n",
            self.messages.load(Ordering::Relaxed),
            self.connections.load(Ordering::Relaxed)
        );
        let tmp = format!("{path}.tmp");
        if std::fs::write(&tmp, line).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

async fn session(stream: TcpStream, counts: Arc<Counts>, chunking: bool) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    // Replies wait until every command already received is answered (PIPELINING, as real relays
    // do it): one write per batch of commands.
    let mut replies: Vec<u8> = b"220 bench-smtp ESMTP\r\n".to_vec();
    let mut line = Vec::new();
    loop {
        if lines.buffer().is_empty() && !replies.is_empty() {
            write.write_all(&replies).await?;
            replies.clear();
        }
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        match verb.as_slice() {
            b"EHLO" => {
                replies.extend_from_slice(b"250-bench-smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
                if chunking {
                    replies.extend_from_slice(b"250-CHUNKING\r\n");
                }
                replies.extend_from_slice(b"250 PIPELINING\r\n");
            }
            b"BDAT" if chunking => {
                // BDAT <size> [LAST]: exactly that many bytes follow the command line.
                let text = String::from_utf8_lossy(&line);
                let mut words = text.split_whitespace().skip(1);
                let Some(size) = words.next().and_then(|n| n.parse::<u64>().ok()) else {
                    replies.extend_from_slice(b"501 BDAT needs a size\r\n");
                    continue;
                };
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                let copied =
                    tokio::io::copy(&mut (&mut lines).take(size), &mut tokio::io::sink()).await?;
                if copied < size {
                    return Ok(());
                }
                if last {
                    counts.messages.fetch_add(1, Ordering::Relaxed);
                }
                replies.extend_from_slice(b"250 2.0.0 accepted\r\n");
            }
            b"HELO" => replies.extend_from_slice(b"250 bench-smtp\r\n"),
            b"DATA" => {
                replies.extend_from_slice(b"354 go ahead\r\n");
                write.write_all(&replies).await?;
                replies.clear();
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                counts.messages.fetch_add(1, Ordering::Relaxed);
                replies.extend_from_slice(b"250 2.0.0 accepted\r\n");
            }
            b"QUIT" => {
                replies.extend_from_slice(b"221 bye\r\n");
                write.write_all(&replies).await?;
                return Ok(());
            }
            // MAIL, RCPT, RSET, NOOP and anything else.
            _ => replies.extend_from_slice(b"250 ok\r\n"),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let chunking = args.next_if(|a| a == "--no-chunking").is_none();
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let path: Arc<str> = args.next().unwrap_or_else(|| "/dev/null".into()).into();
    let counts = Arc::new(Counts::default());
    counts.write(&path);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(&bind)
                .await
                .with_context(|| format!("binding {bind}"))?;
            eprintln!("bench_smtp listening on {}", listener.local_addr()?);
            let writer = Arc::clone(&counts);
            tokio::spawn(async move {
                let mut last = (0, 0);
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    let now = (
                        writer.messages.load(Ordering::Relaxed),
                        writer.connections.load(Ordering::Relaxed),
                    );
                    if now != last {
                        writer.write(&path);
                        last = now;
                    }
                }
            });
            loop {
                let (stream, _) = listener.accept().await?;
                counts.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(session(stream, Arc::clone(&counts), chunking));
            }
        })
}

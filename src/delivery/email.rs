//! Sending a submission's email through the operator's relay (SPEC §10), with lettre's SMTP
//! client on connections this module opens and keeps.
//!
//! Why not lettre's own pooled transport: it opens its sockets without `TCP_NODELAY`, and since
//! it writes a message's final `\r\n.\r\n` as a separate small write, Nagle's algorithm holds
//! that write until the relay's delayed ACK, about 40 ms per message. Here every connection has
//! `TCP_NODELAY` set before lettre greets the relay on it; lettre still speaks all of SMTP
//! (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA, dot-stuffing).
//!
//! With a relay that offers PIPELINING (RFC 2920; every common relay does), a message takes two
//! round trips instead of four: `MAIL`, every `RCPT` and `DATA` go in one write, their replies are
//! read in order, then the dot-stuffed message and its terminator go in one write. With a relay
//! that also offers CHUNKING (RFC 3030; Postfix, Exim and the large providers do), a message to
//! one address takes one: `MAIL`, `RCPT` and `BDAT <size> LAST` with the message itself, in one
//! write. Each command still has its own reply, so a refusal is reported by the command it
//! refused. (With several addresses the message waits for every `RCPT`'s reply, as with DATA:
//! a refused address then stops the whole message, so that it never reaches only some of them.)
//!
//! Messages wait in a queue per thread (an actix worker is one thread with its own runtime, and
//! a socket stays with the runtime that opened it) for one of its writers, each a task with one
//! connection: with a relay that takes whole transactions at once, one, and more (up to
//! [`MAX_BUSY_PER_THREAD`]) only while more than [`BACKLOG_PER_WRITER`] messages wait per
//! writer; with any other, one per message waiting, up to that many. A writer takes every message
//! waiting when it is free: with PIPELINING and CHUNKING, the messages to one address each go in
//! that one write, one after another (`RSET` before each but the first, so that a refusal of one
//! leaves nothing open for the next), and their replies are read in order, each message's outcome
//! handed over as soon as its replies are in. A burst of submissions therefore shares a few
//! connections and few writes instead of opening one each, which a relay limiting connections
//! per client would refuse. Connections are kept, at most [`MAX_IDLE_PER_THREAD`] per thread, for
//! [`IDLE_FOR`]; one idle for more than [`CHECK_AFTER`] is checked with a NOOP before use, so a
//! connection the relay closed meanwhile is replaced rather than failing a delivery. A connection
//! on which the relay refused something is not kept.
//!
//! The relay is the operator's, so SPEC §5 does not apply to it; the delivery timeout does, and
//! it bounds the whole attempt — connect, greeting, TLS, AUTH and the message — because lettre's
//! own timeout does not bound a relay that accepts and never greets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Kind, Outcome, Report};
use crate::relay::{MailSettings, Security, SmtpRelay};
use crate::tls::ExtraRoots;

/// Idle connections kept per thread.
pub const MAX_IDLE_PER_THREAD: usize = 8;
/// Writers per thread, each with its own connection; messages beyond wait for one of them.
pub const MAX_BUSY_PER_THREAD: usize = 4;
/// With a relay that takes whole transactions in one write (PIPELINING and CHUNKING), another
/// writer starts when more than this many messages (a full batch) wait per writer at work: one
/// connection takes a steady stream in batches, and more open only when the relay is too slow
/// for one. With any other relay, or before the first connection said which, another starts as
/// soon as a message waits for each writer at work, since each message has a connection's
/// round trips to itself.
pub const BACKLOG_PER_WRITER: usize = MAX_BATCH;
/// How long an idle connection is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(60);
/// An idle connection older than this is checked with a NOOP before it is used.
pub const CHECK_AFTER: Duration = Duration::from_secs(1);

/// The relay's answer to a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The reply code (2xx).
    pub code: u16,
    /// The reply text, lines joined with spaces.
    pub text: String,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The category (SPEC §10).
    pub outcome: Outcome,
    /// The relay's reply code, when a reply caused it.
    pub code: Option<u16>,
    /// The relay's reply text, when a reply caused it.
    pub reply: Option<String>,
    /// What happened, in words (the relay's reply text included; never the password).
    pub detail: String,
}

/// Where in the conversation an error happened: it decides the category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    StartTls,
    Auth,
    Message,
}

fn reply_text(response: &Response) -> String {
    response.message().collect::<Vec<_>>().join(" ")
}

fn failed(e: &lettre::transport::smtp::Error, phase: Phase, relay: &str) -> Failed {
    let code = e.status().map(u16::from);
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_tls() || phase == Phase::StartTls {
        Outcome::Tls
    } else if phase == Phase::Auth && (code.is_some() || e.is_client()) {
        Outcome::Auth
    } else {
        match code {
            Some(c) if c < 500 => Outcome::Smtp4xx,
            Some(_) => Outcome::Smtp5xx,
            // lettre refused to send what the relay cannot take (e.g. an address needing
            // SMTPUTF8 it does not offer): as final as a 5xx.
            None if e.is_client() => Outcome::Smtp5xx,
            None => Outcome::Connect,
        }
    };
    let step = match phase {
        Phase::Greeting => "greeting",
        Phase::StartTls => "STARTTLS",
        Phase::Auth => "login (AUTH)",
        Phase::Message => "message",
    };
    // lettre keeps a negative reply's text as the error's source.
    let reply = code
        .and(std::error::Error::source(e))
        .map(ToString::to_string);
    Failed {
        outcome,
        code,
        reply,
        detail: format!("the relay {relay} failed at the {step}: {e}"),
    }
}

/// A TLS stream lettre can speak SMTP over (implicit TLS, `smtps://`).
struct TlsStream {
    inner: tokio_rustls::client::TlsStream<TcpStream>,
    peer: SocketAddr,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// A connection that greeted, secured and logged in, with where it goes.
struct Connection {
    smtp: AsyncSmtpConnection,
    peer: SocketAddr,
    idle_since: Instant,
    /// What the relay offered in its EHLO reply, beyond what lettre keeps.
    offers: Offers,
}

/// The EHLO keywords this module uses and lettre does not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Offers {
    /// PIPELINING (RFC 2920).
    pipelining: bool,
    /// CHUNKING (RFC 3030): `BDAT`.
    chunking: bool,
}

impl Offers {
    fn from_ehlo<'a>(lines: impl Iterator<Item = &'a str>) -> Offers {
        let mut offers = Offers::default();
        for line in lines {
            let keyword = line.split_whitespace().next().unwrap_or("");
            offers.pipelining |= keyword.eq_ignore_ascii_case("PIPELINING");
            offers.chunking |= keyword.eq_ignore_ascii_case("CHUNKING");
        }
        offers
    }
}

fn accepted(response: &Response) -> Accepted {
    Accepted {
        code: u16::from(response.code()),
        text: reply_text(response),
    }
}

impl Connection {
    /// `MAIL` and every `RCPT` of a message, to be pipelined: when the relay offers PIPELINING
    /// and nothing needs lettre's checks for SMTPUTF8 or 8BITMIME support.
    fn pipelined_commands(&self, envelope: &Envelope, message: &[u8]) -> Option<String> {
        let eight_bit = !message.is_ascii();
        let pipelined = self.offers.pipelining
            && envelope
                .from()
                .into_iter()
                .chain(envelope.to())
                .all(|address| AsRef::<str>::as_ref(address).is_ascii())
            && (!eight_bit
                || self
                    .smtp
                    .server_info()
                    .supports_feature(Extension::EightBitMime));
        if !pipelined {
            return None;
        }
        let parameters = if eight_bit {
            vec![MailParameter::Body(MailBodyParameter::EightBitMime)]
        } else {
            Vec::new()
        };
        let mut commands = Mail::new(envelope.from().cloned(), parameters).to_string();
        for to in envelope.to() {
            commands.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
        }
        Some(commands)
    }

    /// A whole transaction to be written at once, `MAIL`, `RCPT` and `BDAT <size> LAST` with the
    /// message as it is (no dot-stuffing, no terminator): when the relay offers CHUNKING too and
    /// the message goes to one address.
    fn chunked_transaction(&self, envelope: &Envelope, message: &[u8]) -> Option<String> {
        if !self.offers.chunking || envelope.to().len() != 1 {
            return None;
        }
        let text = std::str::from_utf8(message).ok()?;
        let mut commands = self.pipelined_commands(envelope, message)?;
        commands.push_str(&format!("BDAT {} LAST\r\n", message.len()));
        commands.push_str(text);
        Some(commands)
    }

    /// One message on its own: pipelined (two round trips) when the relay offers it, else
    /// through lettre's own transaction.
    async fn transaction(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Response, lettre::transport::smtp::Error> {
        let Some(mut commands) = self.pipelined_commands(envelope, message) else {
            return self.smtp.send(envelope, message).await;
        };
        // `None` for a message that is not UTF-8: lettre then writes it.
        let Some(data) = dot_stuffed(message) else {
            return self.smtp.send(envelope, message).await;
        };
        commands.push_str("DATA\r\n");
        // MAIL's reply, then each RCPT's, then DATA's 354; the first refusal ends it (the
        // connection, with replies still unread, is then dropped, never kept).
        self.smtp.command(commands).await?;
        for _ in envelope.to() {
            self.smtp.read_response().await?;
        }
        self.smtp.read_response().await?;
        self.smtp.command(data).await
    }

    /// Sends these messages in order and hands each its outcome as soon as it is known: every
    /// run of messages that can go whole ([`Connection::chunked_transaction`]) in one write, the
    /// others one transaction each. Answers whether the connection can be kept (nothing was
    /// refused and it still works), and the messages not written when it could not go on.
    async fn send_all(&mut self, jobs: Vec<Job>, shown: &str) -> (bool, Vec<Job>) {
        let peer = Some(self.peer);
        let mut planned = jobs
            .into_iter()
            .map(|job| {
                let whole = self.chunked_transaction(&job.envelope, &job.message);
                (job, whole)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .peekable();
        let mut clean = true;
        while let Some((job, whole)) = planned.next() {
            let Some(first) = whole else {
                match self.transaction(&job.envelope, &job.message).await {
                    Ok(response) => job.finish(Ok(accepted(&response)), peer),
                    Err(e) => {
                        job.finish(Err(failed(&e, Phase::Message, shown)), peer);
                        // Replies may be left unread: the connection is done with.
                        return (false, planned.map(|(rest, _)| rest).collect());
                    }
                }
                continue;
            };
            // Every transaction after the first starts with RSET: whatever the relay refused
            // before it, none is left open.
            let mut batch = vec![(job, 3)];
            let mut commands = first;
            while let Some((next, Some(whole))) = planned.next_if(|(_, whole)| whole.is_some()) {
                commands.push_str("RSET\r\n");
                commands.push_str(&whole);
                batch.push((next, 4));
            }
            match self.read_batch(batch, commands, shown).await {
                Ok(refused) => clean &= !refused,
                Err(()) => return (false, planned.map(|(rest, _)| rest).collect()),
            }
        }
        (clean && !self.smtp.has_broken(), Vec::new())
    }

    /// Writes a batch of whole transactions at once and reads each one's replies in order (its
    /// number of replies beside it), handing each message the first refusal among them or its
    /// `BDAT`'s acceptance. `Ok(true)` when the relay refused something, `Err` when the
    /// connection failed (every message of the batch not yet answered is told so: the relay may
    /// have seen it, so it is never sent again).
    async fn read_batch(
        &mut self,
        batch: Vec<(Job, usize)>,
        commands: String,
        shown: &str,
    ) -> Result<bool, ()> {
        let peer = Some(self.peer);
        let mut pending = Some(self.smtp.command(commands).await);
        let mut refused = false;
        let mut batch = batch.into_iter();
        while let Some((job, replies)) = batch.next() {
            let mut result = None;
            for n in 1..=replies {
                let reply = match pending.take() {
                    Some(reply) => reply,
                    None => self.smtp.read_response().await,
                };
                match reply {
                    Ok(response) if n == replies => {
                        result.get_or_insert_with(|| Ok(accepted(&response)));
                    }
                    Ok(_) => {}
                    // A refusal: the relay goes on with the next command.
                    Err(e) if e.status().is_some() => {
                        refused = true;
                        result.get_or_insert_with(|| Err(failed(&e, Phase::Message, shown)));
                    }
                    Err(e) => {
                        let failure = failed(&e, Phase::Message, shown);
                        job.finish(Err(failure.clone()), peer);
                        for (rest, _) in batch {
                            rest.finish(Err(failure.clone()), peer);
                        }
                        return Err(());
                    }
                }
            }
            if let Some(result) = result {
                job.finish(result, peer);
            }
        }
        Ok(refused)
    }
}

/// The message with SMTP's transparency (RFC 5321 §4.5.2: a line starting with a dot gets
/// another) and the end-of-data line, as one string; `None` if it is not UTF-8 (lettre then
/// writes the bytes itself).
fn dot_stuffed(message: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(message).ok()?;
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    Some(out)
}

/// Sends submission emails through one relay. Shareable across workers.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    relay: SmtpRelay,
    shown: String,
    from: lettre::message::Mailbox,
    hello: ClientId,
    credentials: Option<Credentials>,
    starttls: Option<TlsParameters>,
    implicit: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    idle: Mutex<HashMap<ThreadId, Vec<Connection>>>,
    queues: Mutex<HashMap<ThreadId, Queue>>,
}

/// A message waiting for a writer of its thread.
struct Job {
    envelope: Envelope,
    message: Vec<u8>,
    /// When the submission stops waiting for it.
    deadline: tokio::time::Instant,
    done: tokio::sync::oneshot::Sender<Sent>,
}

/// How a message went, and over which connection.
struct Sent {
    result: Result<Accepted, Failed>,
    peer: Option<SocketAddr>,
}

impl Job {
    fn finish(self, result: Result<Accepted, Failed>, peer: Option<SocketAddr>) {
        // The submission may have stopped waiting (its deadline passed): nothing to tell.
        let _ = self.done.send(Sent { result, peer });
    }
}

/// A thread's messages waiting to be written, and its writers at work.
#[derive(Default)]
struct Queue {
    jobs: std::collections::VecDeque<Job>,
    writers: usize,
    /// The relay's last connection took whole transactions in one write.
    batches: bool,
}

impl Queue {
    /// How many waiting messages make work for one more writer.
    fn backlog(&self) -> usize {
        if self.batches { BACKLOG_PER_WRITER } else { 1 }
    }
}

/// The most messages a writer takes at once.
pub const MAX_BATCH: usize = 64;

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.inner.shown)
            .finish()
    }
}

impl Mailer {
    /// A mailer for these settings, trusting the web PKI roots and the extra ones.
    pub fn new(settings: &MailSettings, extra: Option<&ExtraRoots>) -> Result<Mailer, String> {
        let relay = settings.relay.clone();
        let starttls = match relay.security {
            Security::StartTls => {
                let mut builder = TlsParameters::builder(relay.host.clone())
                    .certificate_store(CertificateStore::WebpkiRoots);
                if let Some(extra) = extra {
                    let certs = Certificate::from_pem(&extra.pem)
                        .map_err(|e| format!("extra roots for the relay: {e}"))?;
                    builder = builder.add_root_certificate(certs);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|e| format!("TLS for the relay: {e}"))?,
                )
            }
            _ => None,
        };
        let implicit = match relay.security {
            Security::Implicit => {
                let config = crate::tls::client_config(extra, &[])
                    .map_err(|e| format!("TLS for the relay: {e}"))?;
                let name = rustls::pki_types::ServerName::try_from(relay.host.clone())
                    .map_err(|e| format!("the relay's host cannot be checked by TLS: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
            _ => None,
        };
        let credentials = relay
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.clone()));
        Ok(Mailer {
            inner: Arc::new(Inner {
                shown: relay.display(),
                relay,
                from: settings.from.clone(),
                hello: ClientId::default(),
                credentials,
                starttls,
                implicit,
                idle: Mutex::new(HashMap::new()),
                queues: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The sender of every message.
    pub fn from(&self) -> &lettre::message::Mailbox {
        &self.inner.from
    }

    /// The relay, as it may be shown (no password).
    pub fn relay_shown(&self) -> &str {
        &self.inner.shown
    }

    /// Sends one formatted message to the envelope's recipients and reports it as a delivery,
    /// within `timeout` for the whole attempt. Never retries a message the relay may have seen.
    pub async fn deliver(
        &self,
        envelope: Envelope,
        message: Vec<u8>,
        timeout: Duration,
        kind: Kind,
    ) -> Report {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let (done, sent) = tokio::sync::oneshot::channel();
        self.enqueue(Job {
            envelope,
            message,
            deadline,
            done,
        });
        let timed_out = || Failed {
            outcome: Outcome::Timeout,
            code: None,
            reply: None,
            detail: format!(
                "the relay {} did not accept the message within {} ms",
                self.inner.shown,
                timeout.as_millis()
            ),
        };
        let (result, peer) = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(sent)) => (sent.result, sent.peer),
            // The writer gave up on the message at the deadline, or the runtime is stopping.
            Ok(Err(_)) | Err(_) => (Err(timed_out()), None),
        };
        let mut report = Report {
            outcome: Outcome::Delivered,
            http_status: None,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            resolved: peer.iter().map(SocketAddr::ip).collect(),
            connected_to: peer,
            response_body: None,
            smtp_code: None,
            smtp_reply: None,
            detail: String::new(),
        };
        match result {
            Ok(accepted) => {
                report.smtp_code = Some(accepted.code);
                report.detail = format!(
                    "the relay {} accepted it with {}",
                    self.inner.shown, accepted.code
                );
                if kind == Kind::Test {
                    report.smtp_reply = Some(accepted.text);
                }
            }
            Err(failure) => {
                report.outcome = failure.outcome;
                report.smtp_code = failure.code;
                report.detail = failure.detail;
                if kind == Kind::Test {
                    report.smtp_reply = failure.reply;
                }
            }
        }
        report
    }

    /// Queues a message for this thread's writers, starting one if none is at work, or another
    /// (up to [`MAX_BUSY_PER_THREAD`]) if enough wait per writer ([`BACKLOG_PER_WRITER`]).
    fn enqueue(&self, job: Job) {
        let thread = std::thread::current().id();
        let start = {
            let Ok(mut queues) = self.inner.queues.lock() else {
                job.finish(
                    Err(Failed {
                        outcome: Outcome::Connect,
                        code: None,
                        reply: None,
                        detail: "the mail queue is unusable after a panic".into(),
                    }),
                    None,
                );
                return;
            };
            let queue = queues.entry(thread).or_default();
            queue.jobs.push_back(job);
            let start = queue.writers == 0
                || (queue.writers < MAX_BUSY_PER_THREAD
                    && queue.jobs.len() > queue.writers * queue.backlog());
            queue.writers += usize::from(start);
            start
        };
        if start {
            // On this thread's runtime (an actix worker's is single-threaded), where its
            // connections belong.
            tokio::spawn(self.clone().write_queue(thread));
        }
    }

    /// The messages waiting on `thread`, at most [`MAX_BATCH`]; none (and this writer is done)
    /// when the queue is empty or the other writers are enough for what waits.
    fn take_jobs(&self, thread: ThreadId) -> Vec<Job> {
        let Ok(mut queues) = self.inner.queues.lock() else {
            return Vec::new();
        };
        let Some(queue) = queues.get_mut(&thread) else {
            return Vec::new();
        };
        // Writers beyond what the waiting messages need stop, as they would not have started.
        let needed = queue.jobs.len().div_ceil(queue.backlog());
        if queue.writers > needed {
            queue.writers -= 1;
            return Vec::new();
        }
        let n = queue.jobs.len().min(MAX_BATCH);
        queue.jobs.drain(..n).collect()
    }

    /// Puts messages back at the head of `thread`'s queue, in their order.
    fn requeue(&self, thread: ThreadId, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if let Ok(mut queues) = self.inner.queues.lock() {
            let queue = queues.entry(thread).or_default();
            for job in jobs.into_iter().rev() {
                queue.jobs.push_front(job);
            }
        }
    }

    /// A writer: takes what waits on its thread and sends it over one connection, until nothing
    /// waits.
    async fn write_queue(self, thread: ThreadId) {
        loop {
            let mut jobs = self.take_jobs(thread);
            if jobs.is_empty() {
                return;
            }
            let now = tokio::time::Instant::now();
            // A message whose submission stopped waiting is never sent.
            jobs.retain(|job| job.deadline > now && !job.done.is_closed());
            let Some(deadline) = jobs.iter().map(|job| job.deadline).max() else {
                continue;
            };
            let mut peer = None;
            let connection = tokio::time::timeout_at(deadline, async {
                match self.reuse(thread).await {
                    Some(connection) => Ok(connection),
                    None => self.connect(&mut peer).await,
                }
            })
            .await;
            let mut connection = match connection {
                Ok(Ok(connection)) => connection,
                Ok(Err(failure)) => {
                    for job in jobs {
                        job.finish(Err(failure.clone()), peer);
                    }
                    continue;
                }
                // Each submission reports its own timeout.
                Err(_) => continue,
            };
            if let Ok(mut queues) = self.inner.queues.lock() {
                queues.entry(thread).or_default().batches =
                    connection.offers.pipelining && connection.offers.chunking;
            }
            if let Ok((keep, unsent)) =
                tokio::time::timeout_at(deadline, connection.send_all(jobs, &self.inner.shown))
                    .await
            {
                if keep {
                    connection.idle_since = Instant::now();
                    self.keep(thread, connection);
                }
                // Never written: first in line for the next connection.
                self.requeue(thread, unsent);
            }
        }
    }

    /// An idle connection of this thread that still answers, if any.
    async fn reuse(&self, thread: ThreadId) -> Option<Connection> {
        loop {
            let mut connection = {
                let mut idle = self.inner.idle.lock().ok()?;
                let mine = idle.get_mut(&thread)?;
                mine.retain(|c| c.idle_since.elapsed() < IDLE_FOR);
                mine.pop()?
            };
            if connection.idle_since.elapsed() < CHECK_AFTER
                || connection.smtp.test_connected().await
            {
                return Some(connection);
            }
        }
    }

    fn keep(&self, thread: ThreadId, connection: Connection) {
        if connection.smtp.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            let mine = idle.entry(thread).or_default();
            if mine.len() < MAX_IDLE_PER_THREAD {
                mine.push(connection);
            }
        }
    }

    async fn connect(&self, peer: &mut Option<SocketAddr>) -> Result<Connection, Failed> {
        let inner = &*self.inner;
        let connect_failed = |detail: String| Failed {
            outcome: Outcome::Connect,
            code: None,
            reply: None,
            detail,
        };
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((inner.relay.host.as_str(), inner.relay.port))
                .await
                .map_err(|e| {
                    connect_failed(format!("the relay {} did not resolve: {e}", inner.shown))
                })?
                .collect();
        let mut last_error = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    tcp = Some((stream, *addr));
                    break;
                }
                Err(e) => {
                    last_error = Some(format!("could not connect to the relay at {addr}: {e}"))
                }
            }
        }
        let Some((tcp, addr)) = tcp else {
            return Err(connect_failed(last_error.unwrap_or_else(|| {
                format!("the relay {} resolved to no address", inner.shown)
            })));
        };
        *peer = Some(addr);
        tcp.set_nodelay(true).map_err(|e| {
            connect_failed(format!("could not set up the connection to {addr}: {e}"))
        })?;
        let stream: Box<dyn AsyncTokioStream> = match &inner.implicit {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Failed {
                        outcome: Outcome::Tls,
                        code: None,
                        reply: None,
                        detail: format!("TLS with the relay at {addr} failed: {e}"),
                    })?;
                Box::new(TlsStream {
                    inner: tls,
                    peer: addr,
                })
            }
            None => Box::new(tcp),
        };
        let mut smtp = AsyncSmtpConnection::connect_with_transport(stream, &inner.hello)
            .await
            .map_err(|e| failed(&e, Phase::Greeting, &inner.shown))?;
        if let Some(parameters) = &inner.starttls {
            if !smtp.can_starttls() {
                smtp.abort().await;
                return Err(Failed {
                    outcome: Outcome::Tls,
                    code: None,
                    reply: None,
                    detail: format!(
                        "the relay {} does not offer STARTTLS, which smtp:// requires \
                         (add ?tls=none to CAPUTCHIN_SMTP_URL only for a relay on a trusted network)",
                        inner.shown
                    ),
                });
            }
            smtp.starttls(parameters.clone(), &inner.hello)
                .await
                .map_err(|e| failed(&e, Phase::StartTls, &inner.shown))?;
        }
        // lettre keeps only the extensions it uses from its EHLO; asked once more, the relay says
        // whether it pipelines and takes chunks. A refusal only means neither.
        let offers = match smtp.command(Ehlo::new(inner.hello.clone())).await {
            Ok(reply) => Offers::from_ehlo(reply.message()),
            Err(e) if e.is_permanent() || e.is_transient() => Offers::default(),
            Err(e) => return Err(failed(&e, Phase::Greeting, &inner.shown)),
        };
        if let Some(credentials) = &inner.credentials {
            smtp.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| failed(&e, Phase::Auth, &inner.shown))?;
        }
        Ok(Connection {
            smtp,
            peer: addr,
            idle_since: Instant::now(),
            offers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_read_from_the_ehlo_keywords() {
        let lines = [
            "relay.example",
            "PIPELINING",
            "SIZE 10240000",
            "chunking",
            "8BITMIME",
        ];
        assert_eq!(
            Offers::from_ehlo(lines.into_iter()),
            Offers {
                pipelining: true,
                chunking: true
            }
        );
        assert_eq!(
            Offers::from_ehlo(["relay.example", "X-CHUNKING", "PIPELINING-NOT"].into_iter()),
            Offers::default()
        );
    }

    #[test]
    fn data_is_dot_stuffed_and_ends_with_one_terminator() {
        assert_eq!(
            dot_stuffed(b".first\r\nmiddle .\r\n.\r\n..two\r\n").as_deref(),
            Some("..first\r\nmiddle .\r\n..\r\n...two\r\n.\r\n")
        );
        assert_eq!(dot_stuffed(b"no end").as_deref(), Some("no end\r\n.\r\n"));
        assert_eq!(
            dot_stuffed("Grüße\r\n.ü\r\n".as_bytes()).as_deref(),
            Some("Grüße\r\n..ü\r\n.\r\n")
        );
        assert_eq!(dot_stuffed(b"\xff\r\n"), None);
    }
}

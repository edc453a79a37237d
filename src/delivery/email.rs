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
//! Connections are kept per thread (an actix worker is one thread with its own runtime, and a
//! socket stays with the runtime that opened it), at most [`MAX_IDLE_PER_THREAD`] each, for
//! [`IDLE_FOR`]; one idle for more than [`CHECK_AFTER`] is checked with a NOOP before use, so a
//! connection the relay closed meanwhile is replaced rather than failing a delivery. At most
//! [`MAX_BUSY_PER_THREAD`] messages are in flight per thread; a submission beyond that waits (within
//! the delivery timeout) for a connection to come back. A burst of submissions therefore reuses a
//! few connections instead of opening one each, which a relay limiting connections per client
//! would refuse.
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
/// Messages sent at once per thread, each on its own connection; more wait their turn.
pub const MAX_BUSY_PER_THREAD: usize = 4;
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

impl Connection {
    /// One message: pipelined when the relay offers it and nothing needs lettre's checks for
    /// SMTPUTF8 or 8BITMIME support, else through lettre's own transaction.
    async fn transaction(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Response, lettre::transport::smtp::Error> {
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
            return self.smtp.send(envelope, message).await;
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
        if let (true, [_], Ok(text)) = (
            self.offers.chunking,
            envelope.to(),
            std::str::from_utf8(message),
        ) {
            // The message as it is, its size given before it: no dot-stuffing, no terminator.
            commands.push_str(&format!("BDAT {} LAST\r\n", message.len()));
            commands.push_str(text);
            // MAIL's reply, RCPT's, then BDAT's; a refusal ends it and the connection is
            // dropped. A relay that refused MAIL or RCPT refuses the BDAT too (RFC 3030 §2).
            self.smtp.command(commands).await?;
            self.smtp.read_response().await?;
            return self.smtp.read_response().await;
        }
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
    busy: Mutex<HashMap<ThreadId, Arc<tokio::sync::Semaphore>>>,
}

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
                busy: Mutex::new(HashMap::new()),
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
        envelope: &Envelope,
        message: &[u8],
        timeout: Duration,
        kind: Kind,
    ) -> Report {
        let started = Instant::now();
        let mut peer = None;
        let result = tokio::time::timeout(timeout, self.send(envelope, message, &mut peer))
            .await
            .unwrap_or_else(|_| {
                Err(Failed {
                    outcome: Outcome::Timeout,
                    code: None,
                    reply: None,
                    detail: format!(
                        "the relay {} did not accept the message within {} ms",
                        self.inner.shown,
                        timeout.as_millis()
                    ),
                })
            });
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

    async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        peer: &mut Option<SocketAddr>,
    ) -> Result<Accepted, Failed> {
        // Held until the connection is back among the idle ones (or dropped), so the next
        // waiter of this thread finds it there.
        let _turn = self.turn().await;
        let mut connection = match self.reuse().await {
            Some(connection) => connection,
            None => self.connect(peer).await?,
        };
        *peer = Some(connection.peer);
        match connection.transaction(envelope, message).await {
            Ok(response) => {
                let accepted = Accepted {
                    code: u16::from(response.code()),
                    text: reply_text(&response),
                };
                connection.idle_since = Instant::now();
                self.keep(connection);
                Ok(accepted)
            }
            // lettre has aborted the connection; it is not kept.
            Err(e) => Err(failed(&e, Phase::Message, &self.inner.shown)),
        }
    }

    /// Waits for this thread's turn to send: one of its [`MAX_BUSY_PER_THREAD`] slots.
    async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = {
            let mut busy = self.inner.busy.lock().ok()?;
            Arc::clone(
                busy.entry(std::thread::current().id())
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_BUSY_PER_THREAD))),
            )
        };
        // The semaphore is never closed.
        slots.acquire_owned().await.ok()
    }

    /// An idle connection of this thread that still answers, if any.
    async fn reuse(&self) -> Option<Connection> {
        loop {
            let mut connection = {
                let mut idle = self.inner.idle.lock().ok()?;
                let mine = idle.get_mut(&std::thread::current().id())?;
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

    fn keep(&self, connection: Connection) {
        if connection.smtp.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            let mine = idle.entry(std::thread::current().id()).or_default();
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

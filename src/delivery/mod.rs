//! Delivery to a site's destinations (SPEC §4, §5). [`Deliverer::deliver_submission`] sends a
//! verified submission to every destination the site has (today its webhook; SPEC §10 adds email
//! beside it here) and reports each one's outcome. The webhook delivery is one POST of one
//! envelope ([`envelope`]), used by real submissions, the dashboard's Test delivery and `site
//! test` alike: it resolves and vets the destination once, connects only to a vetted address,
//! never follows redirects, reads at most 2 KiB of the answer, and is bounded by the total
//! delivery timeout.

pub mod email;
pub mod envelope;
pub mod message;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::error::{ConnectError, PayloadError, SendRequestError};
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;

use crate::captcha::token::Claims;
use crate::egress::USER_AGENT;
use crate::egress::resolve::{Egress, EgressError};
use crate::egress::webhook_url::WebhookUrl;
use crate::fields::Fields;
use crate::sites::Site;
use crate::tls::ExtraRoots;

use email::Mailer;

/// How much of a webhook's answer is read, at most.
pub const MAX_RESPONSE_BYTES: usize = 2048;

/// How a delivery ended: delivered, or exactly one of its destination's failure categories
/// (SPEC §6 for the webhook, §10 for email).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The webhook answered 2xx, or the relay accepted the message (2xx after DATA).
    Delivered,
    /// The webhook answered 4xx.
    #[serde(rename = "http-4xx")]
    Http4xx,
    /// The webhook answered 5xx (or another non-2xx, non-3xx, non-4xx status).
    #[serde(rename = "http-5xx")]
    Http5xx,
    /// The webhook answered 3xx; redirects are not followed.
    Redirect,
    /// No complete answer within the delivery timeout.
    Timeout,
    /// The connection failed or broke.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The destination is a blocked address (nothing was contacted).
    BlockedDestination,
    /// The relay answered a transient (4xx) reply.
    #[serde(rename = "smtp-4xx")]
    Smtp4xx,
    /// The relay answered a permanent (5xx) reply.
    #[serde(rename = "smtp-5xx")]
    Smtp5xx,
    /// The relay refused the operator's credentials (or offered no way to log in).
    Auth,
}

impl Outcome {
    /// Every outcome: delivered, the webhook's categories in SPEC §6's order, then email's own.
    pub const ALL: [Outcome; 12] = [
        Outcome::Delivered,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::Redirect,
        Outcome::Timeout,
        Outcome::Connect,
        Outcome::Dns,
        Outcome::Tls,
        Outcome::BlockedDestination,
        Outcome::Smtp4xx,
        Outcome::Smtp5xx,
        Outcome::Auth,
    ];

    /// A webhook delivery's outcomes: delivered, then SPEC §6's categories in its order.
    pub const WEBHOOK: [Outcome; 9] = [
        Outcome::Delivered,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::Redirect,
        Outcome::Timeout,
        Outcome::Connect,
        Outcome::Dns,
        Outcome::Tls,
        Outcome::BlockedDestination,
    ];

    /// An email delivery's outcomes: delivered, then SPEC §10's categories in its order.
    pub const EMAIL: [Outcome; 7] = [
        Outcome::Delivered,
        Outcome::Smtp4xx,
        Outcome::Smtp5xx,
        Outcome::Timeout,
        Outcome::Connect,
        Outcome::Tls,
        Outcome::Auth,
    ];

    /// The category's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Http4xx => "http-4xx",
            Outcome::Http5xx => "http-5xx",
            Outcome::Redirect => "redirect",
            Outcome::Timeout => "timeout",
            Outcome::Connect => "connect",
            Outcome::Dns => "dns",
            Outcome::Tls => "tls",
            Outcome::BlockedDestination => "blocked-destination",
            Outcome::Smtp4xx => "smtp-4xx",
            Outcome::Smtp5xx => "smtp-5xx",
            Outcome::Auth => "auth",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Delivered,
            300..=399 => Outcome::Redirect,
            400..=499 => Outcome::Http4xx,
            _ => Outcome::Http5xx,
        }
    }
}

/// Real submission or Test delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A visitor's submission.
    Real,
    /// A dashboard or CLI test: adds `x-caputchin-test: 1`.
    Test,
}

/// What happened to one delivery, with enough detail to diagnose it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The outcome category.
    pub outcome: Outcome,
    /// The HTTP status, when the webhook answered.
    pub http_status: Option<u16>,
    /// Time from start to outcome, in milliseconds.
    pub latency_ms: u64,
    /// The addresses the host resolved to (or the literal address).
    pub resolved: Vec<IpAddr>,
    /// The address the request went to, when one was contacted.
    pub connected_to: Option<SocketAddr>,
    /// The first part (≤ 2 KiB, lossy UTF-8) of the answer; filled for test deliveries only.
    pub response_body: Option<String>,
    /// The relay's reply code, when it answered (email).
    pub smtp_code: Option<u16>,
    /// The relay's reply text (email); filled for test deliveries only.
    pub smtp_reply: Option<String>,
    /// A sentence saying exactly what happened.
    pub detail: String,
}

/// One of a site's destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// The site's webhook (SPEC §4).
    Webhook,
    /// The site's email addresses, through the operator's relay (SPEC §10).
    Email,
}

impl Report {
    /// A delivery that failed before anything was contacted.
    pub fn failed(outcome: Outcome, detail: String) -> Report {
        Report {
            outcome,
            http_status: None,
            latency_ms: 0,
            resolved: Vec::new(),
            connected_to: None,
            response_body: None,
            smtp_code: None,
            smtp_reply: None,
            detail,
        }
    }
}

impl Destination {
    /// Every destination, in the order statistics show them.
    pub const ALL: [Destination; 2] = [Destination::Webhook, Destination::Email];

    /// The destination's name, as statistics and metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Webhook => "webhook",
            Destination::Email => "email",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Destination> {
        Destination::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The outcomes a delivery to this destination can have: delivered first, then its failure
    /// categories in the spec's order.
    pub fn outcomes(self) -> &'static [Outcome] {
        match self {
            Destination::Webhook => &Outcome::WEBHOOK,
            Destination::Email => &Outcome::EMAIL,
        }
    }
}

/// A verified submission, ready for the site's destinations: the token's claims, when it was
/// verified, its fields (every token field already removed) and whether it is a test.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The verification's claims: site key, session id, game fields.
    pub claims: &'a Claims,
    /// When the token was verified, epoch ms.
    pub verified_at: i64,
    /// The fields, in posted order.
    pub fields: &'a Fields,
    /// A post of the dashboard's test form.
    pub test: bool,
}

impl Submission<'_> {
    /// Real submission or test.
    pub fn kind(&self) -> Kind {
        if self.test { Kind::Test } else { Kind::Real }
    }
}

/// What one submission's delivery did at each of the site's destinations.
#[derive(Debug, Clone)]
pub struct Deliveries(Vec<(Destination, Report)>);

impl Deliveries {
    /// True when at least one destination accepted the submission: then the visitor is told it
    /// was sent (SPEC §3, §10).
    pub fn accepted(&self) -> bool {
        self.0
            .iter()
            .any(|(_, report)| report.outcome == Outcome::Delivered)
    }

    /// Deliveries from each destination's report.
    pub fn from_reports(reports: Vec<(Destination, Report)>) -> Deliveries {
        Deliveries(reports)
    }

    /// The report of one destination, when the site has it.
    pub fn get(&self, destination: Destination) -> Option<&Report> {
        self.0
            .iter()
            .find(|(d, _)| *d == destination)
            .map(|(_, report)| report)
    }

    /// Each destination with its report, in the site's order.
    pub fn iter(&self) -> impl Iterator<Item = &(Destination, Report)> {
        self.0.iter()
    }
}

/// Sends to destinations. Holds the egress gate, the TLS configuration, the timeout and the
/// mailer (when email is configured); shareable across workers, while the pooled HTTP client it
/// builds lives in one worker.
#[derive(Clone)]
pub struct Deliverer {
    egress: Egress,
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    mailer: Option<Mailer>,
}

impl Deliverer {
    /// A deliverer with this egress gate and total timeout, trusting the web PKI roots and the
    /// operator's extra ones, sending email through `mailer` when there is one; fails only if
    /// the TLS library cannot offer its default protocol versions (a broken build).
    pub fn new(
        egress: Egress,
        timeout: Duration,
        extra_roots: Option<&ExtraRoots>,
        mailer: Option<Mailer>,
    ) -> Result<Deliverer, rustls::Error> {
        Ok(Deliverer {
            egress,
            timeout,
            tls: crate::tls::client_config(extra_roots, &[b"http/1.1"])?,
            mailer,
        })
    }

    /// The mailer, when an SMTP relay is configured.
    pub fn mailer(&self) -> Option<&Mailer> {
        self.mailer.as_ref()
    }

    /// The egress gate (the dashboard previews a webhook host with it).
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// The total delivery timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A pooled HTTP client for the current worker: no redirects, no default headers, no
    /// environment proxies (awc has none), TLS via rustls with the webpki roots.
    pub fn client(&self) -> awc::Client {
        let connector = awc::Connector::new()
            .rustls_0_23(Arc::clone(&self.tls))
            .timeout(self.timeout)
            .conn_keep_alive(Duration::from_secs(15));
        awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .no_default_headers()
            .timeout(self.timeout)
            .finish()
    }

    /// Delivers a verified submission to every destination of `site` at once (the webhook and
    /// the email are attempted together) and reports each outcome. Never retries.
    pub async fn deliver_submission(
        &self,
        client: &awc::Client,
        site: &Site,
        submission: &Submission<'_>,
    ) -> Deliveries {
        let kind = submission.kind();
        let webhook = async {
            match &site.settings.webhook_url {
                Some(url) => {
                    let body = envelope::real(
                        submission.claims,
                        submission.verified_at,
                        submission.fields,
                        submission.test,
                    );
                    Some(self.deliver(client, url, body, kind).await)
                }
                None => None,
            }
        };
        let about = message::About {
            site_name: &site.settings.name,
            site_key: site.key.as_str(),
            session_id: &submission.claims.session_id,
            verified_at: submission.verified_at,
            test: submission.test,
        };
        let email = self.deliver_email(site, &about, submission.fields, kind);
        let (webhook, email) = futures_util::future::join(webhook, email).await;
        let mut out = Vec::with_capacity(2);
        out.extend(webhook.map(|r| (Destination::Webhook, r)));
        out.extend(email.map(|r| (Destination::Email, r)));
        Deliveries(out)
    }

    /// Emails the fields to the site's addresses; `None` when the site has none.
    pub async fn deliver_email(
        &self,
        site: &Site,
        about: &message::About<'_>,
        fields: &Fields,
        kind: Kind,
    ) -> Option<Report> {
        let to = &site.settings.email_to;
        if to.is_empty() {
            return None;
        }
        let Some(mailer) = &self.mailer else {
            // The site was given addresses while a relay was configured; it is gone now.
            return Some(Report::failed(
                Outcome::Connect,
                "no SMTP relay is configured (CAPUTCHIN_SMTP_URL and CAPUTCHIN_MAIL_FROM)".into(),
            ));
        };
        let message = match message::build(mailer.from(), to, about, fields) {
            Ok(message) => message,
            Err(e) => {
                return Some(Report::failed(
                    Outcome::Smtp5xx,
                    format!("the message could not be built: {e}"),
                ));
            }
        };
        let bytes = message.formatted();
        Some(
            mailer
                .deliver(message.envelope().clone(), bytes, self.timeout, kind)
                .await,
        )
    }

    /// Delivers one envelope to one webhook. Never panics, never retries; the whole call is bounded by the
    /// delivery timeout.
    pub async fn deliver(
        &self,
        client: &awc::Client,
        url: &WebhookUrl,
        body: Vec<u8>,
        kind: Kind,
    ) -> Report {
        let started = Instant::now();
        // A timeout until the attempt says otherwise.
        let mut report = Report::failed(Outcome::Timeout, String::new());
        let body = Bytes::from(body);
        let attempt = self.attempt(client, url, body, kind, &mut report);
        if tokio::time::timeout(self.timeout, attempt).await.is_err() {
            report.outcome = Outcome::Timeout;
            report.detail = format!("no complete answer within {} ms", self.timeout.as_millis());
        }
        report.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report
    }

    async fn attempt(
        &self,
        client: &awc::Client,
        url: &WebhookUrl,
        body: Bytes,
        kind: Kind,
        report: &mut Report,
    ) {
        let vetted = match self.egress.vet(url.url()).await {
            Ok(vetted) => vetted,
            Err(EgressError::Dns { host, reason }) => {
                report.outcome = Outcome::Dns;
                report.detail = format!("DNS lookup of {host} failed: {reason}");
                return;
            }
            Err(EgressError::Blocked { blocked, resolved }) => {
                report.outcome = Outcome::BlockedDestination;
                report.resolved = resolved;
                report.detail = format!("blocked: {blocked}; nothing was contacted");
                // The one who tests a delivery is told the way out; real deliveries log less.
                let hint = blocked.allow_hint();
                if kind == Kind::Test && !hint.is_empty() {
                    report.detail = format!("{}. {hint}", report.detail);
                }
                return;
            }
        };
        report.resolved = vetted.addrs.iter().map(SocketAddr::ip).collect();
        let mut last_error = None;
        for addr in &vetted.addrs {
            let mut request = client
                .post(url.expose())
                .address(*addr)
                // Also keeps awc from adding `accept-encoding`: the contract's headers are exact.
                .no_decompress()
                .insert_header(("content-type", "application/json"))
                .insert_header(("accept", "application/json"))
                .insert_header(("user-agent", USER_AGENT));
            if kind == Kind::Test {
                request = request.insert_header(("x-caputchin-test", "1"));
            }
            report.connected_to = Some(*addr);
            match request.send_body(body.clone()).await {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    report.http_status = Some(status);
                    report.outcome = Outcome::of_status(status);
                    let prefix = read_prefix(&mut response).await;
                    report.detail = match report.outcome {
                        Outcome::Delivered => format!("the webhook accepted it with HTTP {status}"),
                        Outcome::Redirect => {
                            let location = response
                                .headers()
                                .get("location")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("(no Location header)");
                            format!(
                                "the webhook answered HTTP {status} redirecting to {location}; redirects are not followed"
                            )
                        }
                        _ => format!("the webhook answered HTTP {status}"),
                    };
                    // Only a test delivery shows the answer's body (SPEC §6).
                    if kind == Kind::Test {
                        report.response_body = Some(String::from_utf8_lossy(&prefix).into_owned());
                    }
                    return;
                }
                // Nothing was sent on a failed connect, so trying the next vetted address is not a
                // second delivery.
                Err(SendRequestError::Connect(e)) if !matches!(e, ConnectError::Timeout) => {
                    let (outcome, detail) = classify_connect(&e, *addr);
                    last_error = Some((outcome, detail));
                    if outcome == Outcome::Tls {
                        break;
                    }
                }
                Err(e) => {
                    let (outcome, detail) = classify_send(&e, *addr, self.timeout);
                    report.outcome = outcome;
                    report.detail = detail;
                    return;
                }
            }
        }
        if let Some((outcome, detail)) = last_error {
            report.outcome = outcome;
            report.detail = detail;
        }
    }
}

async fn read_prefix<S>(response: &mut awc::ClientResponse<S>) -> Vec<u8>
where
    S: futures_util::Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut out = Vec::new();
    while out.len() < MAX_RESPONSE_BYTES {
        match response.next().await {
            Some(Ok(chunk)) => {
                let room = MAX_RESPONSE_BYTES - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    out
}

fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        || e.kind() == std::io::ErrorKind::InvalidData
}

fn classify_connect(e: &ConnectError, addr: SocketAddr) -> (Outcome, String) {
    match e {
        ConnectError::Io(io) if is_tls_error(io) => (
            Outcome::Tls,
            format!("TLS handshake with {addr} failed: {io}"),
        ),
        ConnectError::SslIsNotSupported => (Outcome::Tls, "TLS is not available".into()),
        ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved => {
            (Outcome::Dns, format!("could not resolve: {e}"))
        }
        ConnectError::Timeout => (Outcome::Timeout, format!("connecting to {addr} timed out")),
        _ => (
            Outcome::Connect,
            format!("could not connect to {addr}: {e}"),
        ),
    }
}

fn classify_send(e: &SendRequestError, addr: SocketAddr, timeout: Duration) -> (Outcome, String) {
    match e {
        SendRequestError::Connect(c) => classify_connect(c, addr),
        SendRequestError::Timeout => (
            Outcome::Timeout,
            format!("no answer from {addr} within {} ms", timeout.as_millis()),
        ),
        SendRequestError::Send(io) if is_tls_error(io) => {
            (Outcome::Tls, format!("TLS failure with {addr}: {io}"))
        }
        _ => (
            Outcome::Connect,
            format!("the connection to {addr} failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_categories() {
        assert_eq!(Outcome::of_status(200), Outcome::Delivered);
        assert_eq!(Outcome::of_status(204), Outcome::Delivered);
        assert_eq!(Outcome::of_status(302), Outcome::Redirect);
        assert_eq!(Outcome::of_status(404), Outcome::Http4xx);
        assert_eq!(Outcome::of_status(500), Outcome::Http5xx);
        assert_eq!(Outcome::of_status(101), Outcome::Http5xx);
    }

    #[test]
    fn each_destination_has_its_own_categories() {
        for destination in Destination::ALL {
            assert_eq!(Destination::parse(destination.as_str()), Some(destination));
            let outcomes = destination.outcomes();
            assert_eq!(outcomes[0], Outcome::Delivered);
            assert!(outcomes.iter().all(|o| Outcome::ALL.contains(o)));
        }
        // Every outcome belongs to a destination.
        for outcome in Outcome::ALL {
            assert!(
                Destination::ALL
                    .iter()
                    .any(|d| d.outcomes().contains(&outcome))
            );
        }
        assert!(!Destination::Webhook.outcomes().contains(&Outcome::Auth));
        assert!(!Destination::Email.outcomes().contains(&Outcome::Dns));
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::json!(outcome.as_str())
            );
        }
    }
}

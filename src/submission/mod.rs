//! The form endpoint's pipeline (SPEC §3), in the spec's order and in one place: forwarding on,
//! origin allowed, rate limit, body rules, token present, token verified (the built-in issuer or
//! the site's remote verifier, SPEC §8), then one synchronous delivery to the site's
//! destinations, recorded. [`accept`] is the whole of it; the web layer only turns a request
//! into an [`Incoming`] and the result into an answer.

pub mod body;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

use crate::captcha::remote::{self, Remote};
use crate::captcha::{ALL_TOKEN_FIELDS, VerifierKind};
use crate::delivery::{Deliveries, Submission};
use crate::refusal::Refusal;
use crate::services::Services;
use crate::sites::Site;
use crate::store::deliveries::Verification;

/// A post to a site's form endpoint, as the web layer hands it over. Nothing is read or counted
/// before its step in the pipeline comes.
pub struct Incoming<'a> {
    /// The request's origin: `Origin`, else the origin of `Referer`; `None` when both are absent.
    pub origin: Option<String>,
    /// A post of the dashboard's test form (its signed pass already checked): verified by the
    /// built-in issuer, delivered as a test, whether or not forwarding is on, from any origin.
    pub test: bool,
    /// Counts the post against the client's budget for the site; `Err(seconds)` to wait.
    pub admit: Box<dyn FnOnce() -> Result<(), u64> + 'a>,
    /// Reads the body within the byte limit and the body deadline.
    pub body: LocalBoxFuture<'a, Result<RawBody, Refusal>>,
}

/// A body read in full.
pub struct RawBody {
    /// The request's `Content-Type`.
    pub content_type: Option<String>,
    /// The bytes, at most the configured limit.
    pub bytes: Bytes,
}

/// The outbound clients of the worker that serves the post.
#[derive(Clone, Copy)]
pub struct Clients<'a> {
    /// Delivers to webhooks.
    pub webhook: &'a awc::Client,
    /// Asks remote verifiers.
    pub verifier: &'a awc::Client,
}

/// A submission some destination accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The session id the visitor is told (and the envelope carries).
    pub session_id: String,
    /// Every destination's outcome.
    pub deliveries: Deliveries,
}

/// Runs SPEC §3's checks in order, delivers once to the site's destinations and records the
/// outcome; the visitor is told "sent" only when a destination accepted it. A refusal before any
/// delivery is counted as the site's rejection; the test form's posts are counted apart.
pub async fn accept(
    services: &Services,
    clients: Clients<'_>,
    site: &Site,
    incoming: Incoming<'_>,
) -> Result<Accepted, Refusal> {
    let test = incoming.test;
    let accepted = run(services, clients, site, incoming).await;
    if !test {
        services.metrics.submission(match &accepted {
            Ok(_) => "delivered",
            Err(refusal) => refusal.code(),
        });
        // Failed deliveries are counted as deliveries; rejections are posts that never reached
        // one.
        if let Err(refusal) = &accepted
            && !matches!(refusal, Refusal::Internal | Refusal::DeliveryFailed)
        {
            let now = services.clock.now_ms();
            crate::stats::record_rejection(&services.store, &site.id, now, refusal.code());
        }
    }
    accepted
}

async fn run(
    services: &Services,
    clients: Clients<'_>,
    site: &Site,
    incoming: Incoming<'_>,
) -> Result<Accepted, Refusal> {
    let Incoming {
        origin,
        test,
        admit,
        body,
    } = incoming;
    // A disabled key refuses every post, the owner's test form's too (SPEC §12).
    if site.settings.disabled {
        return Err(Refusal::SiteDisabled);
    }
    // The test form works like Test delivery: whether or not forwarding is on, from the
    // forwarder's own origin.
    if !test && !site.settings.enabled {
        return Err(Refusal::ForwardingDisabled);
    }
    // No Origin and no Referer: not a cross-site browser post, allowed (SPEC §3).
    if !test && !origin.is_none_or(|origin| site.allows_origin(&origin)) {
        return Err(Refusal::OriginNotAllowed);
    }
    admit().map_err(Refusal::RateLimited)?;
    let raw = body.await?;
    // The test form's widget is ours, so its token is the built-in one.
    let verifier = if test {
        VerifierKind::Builtin
    } else {
        site.settings.verifier
    };
    let limits = body::Limits {
        max_fields: services.settings.max_fields,
        max_name_bytes: crate::config::MAX_FIELD_NAME_BYTES,
    };
    // The token comes from the fields this site's verifier posts; every verifier's token field
    // is stripped before the envelope is built (SPEC §3, §8).
    let mut parsed = body::parse(
        raw.content_type.as_deref(),
        raw.bytes,
        verifier.token_fields(),
        &limits,
    )
    .await
    .map_err(|e| Refusal::from(&e))?;
    parsed
        .fields
        .retain(|name| !ALL_TOKEN_FIELDS.contains(&name));
    let token = parsed.token.ok_or(Refusal::MissingToken)?;
    let verified = match verifier {
        VerifierKind::Builtin => services
            .issuer
            .consume(site.key.as_str(), &token)
            .await
            .map_err(|e| e.refusal(Refusal::InvalidToken)),
        _ => {
            let remote = Remote {
                client: clients.verifier,
                egress: services.deliverer.egress(),
                sealer: services.keys.sealer(),
                timeout: services.settings.delivery_timeout,
            };
            let now = services.clock.now_ms();
            remote::verify_for_site(remote, &site.verifier(), &token, now).await
        }
    };
    // The token's fate is counted for Caputchin's statistics (SPEC §12); the test form's apart.
    let event = match &verified {
        Ok(_) => Some(Verification::TokenAccepted),
        Err(Refusal::InvalidToken | Refusal::TimeoutOrDuplicate | Refusal::SiteMismatch) => {
            Some(Verification::TokenRefused)
        }
        Err(_) => None,
    };
    if let Some(event) = event.filter(|_| !test) {
        services
            .store
            .count_verification(&site.id, services.clock.now_ms(), event);
    }
    let mut claims = verified?;
    if test {
        // A test's session id says so, as Test delivery's does (the webhook contract).
        claims.session_id = crate::ids::random_id::<16>("test_");
    }
    let submission = Submission {
        claims: &claims,
        verified_at: services.clock.now_ms(),
        fields: &parsed.fields,
        test,
    };
    let deliveries = services
        .deliverer
        .deliver_submission(clients.webhook, site, &submission)
        .await;
    record(services, site, &submission, &deliveries);
    if deliveries.accepted() {
        Ok(Accepted {
            session_id: claims.session_id,
            deliveries,
        })
    } else {
        Err(Refusal::DeliveryFailed)
    }
}

/// Records every destination's outcome: statistics, metrics and one log line each (never the
/// form's contents or the destination's address).
fn record(services: &Services, site: &Site, submission: &Submission<'_>, deliveries: &Deliveries) {
    let finished = services.clock.now_ms();
    let kind = submission.kind();
    for (destination, report) in deliveries.iter() {
        crate::stats::record_delivery_later(
            &services.store,
            &site.id,
            finished,
            *destination,
            kind,
            report,
        );
        services.metrics.delivery(*destination, kind, report);
        tracing::info!(
            site_id = %site.id,
            destination = destination.as_str(),
            outcome = report.outcome.as_str(),
            http_status = report.http_status,
            latency_ms = report.latency_ms,
            test = submission.test,
            "delivery"
        );
    }
}

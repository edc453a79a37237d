//! The endpoints of Caputchin's own widget, `@caputchin/widget` 3.x, proof of work without a game
//! (SPEC §13, CAPUTCHIN-WIDGET-PROTOCOL): `GET /v1/widget/bootstrap`, `POST /v1/verify/start`
//! and `POST /v1/verify/pass`, with CORS.
//!
//! `start` names its site in the body and `pass` names none, so neither preflight can know the
//! site: both are allowed for any origin, and the site's origins are enforced on the answers
//! (the site of `pass` is the one its signed challenge token carries). Refusals are said in the
//! body, which the widget reads whatever the status; the statuses are those of SPEC §2/§3.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::captcha::session;
use crate::sites::Site;
use crate::store::deliveries::Verification;
use crate::web::error::{Refusal, Refused, Shape};
use crate::web::{SMALL_BODY_LIMIT, WebState, body_deadline, cors};

/// What `platform.sitekey` of a start body names.
#[derive(Debug, PartialEq, Eq)]
pub struct StartRequest {
    /// The site key, verbatim.
    pub sitekey: String,
}

/// What a pass body says.
#[derive(Debug, PartialEq, Eq)]
pub struct PassRequest {
    /// The challenge token from `start`.
    pub token: String,
    /// One nonce per challenge, in order.
    pub solutions: Vec<u64>,
    /// `platform.sessionId`; absent when the widget got none (it then sends `"platform": {}`).
    pub session_id: Option<String>,
}

/// Parses a start body, `{"platform": {"sitekey": string, "gameId": …}}`; `gameId` is ignored
/// (there is no game: every token's game fields are null). `None` when it is not that.
pub fn parse_start_body(body: &[u8]) -> Option<StartRequest> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let sitekey = value.get("platform")?.get("sitekey")?.as_str()?;
    Some(StartRequest {
        sitekey: sitekey.to_owned(),
    })
}

/// Parses a pass body, `{"token": string, "solutions": [u64…], "platform": {"sessionId": string}}`
/// (`platform` and `sessionId` may be absent); `None` when it is not that.
pub fn parse_pass_body(body: &[u8]) -> Option<PassRequest> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let (token, solutions) = crate::web::cap::token_and_solutions(object)?;
    let session_id = match object.get("platform") {
        None | Some(Value::Null) => None,
        Some(Value::Object(platform)) => match platform.get("sessionId") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return None,
        },
        Some(_) => return None,
    };
    Some(PassRequest {
        token,
        solutions,
        session_id,
    })
}

/// Counts a verification event of the site (SPEC §12's statistics; no I/O of its own).
fn count_event(state: &WebState, site: &Site, event: Verification) {
    state
        .store
        .count_verification(&site.id, state.clock.now_ms(), event);
}

/// The site's CORS answer for this request, or the refusal of its origin (answered without
/// `Access-Control-Allow-Origin`, as the Cap endpoints' are).
fn origin_of(site: &Site, req: &HttpRequest, shape: Shape) -> Result<cors::Cors, Refused> {
    cors::check(site, req).map_err(|e| Refused::new(e, shape, cors::Cors::NoOrigin))
}

/// An enabled site, or the refusal of an unknown or disabled one. These answers carry the
/// request's origin, so the widget can read them (as the Cap endpoints' unknown-site answer).
fn enabled(site: Option<Arc<Site>>, req: &HttpRequest, shape: Shape) -> Result<Arc<Site>, Refused> {
    match site {
        None => Err(Refused::new(Refusal::UnknownSite, shape, cors::echo(req))),
        Some(site) if site.settings.disabled => {
            Err(Refused::new(Refusal::SiteDisabled, shape, cors::echo(req)))
        }
        Some(site) if !site.settings.enabled => Err(Refused::new(
            Refusal::ForwardingDisabled,
            shape,
            cors::echo(req),
        )),
        Some(site) => Ok(site),
    }
}

/// Reads a small body, or the refusal of one that is too large, broken or late.
async fn small_body(
    payload: web::Payload,
    refused: impl Fn(Refusal) -> Refused,
) -> Result<web::Bytes, Refused> {
    match payload.to_bytes_limited(SMALL_BODY_LIMIT).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) if body_deadline::is_timeout(&e) => Err(refused(Refusal::RequestTimeout)),
        Ok(Err(_)) => Err(refused(Refusal::BadRequest)),
        Err(_) => Err(refused(Refusal::PayloadTooLarge)),
    }
}

/// Counts an answer of `endpoint` in the metrics.
fn count(state: &WebState, endpoint: &'static str, answer: &Result<HttpResponse, Refused>) {
    state.metrics.widget(
        endpoint,
        match answer {
            Ok(_) => "success",
            Err(refused) => refused.refusal().code(),
        },
    );
}

fn json_answer(cors: &cors::Cors, body: &Value) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    cors::apply(&mut builder, cors);
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET /v1/widget/bootstrap?sitekey=…`: `{"widget": null, "game": null}` for an enabled site
/// (no theming and no game: the widget mounts with its bundled defaults and verifies with proof
/// of work only). The other query keys (`locale`, `skin`, `game`, `games`) are ignored.
pub async fn bootstrap(
    state: web::Data<WebState>,
    req: HttpRequest,
) -> Result<HttpResponse, Refused> {
    let answer = bootstrap_answer(&state, &req).await;
    count(&state, "bootstrap", &answer);
    answer
}

async fn bootstrap_answer(state: &WebState, req: &HttpRequest) -> Result<HttpResponse, Refused> {
    let sitekey = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "sitekey")
        .map(|(_, value)| value.into_owned());
    let site = match sitekey {
        Some(key) => state.sites.find(&key).await,
        None => None,
    };
    let site = enabled(site, req, Shape::Bootstrap)?;
    let allowed = origin_of(&site, req, Shape::Bootstrap)?;
    Ok(json_answer(
        &allowed,
        &json!({"widget": null, "game": null}),
    ))
}

/// `OPTIONS` for `start` and `pass`: allowed for any origin, because neither preflight names its
/// site; the answers themselves enforce the site's origins.
pub async fn preflight(req: HttpRequest) -> HttpResponse {
    cors::preflight(&cors::echo(&req))
}

/// `POST /v1/verify/start`: a signed challenge of the site's shape whose token carries the site,
/// and the session id `pass` checks. Nothing is written but the count of issued challenges.
pub async fn start(
    state: web::Data<WebState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let answer = start_answer(&state, &req, payload).await;
    count(&state, "start", &answer);
    answer
}

async fn start_answer(
    state: &WebState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let early = |refusal| Refused::new(refusal, Shape::VerifyStart, cors::echo(req));
    let body = small_body(payload, early).await?;
    let request = parse_start_body(&body).ok_or_else(|| early(Refusal::BadRequest))?;
    let site = enabled(
        state.sites.find(&request.sitekey).await,
        req,
        Shape::VerifyStart,
    )?;
    let allowed = origin_of(&site, req, Shape::VerifyStart)
        .inspect_err(|_| count_event(state, &site, Verification::OriginRefused))?;
    let refused = |refusal| Refused::new(refusal, Shape::VerifyStart, allowed.clone());
    state
        .rate_limits
        .challenge
        .check_request(state, req, site.key.as_str())
        .map_err(|seconds| {
            count_event(state, &site, Verification::RateLimited);
            refused(Refusal::RateLimited(seconds))
        })?;
    let issued = state
        .issuer
        .challenge_named(site.key.as_str(), site.settings.challenge)
        .ok_or_else(|| {
            tracing::error!("a site key that a challenge token cannot carry");
            refused(Refusal::Internal)
        })?;
    state
        .store
        .count_challenge(&site.id, state.clock.now_ms(), false);
    let session_id = session::session_id(state.keys.widget_session(), &issued.token);
    // Format 1 only, and no `instrumentation`: either would send the widget down paths a
    // proof-of-work-only server does not serve (CAPUTCHIN-WIDGET-PROTOCOL §5, §10).
    Ok(json_answer(
        &allowed,
        &json!({
            "challenge": {"c": issued.params.count, "s": issued.params.size, "d": issued.params.difficulty},
            "token": issued.token,
            "expires": issued.expires_at,
            "platform": {"sessionId": session_id},
        }),
    ))
}

/// `POST /v1/verify/pass`: checks the session, then redeems the challenge exactly as Cap's redeem
/// does (expiry; spent on the first attempt, right or wrong; the solutions), and answers Cap's
/// redeem fields plus `platform.wrappedToken`, the verification token of SPEC §2 that the form
/// posts as `caputchin-token`.
pub async fn pass(
    state: web::Data<WebState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let answer = pass_answer(&state, &req, payload).await;
    count(&state, "pass", &answer);
    answer
}

async fn pass_answer(
    state: &WebState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let early = |refusal| Refused::new(refusal, Shape::VerifyPass, cors::echo(req));
    let body = small_body(payload, early).await?;
    let request = parse_pass_body(&body).ok_or_else(|| early(Refusal::BadRequest))?;
    let named = state
        .issuer
        .open_named(&request.token)
        .ok_or_else(|| early(Refusal::ChallengeInvalid))?;
    let site = enabled(
        state.sites.find(named.site_key()).await,
        req,
        Shape::VerifyPass,
    )?;
    let allowed = origin_of(&site, req, Shape::VerifyPass)
        .inspect_err(|_| count_event(state, &site, Verification::OriginRefused))?;
    let refused = |refusal| Refused::new(refusal, Shape::VerifyPass, allowed.clone());
    state
        .rate_limits
        .redeem
        .check_request(state, req, site.key.as_str())
        .map_err(|seconds| {
            count_event(state, &site, Verification::RateLimited);
            refused(Refusal::RateLimited(seconds))
        })?;
    // A pass that does not name the challenge's session is not an attempt at it: the challenge
    // is not spent, as for a malformed body.
    let session_ok = request
        .session_id
        .as_deref()
        .is_some_and(|id| session::is_session_of(state.keys.widget_session(), &request.token, id));
    if !session_ok {
        return Err(refused(Refusal::InvalidSession));
    }
    let redeemed = state
        .issuer
        .redeem_named(named, request.solutions)
        .await
        .map_err(|e| {
            count_event(state, &site, Verification::RedeemFailed);
            refused(e.refusal())
        })?;
    state
        .store
        .count_challenge(&site.id, state.clock.now_ms(), true);
    Ok(json_answer(
        &allowed,
        &json!({
            "success": true,
            "token": redeemed.token,
            "expires": redeemed.expires_at,
            "platform": {"wrappedToken": redeemed.token},
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_bodies_name_their_site_in_platform() {
        assert_eq!(
            parse_start_body(br#"{"platform":{"sitekey":"cpt_pub_x","gameId":null}}"#),
            Some(StartRequest {
                sitekey: "cpt_pub_x".into()
            })
        );
        assert!(parse_start_body(br#"{"platform":{"sitekey":"k","gameId":"g"}}"#).is_some());
        for bad in [
            &br#"{"sitekey":"cpt_pub_x"}"#[..],
            br#"{"platform":{"sitekey":1}}"#,
            br#"{"platform":"cpt_pub_x"}"#,
            br#"{"platform":{}}"#,
            b"",
            b"not json",
        ] {
            assert!(
                parse_start_body(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn pass_bodies_are_parsed_strictly_and_may_lack_a_session() {
        let full =
            parse_pass_body(br#"{"token":"t","solutions":[1,2],"platform":{"sessionId":"s"}}"#)
                .unwrap();
        assert_eq!(full.solutions, vec![1, 2]);
        assert_eq!(full.session_id.as_deref(), Some("s"));
        let empty = parse_pass_body(br#"{"token":"t","solutions":[],"platform":{}}"#).unwrap();
        assert_eq!(empty.session_id, None);
        assert_eq!(
            parse_pass_body(br#"{"token":"t","solutions":[]}"#)
                .unwrap()
                .session_id,
            None
        );
        for bad in [
            &br#"{"token":"t","solutions":["1"],"platform":{}}"#[..],
            br#"{"token":"t","solutions":[-1],"platform":{}}"#,
            br#"{"token":1,"solutions":[],"platform":{}}"#,
            br#"{"solutions":[],"platform":{}}"#,
            br#"{"token":"t","platform":{}}"#,
            br#"{"token":"t","solutions":[],"platform":{"sessionId":5}}"#,
            br#"{"token":"t","solutions":[],"platform":"s"}"#,
            b"[]",
            b"not json",
        ] {
            assert!(
                parse_pass_body(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let too_many = format!(
            r#"{{"token":"t","solutions":[{}],"platform":{{}}}}"#,
            vec!["1"; 501].join(",")
        );
        assert!(parse_pass_body(too_many.as_bytes()).is_none());
    }
}

//! `POST /v1/cap/{site_key}/challenge` and `/redeem` (CAP-PROTOCOL §1, format 1), with CORS.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::captcha::{RedeemRequest, cap, token};
use crate::sites::Site;
use crate::store::deliveries::Verification;
use crate::web::error::{Refusal, Refused, Shape};
use crate::web::rate_limit::RateLimiter;
use crate::web::{SMALL_BODY_LIMIT, WebState, body_deadline, cors};

/// Finds the site, checks the request's origin against it and counts the request against the
/// endpoint's budget. An unknown site's answer carries the request's origin (so a widget can read
/// it); a refused origin's carries none.
async fn site_and_cors(
    state: &WebState,
    req: &HttpRequest,
    site_key: &str,
    budget: &RateLimiter,
) -> Result<(Arc<Site>, cors::Cors), Refused> {
    let Some(site) = state.sites.find(site_key).await else {
        return Err(Refused::new(
            Refusal::UnknownSite,
            Shape::Cap,
            cors::echo(req),
        ));
    };
    if site.settings.disabled {
        return Err(Refused::new(
            Refusal::SiteDisabled,
            Shape::Cap,
            cors::echo(req),
        ));
    }
    let allowed = cors::check_or_own(&site, req, &state.settings.public_url).map_err(|e| {
        count(state, &site, Verification::OriginRefused);
        Refused::new(e, Shape::Cap, cors::Cors::NoOrigin)
    })?;
    budget
        .check_request(state, req, site.key.as_str())
        .map_err(|seconds| {
            if !cors::from_own_origin(req, &state.settings.public_url) {
                count(state, &site, Verification::RateLimited);
            }
            Refused::new(Refusal::RateLimited(seconds), Shape::Cap, allowed.clone())
        })?;
    Ok((site, allowed))
}

/// Counts a verification event of the site (SPEC §12's statistics; no I/O of its own).
fn count(state: &WebState, site: &Site, event: Verification) {
    state
        .store
        .count_verification(&site.id, state.clock.now_ms(), event);
}

/// `OPTIONS` preflight for both Cap endpoints.
pub async fn preflight(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Refused> {
    cors::preflight_for(state.sites.find(&path).await.as_deref(), &req)
        .map_err(|(refusal, cors)| Refused::new(refusal, Shape::Cap, cors))
}

/// `POST {E}challenge`: a signed challenge; no body is read and nothing is written.
pub async fn challenge(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Refused> {
    let (site, allowed) = site_and_cors(&state, &req, &path, &state.rate_limits.challenge).await?;
    let issued = state
        .issuer
        .challenge(site.key.as_str(), site.settings.challenge);
    state.metrics.cap_challenge();
    // The forwarder's own test forms are tests: their challenges are not counted.
    if !cors::from_own_origin(&req, &state.settings.public_url) {
        state
            .store
            .count_challenge(&site.id, state.clock.now_ms(), false);
    }
    let mut builder = HttpResponse::Ok();
    cors::apply(&mut builder, &allowed);
    Ok(builder.insert_header(("Cache-Control", "no-store")).json(json!({
        "challenge": {"c": issued.params.count, "s": issued.params.size, "d": issued.params.difficulty},
        "token": issued.token,
        "expires": issued.expires_at,
    })))
}

/// A redeem body's `token` (a string) and `solutions` (at most [`cap::MAX_CHALLENGE_COUNT`]
/// non-negative integers), as Cap's redeem and Caputchin's `verify/pass` send them.
pub fn token_and_solutions(object: &serde_json::Map<String, Value>) -> Option<(String, Vec<u64>)> {
    let token = object.get("token")?.as_str()?.to_owned();
    let solutions = object
        .get("solutions")?
        .as_array()?
        .iter()
        .map(Value::as_u64)
        .collect::<Option<Vec<u64>>>()?;
    if solutions.len() > usize::from(cap::MAX_CHALLENGE_COUNT) {
        return None;
    }
    Some((token, solutions))
}

/// Parses a redeem body: `{"token": string, "solutions": [u64…]}` plus optional game metadata
/// (`game_id` string, `score` number, `duration_ms` non-negative integer, each may be null).
pub fn parse_redeem_body(body: &[u8]) -> Option<RedeemRequest> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let (token, solutions) = token_and_solutions(object)?;
    let game_id = match object.get("game_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= token::MAX_GAME_ID_BYTES
                && !s.chars().any(char::is_control) =>
        {
            Some(s.clone())
        }
        Some(_) => return None,
    };
    let score = match object.get("score") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.clone()),
        Some(_) => return None,
    };
    let duration_ms = match object.get("duration_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64()?),
    };
    Some(RedeemRequest {
        token,
        solutions,
        game_id,
        score,
        duration_ms,
    })
}

/// `POST {E}redeem`: checks the solutions and answers a verification token.
pub async fn redeem(
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let answer = redeem_answer(&state, &req, &path, payload).await;
    state.metrics.cap_redeem(answer.is_ok());
    answer
}

async fn redeem_answer(
    state: &WebState,
    req: &HttpRequest,
    path: &str,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let (site, allowed) = site_and_cors(state, req, path, &state.rate_limits.redeem).await?;
    let refused = |refusal| Refused::new(refusal, Shape::Cap, allowed.clone());
    let body = match payload.to_bytes_limited(SMALL_BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if body_deadline::is_timeout(&e) => {
            return Err(refused(Refusal::RequestTimeout));
        }
        Ok(Err(_)) => return Err(refused(Refusal::BadRequest)),
        Err(_) => return Err(refused(Refusal::PayloadTooLarge)),
    };
    let request = parse_redeem_body(&body).ok_or_else(|| refused(Refusal::BadRequest))?;
    let redeemed = state
        .issuer
        .redeem(site.key.as_str(), request)
        .await
        .map_err(|e| {
            if !cors::from_own_origin(req, &state.settings.public_url) {
                count(state, &site, Verification::RedeemFailed);
            }
            refused(e.refusal())
        })?;
    if !cors::from_own_origin(req, &state.settings.public_url) {
        state
            .store
            .count_challenge(&site.id, state.clock.now_ms(), true);
    }
    let mut builder = HttpResponse::Ok();
    cors::apply(&mut builder, &allowed);
    Ok(builder
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "success": true,
            "token": redeemed.token,
            "expires": redeemed.expires_at,
        })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeem_bodies_are_parsed_strictly() {
        let ok = parse_redeem_body(br#"{"token":"t","solutions":[1,2,3]}"#).unwrap();
        assert_eq!(ok.solutions, vec![1, 2, 3]);
        let meta = parse_redeem_body(
            br#"{"token":"t","solutions":[],"game_id":"g","score":847,"duration_ms":4200}"#,
        )
        .unwrap();
        assert_eq!(meta.game_id.as_deref(), Some("g"));
        assert_eq!(meta.duration_ms, Some(4200));
        for bad in [
            &br#"{"token":"t","solutions":["1"]}"#[..],
            br#"{"token":"t","solutions":[-1]}"#,
            br#"{"token":"t","solutions":[1.5]}"#,
            br#"{"token":"t","solutions":1}"#,
            br#"{"token":1,"solutions":[]}"#,
            br#"{"solutions":[]}"#,
            br#"{"token":"t"}"#,
            br#"[1]"#,
            b"not json",
            br#"{"token":"t","solutions":[],"duration_ms":-5}"#,
            br#"{"token":"t","solutions":[],"score":"high"}"#,
        ] {
            assert!(
                parse_redeem_body(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

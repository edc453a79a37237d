//! The test form (SPEC §6): a live form for a site, served by the forwarder itself. The public
//! one (`GET /f/{key}`) is a real form like any page's. The dashboard's (`GET /sites/{id}/try`)
//! posts with a pass signed under the server key, so it works whatever origins the site allows
//! and even when forwarding is off, and its submission is a test: verified by the built-in proof
//! of work (its widget is ours), delivered with the test marks and counted apart from real
//! traffic, like Test delivery.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::keys::Purpose;
use crate::sites::Site;
use crate::web::WebState;
use crate::web::error::{Refusal, Refused, Shape};

/// How long a test form's pass is good for after the page was served.
pub const PASS_TTL_MS: i64 = 3_600_000;
/// The query parameter of the forwarder URL that carries the pass.
pub const PASS_PARAM: &str = "preview";

/// The pass for `site_key`, good until `now_ms + PASS_TTL_MS`: `{expiry}.{hex tag}`.
pub fn pass(key: &Purpose, site_key: &str, now_ms: i64) -> String {
    let expires = now_ms.saturating_add(PASS_TTL_MS).to_string();
    let tag = key.sign(&pass_parts(site_key, &expires));
    format!("{expires}.{}", crate::ids::to_hex(&tag[..16]))
}

fn pass_parts<'a>(site_key: &'a str, expires: &'a str) -> [&'a [u8]; 3] {
    [site_key.as_bytes(), b"\0", expires.as_bytes()]
}

/// Whether `pass` is a live pass for `site_key` (the tag compared in constant time).
pub fn pass_is_valid(key: &Purpose, site_key: &str, pass: &str, now_ms: i64) -> bool {
    let Some((expires, tag)) = pass.split_once('.') else {
        return false;
    };
    let Ok(expiry) = expires.parse::<i64>() else {
        return false;
    };
    let Some(tag) = crate::ids::from_hex(tag).filter(|t| t.len() == 16) else {
        return false;
    };
    expiry > now_ms
        && expiry <= now_ms.saturating_add(PASS_TTL_MS)
        && key.verify(&pass_parts(site_key, expires), &tag)
}

/// What a post to a site says of the test form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPost {
    /// No pass: a real post.
    No,
    /// A live pass for this site: a test.
    Yes,
    /// A pass that expired or is not this site's: answered apart, counted nowhere.
    Expired,
}

/// Whether a post to `site` comes from the dashboard's test form, by the pass in its query (the
/// pass alone decides: it is signed, and an `Origin` is as easy to forge).
pub fn test_post(state: &WebState, req: &HttpRequest, site: &Site) -> TestPost {
    if req.query_string().is_empty() {
        return TestPost::No;
    }
    let pass = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == PASS_PARAM)
        .map(|(_, value)| value);
    let now = state.clock.now_ms();
    match pass {
        None => TestPost::No,
        Some(p) if pass_is_valid(state.keys.test_form(), site.key.as_str(), &p, now) => {
            TestPost::Yes
        }
        Some(_) => TestPost::Expired,
    }
}

#[derive(Template)]
#[template(path = "public/preview.html")]
struct PreviewPage {
    name: String,
    site_key: String,
    action: String,
    api_host: String,
    enabled: bool,
    /// The dashboard's test form: the site page to go back to.
    back: Option<String>,
    /// The public form of a site that takes posts only from its allowed origins.
    restricted: bool,
}

/// The test form of `site`: the dashboard's (with a pass and a way back) or the public one.
pub fn page(state: &WebState, site: &Site, from_dashboard: bool) -> HttpResponse {
    let key = site.key.as_str();
    let mut action = state.settings.forwarder_url(key);
    if from_dashboard {
        let pass = pass(state.keys.test_form(), key, state.clock.now_ms());
        action = format!("{action}?{PASS_PARAM}={pass}");
    }
    let page = PreviewPage {
        name: site.settings.name.clone(),
        site_key: key.to_owned(),
        action,
        api_host: state.settings.public_url.clone(),
        enabled: site.settings.enabled,
        back: from_dashboard.then(|| format!("/sites/{}", site.id)),
        restricted: !from_dashboard && !site.settings.allowed_origins.is_empty(),
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_SECURITY_POLICY, crate::web::CSP_PREVIEW))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            actix_web::ResponseError::error_response(&Refused::new(
                Refusal::Internal,
                Shape::Form { json: false },
                crate::web::cors::Cors::NoOrigin,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Keys, ServerKey};

    #[test]
    fn a_pass_is_bound_to_its_site_key_and_its_lifetime() {
        let keys = Keys::derive(ServerKey::from_bytes(&[7; 32]));
        let key = keys.test_form();
        let p = pass(key, "cpt_pub_a", 1_000);
        assert!(pass_is_valid(key, "cpt_pub_a", &p, 1_000));
        assert!(pass_is_valid(key, "cpt_pub_a", &p, 1_000 + PASS_TTL_MS - 1));
        assert!(!pass_is_valid(key, "cpt_pub_a", &p, 1_000 + PASS_TTL_MS));
        assert!(!pass_is_valid(key, "cpt_pub_b", &p, 1_000));
        let other = Keys::derive(ServerKey::from_bytes(&[8; 32]));
        assert!(!pass_is_valid(other.test_form(), "cpt_pub_a", &p, 1_000));
        // A later expiry with the old tag, or one too far ahead, is refused.
        let (_, tag) = p.split_once('.').unwrap_or_default();
        let moved = format!("{}.{tag}", 2_000 + PASS_TTL_MS);
        assert!(!pass_is_valid(key, "cpt_pub_a", &moved, 1_000));
        let far = pass(key, "cpt_pub_a", 1_000 + PASS_TTL_MS);
        assert!(!pass_is_valid(key, "cpt_pub_a", &far, 1_000));
        for junk in ["", ".", "x.y", "1.zz", &format!("{}.", 5_000)] {
            assert!(!pass_is_valid(key, "cpt_pub_a", junk, 1_000));
        }
    }
}

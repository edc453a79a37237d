//! `POST /v1/siteverify` and its aliases (SPEC §2): every code, always HTTP 200.

use serde_json::json;

use crate::helpers::{site_input, spawn_app};

fn codes(answer: &crate::helpers::Answer) -> serde_json::Value {
    assert_eq!(answer.status, 200, "siteverify always answers 200");
    answer.json["error-codes"].clone()
}

#[actix_web::test]
async fn a_token_verifies_once_then_is_timeout_or_duplicate() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let token = app.solve_token(site.site_key.as_str()).await;

    let first = app.siteverify(&site.secret, &token).await;
    let second = app.siteverify(&site.secret, &token).await;

    assert_eq!(
        first.json,
        json!({"success": true, "error-codes": [],
               "platform": {"game_id": null, "score": null, "duration_ms": null}})
    );
    assert_eq!(second.json["success"], false);
    assert_eq!(codes(&second), json!(["timeout-or-duplicate"]));
    assert!(second.json["platform"].is_object());
}

#[actix_web::test]
async fn form_encoded_requests_and_every_alias_work() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));

    for path in ["/v1/siteverify", "/siteverify", "/api/v1/siteverify"] {
        let token = app.solve_token(site.site_key.as_str()).await;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("secret", &site.secret)
            .append_pair("response", &token)
            .finish();
        let answer = app
            .post_raw(path, "application/x-www-form-urlencoded", body.into_bytes())
            .await;
        assert_eq!(answer.json["success"], true, "{path}: {}", answer.json);
    }
}

#[actix_web::test]
async fn missing_and_invalid_inputs_each_have_their_code() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let token = app.solve_token(site.site_key.as_str()).await;

    let cases = [
        (json!({"response": token}), "missing-input-secret"),
        (
            json!({"secret": "", "response": token}),
            "missing-input-secret",
        ),
        (
            json!({"secret": "cpt_sec_not-a-real-secret", "response": token}),
            "invalid-input-secret",
        ),
        (json!({"secret": site.secret}), "missing-input-response"),
        (
            json!({"secret": site.secret, "response": "garbage"}),
            "invalid-input-response",
        ),
    ];
    for (body, code) in cases {
        let answer = app.post_json("/v1/siteverify", &body, None).await;
        assert_eq!(answer.json["success"], false, "{body}");
        assert_eq!(codes(&answer), json!([code]), "{body}");
        // A site backend's call, not a browser's: no CORS headers, and never cached.
        for header in ["vary", "access-control-allow-origin"] {
            assert!(answer.headers.get(header).is_none(), "{header} on {body}");
        }
        assert_eq!(answer.headers.get("cache-control").unwrap(), "no-store");
    }
    // None of those consumed the token.
    assert_eq!(
        app.siteverify(&site.secret, &token).await.json["success"],
        true
    );
}

#[actix_web::test]
async fn a_token_with_any_byte_changed_is_invalid_input_response() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let token = app.solve_token(site.site_key.as_str()).await;

    for i in (0..token.len()).step_by(11) {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        let answer = app.siteverify(&site.secret, &changed).await;
        assert_eq!(
            codes(&answer),
            json!(["invalid-input-response"]),
            "position {i}"
        );
    }
}

#[actix_web::test]
async fn another_sites_secret_is_site_mismatch_and_does_not_burn_the_token() {
    let app = spawn_app().await;
    let a = app.create_site(&site_input("A"));
    let b = app.create_site(&site_input("B"));
    let token = app.solve_token(a.site_key.as_str()).await;

    let wrong = app.siteverify(&b.secret, &token).await;
    let right = app.siteverify(&a.secret, &token).await;

    assert_eq!(codes(&wrong), json!(["site-mismatch"]));
    assert_eq!(right.json["success"], true);
}

#[actix_web::test]
async fn an_expired_token_is_timeout_or_duplicate() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let token = app.solve_token(site.site_key.as_str()).await;

    app.clock.advance_ms(10 * 60 * 1000 - 1);
    let just_in_time = app.solve_token(site.site_key.as_str()).await;
    let still_valid = app.siteverify(&site.secret, &just_in_time).await;
    app.clock.advance_ms(1);
    let expired = app.siteverify(&site.secret, &token).await;

    assert_eq!(still_valid.json["success"], true);
    assert_eq!(codes(&expired), json!(["timeout-or-duplicate"]));
}

#[actix_web::test]
async fn a_rotated_server_key_invalidates_old_tokens_but_a_restart_keeps_the_stored_key() {
    use caputchin_forwarder::captcha::token;
    use caputchin_forwarder::config::Settings;
    use caputchin_forwarder::services::{Dependencies, Services};

    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let issued = app.solve_token(site.site_key.as_str()).await;

    let restarted = Settings::defaults_with_database(&app.db_path);
    let state =
        tokio::task::spawn_blocking(move || Services::open(restarted, Dependencies::default()))
            .await
            .unwrap()
            .unwrap();
    let mut configured = Settings::defaults_with_database(&app.db_path);
    configured.server_key = Some(vec![42u8; 32]);
    let other =
        tokio::task::spawn_blocking(move || Services::open(configured, Dependencies::default()))
            .await
            .unwrap()
            .unwrap();

    assert!(token::decode(state.issuer.key(), &issued).is_ok());
    assert_eq!(
        token::decode(other.issuer.key(), &issued),
        Err(token::TokenError::BadSignature)
    );
}

#[actix_web::test]
async fn malformed_oversized_and_foreign_bodies_are_bad_request_with_200() {
    let app = spawn_app().await;

    let cases = [
        ("application/json", b"{\"secret\":".to_vec()),
        ("application/json", b"[\"secret\"]".to_vec()),
        (
            "application/json",
            b"{\"secret\":5,\"response\":\"x\"}".to_vec(),
        ),
        ("text/plain", b"secret=a&response=b".to_vec()),
        ("application/json", vec![b' '; 17 * 1024]),
    ];
    for (content_type, body) in cases {
        let answer = app.post_raw("/v1/siteverify", content_type, body).await;
        assert_eq!(answer.json["success"], false);
        assert_eq!(codes(&answer), json!(["bad-request"]), "{content_type}");
    }
}

#[actix_web::test]
async fn a_token_consumed_by_siteverify_is_spent_in_the_database() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let token = app.solve_token(site.site_key.as_str()).await;

    app.siteverify(&site.secret, &token).await;

    assert_eq!(app.db_count("SELECT COUNT(*) FROM redeemed_tokens"), 1);
}

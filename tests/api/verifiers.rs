//! Remote verifiers (SPEC §8): each provider's request shape, each verdict through
//! `/f/{site_key}`, token fields stripped, outages failing closed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, site_input, spawn_app_with};
use crate::receiver::{Behavior, Receiver};

const SECRET: &str = "0x4AAAAAAAprovider-secret";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.delivery_timeout = Duration::from_millis(600);
    })
    .await
}

/// A site verified by `kind` at the stub; returns its key.
fn remote_site(app: &TestApp, kind: &str, stub: &Receiver, origins: &[&str]) -> String {
    let sealer = app.state.keys.sealer();
    let mut input = site_input(kind);
    input.webhook_url = app.receiver.url();
    input.verifier = Some(kind.into());
    input.verifier_secret = Some(sealer.seal(SECRET));
    input.verifier_url = Some(format!("http://127.0.0.1:{}/siteverify", stub.port));
    input.verifier_sitekey = Some("10000000-ffff-ffff-ffff-000000000001".into());
    input.allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
    app.create_site(&input).site_key.as_str().to_owned()
}

fn answer(stub: &Receiver, body: Value) {
    stub.set(Behavior {
        body: body.to_string(),
        ..Behavior::default()
    });
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[actix_web::test]
async fn each_provider_gets_its_request_shape_and_only_accepted_posts_are_forwarded() {
    let app = app().await;
    let cases = [
        ("caputchin", "caputchin-token"),
        ("turnstile", "cf-turnstile-response"),
        ("hcaptcha", "h-captcha-response"),
        ("recaptcha", "g-recaptcha-response"),
    ];
    for (i, (kind, field)) in cases.into_iter().enumerate() {
        let stub = Receiver::start();
        answer(
            &stub,
            json!({"success": true, "hostname": "www.example.com",
                   "platform": {"game_id": "caputchin/games/leaf-memory", "score": 847, "duration_ms": 4200}}),
        );
        let key = remote_site(&app, kind, &stub, &[]);

        let posted = app
            .post_form(
                &key,
                &[
                    ("email", "visitor@example.com"),
                    (field, "provider-token-123"),
                    (
                        "g-recaptcha-response",
                        if kind == "hcaptcha" {
                            "provider-token-123"
                        } else {
                            "other"
                        },
                    ),
                    (
                        "caputchin-token",
                        if kind == "caputchin" {
                            "provider-token-123"
                        } else {
                            "stray"
                        },
                    ),
                    (
                        "cf-turnstile-response",
                        if kind == "turnstile" {
                            "provider-token-123"
                        } else {
                            "stray"
                        },
                    ),
                    (
                        "h-captcha-response",
                        if kind == "hcaptcha" {
                            "provider-token-123"
                        } else {
                            "stray"
                        },
                    ),
                ],
            )
            .await;

        assert_eq!(posted.status, 200, "{kind}: {}", posted.text);
        let calls = stub.requests();
        assert_eq!(calls.len(), 1, "{kind}: one verification call");
        let call = &calls[0];
        if kind == "caputchin" {
            assert_eq!(call.header("content-type"), Some("application/json"));
            assert_eq!(
                call.json(),
                json!({"secret": SECRET, "response": "provider-token-123"})
            );
        } else {
            assert_eq!(
                call.header("content-type"),
                Some("application/x-www-form-urlencoded")
            );
            let pairs = form_pairs(&call.body);
            assert!(
                pairs.contains(&("secret".into(), SECRET.into())),
                "{kind}: {pairs:?}"
            );
            assert!(
                pairs.contains(&("response".into(), "provider-token-123".into())),
                "{kind}"
            );
            let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            match kind {
                "turnstile" => {
                    let key = &pairs
                        .iter()
                        .find(|(k, _)| k == "idempotency_key")
                        .unwrap()
                        .1;
                    assert_eq!(key.len(), 36, "a UUID");
                }
                "hcaptcha" => assert!(names.contains(&"sitekey")),
                _ => assert_eq!(names, ["secret", "response"]),
            }
        }
        let delivered = &app.receiver.requests()[i];
        let envelope = delivered.json();
        assert_eq!(
            envelope["form"],
            json!({"email": "visitor@example.com"}),
            "{kind}: every token field stripped"
        );
        let meta = &envelope["caputchin"];
        assert!(meta["session_id"].as_str().unwrap().starts_with("ses_"));
        if kind == "caputchin" {
            assert_eq!(meta["game_id"], "caputchin/games/leaf-memory");
            assert_eq!(meta["score"], 847);
            assert_eq!(meta["duration_ms"], 4200);
        } else {
            assert!(
                meta["game_id"].is_null()
                    && meta["score"].is_null()
                    && meta["duration_ms"].is_null()
            );
        }
        assert!(
            !delivered
                .body
                .windows(18)
                .any(|w| w == b"provider-token-123")
        );
    }
}

#[actix_web::test]
async fn each_verdict_maps_onto_the_forwarders_codes_and_nothing_is_forwarded() {
    let app = app().await;
    let stub = Receiver::start();
    let key = remote_site(&app, "turnstile", &stub, &[]);
    let cases = [
        (
            json!({"success": false, "error-codes": ["invalid-input-response"]}),
            403,
            "invalid-token",
        ),
        (
            json!({"success": false, "error-codes": ["timeout-or-duplicate"]}),
            403,
            "timeout-or-duplicate",
        ),
        (
            json!({"success": false, "error-codes": ["missing-input-response"]}),
            400,
            "missing-token",
        ),
        (
            json!({"success": false, "error-codes": ["invalid-input-secret"]}),
            503,
            "verifier-unavailable",
        ),
        (
            json!({"success": false, "error-codes": ["internal-error"]}),
            503,
            "verifier-unavailable",
        ),
        (json!({"unexpected": true}), 503, "verifier-unavailable"),
    ];
    for (body, status, code) in cases {
        answer(&stub, body.clone());
        let posted = app
            .post_form_with(
                &key,
                &[("cf-turnstile-response", "tok")],
                &[("Accept", "application/json")],
            )
            .await;
        assert_eq!(posted.status, status, "{body}");
        assert_eq!(posted.json["error"], code, "{body}");
    }
    assert_eq!(app.receiver.connection_count(), 0);
    assert_eq!(
        app.db_count("SELECT SUM(count) FROM rejections WHERE reason = 'verifier-unavailable'"),
        3
    );
}

#[actix_web::test]
async fn a_slow_failing_or_garbled_verifier_fails_closed_within_the_timeout() {
    let app = app().await;
    let stub = Receiver::start();
    let key = remote_site(&app, "hcaptcha", &stub, &[]);
    let outages = [
        Behavior {
            status: 500,
            ..Behavior::default()
        },
        Behavior {
            body: "<html>nope</html>".into(),
            ..Behavior::default()
        },
        Behavior {
            delay: Duration::from_millis(2000),
            body: "{\"success\":true}".into(),
            ..Behavior::default()
        },
    ];
    for outage in outages {
        stub.set(outage.clone());
        let started = std::time::Instant::now();
        let posted = app
            .post_form_with(
                &key,
                &[("h-captcha-response", "tok")],
                &[("Accept", "application/json")],
            )
            .await;
        assert_eq!(posted.status, 503, "{outage:?}");
        assert_eq!(posted.json["error"], "verifier-unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{outage:?}"
        );
    }
    let unreachable = {
        let mut input = site_input("gone");
        input.webhook_url = app.receiver.url();
        input.verifier = Some("recaptcha".into());
        input.verifier_secret = Some(app.state.keys.sealer().seal(SECRET));
        input.verifier_url = Some("http://127.0.0.1:1/siteverify".into());
        app.create_site(&input).site_key.as_str().to_owned()
    };
    let posted = app
        .post_form_with(
            &unreachable,
            &[("g-recaptcha-response", "tok")],
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(posted.json["error"], "verifier-unavailable");
    assert_eq!(
        app.receiver.connection_count(),
        0,
        "an outage never forwards"
    );
}

#[actix_web::test]
async fn a_missing_provider_token_is_refused_without_calling_the_verifier() {
    let app = app().await;
    let stub = Receiver::start();
    let key = remote_site(&app, "recaptcha", &stub, &[]);

    let posted = app
        .post_form_with(
            &key,
            &[
                ("email", "x@example.com"),
                ("caputchin-token", "wrong field"),
            ],
            &[("Accept", "application/json")],
        )
        .await;

    assert_eq!(posted.status, 400);
    assert_eq!(posted.json["error"], "missing-token");
    assert_eq!(stub.connection_count(), 0);
}

#[actix_web::test]
async fn turnstile_hostnames_are_checked_against_the_allowed_origins() {
    let app = app().await;
    let stub = Receiver::start();
    let key = remote_site(&app, "turnstile", &stub, &["https://www.example.com"]);
    let json_accept = [("Accept", "application/json")];

    answer(&stub, json!({"success": true, "hostname": "evil.test"}));
    let wrong = app
        .post_form_with(&key, &[("cf-turnstile-response", "t")], &json_accept)
        .await;
    answer(
        &stub,
        json!({"success": true, "hostname": "www.example.com"}),
    );
    let right = app
        .post_form_with(&key, &[("cf-turnstile-response", "t")], &json_accept)
        .await;

    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.json["error"], "invalid-token");
    assert_eq!(right.status, 200, "{}", right.text);
    assert_eq!(app.receiver.requests().len(), 1);
}

#[actix_web::test]
async fn verifier_secrets_are_stored_encrypted_and_required() {
    let app = app().await;
    let stub = Receiver::start();
    remote_site(&app, "caputchin", &stub, &[]);
    let mut bytes = std::fs::read(&app.db_path).unwrap();
    bytes.extend(std::fs::read(format!("{}-wal", app.db_path.display())).unwrap_or_default());
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));

    let mut input = site_input("no secret");
    input.webhook_url = app.receiver.url();
    input.verifier = Some("turnstile".into());
    let refused =
        caputchin_forwarder::sites::create_site(&app.state.store, crate::helpers::OWNER, &input, 1);
    assert!(matches!(
        refused,
        Err(caputchin_forwarder::sites::SiteError::MissingVerifierSecret)
    ));
    input.verifier = Some("friendcaptcha".into());
    let unknown =
        caputchin_forwarder::sites::create_site(&app.state.store, crate::helpers::OWNER, &input, 1);
    assert!(matches!(
        unknown,
        Err(caputchin_forwarder::sites::SiteError::InvalidVerifier)
    ));
}

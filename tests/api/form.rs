//! `POST /f/{site_key}` (SPEC §3, §4): one correct webhook POST per verified submission, the
//! checks in order with their codes, and truthful answers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::receiver::Behavior;

async fn receiving_site(app: &TestApp) -> (String, String) {
    let site = app.create_receiving_site("Contact");
    (site.site_key.as_str().to_owned(), site.secret)
}

#[actix_web::test]
async fn a_verified_form_arrives_once_with_exactly_the_contracts_headers_and_body() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let token = app.solve_token(&key).await;

    let answer = app
        .post_form(
            &key,
            &[
                ("email", "visitor@example.com"),
                ("caputchin-token", &token),
                ("message", "Hello!"),
            ],
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.text.contains("Thank you"));
    let received = app.receiver.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.request_line, "POST /hook/secret-path HTTP/1.1");
    let mut names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    names.retain(|n| !matches!(*n, "host" | "content-length" | "date"));
    names.sort_unstable();
    assert_eq!(names, ["accept", "content-type", "user-agent"]);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some("Caputchin-Forwarder/0.1")
    );
    assert_eq!(
        request.header("host"),
        Some(format!("127.0.0.1:{}", app.receiver.port).as_str())
    );
    let body = request.json();
    let meta = body["caputchin"].as_object().unwrap();
    let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "site_key",
            "session_id",
            "game_id",
            "score",
            "duration_ms",
            "verified_at"
        ]
    );
    assert_eq!(meta["site_key"], key);
    assert!(meta["session_id"].as_str().unwrap().starts_with("ses_"));
    assert!(meta["game_id"].is_null() && meta["score"].is_null() && meta["duration_ms"].is_null());
    use caputchin_forwarder::clock::Clock as _;
    assert_eq!(meta["verified_at"], json!(app.clock.now_ms()));
    assert_eq!(
        body["form"],
        json!({"email": "visitor@example.com", "message": "Hello!"})
    );
    let form_keys: Vec<&String> = body["form"].as_object().unwrap().keys().collect();
    assert_eq!(form_keys, ["email", "message"]);
    assert_eq!(body.as_object().unwrap().len(), 2);
}

#[actix_web::test]
async fn success_redirects_with_303_when_the_site_has_a_redirect_url() {
    let app = spawn_app().await;
    let mut input = crate::helpers::site_input("Contact");
    input.webhook_url = app.receiver.url();
    input.redirect_url = Some("https://www.example.com/thanks".into());
    let site = app.create_site(&input);
    let token = app.solve_token(site.site_key.as_str()).await;

    let answer = app
        .post_form(
            site.site_key.as_str(),
            &[("a", "1"), ("caputchin-token", &token)],
        )
        .await;

    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.headers.get("location").unwrap(),
        "https://www.example.com/thanks"
    );
    assert_eq!(app.receiver.requests().len(), 1);
}

#[actix_web::test]
async fn repeated_names_are_joined_in_order_and_every_token_is_stripped() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let token = app.solve_token(&key).await;

    let answer = app
        .post_form(
            &key,
            &[
                ("topic", "sales"),
                ("caputchin-token", &token),
                ("name", "Ada"),
                ("topic", "support"),
                ("caputchin-token", "second copy"),
                ("topic", "other, really"),
            ],
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = app.receiver.requests()[0].json();
    assert_eq!(
        body["form"],
        json!({"topic": "sales, support, other, really", "name": "Ada"})
    );
    let keys: Vec<&String> = body["form"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["topic", "name"]);
    assert!(!body.to_string().contains(&token));
}

#[actix_web::test]
async fn a_json_post_gets_a_json_answer_with_the_envelopes_session_id() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let token = app.solve_token(&key).await;

    let answer = app
        .post_json(
            &format!("/f/{key}"),
            &json!({"name": "Ada", "caputchin-token": token, "note": "é ✓"}),
            None,
        )
        .await;

    assert_eq!(answer.status, 200);
    let received = app.receiver.requests()[0].json();
    assert_eq!(answer.json["ok"], true);
    assert_eq!(
        answer.json["session_id"],
        received["caputchin"]["session_id"]
    );
    assert_eq!(received["form"], json!({"name": "Ada", "note": "é ✓"}));
}

#[actix_web::test]
async fn a_multipart_post_with_text_parts_and_an_empty_file_input_is_delivered() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let token = app.solve_token(&key).await;
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"caputchin-token\"\r\n\r\n{token}\r\n\
         --XyZ--\r\n"
    );

    let answer = app
        .post_raw(
            &format!("/f/{key}"),
            "multipart/form-data; boundary=XyZ",
            body.into_bytes(),
        )
        .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        app.receiver.requests()[0].json()["form"],
        json!({"name": "Ada"})
    );
}

#[actix_web::test]
async fn a_file_upload_is_refused_with_415_and_nothing_is_delivered() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let token = app.solve_token(&key).await;
    let body = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"caputchin-token\"\r\n\r\n{token}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 data\r\n\
         --XyZ--\r\n"
    );

    let answer = app
        .post_with(
            &format!("/f/{key}"),
            "multipart/form-data; boundary=XyZ",
            body.into_bytes(),
            &[("Accept", "application/json")],
        )
        .await;

    assert_eq!(answer.status, 415);
    assert_eq!(answer.json["error"], "file-upload-not-supported");
    assert_eq!(app.receiver.connection_count(), 0);
}

/// Posts `fields` (plus a fresh valid token unless `token` is given) and expects `status`/`code`
/// with nothing delivered, in both the HTML and the JSON answer shapes.
async fn expect_refusal(
    app: &TestApp,
    key: &str,
    answer: crate::helpers::Answer,
    status: u16,
    code: &str,
) {
    assert_eq!(answer.status, status, "{code}: {}", answer.text);
    if answer.json.is_object() {
        assert_eq!(answer.json["ok"], false);
        assert_eq!(answer.json["error"], code);
        assert!(
            answer.json["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    } else {
        assert!(answer.text.contains(code), "{code} not on the HTML page");
        assert!(answer.text.contains("<html"));
    }
    let _ = key;
    assert_eq!(
        app.receiver.connection_count(),
        0,
        "{code}: something was delivered"
    );
}

#[actix_web::test]
async fn each_refusal_has_its_code_and_status_and_delivers_nothing() {
    let app = spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.max_fields = 3;
        s.max_body_bytes = 2048;
    })
    .await;
    let (key, _) = receiving_site(&app).await;
    let json = [("Accept", "application/json")];
    let path = format!("/f/{key}");

    let unknown = app
        .post_form("cpt_pub_000000000000000000000000", &[("a", "b")])
        .await;
    expect_refusal(&app, &key, unknown, 404, "unknown-site").await;

    let token = app.solve_token(&key).await;
    let too_big = app
        .post_with(
            &path,
            "application/x-www-form-urlencoded",
            vec![b'a'; 4096],
            &json,
        )
        .await;
    expect_refusal(&app, &key, too_big, 413, "payload-too-large").await;
    let text = app
        .post_with(&path, "text/plain", b"a=b".to_vec(), &json)
        .await;
    expect_refusal(&app, &key, text, 415, "unsupported-content-type").await;
    let no_type = app.post_with(&path, "", b"a=b".to_vec(), &json).await;
    expect_refusal(&app, &key, no_type, 415, "unsupported-content-type").await;
    let bad_utf8 = app
        .post_with(
            &path,
            "application/x-www-form-urlencoded",
            b"a=%ff%fe".to_vec(),
            &json,
        )
        .await;
    expect_refusal(&app, &key, bad_utf8, 400, "malformed-body").await;
    let number = app
        .post_json(&path, &json!({"a": 1, "caputchin-token": token}), None)
        .await;
    expect_refusal(&app, &key, number, 400, "malformed-body").await;
    let broken_json = app
        .post_with(&path, "application/json", b"{\"a\":".to_vec(), &[])
        .await;
    expect_refusal(&app, &key, broken_json, 400, "malformed-body").await;
    let many = app
        .post_form_with(
            &key,
            &[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("caputchin-token", &token),
            ],
            &json,
        )
        .await;
    expect_refusal(&app, &key, many, 422, "too-many-fields").await;
    let long_name = "n".repeat(257);
    let long = app
        .post_form_with(
            &key,
            &[(&long_name, "x"), ("caputchin-token", &token)],
            &json,
        )
        .await;
    expect_refusal(&app, &key, long, 422, "field-name-too-long").await;
    let missing = app.post_form(&key, &[("a", "1")]).await;
    expect_refusal(&app, &key, missing, 400, "missing-token").await;
    let invalid = app
        .post_form_with(&key, &[("caputchin-token", "forged.token")], &json)
        .await;
    expect_refusal(&app, &key, invalid, 403, "invalid-token").await;

    // None of the refusals above consumed the token.
    let ok = app
        .post_form_with(&key, &[("a", "1"), ("caputchin-token", &token)], &json)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(app.receiver.requests().len(), 1);
    let replay = app
        .post_form_with(&key, &[("a", "1"), ("caputchin-token", &token)], &json)
        .await;
    assert_eq!(replay.status, 403);
    assert_eq!(replay.json["error"], "timeout-or-duplicate");
    assert_eq!(app.receiver.requests().len(), 1, "a replay was delivered");

    let rejected: i64 = app.db_count("SELECT SUM(count) FROM rejections");
    assert_eq!(rejected, 11, "every refusal but unknown-site is counted");
    let reasons = app.db_count(
        "SELECT COUNT(*) FROM rejections WHERE reason IN ('payload-too-large','unsupported-content-type','malformed-body','too-many-fields','field-name-too-long','missing-token','invalid-token','timeout-or-duplicate')",
    );
    assert_eq!(reasons, 8);
}

#[actix_web::test]
async fn a_disabled_site_refuses_with_forwarding_disabled_before_anything_else() {
    let app = spawn_app().await;
    let mut input = crate::helpers::site_input("Off");
    input.webhook_url = app.receiver.url();
    input.enabled = false;
    let site = app.create_site(&input);
    let key = site.site_key.as_str();
    let token = app.solve_token(key).await;

    let answer = app
        .post_form_with(
            key,
            &[("caputchin-token", &token)],
            &[("Accept", "application/json")],
        )
        .await;

    expect_refusal(&app, key, answer, 403, "forwarding-disabled").await;
}

#[actix_web::test]
async fn origins_are_checked_by_origin_then_referer_and_absent_is_allowed() {
    let app = spawn_app().await;
    let mut input = crate::helpers::site_input("Restricted");
    input.webhook_url = app.receiver.url();
    input.allowed_origins = vec!["https://www.example.com".into()];
    let site = app.create_site(&input);
    let key = site.site_key.as_str();
    let json = ("Accept", "application/json");

    for headers in [
        vec![json, ("Origin", "https://evil.test")],
        vec![json, ("Referer", "https://evil.test/contact")],
        vec![
            json,
            ("Origin", "https://evil.test"),
            ("Referer", "https://www.example.com/x"),
        ],
    ] {
        let token = app.solve_token(key).await;
        let answer = app
            .post_form_with(key, &[("caputchin-token", &token)], &headers)
            .await;
        assert_eq!(answer.status, 403, "{headers:?}");
        assert_eq!(answer.json["error"], "origin-not-allowed");
    }
    assert_eq!(app.receiver.connection_count(), 0);
    for headers in [
        vec![json, ("Origin", "https://www.example.com")],
        vec![json, ("Referer", "https://www.example.com/contact?x=1")],
        vec![json],
    ] {
        let token = app.solve_token(key).await;
        let answer = app
            .post_form_with(key, &[("caputchin-token", &token)], &headers)
            .await;
        assert_eq!(answer.status, 200, "{headers:?}: {}", answer.text);
    }
    assert_eq!(app.receiver.requests().len(), 3);
}

#[actix_web::test]
async fn the_rate_limit_answers_429_with_retry_after_and_resets_next_minute() {
    let app = spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.rate_limit_per_min = 2;
    })
    .await;
    let (key, _) = receiving_site(&app).await;
    let json = [("Accept", "application/json")];

    for _ in 0..2 {
        let answer = app.post_form_with(&key, &[("a", "1")], &json).await;
        assert_eq!(answer.json["error"], "missing-token");
    }
    let limited = app.post_form_with(&key, &[("a", "1")], &json).await;
    app.clock.advance_ms(60_000);
    let later = app.post_form_with(&key, &[("a", "1")], &json).await;

    assert_eq!(limited.status, 429);
    assert_eq!(limited.json["error"], "rate-limited");
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(later.json["error"], "missing-token");
}

#[actix_web::test]
async fn expired_and_other_sites_tokens_are_refused() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let other = app.create_receiving_site("Other");
    let json = [("Accept", "application/json")];

    let foreign = app.solve_token(other.site_key.as_str()).await;
    let mismatch = app
        .post_form_with(&key, &[("caputchin-token", &foreign)], &json)
        .await;
    let old = app.solve_token(&key).await;
    app.clock.advance_ms(10 * 60 * 1000);
    let expired = app
        .post_form_with(&key, &[("caputchin-token", &old)], &json)
        .await;

    assert_eq!(mismatch.status, 403);
    assert_eq!(mismatch.json["error"], "site-mismatch");
    assert_eq!(expired.status, 403);
    assert_eq!(expired.json["error"], "timeout-or-duplicate");
    assert_eq!(app.receiver.connection_count(), 0);
}

#[actix_web::test]
async fn a_token_is_single_use_across_siteverify_and_forwarding() {
    let app = spawn_app().await;
    let (key, secret) = receiving_site(&app).await;
    let json = [("Accept", "application/json")];

    let verified = app.solve_token(&key).await;
    assert_eq!(
        app.siteverify(&secret, &verified).await.json["success"],
        true
    );
    let forwarded_after = app
        .post_form_with(&key, &[("caputchin-token", &verified)], &json)
        .await;
    let forwarded = app.solve_token(&key).await;
    let ok = app
        .post_form_with(&key, &[("caputchin-token", &forwarded)], &json)
        .await;
    let verified_after = app.siteverify(&secret, &forwarded).await;

    assert_eq!(forwarded_after.json["error"], "timeout-or-duplicate");
    assert_eq!(ok.status, 200);
    assert_eq!(
        verified_after.json["error-codes"],
        json!(["timeout-or-duplicate"])
    );
    assert_eq!(app.receiver.requests().len(), 1);
}

#[actix_web::test]
async fn receiver_failures_answer_502_and_are_recorded_in_their_category() {
    let app = spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.delivery_timeout = Duration::from_millis(400);
    })
    .await;
    let (key, _) = receiving_site(&app).await;
    let cases = [
        (
            Behavior {
                status: 500,
                ..Behavior::default()
            },
            "http-5xx",
        ),
        (
            Behavior {
                status: 404,
                ..Behavior::default()
            },
            "http-4xx",
        ),
        (
            Behavior {
                status: 302,
                extra_headers: vec![("location".into(), "http://127.0.0.1:1/elsewhere".into())],
                ..Behavior::default()
            },
            "redirect",
        ),
        (
            Behavior {
                delay: Duration::from_millis(1500),
                ..Behavior::default()
            },
            "timeout",
        ),
    ];

    for (behavior, category) in cases {
        app.receiver.set(behavior);
        let before = app.receiver.requests().len();
        let token = app.solve_token(&key).await;
        let started = Instant::now();
        let html = app.post_form(&key, &[("caputchin-token", &token)]).await;
        let elapsed = started.elapsed();

        assert_eq!(html.status, 502, "{category}");
        assert!(html.text.contains("delivery-failed"), "{category}");
        assert!(html.text.contains("try again later"), "{category}");
        assert_eq!(
            app.receiver.requests().len(),
            before + 1,
            "{category}: one POST, no retry, no redirect followed"
        );
        assert!(
            elapsed < Duration::from_millis(1400),
            "{category} took {elapsed:?}"
        );
        let recorded = app.db_count(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE outcome = '{category}' AND is_test = 0"
        ));
        assert_eq!(recorded, 1, "{category}");
    }
}

#[actix_web::test]
async fn cors_preflight_and_answers_follow_the_sites_allowed_origins() {
    let app = spawn_app().await;
    let mut input = crate::helpers::site_input("Restricted");
    input.webhook_url = app.receiver.url();
    input.allowed_origins = vec!["https://www.example.com".into()];
    let site = app.create_site(&input);
    let key = site.site_key.as_str();

    let allowed = app
        .preflight(&format!("/f/{key}"), "https://www.example.com")
        .await;
    let refused = app
        .preflight(&format!("/f/{key}"), "https://evil.test")
        .await;
    let token = app.solve_token(key).await;
    let posted = app
        .post_json(
            &format!("/f/{key}"),
            &json!({"caputchin-token": token}),
            Some("https://www.example.com"),
        )
        .await;

    assert_eq!(allowed.status, 204);
    assert_eq!(
        allowed.headers.get("access-control-allow-origin").unwrap(),
        "https://www.example.com"
    );
    assert_eq!(refused.status, 403);
    assert!(refused.headers.get("access-control-allow-origin").is_none());
    assert_eq!(posted.status, 200);
    assert_eq!(
        posted.headers.get("access-control-allow-origin").unwrap(),
        "https://www.example.com"
    );
}

#[actix_web::test]
async fn form_contents_and_webhook_urls_never_reach_the_database() {
    let app = spawn_app().await;
    let (key, _) = receiving_site(&app).await;
    let marker = "MARKER-7f3a9c-do-not-store";
    for _ in 0..3 {
        let token = app.solve_token(&key).await;
        let answer = app
            .post_form(&key, &[("message", marker), ("caputchin-token", &token)])
            .await;
        assert_eq!(answer.status, 200);
    }
    let refused = app.post_form(&key, &[("message", marker)]).await;
    assert_eq!(refused.status, 400);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM deliveries"), 3);

    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", app.db_path.display());
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(marker), "form contents were written to disk");
    assert!(
        text.contains("secret-path"),
        "the site row holds the webhook URL"
    );
    let deliveries_sql: Value =
        json!(app.db_count("SELECT COUNT(*) FROM deliveries WHERE outcome LIKE '%secret-path%'"));
    assert_eq!(deliveries_sql, json!(0));
}

//! The Cap-compatible endpoints (CAP-PROTOCOL §1–§4, SPEC §2).

use serde_json::json;

use crate::helpers::{site_input, spawn_app};

#[actix_web::test]
async fn challenge_has_the_sites_shape_a_real_expiry_and_an_ascii_token() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));

    let issued = app.challenge(site.site_key.as_str(), None).await;

    assert_eq!(issued.status, 200);
    assert_eq!(issued.json["challenge"], json!({"c": 3, "s": 32, "d": 2}));
    let token = issued.json["token"].as_str().unwrap();
    assert!(token.is_ascii() && !token.is_empty());
    use caputchin_forwarder::clock::Clock as _;
    assert_eq!(
        issued.json["expires"].as_i64().unwrap(),
        app.clock.now_ms() + 10 * 60 * 1000
    );
}

#[actix_web::test]
async fn issuing_challenges_writes_nothing_but_their_count_behind_the_answers() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));

    for _ in 0..20 {
        assert_eq!(
            app.challenge(site.site_key.as_str(), None).await.status,
            200
        );
    }

    // No waited-for write on the way: the count is added up in memory (one queued entry per site
    // at most) and written by the batch writer.
    assert!(app.state.store.queue_depth() <= 1);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM spent_challenges"), 0);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM challenge_hourly"), 1);
    assert_eq!(
        app.db_count("SELECT issued * 1000 + solved FROM challenge_hourly"),
        20_000
    );
    assert_eq!(app.db_count("SELECT COUNT(*) FROM deliveries"), 0);
}

#[actix_web::test]
async fn a_solved_challenge_redeems_once_to_a_token_expiring_in_ten_minutes() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;
    let body = json!({"token": token, "solutions": solutions});

    let first = app.redeem(key, &body).await;
    let second = app.redeem(key, &body).await;

    assert_eq!(first.status, 200);
    assert_eq!(first.json["success"], true);
    use caputchin_forwarder::clock::Clock as _;
    assert_eq!(
        first.json["expires"].as_i64().unwrap(),
        app.clock.now_ms() + 10 * 60 * 1000
    );
    assert!(first.json["token"].as_str().unwrap().len() <= 2048);
    assert_eq!(second.json["success"], false);
    assert_eq!(second.json["error"], "Challenge invalid or expired");
    assert!(
        second.json.get("message").is_none(),
        "Cap widgets read `error`"
    );
    assert_eq!(app.db_count("SELECT COUNT(*) FROM spent_challenges"), 1);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM redeemed_tokens"), 0);
}

#[actix_web::test]
async fn a_wrong_attempt_spends_the_challenge() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;
    let mut wrong = solutions.clone();
    wrong[0] += 1;
    // Make sure the altered nonce is really wrong at this low difficulty.
    while caputchin_forwarder::captcha::cap::verify_solutions(
        &token,
        caputchin_forwarder::captcha::cap::ChallengeParams::new(3, 2).unwrap(),
        &wrong,
    ) {
        wrong[0] += 1;
    }

    let bad = app
        .redeem(key, &json!({"token": token, "solutions": wrong}))
        .await;
    let good = app
        .redeem(key, &json!({"token": token, "solutions": solutions}))
        .await;

    assert_eq!(
        bad.json,
        json!({"success": false, "error": "Invalid solution", "code": "invalid-solution"})
    );
    assert_eq!(good.json["success"], false);
    assert_eq!(good.json["code"], "challenge-invalid");
}

#[actix_web::test]
async fn wrong_solution_counts_are_invalid_solutions() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();

    for cut in [2usize, 4] {
        let (token, mut solutions) = app.solved_challenge(key).await;
        solutions.resize(cut, 0);
        let answer = app
            .redeem(key, &json!({"token": token, "solutions": solutions}))
            .await;
        assert_eq!(answer.json["code"], "invalid-solution", "{cut} solutions");
    }
}

#[actix_web::test]
async fn an_expired_challenge_is_refused() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;

    app.clock.advance_ms(10 * 60 * 1000);
    let answer = app
        .redeem(key, &json!({"token": token, "solutions": solutions}))
        .await;

    assert_eq!(answer.status, 403);
    assert_eq!(answer.json["code"], "challenge-invalid");
}

#[actix_web::test]
async fn a_challenge_issued_for_another_site_is_refused() {
    let app = spawn_app().await;
    let a = app.create_site(&site_input("A"));
    let b = app.create_site(&site_input("B"));
    let (token, solutions) = app.solved_challenge(a.site_key.as_str()).await;

    let answer = app
        .redeem(
            b.site_key.as_str(),
            &json!({"token": token, "solutions": solutions}),
        )
        .await;

    assert_eq!(answer.json["code"], "challenge-invalid");
}

#[actix_web::test]
async fn a_challenge_token_with_any_character_changed_is_refused() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;

    for i in (0..token.len()).step_by(7) {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
        let changed = String::from_utf8(bytes).unwrap();
        let answer = app
            .redeem(key, &json!({"token": changed, "solutions": solutions}))
            .await;
        assert_eq!(answer.json["code"], "challenge-invalid", "position {i}");
    }
    let original = app
        .redeem(key, &json!({"token": token, "solutions": solutions}))
        .await;
    assert_eq!(original.json["success"], true);
}

#[actix_web::test]
async fn malformed_redeem_bodies_are_invalid_body_and_do_not_spend_the_challenge() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;
    let path = format!("/v1/cap/{key}/redeem");

    for body in [
        json!({"token": token, "solutions": ["1", "2", "3"]}).to_string(),
        json!({"token": token, "solutions": [-1, 2, 3]}).to_string(),
        json!({"token": token, "solutions": [1.5, 2, 3]}).to_string(),
        json!({"token": token}).to_string(),
        json!({"solutions": solutions}).to_string(),
        "{\"token\":".to_owned(),
        "[]".to_owned(),
    ] {
        let answer = app
            .post_raw(&path, "application/json", body.clone().into_bytes())
            .await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(
            answer.json,
            json!({"success": false, "error": "Invalid body", "code": "bad-request"}),
            "{body}"
        );
    }
    let good = app
        .redeem(key, &json!({"token": token, "solutions": solutions}))
        .await;
    assert_eq!(good.json["success"], true);
}

#[actix_web::test]
async fn an_oversized_redeem_body_is_413_in_the_protocols_shape() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let path = format!("/v1/cap/{}/redeem", site.site_key.as_str());

    let answer = app
        .post_raw(&path, "application/json", vec![b' '; 17 * 1024])
        .await;

    assert_eq!(answer.status, 413);
    assert_eq!(answer.json["success"], false);
    assert_eq!(answer.json["code"], "payload-too-large");
}

#[actix_web::test]
async fn unknown_and_malformed_site_keys_are_404_with_an_error_field() {
    let app = spawn_app().await;

    for key in ["cpt_pub_000000000000000000000000", "nope"] {
        let challenge = app.challenge(key, None).await;
        let redeem = app
            .redeem(key, &json!({"token": "x", "solutions": []}))
            .await;
        for answer in [challenge, redeem] {
            assert_eq!(answer.status, 404);
            assert_eq!(answer.json["error"], "Unknown site key");
            assert_eq!(answer.json["code"], "unknown-site");
        }
    }
}

#[actix_web::test]
async fn game_metadata_sent_to_redeem_reaches_siteverify() {
    let app = spawn_app().await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();
    let (token, solutions) = app.solved_challenge(key).await;

    let redeemed = app
        .redeem(
            key,
            &json!({"token": token, "solutions": solutions,
                    "game_id": "caputchin/games/leaf-memory", "score": 847, "duration_ms": 4200}),
        )
        .await;
    let verdict = app
        .siteverify(&site.secret, redeemed.json["token"].as_str().unwrap())
        .await;

    assert_eq!(
        verdict.json["platform"],
        json!({"game_id": "caputchin/games/leaf-memory", "score": 847, "duration_ms": 4200})
    );
}

mod cors {
    use super::*;
    use crate::helpers::TestApp;

    fn acao(answer: &crate::helpers::Answer) -> Option<String> {
        answer
            .headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    async fn restricted(app: &TestApp) -> String {
        let mut input = site_input("Restricted");
        input.allowed_origins = vec!["https://www.example.com".into()];
        app.create_site(&input).site_key.as_str().to_owned()
    }

    #[actix_web::test]
    async fn any_origin_is_allowed_when_the_site_sets_none() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Open"));
        let key = site.site_key.as_str();

        let pre = app
            .preflight(&format!("/v1/cap/{key}/redeem"), "https://anywhere.test")
            .await;
        let issued = app.challenge(key, Some("https://anywhere.test")).await;

        assert_eq!(pre.status, 204);
        assert_eq!(acao(&pre).as_deref(), Some("*"));
        let methods = pre.headers.get("access-control-allow-methods").unwrap();
        assert!(methods.to_str().unwrap().contains("POST"));
        let headers = pre.headers.get("access-control-allow-headers").unwrap();
        assert!(
            headers
                .to_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("content-type")
        );
        assert_eq!(issued.status, 200);
        assert_eq!(acao(&issued).as_deref(), Some("*"));
    }

    #[actix_web::test]
    async fn an_allowed_origin_is_echoed_on_preflight_and_answers() {
        let app = spawn_app().await;
        let key = restricted(&app).await;

        let pre = app
            .preflight(
                &format!("/v1/cap/{key}/challenge"),
                "https://www.example.com",
            )
            .await;
        let issued = app.challenge(&key, Some("https://www.example.com")).await;

        assert_eq!(pre.status, 204);
        assert_eq!(acao(&pre).as_deref(), Some("https://www.example.com"));
        assert_eq!(issued.status, 200);
        assert_eq!(acao(&issued).as_deref(), Some("https://www.example.com"));
        assert_eq!(issued.headers.get("vary").unwrap(), "Origin");
    }

    #[actix_web::test]
    async fn another_origin_is_refused_on_preflight_and_on_the_endpoints() {
        let app = spawn_app().await;
        let key = restricted(&app).await;

        let pre = app
            .preflight(&format!("/v1/cap/{key}/redeem"), "https://evil.test")
            .await;
        let issued = app.challenge(&key, Some("https://evil.test")).await;
        let redeem = app
            .post_json(
                &format!("/v1/cap/{key}/redeem"),
                &json!({"token": "x", "solutions": []}),
                Some("https://evil.test"),
            )
            .await;

        assert_eq!(pre.status, 403);
        assert_eq!(acao(&pre), None);
        assert_eq!(issued.status, 403);
        assert_eq!(issued.json["code"], "origin-not-allowed");
        assert_eq!(redeem.status, 403);
        assert_eq!(redeem.json["code"], "origin-not-allowed");
    }

    #[actix_web::test]
    async fn requests_without_an_origin_are_not_cross_origin_and_pass() {
        let app = spawn_app().await;
        let key = restricted(&app).await;

        let issued = app.challenge(&key, None).await;

        assert_eq!(issued.status, 200);
        assert_eq!(acao(&issued), None);
    }
}

mod spent_challenges {
    use std::sync::Arc;

    use caputchin_forwarder::captcha::{Issuer, RedeemError, RedeemRequest};
    use serde_json::json;

    use crate::helpers::{TestApp, site_input, spawn_app};

    fn request(token: &str, solutions: &[u64]) -> RedeemRequest {
        RedeemRequest {
            token: token.to_owned(),
            solutions: solutions.to_vec(),
            game_id: None,
            score: None,
            duration_ms: None,
        }
    }

    fn issuer(app: &TestApp, spent_in_memory: usize) -> Issuer {
        Issuer::with_memory(
            app.state.issuer.key().clone(),
            app.state.store.clone(),
            Arc::clone(&app.clock) as _,
            spent_in_memory,
        )
        .unwrap()
    }

    #[actix_web::test]
    async fn a_challenge_spent_before_a_restart_stays_spent_after_it() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();
        let (token, solutions) = app.solved_challenge(key).await;
        let first = app
            .redeem(key, &json!({"token": token, "solutions": solutions}))
            .await;
        assert_eq!(first.json["success"], true);
        // What a graceful shutdown does before exit.
        app.state.store.flush().await.unwrap();

        let restarted = issuer(&app, 16);
        let site = app.state.sites.get(key).unwrap();
        let again = restarted
            .redeem(site.key.as_str(), request(&token, &solutions))
            .await;

        assert!(matches!(again, Err(RedeemError::ChallengeInvalid)));
    }

    #[actix_web::test]
    async fn with_memory_full_the_database_decides_and_each_challenge_still_redeems_once() {
        // All three expire at the same instant (the test clock stands still), so a memory of one
        // forgets a spend each time it takes a new one.
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();
        let small = issuer(&app, 1);
        let site = app.state.sites.get(key).unwrap();
        let mut solved = Vec::new();
        for _ in 0..3 {
            solved.push(app.solved_challenge(key).await);
        }

        for (token, solutions) in &solved {
            let first = small
                .redeem(site.key.as_str(), request(token, solutions))
                .await;
            let second = small
                .redeem(site.key.as_str(), request(token, solutions))
                .await;
            assert!(first.is_ok(), "{first:?}");
            assert!(matches!(second, Err(RedeemError::ChallengeInvalid)));
        }
        // Spends memory decided were queued, the others written before their answer: all count.
        assert_eq!(app.db_count("SELECT COUNT(*) FROM spent_challenges"), 3);
    }
}

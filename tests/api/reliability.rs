//! Reliability under load, races and hostile receivers: one POST per verified submission, never
//! two; the visitor's answer matches the receiver's; every delivery counted once in its category.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caputchin_forwarder::delivery::Outcome;
use futures_util::StreamExt as _;
use serde_json::json;

use crate::helpers::{TestApp, site_input, spawn_app_with};
use crate::receiver::Behavior;

fn loaded_app(timeout_ms: u64) -> impl FnOnce(&mut caputchin_forwarder::config::Settings) {
    move |s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.rate_limit_per_min = 1_000_000;
        s.challenge_rate_limit_per_min = 1_000_000;
        s.redeem_rate_limit_per_min = 1_000_000;
        s.siteverify_rate_limit_per_min = 1_000_000;
        s.delivery_timeout = Duration::from_millis(timeout_ms);
    }
}

fn quick_site(app: &TestApp) -> String {
    let mut input = site_input("Load");
    input.webhook_url = app.receiver.url();
    input.challenge_count = Some(1);
    input.difficulty = Some(1);
    app.create_site(&input).site_key.as_str().to_owned()
}

async fn tokens(app: &TestApp, key: &str, n: usize) -> Vec<String> {
    futures_util::stream::iter(0..n)
        .map(|_| app.solve_token(key))
        .buffer_unordered(32)
        .collect()
        .await
}

/// Submissions in this run: `LOAD_SUBMISSIONS` (the full figure is 10,000), 1,000 by default.
fn submissions() -> usize {
    std::env::var("LOAD_SUBMISSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[actix_web::test]
async fn every_submission_under_load_is_delivered_once_and_counted_in_its_category() {
    let app = spawn_app_with(loaded_app(300)).await;
    let key = quick_site(&app);
    let n = submissions();
    // 10% answer 500, 4% answer after the timeout, the rest 200.
    let plan = |i: usize| -> Behavior {
        if i % 10 == 3 {
            Behavior {
                status: 500,
                ..Behavior::default()
            }
        } else if i % 25 == 7 {
            Behavior {
                delay: Duration::from_millis(700),
                ..Behavior::default()
            }
        } else {
            Behavior::default()
        }
    };
    app.receiver.set_plan(Arc::new(plan));
    let tokens = tokens(&app, &key, n).await;

    let started = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(tokens)
        .map(|token| {
            let app = &app;
            let key = key.clone();
            async move {
                app.post_form_with(
                    &key,
                    &[("n", "1"), ("caputchin-token", &token)],
                    &[("Accept", "application/json")],
                )
                .await
                .status
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let ok = statuses.iter().filter(|s| **s == 200).count();
    let failed = statuses.iter().filter(|s| **s == 502).count();
    assert_eq!(ok + failed, n, "every visitor got 200 or 502: {statuses:?}");
    let received = app.receiver.requests().len();
    assert_eq!(received, n, "exactly one POST per submission");
    let expected_5xx = (0..n).filter(|i| i % 10 == 3).count();
    let expected_timeouts = (0..n).filter(|i| i % 10 != 3 && i % 25 == 7).count();
    let count = |outcome: Outcome| {
        app.db_count(&format!(
            "SELECT COUNT(*) FROM deliveries WHERE outcome = '{}' AND is_test = 0",
            outcome.as_str()
        )) as usize
    };
    assert_eq!(
        count(Outcome::Delivered),
        ok,
        "recorded deliveries = visitor successes"
    );
    assert_eq!(count(Outcome::Http5xx), expected_5xx);
    assert_eq!(count(Outcome::Timeout), expected_timeouts);
    assert_eq!(ok, n - expected_5xx - expected_timeouts);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM deliveries") as usize, n);
    eprintln!(
        "load: {n} submissions at concurrency 64 in {:.1} s ({:.0}/s): {ok} delivered, {expected_5xx} http-5xx, {expected_timeouts} timeout",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

#[actix_web::test]
async fn a_token_raced_by_a_thousand_requests_is_accepted_exactly_once() {
    let app = spawn_app_with(loaded_app(2000)).await;
    let site = {
        let mut input = site_input("Race");
        input.webhook_url = app.receiver.url();
        app.create_site(&input)
    };
    let key = site.site_key.as_str().to_owned();
    let token = app.solve_token(&key).await;

    let outcomes: Vec<bool> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let (app, key, token, secret) = (&app, key.clone(), token.clone(), site.secret.clone());
            async move {
                if i % 2 == 0 {
                    let answer = app
                        .post_json(
                            &format!("/f/{key}"),
                            &json!({"caputchin-token": token}),
                            None,
                        )
                        .await;
                    answer.status == 200
                } else {
                    app.siteverify(&secret, &token).await.json["success"] == true
                }
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;

    let successes = outcomes.iter().filter(|ok| **ok).count();
    assert_eq!(successes, 1, "exactly one request may win the token");
    let delivered = app.receiver.requests().len();
    assert!(delivered <= 1, "{delivered} deliveries");
    assert_eq!(app.db_count("SELECT COUNT(*) FROM redeemed_tokens"), 1);
}

//! The metrics listener (SPEC §9): counters that match what the process did and what the
//! statistics recorded, a valid exposition in both text formats, no secret or address in a
//! label, and `/metrics` only on its own listener.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::process::{Command, Stdio};

use caputchin_forwarder::clock::Clock as _;
use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};
use caputchin_forwarder::metrics::{SITEVERIFY_RESULTS, SUBMISSION_RESULTS};
use caputchin_forwarder::stats::{self, Range, Scope, Stats};
use serde_json::json;

use crate::helpers::{Answer, TestApp, answer, site_input, spawn_app, spawn_app_with};
use crate::receiver::{Behavior, Receiver};

const JSON: [(&str, &str); 1] = [("Accept", "application/json")];

/// A well-formed site key (`cpt_pub_` and 24 hex digits) that no site has.
const UNKNOWN_KEY: &str = "cpt_pub_0123456789abcdef01234567";

/// An app with the metrics listener on an ephemeral loopback port, whose egress exempts
/// loopback so deliveries reach the local receivers.
pub(crate) async fn spawn_app_with_metrics(rate_limit_per_min: u32) -> TestApp {
    spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        s.rate_limit_per_min = rate_limit_per_min;
    })
    .await
}

/// `GET path` on the metrics listener, with an `Accept` header when given.
async fn get_metrics_port(app: &TestApp, path: &str, accept: Option<&str>) -> Answer {
    let port = app.metrics_port.expect("the metrics listener is on");
    let mut req = app.client.get(format!("http://127.0.0.1:{port}{path}"));
    if let Some(accept) = accept {
        req = req.insert_header(("Accept", accept));
    }
    answer(req.send().await.unwrap()).await
}

/// The Prometheus text exposition.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let scraped = get_metrics_port(app, "/metrics", None).await;
    assert_eq!(scraped.status, 200, "{}", scraped.text);
    scraped.text
}

/// One sample line of an exposition.
#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses `name{label="value",…} value` lines (comments skipped; label values unescaped).
pub(crate) fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = line[..name_end].to_owned();
            let mut labels = BTreeMap::new();
            let mut rest = &line[name_end..];
            if let Some(inner) = rest.strip_prefix('{') {
                let mut chars = inner.char_indices();
                let mut key = String::new();
                let mut end = inner.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '}' => {
                            end = i + 1;
                            break;
                        }
                        ',' => {}
                        '=' => {
                            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                            let mut value = String::new();
                            while let Some((_, c)) = chars.next() {
                                match c {
                                    '"' => break,
                                    '\\' => match chars.next().map(|(_, c)| c) {
                                        Some('n') => value.push('\n'),
                                        Some(other) => value.push(other),
                                        None => panic!("dangling escape in {line}"),
                                    },
                                    other => value.push(other),
                                }
                            }
                            labels.insert(std::mem::take(&mut key), value);
                        }
                        other => key.push(other),
                    }
                }
                rest = &inner[end..];
            }
            let value = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("no value in {line}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The value of the one sample with exactly this name and label set.
pub(crate) fn value(all: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let found: Vec<&Sample> = all
        .iter()
        .filter(|s| s.name == name && s.labels == wanted)
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    found[0].value
}

/// What the test did, counted as it did it.
#[derive(Default)]
struct Done {
    submissions: HashMap<&'static str, u64>,
    deliveries: HashMap<(&'static str, &'static str, &'static str), u64>,
    challenges: u64,
    redeems: HashMap<&'static str, u64>,
    siteverify: HashMap<&'static str, u64>,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K) {
    *map.entry(key).or_default() += 1;
}

impl Done {
    fn submission(&mut self, result: &'static str) {
        bump(&mut self.submissions, result);
    }

    fn delivery(&mut self, destination: &'static str, kind: &'static str, outcome: &'static str) {
        bump(&mut self.deliveries, (destination, kind, outcome));
    }

    fn redeem(&mut self, result: &'static str) {
        bump(&mut self.redeems, result);
    }

    fn deliveries_of(&self, destination: &str, kind: &str) -> u64 {
        self.deliveries
            .iter()
            .filter(|((d, k, _), _)| *d == destination && *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Posts one form with a fresh token (challenge, solve, redeem) and counts the token's making.
async fn post_with_fresh_token(app: &TestApp, key: &str, done: &mut Done) -> Answer {
    let token = app.solve_token(key).await;
    done.challenges += 1;
    done.redeem("success");
    app.post_form_with(
        key,
        &[("message", "hi"), ("caputchin-token", &token)],
        &JSON,
    )
    .await
}

/// The statistics of one site over all time, as the dashboard and `site stats` read them.
pub(crate) async fn site_stats(app: &TestApp, site_id: &str) -> Stats {
    let store = app.state.store.clone();
    let site_id = site_id.to_owned();
    let now = app.clock.now_ms();
    actix_web::web::block(move || stats::query(&store, Scope::Site(&site_id), Range::All, now))
        .await
        .unwrap()
        .unwrap()
}

fn rejected(stats: &Stats, reason: &str) -> u64 {
    stats
        .rejected_by_reason
        .iter()
        .find(|(r, _)| r == reason)
        .map_or(0, |(_, n)| *n)
}

fn failures(stats: &Stats, outcome: Outcome) -> u64 {
    stats
        .destinations
        .webhook
        .failures_by_category
        .iter()
        .find(|(o, _)| *o == outcome)
        .map_or(0, |(_, n)| *n)
}

#[actix_web::test]
async fn every_counter_equals_a_known_mix_of_traffic_and_agrees_with_the_site_statistics() {
    const LIMIT: u32 = 5;
    let app = spawn_app_with_metrics(LIMIT).await;
    let failing = Receiver::start();
    failing.set(Behavior {
        status: 500,
        ..Behavior::default()
    });
    let delivering = app.create_receiving_site("Delivers");
    let broken = app.create_site(&{
        let mut input = site_input("Fails");
        input.webhook_url = failing.url();
        input
    });
    let refusing = app.create_receiving_site("Refuses");
    let disabled = app.create_site(&{
        let mut input = site_input("Off");
        input.enabled = false;
        input
    });
    let limited = app.create_receiving_site("Limited");
    let mut done = Done::default();

    // Delivered, and failed with the receiver's 500.
    for _ in 0..3 {
        let ok = post_with_fresh_token(&app, delivering.site_key.as_str(), &mut done).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        done.submission("delivered");
        done.delivery("webhook", "real", "delivered");
    }
    for _ in 0..2 {
        let failed = post_with_fresh_token(&app, broken.site_key.as_str(), &mut done).await;
        assert_eq!(failed.json["error"], "delivery-failed", "{}", failed.text);
        done.submission("delivery-failed");
        done.delivery("webhook", "real", "http-5xx");
    }
    // Refusals of one site: no token, forged tokens, and a token spent by siteverify.
    let key = refusing.site_key.as_str();
    let missing = app.post_form_with(key, &[("a", "1")], &JSON).await;
    assert_eq!(missing.json["error"], "missing-token");
    done.submission("missing-token");
    for _ in 0..2 {
        let forged = app
            .post_form_with(key, &[("caputchin-token", "forged.token")], &JSON)
            .await;
        assert_eq!(forged.json["error"], "invalid-token");
        done.submission("invalid-token");
    }
    let token = app.solve_token(key).await;
    done.challenges += 1;
    done.redeem("success");
    let verified = app.siteverify(&refusing.secret, &token).await;
    assert_eq!(verified.json["success"], true, "{}", verified.json);
    bump(&mut done.siteverify, "success");
    let replayed = app
        .post_form_with(key, &[("caputchin-token", &token)], &JSON)
        .await;
    assert_eq!(replayed.json["error"], "timeout-or-duplicate");
    done.submission("timeout-or-duplicate");
    let reverified = app.siteverify(&refusing.secret, &token).await;
    assert_eq!(
        reverified.json["error-codes"],
        json!(["timeout-or-duplicate"])
    );
    bump(&mut done.siteverify, "timeout-or-duplicate");
    let wrong_secret = app
        .siteverify("cpt_sec_not-the-secret-of-any-site", &token)
        .await;
    assert_eq!(
        wrong_secret.json["error-codes"],
        json!(["invalid-input-secret"])
    );
    bump(&mut done.siteverify, "invalid-input-secret");
    // A disabled site, an unknown key, and a site posted to past the rate limit.
    for _ in 0..2 {
        let off = app
            .post_form_with(disabled.site_key.as_str(), &[("a", "1")], &JSON)
            .await;
        assert_eq!(off.json["error"], "forwarding-disabled");
        done.submission("forwarding-disabled");
        let unknown = app.post_form_with(UNKNOWN_KEY, &[("a", "1")], &JSON).await;
        assert_eq!(unknown.json["error"], "unknown-site");
        done.submission("unknown-site");
    }
    for _ in 0..LIMIT {
        let counted = app
            .post_form_with(limited.site_key.as_str(), &[("a", "1")], &JSON)
            .await;
        assert_eq!(counted.json["error"], "missing-token");
        done.submission("missing-token");
    }
    for _ in 0..2 {
        let over = app
            .post_form_with(limited.site_key.as_str(), &[("a", "1")], &JSON)
            .await;
        assert_eq!(over.status, 429);
        done.submission("rate-limited");
    }
    // Redeems that fail: no solutions, then the challenge again once it is spent.
    let (challenge, solutions) = app.solved_challenge(delivering.site_key.as_str()).await;
    done.challenges += 1;
    let unsolved = app
        .redeem(
            delivering.site_key.as_str(),
            &json!({"token": challenge, "solutions": []}),
        )
        .await;
    assert_eq!(unsolved.json["code"], "invalid-solution");
    done.redeem("failure");
    let spent = app
        .redeem(
            delivering.site_key.as_str(),
            &json!({"token": challenge, "solutions": solutions}),
        )
        .await;
    assert_eq!(spent.json["code"], "challenge-invalid");
    done.redeem("failure");
    // Test deliveries, as the dashboard's button sends them.
    let client = app.state.deliverer.client();
    for (site, outcome) in [
        (&delivering, Outcome::Delivered),
        (&broken, Outcome::Http5xx),
        // The disabled site's hooks.example.com has no answer in the test resolver.
        (&disabled, Outcome::Dns),
    ] {
        let site = app.state.sites.get(site.site_key.as_str()).unwrap();
        let deliveries = caputchin_forwarder::test_delivery::run(&app.state, &client, &site).await;
        let report = deliveries.get(Destination::Webhook).unwrap();
        assert_eq!(report.outcome, outcome, "{}", report.detail);
        done.delivery("webhook", "test", outcome.as_str());
    }
    // Email outcomes, counted as a submission's or a Test delivery's record counts them (these
    // tests run no relay).
    for (kind, kind_name, outcome) in [
        (Kind::Real, "real", Outcome::Delivered),
        (Kind::Real, "real", Outcome::Delivered),
        (Kind::Real, "real", Outcome::Smtp5xx),
        (Kind::Test, "test", Outcome::Auth),
    ] {
        let report = Report::failed(outcome, String::new());
        app.state
            .metrics
            .delivery(Destination::Email, kind, &report);
        done.delivery("email", kind_name, outcome.as_str());
    }
    app.state.store.flush().await.unwrap();

    let text = scrape(&app).await;
    let all = samples(&text);

    for &result in SUBMISSION_RESULTS {
        assert_eq!(
            value(&all, "caputchin_submissions_total", &[("result", result)]),
            done.submissions.get(result).copied().unwrap_or(0) as f64,
            "submissions {result}"
        );
    }
    for destination in Destination::ALL {
        let to = destination.as_str();
        for kind in ["real", "test"] {
            for outcome in destination.outcomes().iter().map(|o| o.as_str()) {
                assert_eq!(
                    value(
                        &all,
                        "caputchin_deliveries_total",
                        &[("destination", to), ("kind", kind), ("outcome", outcome)]
                    ),
                    done.deliveries
                        .get(&(to, kind, outcome))
                        .copied()
                        .unwrap_or(0) as f64,
                    "deliveries {to} {kind} {outcome}"
                );
            }
            let count = value(
                &all,
                "caputchin_delivery_duration_seconds_count",
                &[("destination", to), ("kind", kind)],
            );
            let inf = value(
                &all,
                "caputchin_delivery_duration_seconds_bucket",
                &[("destination", to), ("kind", kind), ("le", "+Inf")],
            );
            let observed = done.deliveries_of(to, kind) as f64;
            assert_eq!(count, observed, "{to} {kind} durations");
            assert_eq!(
                inf, observed,
                "{to} {kind}: the +Inf bucket holds every observation"
            );
        }
    }
    // Each destination has series for its own outcomes only.
    let delivery_series: Vec<(&str, &str)> = all
        .iter()
        .filter(|s| s.name == "caputchin_deliveries_total")
        .map(|s| {
            (
                s.labels["destination"].as_str(),
                s.labels["outcome"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        delivery_series.len(),
        2 * (Outcome::WEBHOOK.len() + Outcome::EMAIL.len())
    );
    assert!(delivery_series.contains(&("email", "smtp-5xx")));
    assert!(!delivery_series.contains(&("email", "http-5xx")));
    assert!(!delivery_series.contains(&("webhook", "smtp-5xx")));
    assert_eq!(
        value(&all, "caputchin_cap_challenges_total", &[]),
        done.challenges as f64
    );
    for result in ["success", "failure"] {
        assert_eq!(
            value(&all, "caputchin_cap_redeems_total", &[("result", result)]),
            done.redeems.get(result).copied().unwrap_or(0) as f64,
            "redeems {result}"
        );
    }
    for &result in SITEVERIFY_RESULTS {
        assert_eq!(
            value(&all, "caputchin_siteverify_total", &[("result", result)]),
            done.siteverify.get(result).copied().unwrap_or(0) as f64,
            "siteverify {result}"
        );
    }
    let sites = [&delivering, &broken, &refusing, &disabled, &limited];
    assert_eq!(value(&all, "caputchin_sites", &[]), sites.len() as f64);
    assert_eq!(value(&all, "caputchin_write_queue_depth", &[]), 0.0);
    assert_eq!(
        value(
            &all,
            "caputchin_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(value(&all, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&all, "process_open_fds", &[]) > 0.0);
    assert!(value(&all, "process_start_time_seconds", &[]) > 1.6e9);
    assert!(value(&all, "process_cpu_seconds_total", &[]) >= 0.0);

    // The statistics each site recorded agree with the counters, for the traffic that only one
    // site had.
    let metric = |result: &str| value(&all, "caputchin_submissions_total", &[("result", result)]);
    let delivery = |kind: &str, outcome: &str| {
        value(
            &all,
            "caputchin_deliveries_total",
            &[
                ("destination", "webhook"),
                ("kind", kind),
                ("outcome", outcome),
            ],
        )
    };
    let of_delivering = site_stats(&app, &delivering.site_id).await;
    assert_eq!(of_delivering.delivered as f64, metric("delivered"));
    assert_eq!(
        of_delivering.delivered as f64,
        delivery("real", "delivered")
    );
    assert_eq!((of_delivering.failed, of_delivering.rejected), (0, 0));
    let of_broken = site_stats(&app, &broken.site_id).await;
    assert_eq!(of_broken.failed as f64, metric("delivery-failed"));
    assert_eq!(
        failures(&of_broken, Outcome::Http5xx) as f64,
        delivery("real", "http-5xx")
    );
    assert_eq!((of_broken.delivered, of_broken.rejected), (0, 0));
    let of_refusing = site_stats(&app, &refusing.site_id).await;
    let of_disabled = site_stats(&app, &disabled.site_id).await;
    let of_limited = site_stats(&app, &limited.site_id).await;
    for reason in ["invalid-token", "timeout-or-duplicate"] {
        assert_eq!(
            rejected(&of_refusing, reason) as f64,
            metric(reason),
            "{reason}"
        );
    }
    assert_eq!(
        rejected(&of_disabled, "forwarding-disabled") as f64,
        metric("forwarding-disabled")
    );
    assert_eq!(
        rejected(&of_limited, "rate-limited") as f64,
        metric("rate-limited")
    );
    assert_eq!(
        (rejected(&of_refusing, "missing-token") + rejected(&of_limited, "missing-token")) as f64,
        metric("missing-token")
    );
    let tests: u64 = [&of_delivering, &of_broken, &of_refusing, &of_disabled]
        .iter()
        .map(|s| s.test_deliveries)
        .sum();
    assert_eq!(
        tests as f64,
        value(
            &all,
            "caputchin_delivery_duration_seconds_count",
            &[("destination", "webhook"), ("kind", "test")]
        )
    );
    assert_eq!(
        (of_delivering.test_deliveries, of_broken.test_deliveries),
        (1, 1)
    );
}

/// Pipes `text` into `promtool check metrics`; its verdict and output.
fn promtool_check(text: &str) -> (bool, String) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool could not be run ({e}): install Debian's `prometheus` package \
             (apt-get install prometheus), which provides /usr/bin/promtool"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[actix_web::test]
async fn the_exposition_passes_promtool_and_openmetrics_is_served_when_asked_for() {
    let app = spawn_app_with_metrics(60).await;
    let site = app.create_receiving_site("Contact");
    let mut done = Done::default();
    let ok = post_with_fresh_token(&app, site.site_key.as_str(), &mut done).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let client = app.state.deliverer.client();
    let loaded = app.state.sites.get(site.site_key.as_str()).unwrap();
    caputchin_forwarder::test_delivery::run(&app.state, &client, &loaded).await;

    let prometheus = get_metrics_port(&app, "/metrics", None).await;
    let openmetrics = get_metrics_port(
        &app,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;

    assert_eq!(prometheus.status, 200);
    let content_type = |a: &Answer| {
        a.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        content_type(&prometheus).starts_with("text/plain; version=0.0.4"),
        "{}",
        content_type(&prometheus)
    );
    assert!(!prometheus.text.contains("# EOF"));
    let (valid, report) = promtool_check(&prometheus.text);
    assert!(
        valid,
        "promtool check metrics:\n{report}\n{}",
        prometheus.text
    );
    assert_eq!(openmetrics.status, 200);
    assert!(
        content_type(&openmetrics).starts_with("application/openmetrics-text"),
        "{}",
        content_type(&openmetrics)
    );
    assert!(
        openmetrics.text.ends_with("# EOF\n"),
        "{}",
        openmetrics.text
    );
    assert!(
        openmetrics
            .text
            .contains("caputchin_submissions_total{result=\"delivered\"} 1"),
        "{}",
        openmetrics.text
    );
}

#[actix_web::test]
async fn no_site_key_secret_webhook_url_or_client_address_appears_in_the_metrics() {
    let app = spawn_app_with_metrics(60).await;
    app.receiver.set_plan(std::sync::Arc::new(|n| Behavior {
        status: if n == 1 { 500 } else { 200 },
        ..Behavior::default()
    }));
    let site = app.create_receiving_site("Contact");
    let key = site.site_key.as_str();
    let mut done = Done::default();
    let delivered = post_with_fresh_token(&app, key, &mut done).await;
    let failed = post_with_fresh_token(&app, key, &mut done).await;
    let token = app.solve_token(key).await;
    app.siteverify(&site.secret, &token).await;
    app.siteverify(&site.secret, &token).await;
    app.post_form_with(UNKNOWN_KEY, &[("a", "1")], &JSON).await;
    app.post_form_with(key, &[("caputchin-token", "forged.token")], &JSON)
        .await;
    let client = app.state.deliverer.client();
    let loaded = app.state.sites.get(key).unwrap();
    caputchin_forwarder::test_delivery::run(&app.state, &client, &loaded).await;
    assert_eq!(delivered.status, 200);
    assert_eq!(failed.status, 502);

    let prometheus = scrape(&app).await;
    let openmetrics = get_metrics_port(&app, "/metrics", Some("application/openmetrics-text"))
        .await
        .text;

    let port = app.receiver.port.to_string();
    for text in [&prometheus, &openmetrics] {
        assert!(
            text.contains("caputchin_submissions_total"),
            "not an exposition: {text}"
        );
        for needle in [
            key,
            UNKNOWN_KEY,
            site.secret.as_str(),
            site.site_id.as_str(),
            token.as_str(),
            "cpt_pub_",
            "cpt_sec_",
            "/hook/secret-path",
            "secret-path",
        ] {
            assert!(!text.contains(needle), "the metrics hold {needle}:\n{text}");
        }
        for sample in samples(text) {
            for (label, value) in &sample.labels {
                for needle in ["127.0.0.1", port.as_str(), "://", "/"] {
                    assert!(
                        !value.contains(needle),
                        "{}{{{label}={value:?}}} holds {needle}",
                        sample.name
                    );
                }
            }
        }
    }
}

#[actix_web::test]
async fn metrics_are_served_only_on_their_own_listener_and_only_at_slash_metrics() {
    let app = spawn_app_with_metrics(60).await;

    let public = answer(app.client.get(app.url("/metrics")).send().await.unwrap()).await;
    let health = get_metrics_port(&app, "/healthz", None).await;
    let form = get_metrics_port(&app, "/f/x", None).await;
    let nested = get_metrics_port(&app, "/metrics/extra", None).await;
    let served = get_metrics_port(&app, "/metrics", None).await;

    assert_eq!(public.status, 404, "{}", public.text);
    assert!(!public.text.contains("caputchin_"));
    assert_ne!(
        app.metrics_port.map(|p| format!("http://127.0.0.1:{p}")),
        Some(app.address.clone()),
        "the metrics listener is a second port"
    );
    for (path, answered) in [
        ("/healthz", &health),
        ("/f/x", &form),
        ("/metrics/extra", &nested),
    ] {
        assert_eq!(answered.status, 404, "{path}: {}", answered.text);
        assert!(!answered.text.contains("caputchin_"), "{path}");
    }
    assert_eq!(served.status, 200);
    assert!(served.text.contains("caputchin_build_info"));
}

#[actix_web::test]
async fn without_a_metrics_bind_no_metrics_listener_is_opened() {
    let app = spawn_app().await;

    let public = answer(app.client.get(app.url("/metrics")).send().await.unwrap()).await;

    assert_eq!(app.state.settings.metrics_bind, None);
    assert_eq!(app.metrics_port, None);
    assert_eq!(public.status, 404);
}

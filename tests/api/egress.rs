//! Egress safety (SPEC §5) and Test delivery (SPEC §6): blocked destinations are refused without
//! connecting, names are resolved once and only vetted addresses are contacted.

use caputchin_forwarder::delivery::{Destination, Outcome, Report};
use caputchin_forwarder::sites::SiteInput;
use serde_json::json;

use crate::helpers::{TestApp, site_input, spawn_app, spawn_app_with};

fn site_for(
    app: &TestApp,
    webhook: &str,
    enabled: bool,
) -> std::sync::Arc<caputchin_forwarder::sites::Site> {
    let input = SiteInput {
        webhook_url: webhook.into(),
        enabled,
        ..site_input("Egress")
    };
    let created = app.create_site(&input);
    app.state.sites.get(created.site_key.as_str()).unwrap()
}

async fn test_delivery(app: &TestApp, webhook: &str) -> Report {
    let site = site_for(app, webhook, true);
    webhook_report(app, &site).await
}

/// Runs Test delivery for a webhook-only site and returns the webhook's report.
async fn webhook_report(app: &TestApp, site: &caputchin_forwarder::sites::Site) -> Report {
    let client = app.state.deliverer.client();
    let deliveries = caputchin_forwarder::test_delivery::run(&app.state, &client, site).await;
    assert_eq!(
        deliveries.iter().count(),
        1,
        "a webhook-only site has one destination"
    );
    deliveries
        .get(Destination::Webhook)
        .cloned()
        .expect("the webhook was tried")
}

#[actix_web::test]
async fn every_spelling_of_a_blocked_literal_is_refused_without_connecting() {
    let app = spawn_app_with(|_| {}).await;
    let port = app.receiver.port;

    for host in [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "127.1",
        "0x7f000001",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "127.0.0.1.",
    ] {
        let report = test_delivery(&app, &app.receiver.url_with_host(host)).await;
        assert_eq!(report.outcome, Outcome::BlockedDestination, "{host}");
        assert!(report.detail.contains("is in"), "{host}: {}", report.detail);
        assert!(report.connected_to.is_none());
    }
    assert_eq!(
        app.receiver.connection_count(),
        0,
        "a blocked address was contacted on port {port}"
    );
    assert_eq!(
        app.resolver.lookup_count(),
        0,
        "literals are never looked up"
    );
}

#[actix_web::test]
async fn a_form_post_to_a_blocked_webhook_fails_as_blocked_destination() {
    let app = spawn_app_with(|_| {}).await;
    let site = app.create_receiving_site("Blocked");
    let key = site.site_key.as_str();
    let token = app.solve_token(key).await;

    let answer = app
        .post_form_with(
            key,
            &[("caputchin-token", &token)],
            &[("Accept", "application/json")],
        )
        .await;

    assert_eq!(answer.status, 502);
    assert_eq!(answer.json["error"], "delivery-failed");
    assert_eq!(app.receiver.connection_count(), 0);
    assert_eq!(
        app.db_count("SELECT COUNT(*) FROM deliveries WHERE outcome = 'blocked-destination'"),
        1
    );
}

#[actix_web::test]
async fn a_name_answering_an_allowed_and_a_private_address_is_refused_without_connecting() {
    let app = spawn_app_with(|s| s.egress_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.resolver
        .answer("hooks.test", &[&["127.0.0.1", "10.0.0.1"]]);

    let report = test_delivery(&app, &app.receiver.url_with_host("hooks.test")).await;

    assert_eq!(report.outcome, Outcome::BlockedDestination);
    assert!(
        report.detail.contains("10.0.0.1 is in 10.0.0.0/8"),
        "{}",
        report.detail
    );
    assert_eq!(report.resolved.len(), 2);
    assert_eq!(app.receiver.connection_count(), 0);
    assert_eq!(app.resolver.lookup_count(), 1);
}

#[actix_web::test]
async fn a_name_is_resolved_once_and_only_its_vetted_address_is_contacted() {
    let app = spawn_app_with(|s| s.egress_allow = vec!["127.0.0.1/32".parse().unwrap()]).await;
    // The second answer rebinds the name to a private address.
    app.resolver
        .answer("hooks.test", &[&["127.0.0.1"], &["10.0.0.1"]]);
    let url = app.receiver.url_with_host("hooks.test");
    let site = site_for(&app, &url, true);

    let first = webhook_report(&app, &site).await;
    let lookups_after_first = app.resolver.lookup_count();
    let second = webhook_report(&app, &site).await;

    assert_eq!(first.outcome, Outcome::Delivered, "{}", first.detail);
    assert_eq!(lookups_after_first, 1, "one lookup per delivery");
    assert_eq!(first.connected_to.unwrap().ip().to_string(), "127.0.0.1");
    let received = app.receiver.requests();
    assert_eq!(
        received[0].header("host"),
        Some(format!("hooks.test:{}", app.receiver.port).as_str())
    );
    assert_eq!(second.outcome, Outcome::BlockedDestination);
    assert_eq!(app.resolver.lookup_count(), 2);
    assert_eq!(app.receiver.connection_count(), 1);
}

#[actix_web::test]
async fn unresolvable_names_and_refused_connections_have_their_categories() {
    let app = spawn_app().await;

    let dns = test_delivery(&app, "http://nowhere.test/hook").await;
    let refused = test_delivery(&app, "http://127.0.0.1:1/hook").await;

    assert_eq!(dns.outcome, Outcome::Dns);
    assert!(dns.detail.contains("nowhere.test"), "{}", dns.detail);
    assert_eq!(refused.outcome, Outcome::Connect);
    assert!(refused.http_status.is_none());
}

#[actix_web::test]
async fn a_test_delivery_sends_the_marked_envelope_even_when_forwarding_is_disabled() {
    let app = spawn_app().await;
    let site = site_for(&app, &app.receiver.url(), false);

    let report = webhook_report(&app, &site).await;

    assert_eq!(report.outcome, Outcome::Delivered);
    assert_eq!(report.http_status, Some(200));
    assert_eq!(report.response_body.as_deref(), Some("{\"received\":true}"));
    assert_eq!(
        report.resolved,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let request = &app.receiver.requests()[0];
    let mut names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
    names.retain(|n| !matches!(*n, "host" | "content-length" | "date"));
    names.sort_unstable();
    assert_eq!(
        names,
        ["accept", "content-type", "user-agent", "x-caputchin-test"]
    );
    assert_eq!(request.header("x-caputchin-test"), Some("1"));
    let body = request.json();
    assert_eq!(body["caputchin"]["test"], true);
    assert!(
        body["caputchin"]["session_id"]
            .as_str()
            .unwrap()
            .starts_with("test_")
    );
    assert_eq!(
        body["form"],
        json!({"email": "test@example.com", "message": "Test delivery"})
    );
    assert_eq!(
        app.db_count("SELECT COUNT(*) FROM deliveries WHERE is_test = 1 AND outcome = 'delivered'"),
        1
    );
}

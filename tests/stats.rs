//! Statistics (SPEC §6): deliveries and rejections recorded through the public recording
//! functions, then read back through `stats::query` for every range and scope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use caputchin_forwarder::accounts::create_account;
use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};
use caputchin_forwarder::sites::{SiteInput, create_site};
use caputchin_forwarder::stats::{self, Range, Scope, Stats};
use caputchin_forwarder::store::migrations::MIGRATIONS;
use caputchin_forwarder::store::{Store, StoreError};
use caputchin_forwarder::web::dashboard::chart::chart_svg;
use rusqlite::{Connection, params};
use serde_json::Value;

const HOUR: i64 = 60 * 60 * 1000;
const DAY: i64 = 24 * HOUR;
/// 2024-06-15 00:00:00 UTC.
const TODAY: i64 = 1_718_409_600_000;
/// 2024-06-15 12:30:00 UTC.
const NOW: i64 = TODAY + 12 * HOUR + 30 * 60 * 1000;
const PASSWORD: &str = "correct horse battery";

struct Db {
    store: Store,
    _dir: tempfile::TempDir,
}

fn open_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("stats.db")).unwrap();
    Db { store, _dir: dir }
}

fn add_account(db: &Db, email: &str) -> i64 {
    create_account(&db.store, email, PASSWORD, NOW).unwrap()
}

fn add_site(db: &Db, email: &str, name: &str) -> String {
    let input = SiteInput {
        name: name.into(),
        webhook_url: "https://hooks.example.com/in".into(),
        enabled: true,
        ..SiteInput::default()
    };
    create_site(&db.store, email, &input, NOW).unwrap().site_id
}

/// One account with one site.
fn one_site() -> (Db, i64, String) {
    let db = open_db();
    let account = add_account(&db, "owner@example.com");
    let site = add_site(&db, "owner@example.com", "Main site");
    (db, account, site)
}

fn report(outcome: Outcome, latency_ms: u64) -> Report {
    let http_status = match outcome {
        Outcome::Delivered => Some(200),
        Outcome::Http4xx => Some(404),
        Outcome::Http5xx => Some(503),
        Outcome::Redirect => Some(302),
        _ => None,
    };
    Report {
        outcome,
        http_status,
        latency_ms,
        resolved: Vec::new(),
        connected_to: None,
        response_body: None,
        smtp_code: None,
        smtp_reply: None,
        detail: String::new(),
    }
}

async fn deliver_to(
    db: &Db,
    site: &str,
    destination: Destination,
    kind: Kind,
    at_ms: i64,
    outcome: Outcome,
    latency_ms: u64,
) {
    stats::record_delivery(
        &db.store,
        site,
        at_ms,
        destination,
        kind,
        &report(outcome, latency_ms),
    )
    .await
    .unwrap();
}

async fn deliver(db: &Db, site: &str, at_ms: i64, outcome: Outcome, latency_ms: u64) {
    let webhook = Destination::Webhook;
    deliver_to(db, site, webhook, Kind::Real, at_ms, outcome, latency_ms).await;
}

async fn deliver_test(db: &Db, site: &str, at_ms: i64, outcome: Outcome, latency_ms: u64) {
    let webhook = Destination::Webhook;
    deliver_to(db, site, webhook, Kind::Test, at_ms, outcome, latency_ms).await;
}

async fn reject(db: &Db, site: &str, at_ms: i64, reason: &'static str) {
    stats::record_rejection(&db.store, site, at_ms, reason);
    db.store.flush().await.unwrap();
}

fn site_stats(db: &Db, site: &str, range: Range) -> Stats {
    stats::query(&db.store, Scope::Site(site), range, NOW).unwrap()
}

/// The webhook's failures by category.
fn failures(s: &Stats) -> Vec<(&'static str, u64)> {
    failures_of(s, Destination::Webhook)
}

fn failures_of(s: &Stats, destination: Destination) -> Vec<(&'static str, u64)> {
    s.destinations
        .get(destination)
        .failures_by_category
        .iter()
        .map(|&(o, n)| (o.as_str(), n))
        .collect()
}

fn failures_with(nonzero: &[(&'static str, u64)]) -> Vec<(&'static str, u64)> {
    Outcome::WEBHOOK[1..]
        .iter()
        .map(|o| {
            let n = nonzero
                .iter()
                .find(|(name, _)| *name == o.as_str())
                .map_or(0, |&(_, n)| n);
            (o.as_str(), n)
        })
        .collect()
}

#[test]
fn range_names_labels_and_bounds_are_utc_days() {
    let names: Vec<&str> = Range::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["today", "yesterday", "7d", "28d", "all"]);
    let labels: Vec<&str> = Range::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        ["Today", "Yesterday", "7 days", "28 days", "All time"]
    );
    for range in Range::ALL {
        assert_eq!(Range::parse(range.as_str()), Some(range));
    }
    assert_eq!(Range::parse("week"), None);
    assert_eq!(Range::parse("Today"), None);

    let tomorrow = TODAY + DAY;
    assert_eq!(Range::Today.bounds(NOW, None), (TODAY, tomorrow));
    assert_eq!(Range::Today.bounds(TODAY, None), (TODAY, tomorrow));
    assert_eq!(Range::Today.bounds(tomorrow - 1, None), (TODAY, tomorrow));
    assert_eq!(Range::Yesterday.bounds(NOW, None), (TODAY - DAY, TODAY));
    assert_eq!(Range::Days7.bounds(NOW, None), (TODAY - 6 * DAY, tomorrow));
    assert_eq!(
        Range::Days28.bounds(NOW, None),
        (TODAY - 27 * DAY, tomorrow)
    );
    assert_eq!(Range::All.bounds(NOW, None), (TODAY, tomorrow));
    assert_eq!(
        Range::All.bounds(NOW, Some(TODAY - 40 * DAY + 5 * HOUR)),
        (TODAY - 40 * DAY, tomorrow)
    );
    assert_eq!(
        Range::All.bounds(NOW, Some(NOW + 3 * DAY)),
        (TODAY, tomorrow)
    );
}

#[tokio::test]
async fn tiles_count_real_deliveries_and_keep_test_deliveries_apart() {
    let (db, _, site) = one_site();
    for (i, latency) in [10, 20, 30, 40, 50, 60].into_iter().enumerate() {
        deliver(
            &db,
            &site,
            TODAY + i as i64 * HOUR,
            Outcome::Delivered,
            latency,
        )
        .await;
    }
    deliver(&db, &site, TODAY + HOUR, Outcome::Http5xx, 70).await;
    deliver(&db, &site, TODAY + 2 * HOUR, Outcome::Http5xx, 80).await;
    deliver(&db, &site, TODAY + 3 * HOUR, Outcome::Timeout, 90).await;
    deliver_test(&db, &site, TODAY + 4 * HOUR, Outcome::Delivered, 1).await;
    deliver_test(&db, &site, TODAY + 5 * HOUR, Outcome::Dns, 99).await;

    let s = site_stats(&db, &site, Range::Today);

    assert_eq!(s.range, Range::Today);
    assert_eq!((s.start_ms, s.end_ms), (TODAY, TODAY + DAY));
    assert_eq!(s.delivered, 6);
    assert_eq!(s.failed, 3);
    assert_eq!(s.success_rate, Some(6.0 / 9.0));
    // Nine real samples 10, 20, …, 90: rank ceil(4.5) = 5 and ceil(8.55) = 9. The tests' 1 ms
    // and 99 ms stay out.
    assert_eq!(s.p50_ms, Some(50));
    assert_eq!(s.p95_ms, Some(90));
    assert_eq!(s.test_deliveries, 2);
    assert_eq!(
        failures(&s),
        failures_with(&[("http-5xx", 2), ("timeout", 1)])
    );
    assert_eq!(s.rejected, 0);
    assert!(s.rejected_by_reason.is_empty());
    let series_total: u64 = s.series.iter().map(|p| p.delivered + p.failed).sum();
    assert_eq!(series_total, 9);
}

#[tokio::test]
async fn failures_by_category_list_all_eight_in_order_with_zeros() {
    let (db, _, site) = one_site();
    let failing = &Outcome::WEBHOOK[1..];
    for (i, &outcome) in failing.iter().enumerate() {
        for _ in 0..=i {
            deliver(&db, &site, NOW - 1000, outcome, 5).await;
        }
    }

    let s = site_stats(&db, &site, Range::Today);
    let empty = site_stats(&db, &site, Range::Yesterday);

    let expected: Vec<(&str, u64)> = failing
        .iter()
        .enumerate()
        .map(|(i, o)| (o.as_str(), i as u64 + 1))
        .collect();
    assert_eq!(failures(&s), expected);
    assert_eq!(s.failed, 36);
    assert_eq!(s.delivered, 0);
    assert_eq!(s.success_rate, Some(0.0));
    assert_eq!(failures(&empty), failures_with(&[]));
    assert_eq!(empty.success_rate, None);
    assert_eq!((empty.p50_ms, empty.p95_ms), (None, None));
}

#[tokio::test]
async fn percentiles_are_nearest_rank_over_every_real_delivery_of_the_range() {
    let (db, _, site) = one_site();
    // Latencies 1..=20 over three days of the 7-day range, failed ones included.
    for latency in 1..=20u64 {
        let day = (latency % 3) as i64;
        let outcome = if latency % 4 == 0 {
            Outcome::Connect
        } else {
            Outcome::Delivered
        };
        deliver(&db, &site, TODAY - day * DAY + HOUR, outcome, latency).await;
    }

    let week = site_stats(&db, &site, Range::Days7);
    let today = site_stats(&db, &site, Range::Today);

    // Smallest v with at least 50 % (10 of 20) and 95 % (19 of 20) of samples ≤ v.
    assert_eq!(week.p50_ms, Some(10));
    assert_eq!(week.p95_ms, Some(19));
    // Today holds the multiples of 3: 3, 6, 9, 12, 15, 18 → ranks 3 and 6.
    assert_eq!(today.p50_ms, Some(9));
    assert_eq!(today.p95_ms, Some(18));
}

#[tokio::test]
async fn rejections_are_counted_by_reason_most_first() {
    let (db, _, site) = one_site();
    for _ in 0..3 {
        reject(&db, &site, NOW, "invalid-token").await;
    }
    reject(&db, &site, TODAY, "rate-limited").await;
    reject(&db, &site, TODAY + 5 * HOUR, "missing-token").await;
    reject(&db, &site, TODAY + 6 * HOUR, "missing-token").await;
    reject(&db, &site, TODAY - 1, "origin-not-allowed").await;

    let today = site_stats(&db, &site, Range::Today);
    let yesterday = site_stats(&db, &site, Range::Yesterday);

    assert_eq!(today.rejected, 6);
    assert_eq!(
        today.rejected_by_reason,
        vec![
            ("invalid-token".to_owned(), 3),
            ("missing-token".to_owned(), 2),
            ("rate-limited".to_owned(), 1),
        ]
    );
    assert_eq!(yesterday.rejected, 1);
    assert_eq!(
        yesterday.rejected_by_reason,
        vec![("origin-not-allowed".to_owned(), 1)]
    );
    assert_eq!(today.delivered + today.failed, 0);
}

#[tokio::test]
async fn hourly_series_has_every_hour_and_places_deliveries_in_their_hour() {
    let (db, _, site) = one_site();
    deliver(&db, &site, TODAY, Outcome::Delivered, 5).await;
    deliver(
        &db,
        &site,
        TODAY + 3 * HOUR + 59 * 60 * 1000,
        Outcome::Delivered,
        5,
    )
    .await;
    deliver(&db, &site, TODAY + 3 * HOUR, Outcome::Http4xx, 5).await;
    deliver(&db, &site, TODAY + 23 * HOUR + 1, Outcome::Tls, 5).await;
    deliver_test(&db, &site, TODAY + 7 * HOUR, Outcome::Delivered, 5).await;

    let s = site_stats(&db, &site, Range::Today);

    assert_eq!(s.bucket_ms, HOUR);
    assert_eq!(s.series.len(), 24);
    for (i, point) in s.series.iter().enumerate() {
        assert_eq!(point.start_ms, TODAY + i as i64 * HOUR);
        let expected = match i {
            0 => (1, 0),
            3 => (1, 1),
            23 => (0, 1),
            _ => (0, 0),
        };
        assert_eq!((point.delivered, point.failed), expected, "hour {i}");
    }
}

#[tokio::test]
async fn today_and_yesterday_split_at_utc_midnight() {
    let (db, _, site) = one_site();
    deliver(&db, &site, TODAY - 1, Outcome::Delivered, 40).await;
    deliver(&db, &site, TODAY, Outcome::Redirect, 60).await;
    deliver(&db, &site, TODAY - DAY, Outcome::Delivered, 30).await;
    deliver(&db, &site, TODAY - DAY - 1, Outcome::Delivered, 99).await;

    let today = site_stats(&db, &site, Range::Today);
    let yesterday = site_stats(&db, &site, Range::Yesterday);

    assert_eq!((today.delivered, today.failed), (0, 1));
    assert_eq!((today.p50_ms, today.p95_ms), (Some(60), Some(60)));
    assert_eq!(today.series[0].failed, 1);
    assert_eq!((yesterday.start_ms, yesterday.end_ms), (TODAY - DAY, TODAY));
    assert_eq!((yesterday.delivered, yesterday.failed), (2, 0));
    assert_eq!((yesterday.p50_ms, yesterday.p95_ms), (Some(30), Some(40)));
    assert_eq!(yesterday.bucket_ms, HOUR);
    assert_eq!(yesterday.series.len(), 24);
    assert_eq!(yesterday.series[0].delivered, 1);
    assert_eq!(yesterday.series[23].delivered, 1);
}

#[tokio::test]
async fn seven_and_twenty_eight_days_cover_today_and_the_days_before() {
    let (db, _, site) = one_site();
    deliver(&db, &site, NOW, Outcome::Delivered, 1).await;
    deliver(&db, &site, TODAY - 6 * DAY, Outcome::Delivered, 2).await;
    deliver(&db, &site, TODAY - 6 * DAY - 1, Outcome::Delivered, 3).await;
    deliver(&db, &site, TODAY - 27 * DAY, Outcome::Http5xx, 4).await;
    deliver(&db, &site, TODAY - 27 * DAY - 1, Outcome::Delivered, 5).await;

    let week = site_stats(&db, &site, Range::Days7);
    let month = site_stats(&db, &site, Range::Days28);

    assert_eq!((week.start_ms, week.end_ms), (TODAY - 6 * DAY, TODAY + DAY));
    assert_eq!((week.delivered, week.failed), (2, 0));
    assert_eq!(week.bucket_ms, DAY);
    assert_eq!(week.series.len(), 7);
    let week_days: Vec<u64> = week.series.iter().map(|p| p.delivered).collect();
    assert_eq!(week_days, [1, 0, 0, 0, 0, 0, 1]);

    assert_eq!((month.delivered, month.failed), (3, 1));
    assert_eq!(month.series.len(), 28);
    assert_eq!(month.series[0].start_ms, TODAY - 27 * DAY);
    assert_eq!(month.series[0].failed, 1);
    assert_eq!(month.series[20].delivered, 1);
    assert_eq!(month.series[27].delivered, 1);
    assert_eq!((month.p50_ms, month.p95_ms), (Some(2), Some(4)));
}

#[tokio::test]
async fn all_time_starts_on_the_day_of_the_first_record() {
    let (db, _, site) = one_site();
    reject(&db, &site, TODAY - 40 * DAY + 13 * HOUR, "invalid-token").await;
    deliver(&db, &site, TODAY - 30 * DAY, Outcome::Delivered, 10).await;
    deliver(&db, &site, NOW, Outcome::Delivered, 20).await;

    let all = site_stats(&db, &site, Range::All);

    assert_eq!((all.start_ms, all.end_ms), (TODAY - 40 * DAY, TODAY + DAY));
    assert_eq!(all.bucket_ms, DAY);
    assert_eq!(all.series.len(), 41);
    assert_eq!(all.series[10].delivered, 1);
    assert_eq!(all.series[40].delivered, 1);
    assert_eq!((all.delivered, all.rejected), (2, 1));
    assert_eq!((all.p50_ms, all.p95_ms), (Some(10), Some(20)));
}

#[tokio::test]
async fn all_time_beyond_90_days_uses_weekly_buckets() {
    let (db, _, site) = one_site();
    deliver(&db, &site, TODAY - 100 * DAY, Outcome::Delivered, 10).await;
    deliver(&db, &site, TODAY - 93 * DAY - 1, Outcome::Delivered, 10).await;
    deliver(&db, &site, TODAY - 93 * DAY, Outcome::Dns, 10).await;
    deliver(&db, &site, NOW, Outcome::Delivered, 10).await;

    let all = site_stats(&db, &site, Range::All);

    assert_eq!(all.start_ms, TODAY - 100 * DAY);
    assert_eq!(all.bucket_ms, 7 * DAY);
    // 101 days → 15 weeks, the last one reaching past the end of today.
    assert_eq!(all.series.len(), 15);
    assert_eq!((all.series[0].delivered, all.series[0].failed), (2, 0));
    assert_eq!((all.series[1].delivered, all.series[1].failed), (0, 1));
    assert_eq!(all.series[14].delivered, 1);
    assert_eq!(all.series[14].start_ms, TODAY - 100 * DAY + 98 * DAY);
}

#[tokio::test]
async fn all_time_without_any_record_is_today() {
    let (db, _, site) = one_site();

    let all = site_stats(&db, &site, Range::All);

    assert_eq!((all.start_ms, all.end_ms), (TODAY, TODAY + DAY));
    // A single day is drawn in hours, not as one bar.
    assert_eq!(all.bucket_ms, DAY / 24);
    assert_eq!(all.series.len(), 24);
    assert_eq!(all.series[0].delivered, 0);
    assert!(all.recent.is_empty());
    assert_eq!(all.success_rate, None);
}

#[tokio::test]
async fn latest_deliveries_are_the_newest_20_of_the_range_with_tests_labelled() {
    let (db, _, site) = one_site();
    for i in 0..25i64 {
        deliver(&db, &site, TODAY - 50 * DAY + i, Outcome::Delivered, 7).await;
    }
    deliver(&db, &site, TODAY - 2 * DAY, Outcome::Http4xx, 15).await;
    deliver_test(&db, &site, TODAY - DAY, Outcome::Delivered, 12).await;

    let today = site_stats(&db, &site, Range::Today);
    assert_eq!(today.delivered + today.failed + today.test_deliveries, 0);
    assert!(today.recent.is_empty(), "nothing today");
    let yesterday = site_stats(&db, &site, Range::Yesterday);
    assert_eq!(yesterday.recent.len(), 1);
    assert!(yesterday.recent[0].is_test);

    let s = site_stats(&db, &site, Range::All);
    assert_eq!(s.recent.len(), 20);
    let test = &s.recent[0];
    assert_eq!(test.at_ms, TODAY - DAY);
    assert!(test.is_test);
    assert_eq!(test.outcome, Outcome::Delivered);
    assert_eq!((test.http_status, test.latency_ms), (Some(200), 12));
    assert_eq!(test.site_name, "Main site");
    assert_eq!(test.site_id, site);
    let failed = &s.recent[1];
    assert!(!failed.is_test);
    assert_eq!(
        (failed.outcome, failed.http_status),
        (Outcome::Http4xx, Some(404))
    );
    let times: Vec<i64> = s.recent[2..].iter().map(|d| d.at_ms).collect();
    let expected: Vec<i64> = (7..25).rev().map(|i| TODAY - 50 * DAY + i).collect();
    assert_eq!(times, expected);
}

#[tokio::test]
async fn account_scope_sums_its_sites_and_excludes_other_accounts() {
    let db = open_db();
    let mine = add_account(&db, "owner@example.com");
    let other = add_account(&db, "other@example.com");
    let blog = add_site(&db, "owner@example.com", "Blog");
    let shop = add_site(&db, "owner@example.com", "Shop");
    let theirs = add_site(&db, "other@example.com", "Theirs");
    deliver(&db, &blog, NOW - 3 * HOUR, Outcome::Delivered, 10).await;
    deliver(&db, &blog, NOW - 2 * HOUR, Outcome::Timeout, 30).await;
    deliver(&db, &shop, NOW - HOUR, Outcome::Delivered, 20).await;
    deliver_test(&db, &shop, NOW - 30 * 60 * 1000, Outcome::Delivered, 5).await;
    reject(&db, &shop, NOW, "rate-limited").await;
    deliver(&db, &theirs, NOW, Outcome::Delivered, 90).await;
    deliver(&db, &theirs, NOW, Outcome::Connect, 90).await;
    reject(&db, &theirs, NOW, "invalid-token").await;

    let s = stats::query(&db.store, Scope::Account(mine), Range::Today, NOW).unwrap();
    let others = stats::query(&db.store, Scope::Account(other), Range::Today, NOW).unwrap();

    assert_eq!((s.delivered, s.failed, s.test_deliveries), (2, 1, 1));
    assert_eq!((s.p50_ms, s.p95_ms), (Some(20), Some(30)));
    assert_eq!(s.rejected_by_reason, vec![("rate-limited".to_owned(), 1)]);
    assert_eq!(failures(&s), failures_with(&[("timeout", 1)]));
    let recent: Vec<(&str, bool)> = s
        .recent
        .iter()
        .map(|d| (d.site_name.as_str(), d.is_test))
        .collect();
    assert_eq!(
        recent,
        [
            ("Shop", true),
            ("Shop", false),
            ("Blog", false),
            ("Blog", false)
        ]
    );
    assert_eq!(
        (others.delivered, others.failed, others.rejected),
        (1, 1, 1)
    );
    assert!(others.recent.iter().all(|d| d.site_id == theirs));
}

#[tokio::test]
async fn webhook_and_email_outcomes_of_one_site_are_counted_per_destination() {
    let (db, account, site) = one_site();
    let quiet = add_site(&db, "owner@example.com", "Webhook only");
    let (webhook, email) = (Destination::Webhook, Destination::Email);
    for (destination, hour, outcome) in [
        (webhook, 9, Outcome::Delivered),
        (webhook, 9, Outcome::Delivered),
        (webhook, 10, Outcome::Http5xx),
        (webhook, 10, Outcome::Timeout),
        (email, 9, Outcome::Delivered),
        (email, 11, Outcome::Smtp4xx),
        (email, 11, Outcome::Smtp5xx),
        (email, 11, Outcome::Smtp5xx),
        (email, 11, Outcome::Timeout),
        (email, 11, Outcome::Auth),
    ] {
        let at = TODAY + hour * HOUR;
        let latency = if destination == webhook { 10 } else { 40 };
        deliver_to(&db, &site, destination, Kind::Real, at, outcome, latency).await;
    }
    deliver_to(&db, &site, email, Kind::Test, NOW, Outcome::Delivered, 10).await;
    deliver_to(&db, &site, email, Kind::Test, NOW, Outcome::Tls, 10).await;
    deliver(&db, &quiet, NOW, Outcome::Delivered, 10).await;

    let s = site_stats(&db, &site, Range::Today);
    let only_webhook = site_stats(&db, &quiet, Range::Today);
    let all_sites = stats::query(&db.store, Scope::Account(account), Range::Today, NOW).unwrap();

    // SPEC §10's four tiles, each destination on its own; tests stay apart.
    let tiles = |s: &Stats| {
        let (w, e) = (&s.destinations.webhook, &s.destinations.email);
        (w.delivered, w.failed, e.delivered, e.failed)
    };
    assert_eq!(tiles(&s), (2, 2, 1, 5));
    assert_eq!((s.delivered, s.failed, s.test_deliveries), (3, 7, 2));
    assert_eq!(s.success_rate, Some(0.3));
    assert_eq!(s.destinations.webhook.success_rate, Some(0.5));
    assert_eq!(s.destinations.email.success_rate, Some(1.0 / 6.0));
    // Latency per destination, and over both (4 at 10 ms, 6 at 40 ms).
    let latency = |d: &stats::DestinationStats| (d.p50_ms, d.p95_ms);
    assert_eq!(latency(&s.destinations.webhook), (Some(10), Some(10)));
    assert_eq!(latency(&s.destinations.email), (Some(40), Some(40)));
    assert_eq!((s.p50_ms, s.p95_ms), (Some(40), Some(40)));
    // A destination the site does not have reads 0.
    assert_eq!(tiles(&only_webhook), (1, 0, 0, 0));
    assert_eq!(only_webhook.destinations.email.success_rate, None);
    assert_eq!(latency(&only_webhook.destinations.email), (None, None));
    assert_eq!(tiles(&all_sites), (3, 2, 1, 5));
    // Each destination lists its own categories; `timeout` is counted apart per destination.
    assert_eq!(
        failures_of(&s, webhook),
        failures_with(&[("http-5xx", 1), ("timeout", 1)])
    );
    assert_eq!(
        failures_of(&s, email),
        [
            ("smtp-4xx", 1),
            ("smtp-5xx", 2),
            ("timeout", 1),
            ("connect", 0),
            ("tls", 0),
            ("auth", 1)
        ]
    );
    let together: Vec<(&str, u64)> = s
        .failures_by_category
        .iter()
        .map(|&(o, n)| (o.as_str(), n))
        .filter(|&(_, n)| n > 0)
        .collect();
    assert_eq!(
        together,
        [
            ("http-5xx", 1),
            ("timeout", 2),
            ("smtp-4xx", 1),
            ("smtp-5xx", 2),
            ("auth", 1)
        ]
    );
    // The series splits each bucket by destination.
    let hour = |h: usize| {
        let p = &s.series[h];
        let (w, e) = (p.destinations.webhook, p.destinations.email);
        (
            p.delivered,
            p.failed,
            w.delivered,
            w.failed,
            e.delivered,
            e.failed,
        )
    };
    assert_eq!(hour(9), (3, 0, 2, 0, 1, 0));
    assert_eq!(hour(10), (0, 2, 0, 2, 0, 0));
    assert_eq!(hour(11), (0, 5, 0, 0, 0, 5));
    // The latest deliveries name their destination.
    assert_eq!(
        (s.recent[0].destination, s.recent[0].is_test),
        (email, true)
    );
    let destinations: Vec<Destination> = s.recent.iter().map(|d| d.destination).collect();
    assert_eq!(destinations.iter().filter(|&&d| d == webhook).count(), 4);
    assert_eq!(destinations.iter().filter(|&&d| d == email).count(), 8);

    let svg = chart_svg(&s);
    for (class, count) in [
        ("bar-webhook-delivered", 1),
        ("bar-email-delivered", 1),
        ("bar-webhook-failed", 1),
        ("bar-email-failed", 1),
    ] {
        assert_eq!(
            svg.matches(&format!("class=\"{class}\" fill=")).count(),
            count,
            "{class}"
        );
    }
    assert!(svg.contains(
        "<title>2024-06-15 09:00: 3 delivered, 0 failed (webhook: 2 delivered, 0 failed; \
         email: 1 delivered, 0 failed)</title>"
    ));
}

#[tokio::test]
async fn today_counts_cover_every_site_of_the_account_with_real_deliveries_only() {
    let db = open_db();
    let mine = add_account(&db, "owner@example.com");
    add_account(&db, "other@example.com");
    let blog = add_site(&db, "owner@example.com", "Blog");
    let quiet = add_site(&db, "owner@example.com", "Quiet");
    let theirs = add_site(&db, "other@example.com", "Theirs");
    deliver(&db, &blog, NOW, Outcome::Delivered, 10).await;
    deliver(&db, &blog, NOW, Outcome::Delivered, 10).await;
    deliver(&db, &blog, NOW, Outcome::Http5xx, 10).await;
    deliver(&db, &blog, TODAY - 1, Outcome::Delivered, 10).await;
    deliver_test(&db, &quiet, NOW, Outcome::Delivered, 10).await;
    deliver(&db, &theirs, NOW, Outcome::Delivered, 10).await;

    let counts = stats::today_counts(&db.store, mine, NOW).unwrap();

    assert_eq!(counts.len(), 2);
    assert_eq!(counts[&blog], (2, 1));
    assert_eq!(counts[&quiet], (0, 0));
}

#[tokio::test]
async fn stats_serialize_with_the_range_name_and_outcome_names() {
    let (db, _, site) = one_site();
    deliver(&db, &site, NOW, Outcome::BlockedDestination, 3).await;

    let json = serde_json::to_value(site_stats(&db, &site, Range::Days7)).unwrap();

    assert_eq!(json["range"], "7d");
    assert_eq!(json["failures_by_category"][7][0], "blocked-destination");
    assert_eq!(json["failures_by_category"][7][1], 1);
    let webhook = &json["destinations"]["webhook"];
    assert_eq!(webhook["failures_by_category"][7][0], "blocked-destination");
    assert_eq!(
        (&webhook["delivered"], &webhook["failed"]),
        (&0.into(), &1.into())
    );
    assert_eq!(json["destinations"]["email"]["failed"], 0);
    assert_eq!(json["recent"][0]["outcome"], "blocked-destination");
    assert_eq!(json["recent"][0]["destination"], "webhook");
    assert_eq!(json["success_rate"], 0.0);
}

#[tokio::test]
async fn chart_is_an_accessible_svg_with_utc_labels_and_stacked_bars() {
    let (db, _, site) = one_site();
    deliver(&db, &site, TODAY + 9 * HOUR, Outcome::Delivered, 3).await;
    deliver(&db, &site, TODAY + 9 * HOUR, Outcome::Http5xx, 3).await;

    let svg = chart_svg(&site_stats(&db, &site, Range::Today));
    let daily = chart_svg(&site_stats(&db, &site, Range::Days7));

    assert!(svg.starts_with("<svg "));
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains("role=\"img\""));
    assert!(svg.contains("width=\"100%\""));
    assert!(svg.contains("viewBox=\"0 0 720 260\""));
    assert!(svg.contains(
        "<title>Real deliveries per hour, Today (UTC, 2024-06-15): 1 delivered, 1 failed \
         (webhook: 1 delivered, 1 failed; email: 0 delivered, 0 failed)</title>"
    ));
    assert!(svg.contains("aria-label=\"Real deliveries per hour, Today"));
    assert!(svg.contains(">00:00</text>"));
    assert!(svg.contains(">09:00</text>"));
    // One bar each (the legend is the page's, above the chart).
    assert_eq!(
        svg.matches("class=\"bar-webhook-delivered\" fill=").count(),
        1
    );
    assert_eq!(svg.matches("class=\"bar-webhook-failed\" fill=").count(), 1);
    assert_eq!(svg.matches("class=\"bar-email-").count(), 0);
    assert!(svg.contains(
        "<title>2024-06-15 09:00: 1 delivered, 1 failed (webhook: 1 delivered, 1 failed; \
         email: 0 delivered, 0 failed)</title>"
    ));
    assert!(!svg.contains("<script"));
    assert!(daily.contains(">06-09</text>"));
    assert!(daily.contains(">06-15</text>"));
    assert!(daily.contains("2024-06-09 to 2024-06-15"));
    // The 28-day chart names its last bar (today) and its first.
    let monthly = chart_svg(&site_stats(&db, &site, Range::Days28));
    assert!(monthly.contains(">06-15</text>"), "{monthly}");
    assert!(monthly.contains(">05-19</text>"), "{monthly}");
}

#[tokio::test]
async fn deleting_a_site_removes_its_rollups() {
    let (db, account, site) = one_site();
    deliver(&db, &site, NOW, Outcome::Delivered, 10).await;
    reject(&db, &site, NOW, "invalid-token").await;

    db.store
        .write(|c| {
            c.execute("DELETE FROM sites WHERE id = ?1", [&site])
                .map_err(StoreError::from)
        })
        .unwrap();

    let s = stats::query(&db.store, Scope::Account(account), Range::All, NOW).unwrap();
    assert_eq!((s.delivered, s.rejected), (0, 0));
    let rows: i64 = db
        .store
        .read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM delivery_hourly)
                      + (SELECT COUNT(*) FROM delivery_daily)
                      + (SELECT COUNT(*) FROM latency_daily)
                      + (SELECT COUNT(*) FROM latency_total)
                      + (SELECT COUNT(*) FROM rejections)
                      + (SELECT COUNT(*) FROM rejections_daily)",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!(rows, 0);
}

// ----------------------------------------------------------------------------------------------
// Migration backfill
// ----------------------------------------------------------------------------------------------

/// The deliveries both databases of the backfill test hold: every outcome, real and test, at
/// latencies across the exact and the geometric buckets, over 40 days.
fn backfill_rows() -> Vec<(i64, bool, Outcome, u64)> {
    let mut rows = Vec::new();
    let mut latency = 0u64;
    for i in 0..3000i64 {
        let outcome = Outcome::WEBHOOK[(i % 9) as usize];
        let at = NOW - (i * 1_234_567) % (40 * DAY);
        rows.push((at, i % 13 == 0, outcome, latency));
        latency = match latency {
            0..=150 => latency + 1,
            _ => latency + latency / 17 + 3,
        };
        if latency > 50_000_000_000 {
            latency = i as u64 % 7;
        }
    }
    rows.push((TODAY - 1, false, Outcome::Delivered, u64::MAX / 2));
    rows
}

/// The rejections both databases of the backfill test hold.
fn backfill_rejections() -> Vec<(i64, &'static str)> {
    let reasons = ["invalid-token", "rate-limited", "missing-token"];
    (0..200i64)
        .map(|i| {
            (
                NOW - (i * 7_654_321) % (45 * DAY),
                reasons[(i % 3) as usize],
            )
        })
        .collect()
}

fn status_of(outcome: Outcome) -> Option<u16> {
    report(outcome, 0).http_status
}

/// `(table rows)` of a rollup, ordered, without the site id.
fn rollup(store: &Store, sql: &str) -> Vec<(i64, i64, String, i64)> {
    store
        .read(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)
        })
        .unwrap()
}

fn without_site_ids(stats: &Stats) -> Value {
    let mut json = serde_json::to_value(stats).unwrap();
    for d in json["recent"].as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("site_id");
    }
    json
}

#[tokio::test]
async fn migration_backfill_reproduces_the_recorded_numbers() {
    // Recorded live, rollups maintained by `record_delivery_sync`.
    let (live, _, live_site) = one_site();
    live.store
        .write(|tx| {
            for &(at, is_test, outcome, latency) in &backfill_rows() {
                let kind = if is_test { Kind::Test } else { Kind::Real };
                let webhook = Destination::Webhook;
                let report = report(outcome, latency);
                stats::record_delivery_sync(tx, &live_site, at, webhook, kind, &report)?;
            }
            for (at, reason) in backfill_rejections() {
                stats::record_rejection_sync(tx, &live_site, at, reason)?;
            }
            Ok::<(), StoreError>(())
        })
        .unwrap();
    stats::record_delivery(
        &live.store,
        &live_site,
        NOW,
        Destination::Webhook,
        Kind::Real,
        &report(Outcome::Dns, 250),
    )
    .await
    .unwrap();

    // An older database: migrations 1–2 only, the same rows inserted with plain SQL.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old_site = "site_old";
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for &(version, name, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                params![version, name],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO accounts (id, email, password_hash, created_at)
             VALUES (1, 'owner@example.com', 'x', 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sites (id, account_id, name, site_key, secret_hash, webhook_url,
                                challenge_count, challenge_difficulty, created_at, updated_at)
             VALUES (?1, 1, 'Main site', 'key', x'00', 'https://hooks.example.com/in', 50, 4,
                     0, 0)",
            [old_site],
        )
        .unwrap();
        for (at, reason) in backfill_rejections() {
            conn.execute(
                "INSERT INTO rejections (site_id, hour_ms, reason, count)
                 VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (site_id, hour_ms, reason) DO UPDATE SET count = count + 1",
                params![old_site, at - at.rem_euclid(HOUR), reason],
            )
            .unwrap();
        }
        let mut rows = backfill_rows();
        rows.push((NOW, false, Outcome::Dns, 250));
        for (at, is_test, outcome, latency) in rows {
            conn.execute(
                "INSERT INTO deliveries (site_id, at_ms, is_test, outcome, http_status, latency_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    old_site,
                    at,
                    is_test,
                    outcome.as_str(),
                    status_of(outcome),
                    i64::try_from(latency).unwrap()
                ],
            )
            .unwrap();
        }
    }

    let upgraded = Store::open(&path).unwrap();

    for sql in [
        "SELECT hour_ms, is_test, outcome, count FROM delivery_hourly
         ORDER BY hour_ms, is_test, outcome",
        "SELECT day_ms, is_test, outcome, count FROM delivery_daily
         ORDER BY day_ms, is_test, outcome",
        "SELECT day_ms, bucket, '', count FROM latency_daily ORDER BY day_ms, bucket",
        "SELECT 0, bucket, '', count FROM latency_total ORDER BY bucket",
        "SELECT hour_ms, 0, reason, count FROM rejections ORDER BY hour_ms, reason",
        "SELECT day_ms, 0, reason, count FROM rejections_daily ORDER BY day_ms, reason",
    ] {
        let upgraded_rows = rollup(&upgraded, sql);
        assert!(!upgraded_rows.is_empty(), "{sql}");
        assert_eq!(upgraded_rows, rollup(&live.store, sql), "{sql}");
    }
    // The geometric buckets were exercised, up to the open-ended last one.
    let top_bucket: u32 = upgraded
        .read(|c| {
            c.query_row("SELECT MAX(bucket) FROM latency_daily", [], |r| r.get(0))
                .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!(top_bucket, stats::LATENCY_BUCKETS - 1);
    // The rollups hold exactly what `deliveries` holds.
    let (rows, hourly_sum, latency_sum, real): (i64, i64, i64, i64) = upgraded
        .read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM deliveries),
                        (SELECT SUM(count) FROM delivery_hourly),
                        (SELECT SUM(count) FROM latency_daily),
                        (SELECT COUNT(*) FROM deliveries WHERE is_test = 0)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!((hourly_sum, latency_sum), (rows, real));
    let (daily_sum, total_sum, rejected, rejected_daily): (i64, i64, i64, i64) = upgraded
        .read(|c| {
            c.query_row(
                "SELECT (SELECT SUM(count) FROM delivery_daily),
                        (SELECT SUM(count) FROM latency_total),
                        (SELECT SUM(count) FROM rejections),
                        (SELECT SUM(count) FROM rejections_daily)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!((daily_sum, total_sum), (rows, real));
    assert_eq!((rejected, rejected_daily), (200, 200));
    for range in Range::ALL {
        let old = stats::query(&upgraded, Scope::Site(old_site), range, NOW).unwrap();
        let new = stats::query(&live.store, Scope::Site(&live_site), range, NOW).unwrap();
        assert_eq!(without_site_ids(&old), without_site_ids(&new), "{range:?}");
        assert!(old.delivered + old.failed > 0, "{range:?}");
        assert!(old.rejected > 0, "{range:?}");
    }
}

fn table_sum(db: &Db, sql: &str) -> i64 {
    db.store
        .read(|c| c.query_row(sql, [], |r| r.get(0)).map_err(StoreError::from))
        .unwrap()
}

#[actix_web::test]
async fn queued_records_are_committed_on_their_own_within_moments_and_summed_into_the_rollups() {
    let (db, _, site) = one_site();
    // Queued from many tasks at once, never flushed: the writer commits them by itself.
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let store = db.store.clone();
        let site = site.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let outcome = if i % 3 == 0 {
                Outcome::Http5xx
            } else {
                Outcome::Delivered
            };
            stats::record_delivery_later(
                &store,
                &site,
                NOW + i as i64,
                Destination::Webhook,
                Kind::Real,
                &report(outcome, 10 + i % 7),
            );
            if i % 10 == 0 {
                stats::record_rejection(&store, &site, NOW, "invalid-token");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let started = std::time::Instant::now();
    while table_sum(&db, "SELECT COUNT(*) FROM deliveries") < 300
        && started.elapsed() < std::time::Duration::from_secs(2)
    {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(table_sum(&db, "SELECT COUNT(*) FROM deliveries"), 300);
    for rollup in [
        "SELECT SUM(count) FROM delivery_hourly",
        "SELECT SUM(count) FROM delivery_daily",
        "SELECT SUM(count) FROM latency_daily",
        "SELECT SUM(count) FROM latency_total",
    ] {
        assert_eq!(table_sum(&db, rollup), 300, "{rollup}");
    }
    assert_eq!(table_sum(&db, "SELECT SUM(count) FROM rejections"), 30);
    assert_eq!(
        table_sum(&db, "SELECT SUM(count) FROM rejections_daily"),
        30
    );
    let s = site_stats(&db, &site, Range::Today);
    assert_eq!(s.delivered, 200);
    assert_eq!(s.failed, 100);
    assert_eq!(s.rejected, 30);
    assert_eq!(s.rejected_by_reason, vec![("invalid-token".to_owned(), 30)]);
}

#[actix_web::test]
async fn records_of_a_site_deleted_while_they_waited_are_dropped_and_the_others_kept() {
    let db = open_db();
    add_account(&db, "owner@example.com");
    let kept = add_site(&db, "owner@example.com", "Kept");
    let gone = add_site(&db, "owner@example.com", "Gone");
    stats::record_delivery_later(
        &db.store,
        &gone,
        NOW,
        Destination::Webhook,
        Kind::Real,
        &report(Outcome::Delivered, 5),
    );
    stats::record_rejection(&db.store, &gone, NOW, "missing-token");
    stats::record_delivery_later(
        &db.store,
        &kept,
        NOW,
        Destination::Email,
        Kind::Real,
        &report(Outcome::Delivered, 5),
    );
    db.store
        .write(|c| {
            c.execute("DELETE FROM sites WHERE id = ?1", params![gone])
                .map_err(StoreError::from)
        })
        .unwrap();
    db.store.flush().await.unwrap();
    assert_eq!(table_sum(&db, "SELECT COUNT(*) FROM deliveries"), 1);
    assert_eq!(table_sum(&db, "SELECT SUM(count) FROM delivery_hourly"), 1);
    assert_eq!(table_sum(&db, "SELECT COUNT(*) FROM rejections"), 0);
    assert_eq!(site_stats(&db, &kept, Range::Today).delivered, 1);
}

/// Every row of a table, as text, ordered: the comparison key of the 0010 migration test.
fn table_rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            let mut fields = Vec::new();
            for i in 0..columns {
                let value: rusqlite::types::Value = r.get(i)?;
                fields.push(format!("{value:?}"));
            }
            Ok(fields.join("|"))
        })
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn migrating_to_destinations_keeps_every_row_and_total_as_webhook() {
    // A database at migration 9: deliveries written at version 2, rollups backfilled by 3.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pre-destinations.db");
    let site = "site_old";
    let tables = [
        (
            "deliveries",
            "SELECT site_id, at_ms, is_test, outcome, http_status, latency_ms FROM deliveries \
             ORDER BY id",
        ),
        (
            "delivery_hourly",
            "SELECT site_id, hour_ms, is_test, outcome, count FROM delivery_hourly \
             ORDER BY 1, 2, 3, 4",
        ),
        (
            "delivery_daily",
            "SELECT site_id, day_ms, is_test, outcome, count FROM delivery_daily \
             ORDER BY 1, 2, 3, 4",
        ),
        (
            "latency_daily",
            "SELECT site_id, day_ms, bucket, count FROM latency_daily ORDER BY 1, 2, 3",
        ),
        (
            "latency_total",
            "SELECT site_id, bucket, count FROM latency_total ORDER BY 1, 2",
        ),
    ];
    let before: Vec<Vec<String>> = {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        let apply = |migrations: &[(i64, &str, &str)]| {
            for &(version, name, sql) in migrations {
                conn.execute_batch(sql).unwrap();
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                    params![version, name],
                )
                .unwrap();
            }
        };
        apply(&MIGRATIONS[..2]);
        conn.execute(
            "INSERT INTO accounts (id, email, password_hash, created_at)
             VALUES (1, 'owner@example.com', 'x', 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sites (id, account_id, name, site_key, secret_hash, webhook_url,
                                challenge_count, challenge_difficulty, created_at, updated_at)
             VALUES (?1, 1, 'Main site', 'key', x'00', 'https://hooks.example.com/in', 50, 4,
                     0, 0)",
            [site],
        )
        .unwrap();
        for (at, is_test, outcome, latency) in backfill_rows().into_iter().take(500) {
            conn.execute(
                "INSERT INTO deliveries (site_id, at_ms, is_test, outcome, http_status, latency_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    site,
                    at,
                    is_test,
                    outcome.as_str(),
                    status_of(outcome),
                    i64::try_from(latency).unwrap()
                ],
            )
            .unwrap();
        }
        apply(&MIGRATIONS[2..9]);
        tables
            .iter()
            .map(|(_, sql)| table_rows(&conn, sql))
            .collect()
    };
    let old = Store::open(&path).unwrap();

    let after: Vec<Vec<String>> = old
        .read(|c| Ok::<_, StoreError>(tables.iter().map(|(_, sql)| table_rows(c, sql)).collect()))
        .unwrap();
    for ((table, _), (before, after)) in tables.iter().zip(before.iter().zip(&after)) {
        assert!(!before.is_empty(), "{table}");
        assert_eq!(before, after, "{table}: every row kept");
        let not_webhook = table_sum_in(
            &old,
            &format!("SELECT COUNT(*) FROM {table} WHERE destination <> 'webhook'"),
        );
        assert_eq!(not_webhook, 0, "{table}: the old rows are webhook rows");
    }
    let real = table_sum_in(&old, "SELECT COUNT(*) FROM deliveries WHERE is_test = 0");
    let webhook = |s: &Stats| s.destinations.webhook.delivered + s.destinations.webhook.failed;
    let all = stats::query(&old, Scope::Site(site), Range::All, NOW).unwrap();
    assert_eq!(webhook(&all) as i64, real);
    assert_eq!((all.delivered + all.failed) as i64, real);
    let email = &all.destinations.email;
    assert_eq!((email.delivered, email.failed), (0, 0));
    assert!(
        all.recent
            .iter()
            .all(|d| d.destination == Destination::Webhook)
    );

    // The new keys take both destinations side by side in the same hour.
    stats::record_delivery(
        &old,
        site,
        NOW,
        Destination::Email,
        Kind::Real,
        &report(Outcome::Delivered, 10),
    )
    .await
    .unwrap();
    stats::record_delivery(
        &old,
        site,
        NOW,
        Destination::Webhook,
        Kind::Real,
        &report(Outcome::Delivered, 10),
    )
    .await
    .unwrap();
    let today = stats::query(&old, Scope::Site(site), Range::Today, NOW).unwrap();
    assert_eq!(today.destinations.email.delivered, 1);
    assert!(today.destinations.webhook.delivered >= 1);
}

fn table_sum_in(store: &Store, sql: &str) -> i64 {
    store
        .read(|c| c.query_row(sql, [], |r| r.get(0)).map_err(StoreError::from))
        .unwrap()
}

//! Statistics pages (SPEC §6): per site and for the whole account, ranges Today … All time, in
//! UTC. The numbers come from `crate::stats::query`, the same query as `site stats`; the chart
//! from [`super::chart`].

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::chart::chart_svg;
use super::{Nav, blocking, internal, not_found, render};
use crate::delivery::{Destination, Outcome};
use crate::sites;
use crate::stats::{self, PerDestination, Range, Scope, Stats, Tally};
use crate::time::{utc_date, utc_datetime};
use crate::web::WebState;
use crate::web::extract::SignedIn;

struct Tab {
    href: String,
    label: &'static str,
    current: bool,
}

struct Tiles {
    /// SPEC §10's four tiles: each destination's delivered and failed.
    webhook: Tally,
    email: Tally,
    rejected: u64,
    success_rate: String,
    p50: String,
    p95: String,
    tests: u64,
    challenges_issued: u64,
    challenges_solved: u64,
    /// Caputchin's site statistics (SPEC §12), as the management API reports them.
    verification: crate::stats::Verification,
}

/// One destination's failure categories, as one table.
struct FailureGroup {
    destination: &'static str,
    label: &'static str,
    categories: Vec<(&'static str, u64)>,
}

struct RecentRow {
    time: String,
    site: String,
    destination: &'static str,
    test: bool,
    delivered: bool,
    outcome: &'static str,
    status: String,
    latency: String,
}

#[derive(Template)]
#[template(path = "dashboard/stats.html")]
struct StatsPage {
    nav: Nav,
    heading: String,
    site_id: Option<String>,
    range_label: &'static str,
    period: String,
    tabs: Vec<Tab>,
    tiles: Tiles,
    chart: String,
    failures: Vec<FailureGroup>,
    rejections: Vec<(String, u64)>,
    recent: Vec<RecentRow>,
}

fn tally(destinations: &PerDestination<stats::DestinationStats>, d: Destination) -> Tally {
    let numbers = destinations.get(d);
    Tally {
        delivered: numbers.delivered,
        failed: numbers.failed,
    }
}

fn destination_label(d: Destination) -> &'static str {
    match d {
        Destination::Webhook => "Webhook",
        Destination::Email => "Email",
    }
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v} ms"))
}

fn page(
    account: &SignedIn,
    heading: String,
    site_id: Option<String>,
    base: &str,
    s: &Stats,
) -> StatsPage {
    let last_day = utc_date(s.end_ms - 1);
    let first_day = utc_date(s.start_ms);
    StatsPage {
        nav: account.nav("stats"),
        heading,
        site_id,
        range_label: s.range.label(),
        period: if first_day == last_day {
            first_day
        } else {
            format!("{first_day} to {last_day}")
        },
        tabs: Range::ALL
            .iter()
            .map(|r| Tab {
                href: format!("{base}?range={}", r.as_str()),
                label: r.label(),
                current: *r == s.range,
            })
            .collect(),
        tiles: Tiles {
            webhook: tally(&s.destinations, Destination::Webhook),
            email: tally(&s.destinations, Destination::Email),
            rejected: s.rejected,
            success_rate: s
                .success_rate
                .map_or_else(|| "–".into(), |r| format!("{:.1}%", r * 100.0)),
            p50: ms(s.p50_ms),
            p95: ms(s.p95_ms),
            tests: s.test_deliveries,
            challenges_issued: s.challenges_issued,
            challenges_solved: s.challenges_solved,
            verification: s.verification,
        },
        chart: chart_svg(s),
        failures: s
            .destinations
            .iter()
            .map(|(d, numbers)| FailureGroup {
                destination: d.as_str(),
                label: destination_label(d),
                categories: numbers
                    .failures_by_category
                    .iter()
                    .map(|(o, n)| (o.as_str(), *n))
                    .collect(),
            })
            .collect(),
        rejections: s.rejected_by_reason.clone(),
        recent: s
            .recent
            .iter()
            .map(|r| RecentRow {
                time: utc_datetime(r.at_ms),
                site: r.site_name.clone(),
                destination: r.destination.as_str(),
                test: r.is_test,
                delivered: r.outcome == Outcome::Delivered,
                outcome: r.outcome.as_str(),
                status: r.http_status.map_or_else(|| "–".into(), |s| s.to_string()),
                latency: format!("{} ms", r.latency_ms),
            })
            .collect(),
    }
}

fn range_of(query: &HashMap<String, String>) -> Range {
    query
        .get("range")
        .and_then(|r| Range::parse(r))
        .unwrap_or(Range::Days7)
}

/// `GET /sites/{id}/stats?range=…`.
pub async fn site(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let range = range_of(&query);
    let (account_id, site_id, now) = (account.id, path.into_inner(), state.clock.now_ms());
    let loaded = blocking(&state, move |s| -> Result<_, sites::SiteError> {
        let Some(site) = sites::site_for_account(&s.store, account_id, &site_id)? else {
            return Ok(None);
        };
        let numbers = stats::query(&s.store, Scope::Site(&site.id), range, now)?;
        Ok(Some((site, numbers)))
    })
    .await;
    match loaded {
        Some(Some((site, numbers))) => {
            let base = format!("/sites/{}/stats", site.id);
            let heading = format!("{}: statistics", site.settings.name);
            render(
                StatusCode::OK,
                &page(&account, heading, Some(site.id.clone()), &base, &numbers),
            )
        }
        Some(None) => not_found(account.nav("stats")),
        None => internal(account.nav("stats")),
    }
}

/// `GET /stats?range=…`: every site of the account together.
pub async fn account(
    state: web::Data<WebState>,
    account: SignedIn,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let range = range_of(&query);
    let (account_id, now) = (account.id, state.clock.now_ms());
    let loaded = blocking(&state, move |s| {
        stats::query(&s.store, Scope::Account(account_id), range, now)
    })
    .await;
    match loaded {
        Some(numbers) => render(
            StatusCode::OK,
            &page(
                &account,
                "All sites: statistics".into(),
                None,
                "/stats",
                &numbers,
            ),
        ),
        None => internal(account.nav("stats")),
    }
}

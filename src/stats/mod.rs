//! Delivery statistics (SPEC §6, §10): recording every delivery's destination and outcome and
//! every rejected submission's reason (never form contents, never webhook URLs), and answering
//! range queries for a site or a whole account — tiles per destination (webhook and email), a
//! series, failures by category, latency percentiles and the latest deliveries. The dashboard
//! draws the series (`web::dashboard::chart`).
//!
//! Range queries read rollups kept in the same transaction as each delivery row: counts per site,
//! UTC hour or day, destination, real/test and outcome, rejections per hour or day and reason, and latency
//! histograms of real deliveries per site and UTC day and over all time (buckets from
//! [`latency_bucket`]). Today and Yesterday read hourly rows, longer ranges daily rows, and
//! "All time" the all-time histogram, so no query scans `deliveries`, which only serves the
//! latest list.
//!
//! This module owns the ranges, scopes and answers, and the two queries. The latency bucket maths
//! is in `latency.rs`, recording in `record.rs`, and `query.rs` turns the rows the store reads in
//! one snapshot ([`deliveries::read_range`], [`deliveries::read_site_counts`]) into answers.

mod latency;
mod query;
mod record;

use std::collections::HashMap;

use serde::Serialize;

use crate::delivery::{Destination, Outcome};
use crate::store::deliveries::{self, SiteSet};
use crate::store::{Store, StoreError};
use crate::time::{DAY_MS, HOUR_MS, WEEK_MS, day_start};

pub use latency::{
    EXACT_BELOW_MS, LATENCY_BUCKETS, latency_bucket, latency_bucket_bounds, latency_bucket_value,
    percentile,
};
pub use record::{
    record_delivery, record_delivery_later, record_delivery_sync, record_rejection,
    record_rejection_sync,
};

/// "All time" switches from daily to weekly buckets when it spans more than this.
const DAILY_SERIES_MAX_MS: i64 = 90 * DAY_MS;

/// A statistics range, in whole UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Range {
    /// The current UTC day.
    #[serde(rename = "today")]
    Today,
    /// The UTC day before today.
    #[serde(rename = "yesterday")]
    Yesterday,
    /// Today and the 6 days before.
    #[serde(rename = "7d")]
    Days7,
    /// Today and the 27 days before.
    #[serde(rename = "28d")]
    Days28,
    /// From the day of the first recorded delivery or rejection through today.
    #[serde(rename = "all")]
    All,
}

impl Range {
    /// Every range, in the order the dashboard offers them.
    pub const ALL: [Range; 5] = [
        Range::Today,
        Range::Yesterday,
        Range::Days7,
        Range::Days28,
        Range::All,
    ];

    /// Parses a range name: `today`, `yesterday`, `7d`, `28d` or `all`.
    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The range's name as used in URLs, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Today => "today",
            Range::Yesterday => "yesterday",
            Range::Days7 => "7d",
            Range::Days28 => "28d",
            Range::All => "all",
        }
    }

    /// The range's label for people.
    pub fn label(self) -> &'static str {
        match self {
            Range::Today => "Today",
            Range::Yesterday => "Yesterday",
            Range::Days7 => "7 days",
            Range::Days28 => "28 days",
            Range::All => "All time",
        }
    }

    /// The range as `[start, end)` in epoch ms, on UTC day boundaries, at time `now_ms`. Every
    /// range but Yesterday ends at the end of today. For All time, `first_ms` is the first
    /// recorded delivery or rejection: the range starts at the beginning of its day (today's when
    /// `None` or later than today).
    pub fn bounds(self, now_ms: i64, first_ms: Option<i64>) -> (i64, i64) {
        let today = day_start(now_ms);
        let tomorrow = today.saturating_add(DAY_MS);
        match self {
            Range::Today => (today, tomorrow),
            Range::Yesterday => (today.saturating_sub(DAY_MS), today),
            Range::Days7 => (today.saturating_sub(6 * DAY_MS), tomorrow),
            Range::Days28 => (today.saturating_sub(27 * DAY_MS), tomorrow),
            Range::All => (
                first_ms.map_or(today, |f| day_start(f).min(today)),
                tomorrow,
            ),
        }
    }

    /// The width of one series bucket for `[start_ms, end_ms)`: an hour for Today and
    /// Yesterday, a day otherwise; All time picks from its span: hours for a single day, weeks
    /// past 90 days.
    pub fn bucket_ms(self, start_ms: i64, end_ms: i64) -> i64 {
        let span = end_ms.saturating_sub(start_ms);
        match self {
            Range::Today | Range::Yesterday => HOUR_MS,
            Range::Days7 | Range::Days28 => DAY_MS,
            Range::All if span <= DAY_MS => HOUR_MS,
            Range::All if span > DAILY_SERIES_MAX_MS => WEEK_MS,
            Range::All => DAY_MS,
        }
    }
}

/// Which deliveries a query covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One site, by its internal id.
    Site(&'a str),
    /// Every site of one account, by the account's id.
    Account(i64),
}

impl<'a> From<Scope<'a>> for SiteSet<'a> {
    fn from(scope: Scope<'a>) -> SiteSet<'a> {
        match scope {
            Scope::Site(id) => SiteSet::Site(id),
            Scope::Account(id) => SiteSet::Account(id),
        }
    }
}

/// One value per destination; serialized as an object keyed by the destination's name
/// (`{"webhook": …, "email": …}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PerDestination<T> {
    /// The webhook's.
    pub webhook: T,
    /// The email destination's.
    pub email: T,
}

impl<T> PerDestination<T> {
    /// The value of one destination.
    pub fn get(&self, destination: Destination) -> &T {
        match destination {
            Destination::Webhook => &self.webhook,
            Destination::Email => &self.email,
        }
    }

    fn get_mut(&mut self, destination: Destination) -> &mut T {
        match destination {
            Destination::Webhook => &mut self.webhook,
            Destination::Email => &mut self.email,
        }
    }

    /// Each destination with its value, in [`Destination::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Destination, &T)> {
        Destination::ALL.into_iter().map(move |d| (d, self.get(d)))
    }
}

/// Real deliveries delivered and failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Delivered.
    pub delivered: u64,
    /// Failed, any category.
    pub failed: u64,
}

/// One bucket of the series: real deliveries that finished in `[start_ms, start_ms + bucket_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The bucket's start, epoch ms.
    pub start_ms: i64,
    /// Real deliveries delivered, every destination together.
    pub delivered: u64,
    /// Real deliveries failed, every destination together.
    pub failed: u64,
    /// The same counts per destination.
    pub destinations: PerDestination<Tally>,
}

/// The tiles and failures of one destination over a range: real deliveries only, and zeros for a
/// destination the scope does not have (SPEC §10).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DestinationStats {
    /// Real deliveries this destination accepted.
    pub delivered: u64,
    /// Real deliveries to this destination that failed, any category.
    pub failed: u64,
    /// `delivered / (delivered + failed)`; `None` without real deliveries to it.
    pub success_rate: Option<f64>,
    /// Median latency of real deliveries to it (delivered or failed), ms.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency of real deliveries to it (delivered or failed), ms.
    pub p95_ms: Option<u64>,
    /// Failures per category: every one of this destination's ([`Destination::outcomes`] but
    /// `delivered`), in that order, zeros included.
    pub failures_by_category: Vec<(Outcome, u64)>,
}

/// One of the latest deliveries: what the list shows, never form contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentDelivery {
    /// When it finished, epoch ms.
    pub at_ms: i64,
    /// The site's internal id.
    pub site_id: String,
    /// The site's name.
    pub site_name: String,
    /// Where it went (serialized as `webhook` or `email`).
    pub destination: Destination,
    /// A test delivery (labelled as such, SPEC §6).
    pub is_test: bool,
    /// The outcome category.
    pub outcome: Outcome,
    /// The HTTP status, when the webhook answered.
    pub http_status: Option<u16>,
    /// Latency in ms.
    pub latency_ms: u64,
}

/// The verification counts Caputchin's site statistics report (the reference's §9.7), over the
/// range: the built-in issuer's and siteverify's events, and the form endpoint's refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Challenges issued (Cap and Caputchin's widget).
    pub sessions_started: u64,
    /// Challenges solved and redeemed for a token.
    pub sessions_client_completed: u64,
    /// Tokens accepted by siteverify or the form endpoint.
    pub sessions_server_verified: u64,
    /// Redeems refused (a wrong, spent or expired challenge).
    pub failed_client_completion: u64,
    /// Tokens refused by siteverify (with a known secret) or the form endpoint
    /// (`invalid-token`, `timeout-or-duplicate`, `site-mismatch`).
    pub failed_server_verification: u64,
    /// Requests refused by a rate limit: Cap and widget requests, and form posts.
    pub rate_limit_rejections: u64,
    /// Requests refused for their origin: Cap and widget requests, and form posts.
    pub challenge_blocked: u64,
}

impl Verification {
    /// The counts of the verification endpoints plus the form endpoint's rejections.
    pub fn of(counts: &deliveries::ChallengeCount, rejections: &[(String, u64)]) -> Verification {
        let rejected = |code: &str| {
            rejections
                .iter()
                .filter(|(reason, _)| reason == code)
                .map(|&(_, n)| n)
                .sum::<u64>()
        };
        Verification {
            sessions_started: counts.issued,
            sessions_client_completed: counts.solved,
            sessions_server_verified: counts.tokens_accepted,
            failed_client_completion: counts.redeem_failed,
            failed_server_verification: counts.tokens_refused,
            rate_limit_rejections: counts.rate_limited + rejected("rate-limited"),
            challenge_blocked: counts.origin_refused + rejected("origin-not-allowed"),
        }
    }
}

/// The statistics of one scope over one range (SPEC §6); the dashboard and `site stats` show
/// these same numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The range (serialized as its name, e.g. `7d`).
    pub range: Range,
    /// Start of the range, epoch ms (inclusive).
    pub start_ms: i64,
    /// End of the range, epoch ms (exclusive).
    pub end_ms: i64,
    /// Real deliveries delivered, every destination together.
    pub delivered: u64,
    /// Real deliveries failed, any category, every destination together.
    pub failed: u64,
    /// The tiles and failures of each destination (SPEC §10's four tiles: webhook delivered and
    /// failed, email delivered and failed).
    pub destinations: PerDestination<DestinationStats>,
    /// `delivered / (delivered + failed)`, every destination together; `None` without real
    /// deliveries.
    pub success_rate: Option<f64>,
    /// Proof-of-work challenges issued by the built-in verifier.
    pub challenges_issued: u64,
    /// Challenges solved (redeemed for a token).
    pub challenges_solved: u64,
    /// What Caputchin's site statistics report (SPEC §12).
    pub verification: Verification,
    /// Median latency of real deliveries (delivered or failed, every destination together), ms.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency of real deliveries (delivered or failed, every destination
    /// together), ms.
    pub p95_ms: Option<u64>,
    /// Rejected submissions.
    pub rejected: u64,
    /// Rejected submissions by reason (error code), most first.
    pub rejected_by_reason: Vec<(String, u64)>,
    /// Real failures per category, every destination together: each failure category of
    /// [`Outcome::ALL`], in that order, zeros included (a category two destinations share, such
    /// as `timeout`, sums both; [`DestinationStats::failures_by_category`] tells them apart).
    pub failures_by_category: Vec<(Outcome, u64)>,
    /// Test deliveries in the range, counted apart from every tile above.
    pub test_deliveries: u64,
    /// The width of one series bucket, ms.
    pub bucket_ms: i64,
    /// Real deliveries per bucket, every bucket of the range from `start_ms`, zeros included (a
    /// weekly series' last bucket may reach past `end_ms`).
    pub series: Vec<Point>,
    /// The latest deliveries of the scope at any time, tests included.
    pub recent: Vec<RecentDelivery>,
}

/// Answers the statistics of `scope` over `range` at time `now_ms`, from one consistent
/// snapshot. Blocking: call it off the async workers.
pub fn query(
    store: &Store,
    scope: Scope<'_>,
    range: Range,
    now_ms: i64,
) -> Result<Stats, StoreError> {
    let rows = deliveries::read_range(store, scope.into(), range == Range::All, |first_ms| {
        query::plan(range, now_ms, first_ms)
    })?;
    query::stats_of(range, rows)
}

/// Today's real deliveries `(delivered, failed)`, every destination together, for every site of an account, keyed by site
/// id; sites without any today are present with zeros. Blocking: call it off the async workers.
pub fn today_counts(
    store: &Store,
    account_id: i64,
    now_ms: i64,
) -> Result<HashMap<String, (u64, u64)>, StoreError> {
    let (start_ms, end_ms) = Range::Today.bounds(now_ms, None);
    query::site_totals(deliveries::read_site_counts(
        store, account_id, start_ms, end_ms,
    )?)
}

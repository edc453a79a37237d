//! Delivery statistics (SPEC §6): recording every delivery's outcome and every rejected
//! submission's reason (never form contents, never webhook URLs), and answering range queries
//! for a site or a whole account — tiles, a series, failures by category, latency percentiles and
//! the latest deliveries — plus the server-rendered SVG chart.
//!
//! Range queries read rollups kept in the same transaction as each delivery row: counts per site,
//! UTC hour or day, real/test and outcome, rejections per hour or day and reason, and latency
//! histograms of real deliveries per site and UTC day and over all time (buckets from
//! [`latency_bucket`]). Today and Yesterday read hourly rows, longer ranges daily rows, and
//! "All time" the all-time histogram, so no query scans `deliveries`, which only serves the
//! latest list.

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::delivery::{Kind, Outcome, Report};
use crate::store::deliveries::{self, Grain, NewDelivery, NewRejection, Record, SiteSet};
use crate::store::{Store, StoreError};

const HOUR_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;
const WEEK_MS: i64 = 7 * DAY_MS;
/// "All time" switches from daily to weekly buckets when it spans more than this.
const DAILY_SERIES_MAX_MS: i64 = 90 * DAY_MS;
/// A bound on the series length, whatever timestamps the database holds.
const MAX_POINTS: i64 = 100_000;
/// How many deliveries the latest list shows.
const RECENT: usize = 20;

// ---------------------------------------------------------------------------------------------
// Latency buckets
// ---------------------------------------------------------------------------------------------

/// Latencies below this many milliseconds each have their own bucket (bucket = latency).
pub const EXACT_BELOW_MS: u64 = 100;
/// How many geometric buckets follow the exact ones; the last one is open-ended.
const GEOMETRIC_BUCKETS: usize = 720;
/// The number of latency buckets: `0..LATENCY_BUCKETS`.
pub const LATENCY_BUCKETS: u32 = EXACT_BELOW_MS as u32 + GEOMETRIC_BUCKETS as u32;

/// The lower bounds of the geometric buckets: 100, then each `lo + lo / 40` (integer division),
/// so every bucket is at most 2.5 % wide (between 1.7 % and 2.5 %). Migration 0003 rebuilds the
/// same table with the same recurrence in SQL to backfill `latency_daily`.
const GEOMETRIC_LOWER_BOUNDS: [u64; GEOMETRIC_BUCKETS] = {
    let mut bounds = [0u64; GEOMETRIC_BUCKETS];
    let mut lo = EXACT_BELOW_MS;
    let mut i = 0;
    while i < GEOMETRIC_BUCKETS {
        bounds[i] = lo;
        lo += lo / 40;
        i += 1;
    }
    bounds
};

/// The latency histogram bucket of `latency_ms`.
///
/// Below [`EXACT_BELOW_MS`] the bucket is the latency itself, exact to the millisecond. From
/// 100 ms on, bucket `100 + k` holds `[L(k), L(k + 1))` where `L(0) = 100` and
/// `L(k + 1) = L(k) + floor(L(k) / 40)`: geometric steps of about 2.5 %. The last bucket
/// (from 4,053,388,504 ms, some 47 days) is open-ended. [`latency_bucket_bounds`] is the inverse
/// and [`latency_bucket_value`] the value a bucket stands for.
pub fn latency_bucket(latency_ms: u64) -> u32 {
    if latency_ms < EXACT_BELOW_MS {
        // Lossless: below 100.
        return latency_ms as u32;
    }
    let k = GEOMETRIC_LOWER_BOUNDS.partition_point(|&lo| lo <= latency_ms) - 1;
    // Lossless: k < GEOMETRIC_BUCKETS = 720.
    EXACT_BELOW_MS as u32 + k as u32
}

/// The latencies bucket `bucket` holds: `[lower, upper)` in ms, `upper` being `None` for the
/// last, open-ended bucket. Buckets beyond the last are treated as the last.
pub fn latency_bucket_bounds(bucket: u32) -> (u64, Option<u64>) {
    let bucket = u64::from(bucket);
    if bucket < EXACT_BELOW_MS {
        return (bucket, Some(bucket + 1));
    }
    let k = usize::try_from(bucket - EXACT_BELOW_MS)
        .unwrap_or(usize::MAX)
        .min(GEOMETRIC_BUCKETS - 1);
    (
        GEOMETRIC_LOWER_BOUNDS[k],
        GEOMETRIC_LOWER_BOUNDS.get(k + 1).copied(),
    )
}

/// The latency a bucket stands for: the latency itself below 100 ms, else the middle of the
/// bucket's range rounded down (within 1.25 % of every latency in it); the lower bound of the
/// open-ended last bucket.
pub fn latency_bucket_value(bucket: u32) -> u64 {
    match latency_bucket_bounds(bucket) {
        (lo, Some(hi)) => lo + (hi - 1 - lo) / 2,
        (lo, None) => lo,
    }
}

/// The nearest-rank `p`-th percentile of a histogram of `(bucket, count)` in ascending bucket
/// order: the value of the smallest bucket such that at least `p` % of the samples are in it or
/// below, i.e. the sample of rank `ceil(p/100 · n)` (at least 1). `p` is clamped to 0..=100.
/// `None` when the histogram is empty.
pub fn percentile(histogram: &[(u32, u64)], p: u32) -> Option<u64> {
    let total: u64 = histogram.iter().map(|&(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let p = u128::from(p.min(100));
    let rank = (p * u128::from(total)).div_ceil(100).max(1);
    let mut seen = 0u128;
    for &(bucket, n) in histogram {
        seen += u128::from(n);
        if seen >= rank {
            return Some(latency_bucket_value(bucket));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

fn delivery_record(site_id: &str, at_ms: i64, kind: Kind, report: &Report) -> Record {
    Record::Delivery(NewDelivery {
        site_id: site_id.to_owned(),
        at_ms,
        is_test: kind == Kind::Test,
        outcome: report.outcome.as_str(),
        http_status: report.http_status,
        latency_ms: report.latency_ms,
        latency_bucket: latency_bucket(report.latency_ms),
    })
}

fn rejection_record(site_id: &str, at_ms: i64, reason: &'static str) -> Record {
    Record::Rejection(NewRejection {
        site_id: site_id.to_owned(),
        at_ms,
        reason,
    })
}

/// Records one delivery on `conn`: its row and its rollups, atomically (joining the caller's
/// transaction when there is one, so many can be recorded in one). The blocking twin of
/// [`record_delivery`].
pub fn record_delivery_sync(
    conn: &Connection,
    site_id: &str,
    at_ms: i64,
    kind: Kind,
    report: &Report,
) -> Result<(), StoreError> {
    deliveries::insert(conn, delivery_record(site_id, at_ms, kind, report))
}

/// Records one delivery that finished at `at_ms`, with its rollups, and waits until it is
/// committed (a test delivery, whose result page reads it back at once).
pub async fn record_delivery(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    kind: Kind,
    report: &Report,
) -> Result<(), StoreError> {
    store.record(delivery_record(site_id, at_ms, kind, report));
    store.flush().await
}

/// Queues one delivery record for the batch writer's next commit (a few milliseconds at most)
/// without waiting for it: the visitor's answer depends on the delivery, not on its record. A
/// graceful shutdown commits every queued record before the process exits.
pub fn record_delivery_later(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    kind: Kind,
    report: &Report,
) {
    store.record(delivery_record(site_id, at_ms, kind, report));
}

/// Counts one rejected submission on `conn`, in the UTC hour of `at_ms`. The blocking twin of
/// [`record_rejection`].
pub fn record_rejection_sync(
    conn: &Connection,
    site_id: &str,
    at_ms: i64,
    reason: &'static str,
) -> Result<(), StoreError> {
    deliveries::insert(conn, rejection_record(site_id, at_ms, reason))
}

/// Queues one rejected submission, counted by its error code, for the batch writer's next
/// commit, like [`record_delivery_later`].
pub fn record_rejection(store: &Store, site_id: &str, at_ms: i64, reason: &'static str) {
    store.record(rejection_record(site_id, at_ms, reason));
}

// ---------------------------------------------------------------------------------------------
// Ranges and scopes
// ---------------------------------------------------------------------------------------------

fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

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

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// One bucket of the series: real deliveries that finished in `[start_ms, start_ms + bucket_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The bucket's start, epoch ms.
    pub start_ms: i64,
    /// Real deliveries delivered.
    pub delivered: u64,
    /// Real deliveries failed.
    pub failed: u64,
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
    /// A test delivery (labelled as such, SPEC §6).
    pub is_test: bool,
    /// The outcome category.
    pub outcome: Outcome,
    /// The HTTP status, when the webhook answered.
    pub http_status: Option<u16>,
    /// Latency in ms.
    pub latency_ms: u64,
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
    /// Real deliveries delivered.
    pub delivered: u64,
    /// Real deliveries failed, any category.
    pub failed: u64,
    /// `delivered / (delivered + failed)`; `None` without real deliveries.
    pub success_rate: Option<f64>,
    /// Proof-of-work challenges issued by the built-in verifier.
    pub challenges_issued: u64,
    /// Challenges solved (redeemed for a token).
    pub challenges_solved: u64,
    /// Median latency of real deliveries (delivered or failed), ms.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency of real deliveries (delivered or failed), ms.
    pub p95_ms: Option<u64>,
    /// Rejected submissions.
    pub rejected: u64,
    /// Rejected submissions by reason (error code), most first.
    pub rejected_by_reason: Vec<(String, u64)>,
    /// Real failures per category: all eight, in [`Outcome::ALL`] order, zeros included.
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

fn parse_outcome(name: &str) -> Result<Outcome, StoreError> {
    Outcome::parse(name).ok_or_else(|| StoreError::Corrupt(format!("delivery outcome {name:?}")))
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|&o| o == outcome)
        .unwrap_or_default()
}

/// Answers the statistics of `scope` over `range` at time `now_ms`, from one consistent
/// snapshot. Blocking: call it off the async workers.
pub fn query(
    store: &Store,
    scope: Scope<'_>,
    range: Range,
    now_ms: i64,
) -> Result<Stats, StoreError> {
    store.read(|c| deliveries::in_snapshot(c, |c| query_on(c, scope.into(), range, now_ms)))
}

fn query_on(
    conn: &Connection,
    set: SiteSet<'_>,
    range: Range,
    now_ms: i64,
) -> Result<Stats, StoreError> {
    let first = match range {
        Range::All => deliveries::first_hour(conn, set)?,
        _ => None,
    };
    let (start_ms, end_ms) = range.bounds(now_ms, first);
    let bucket_ms = range.bucket_ms(start_ms, end_ms);
    // Ranges of several days read daily rollups: a few rows per day however busy the site.
    let grain = if bucket_ms >= DAY_MS {
        Grain::Day
    } else {
        Grain::Hour
    };
    let points = end_ms
        .saturating_sub(start_ms)
        .saturating_add(bucket_ms - 1)
        .checked_div(bucket_ms)
        .unwrap_or(0)
        .clamp(0, MAX_POINTS);
    let mut series: Vec<Point> = (0..points)
        .map(|i| Point {
            start_ms: start_ms.saturating_add(i.saturating_mul(bucket_ms)),
            delivered: 0,
            failed: 0,
        })
        .collect();

    let mut by_outcome = [0u64; Outcome::ALL.len()];
    let mut test_deliveries = 0u64;
    for slot in deliveries::slot_counts(conn, set, grain, start_ms, end_ms, bucket_ms)? {
        let outcome = parse_outcome(&slot.outcome)?;
        if slot.is_test {
            test_deliveries += slot.count;
            continue;
        }
        by_outcome[outcome_index(outcome)] += slot.count;
        let point = usize::try_from(slot.slot)
            .ok()
            .and_then(|i| series.get_mut(i));
        if let Some(point) = point {
            if outcome == Outcome::Delivered {
                point.delivered += slot.count;
            } else {
                point.failed += slot.count;
            }
        }
    }
    let delivered = by_outcome[outcome_index(Outcome::Delivered)];
    let failures_by_category: Vec<(Outcome, u64)> = Outcome::ALL
        .into_iter()
        .filter(|&o| o != Outcome::Delivered)
        .map(|o| (o, by_outcome[outcome_index(o)]))
        .collect();
    let failed = failures_by_category.iter().map(|&(_, n)| n).sum::<u64>();
    let success_rate = match delivered + failed {
        0 => None,
        // Counts stay far below 2^52, where f64 is exact.
        total => Some(delivered as f64 / total as f64),
    };

    // All time covers every recorded day, so the all-time histogram is that sum in one row per
    // bucket (only deliveries dated after today, by a clock set back, would differ).
    let days = (range != Range::All).then_some((start_ms, end_ms));
    let histogram = deliveries::latency_histogram(conn, set, days)?;
    let rejected_by_reason = deliveries::rejections_by_reason(conn, set, grain, start_ms, end_ms)?;
    let challenges = deliveries::challenge_counts(conn, set, start_ms, end_ms)?;
    let recent = deliveries::latest(conn, set, (start_ms, end_ms), RECENT)?
        .into_iter()
        .map(|row| {
            Ok(RecentDelivery {
                at_ms: row.at_ms,
                outcome: parse_outcome(&row.outcome)?,
                http_status: row
                    .http_status
                    .map(|s| {
                        u16::try_from(s)
                            .map_err(|_| StoreError::Corrupt(format!("HTTP status {s}")))
                    })
                    .transpose()?,
                latency_ms: u64::try_from(row.latency_ms).unwrap_or(0),
                site_id: row.site_id,
                site_name: row.site_name,
                is_test: row.is_test,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    Ok(Stats {
        range,
        start_ms,
        end_ms,
        delivered,
        failed,
        success_rate,
        challenges_issued: challenges.issued,
        challenges_solved: challenges.solved,
        p50_ms: percentile(&histogram, 50),
        p95_ms: percentile(&histogram, 95),
        rejected: rejected_by_reason.iter().map(|&(_, n)| n).sum(),
        rejected_by_reason,
        failures_by_category,
        test_deliveries,
        bucket_ms,
        series,
        recent,
    })
}

/// Today's real deliveries `(delivered, failed)` for every site of an account, keyed by site
/// id; sites without any today are present with zeros. Blocking: call it off the async workers.
pub fn today_counts(
    store: &Store,
    account_id: i64,
    now_ms: i64,
) -> Result<HashMap<String, (u64, u64)>, StoreError> {
    let (start_ms, end_ms) = Range::Today.bounds(now_ms, None);
    store.read(|c| {
        deliveries::in_snapshot(c, |c| {
            let mut counts: HashMap<String, (u64, u64)> =
                deliveries::account_site_ids(c, account_id)?
                    .into_iter()
                    .map(|id| (id, (0, 0)))
                    .collect();
            for (site_id, outcome, n) in
                deliveries::real_counts_by_site(c, account_id, start_ms, end_ms)?
            {
                let entry = counts.entry(site_id).or_default();
                if parse_outcome(&outcome)? == Outcome::Delivered {
                    entry.0 += n;
                } else {
                    entry.1 += n;
                }
            }
            Ok(counts)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Chart
// ---------------------------------------------------------------------------------------------

/// The UTC calendar date of a day number since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` of the UTC day holding `ms`.
fn utc_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `MM-DD` of the UTC day holding `ms`.
fn utc_month_day(ms: i64) -> String {
    let (_, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{m:02}-{d:02}")
}

/// `HH:00` of the UTC hour holding `ms`.
fn utc_hour(ms: i64) -> String {
    format!("{:02}:00", ms.rem_euclid(DAY_MS) / HOUR_MS)
}

/// Escapes text for XML content and attribute values.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The smallest 1-2-5 step such that four steps reach `max` (at least 1).
fn axis_step(max: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let step = magnitude.saturating_mul(factor);
            if step.saturating_mul(4) >= max {
                return step;
            }
        }
        if magnitude > u64::MAX / 10 {
            return u64::MAX;
        }
        magnitude *= 10;
    }
}

const CHART_WIDTH: f64 = 720.0;
const CHART_HEIGHT: f64 = 260.0;
const PLOT_LEFT: f64 = 52.0;
const PLOT_RIGHT: f64 = 12.0;
const PLOT_TOP: f64 = 30.0;
const PLOT_BOTTOM: f64 = 28.0;
const COLOR_DELIVERED: &str = "#2e7d32";
const COLOR_FAILED: &str = "#c62828";
const COLOR_AXIS: &str = "#555555";
const COLOR_GRID: &str = "#e0e0e0";

/// The series as a server-rendered SVG (no JavaScript): stacked bars of delivered (bottom) and
/// failed real deliveries per bucket, UTC axis labels (`HH:00` hourly, `MM-DD` daily or weekly),
/// a `<title>` and an `aria-label` summarising it, and a tooltip per bar. Bars carry the CSS
/// classes `bar-delivered` / `bar-failed` and `fill` attributes that work without CSS; the
/// `viewBox` is 720 wide and the element scales to its container (`width="100%"`).
pub fn chart_svg(stats: &Stats) -> String {
    let plot_w = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT;
    let plot_h = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM;
    let hourly = stats.bucket_ms == HOUR_MS;
    let per = match stats.bucket_ms {
        HOUR_MS => "hour",
        DAY_MS => "day",
        _ => "week",
    };
    let last_day = stats.end_ms.saturating_sub(1);
    let dates = if day_start(stats.start_ms) == day_start(last_day) {
        utc_date(stats.start_ms)
    } else {
        format!("{} to {}", utc_date(stats.start_ms), utc_date(last_day))
    };
    let summary = format!(
        "Real deliveries per {per}, {} (UTC, {dates}): {} delivered, {} failed",
        stats.range.label(),
        stats.delivered,
        stats.failed
    );
    let summary = escape_xml(&summary);

    let max_total = stats
        .series
        .iter()
        .map(|p| p.delivered.saturating_add(p.failed))
        .max()
        .unwrap_or(0);
    let step = axis_step(max_total);
    // Chart geometry only needs pixel precision.
    let y_max = step.saturating_mul(4) as f64;
    let height_of = |n: u64| plot_h * (n as f64) / y_max;

    let mut svg = String::with_capacity(4096 + stats.series.len() * 300);
    svg.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"stats-chart\" viewBox=\"0 0 \
         {CHART_WIDTH} {CHART_HEIGHT}\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" \
         role=\"img\" aria-label=\"{summary}\" font-family=\"sans-serif\" font-size=\"11\">\
         <title>{summary}</title>"
    ));

    // Legend.
    let legend_x = CHART_WIDTH - PLOT_RIGHT - 150.0;
    svg.push_str(&format!(
        "<g class=\"legend\"><rect class=\"bar-delivered\" fill=\"{COLOR_DELIVERED}\" \
         x=\"{legend_x:.1}\" y=\"8\" width=\"10\" height=\"10\"/><text x=\"{:.1}\" y=\"17\" \
         fill=\"{COLOR_AXIS}\">Delivered</text><rect class=\"bar-failed\" \
         fill=\"{COLOR_FAILED}\" x=\"{:.1}\" y=\"8\" width=\"10\" height=\"10\"/><text \
         x=\"{:.1}\" y=\"17\" fill=\"{COLOR_AXIS}\">Failed</text></g>",
        legend_x + 14.0,
        legend_x + 84.0,
        legend_x + 98.0
    ));

    // Horizontal grid and the count axis.
    for i in 0..=4u64 {
        let y = PLOT_TOP + plot_h - plot_h * (i as f64) / 4.0;
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
             stroke=\"{}\"/><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" \
             fill=\"{COLOR_AXIS}\">{}</text>",
            PLOT_LEFT + plot_w,
            if i == 0 { COLOR_AXIS } else { COLOR_GRID },
            PLOT_LEFT - 6.0,
            y + 4.0,
            step.saturating_mul(i)
        ));
    }

    // Bars and time labels.
    let n = stats.series.len().max(1);
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.8).max(slot.min(1.0));
    let label_every = n.div_ceil(8);
    for (i, point) in stats.series.iter().enumerate() {
        let x = PLOT_LEFT + slot * i as f64;
        let bar_x = x + (slot - bar_w) / 2.0;
        let base = PLOT_TOP + plot_h;
        if point.delivered > 0 || point.failed > 0 {
            let when = if hourly {
                format!("{} {}", utc_date(point.start_ms), utc_hour(point.start_ms))
            } else if stats.bucket_ms == WEEK_MS {
                format!("week of {}", utc_date(point.start_ms))
            } else {
                utc_date(point.start_ms)
            };
            svg.push_str(&format!(
                "<g><title>{}: {} delivered, {} failed</title>",
                escape_xml(&when),
                point.delivered,
                point.failed
            ));
            let h_delivered = height_of(point.delivered);
            let h_failed = height_of(point.failed);
            if point.delivered > 0 {
                svg.push_str(&format!(
                    "<rect class=\"bar-delivered\" fill=\"{COLOR_DELIVERED}\" x=\"{bar_x:.2}\" \
                     y=\"{:.2}\" width=\"{bar_w:.2}\" height=\"{h_delivered:.2}\"/>",
                    base - h_delivered
                ));
            }
            if point.failed > 0 {
                svg.push_str(&format!(
                    "<rect class=\"bar-failed\" fill=\"{COLOR_FAILED}\" x=\"{bar_x:.2}\" \
                     y=\"{:.2}\" width=\"{bar_w:.2}\" height=\"{h_failed:.2}\"/>",
                    base - h_delivered - h_failed
                ));
            }
            svg.push_str("</g>");
        }
        // Every `label_every`-th bar from the first, and always the last one (the latest bucket),
        // dropping a regular label too close before it.
        let last = n - 1;
        if i == last || (i.is_multiple_of(label_every) && last - i >= label_every.div_ceil(2)) {
            let label = if hourly {
                utc_hour(point.start_ms)
            } else {
                utc_month_day(point.start_ms)
            };
            svg.push_str(&format!(
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 fill=\"{COLOR_AXIS}\">{}</text>",
                x + slot / 2.0,
                base + 16.0,
                escape_xml(&label)
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_below_100_ms_have_exact_buckets() {
        for ms in 0..EXACT_BELOW_MS {
            let b = latency_bucket(ms);
            assert_eq!(u64::from(b), ms);
            assert_eq!(latency_bucket_value(b), ms);
            assert_eq!(latency_bucket_bounds(b), (ms, Some(ms + 1)));
        }
        assert_eq!(latency_bucket(100), 100);
    }

    #[test]
    fn every_bucket_is_the_inverse_of_its_bounds_and_at_most_2_5_percent_wide() {
        for b in 0..LATENCY_BUCKETS {
            let (lo, hi) = latency_bucket_bounds(b);
            assert_eq!(latency_bucket(lo), b, "lower bound of bucket {b}");
            let value = latency_bucket_value(b);
            assert_eq!(latency_bucket(value), b, "value of bucket {b}");
            match hi {
                Some(hi) => {
                    assert!(hi > lo);
                    assert_eq!(latency_bucket(hi - 1), b, "last value of bucket {b}");
                    assert_eq!(latency_bucket(hi), b + 1, "first value after bucket {b}");
                    if lo >= EXACT_BELOW_MS {
                        // Width at most 2.5 % of the lower bound.
                        assert!((hi - lo) * 40 <= lo, "bucket {b}: [{lo}, {hi})");
                        assert!((hi - lo) * 60 >= lo, "bucket {b}: [{lo}, {hi})");
                    }
                }
                None => assert_eq!(b, LATENCY_BUCKETS - 1),
            }
        }
    }

    #[test]
    fn bucket_values_stay_within_1_25_percent_of_the_latency() {
        for ms in (100..20_000).chain([65_432, 1_000_000, 123_456_789]) {
            let v = latency_bucket_value(latency_bucket(ms));
            let diff = v.abs_diff(ms);
            assert!(diff * 80 <= ms + 80, "{ms} ms stands as {v} ms");
        }
    }

    #[test]
    fn huge_latencies_land_in_the_last_bucket() {
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket_bounds(u32::MAX).1, None);
        assert_eq!(latency_bucket(4_053_388_504), LATENCY_BUCKETS - 1);
        assert_eq!(latency_bucket(4_053_388_503), LATENCY_BUCKETS - 2);
    }

    #[test]
    fn known_bucket_boundaries() {
        assert_eq!(latency_bucket_bounds(100), (100, Some(102)));
        assert_eq!(latency_bucket_bounds(101), (102, Some(104)));
        assert_eq!(
            latency_bucket_bounds(latency_bucket(1000)),
            (977, Some(1001))
        );
        assert_eq!(
            latency_bucket_bounds(latency_bucket(5000)),
            (4897, Some(5019))
        );
        assert_eq!(latency_bucket_value(latency_bucket(5000)), 4957);
        assert_eq!(
            latency_bucket_bounds(LATENCY_BUCKETS - 1),
            (4_053_388_504, None)
        );
    }

    #[test]
    fn percentile_is_nearest_rank() {
        // Samples 1..=20, one each.
        let h: Vec<(u32, u64)> = (1..=20).map(|v| (v, 1)).collect();
        assert_eq!(percentile(&h, 50), Some(10));
        assert_eq!(percentile(&h, 95), Some(19));
        assert_eq!(percentile(&h, 100), Some(20));
        assert_eq!(percentile(&h, 0), Some(1));
        assert_eq!(percentile(&h, 1), Some(1));
        // Rank ceil(0.5 · 3) = 2 of [10, 20, 30].
        assert_eq!(percentile(&[(10, 1), (20, 1), (30, 1)], 50), Some(20));
        // Rank ceil(0.95 · 10) = 10: the largest of ten.
        assert_eq!(percentile(&[(5, 9), (80, 1)], 95), Some(80));
        assert_eq!(percentile(&[(5, 9), (80, 1)], 50), Some(5));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[(7, 0)], 50), None);
    }

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(utc_date(1_717_200_000_000), "2024-06-01");
        assert_eq!(utc_hour(1_717_200_000_000 + 13 * HOUR_MS + 59_000), "13:00");
    }

    #[test]
    fn axis_steps_follow_1_2_5() {
        assert_eq!(axis_step(0), 1);
        assert_eq!(axis_step(4), 1);
        assert_eq!(axis_step(5), 2);
        assert_eq!(axis_step(9), 5);
        assert_eq!(axis_step(21), 10);
        assert_eq!(axis_step(u64::MAX).saturating_mul(4), u64::MAX);
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(escape_xml("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
    }
}

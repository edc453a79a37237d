//! Range queries (SPEC §6): what a range reads (its bounds, series buckets and rollup grain), and
//! the [`Stats`] and today's per-site counts made of the rows the store reads in one snapshot.

use std::collections::{BTreeMap, HashMap};

use crate::delivery::{Destination, Outcome};
use crate::store::StoreError;
use crate::store::deliveries::{Grain, RangeQuery, RangeRows, SiteCounts};
use crate::time::DAY_MS;

use super::latency::percentile;
use super::{DestinationStats, PerDestination, Point, Range, RecentDelivery, Stats};

/// A bound on the series length, whatever timestamps the database holds.
const MAX_POINTS: i64 = 100_000;
/// How many deliveries the latest list shows.
const RECENT: usize = 20;

fn parse_outcome(name: &str) -> Result<Outcome, StoreError> {
    Outcome::parse(name).ok_or_else(|| StoreError::Corrupt(format!("delivery outcome {name:?}")))
}

fn parse_destination(name: &str) -> Result<Destination, StoreError> {
    Destination::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery destination {name:?}")))
}

fn rate(delivered: u64, failed: u64) -> Option<f64> {
    match delivered + failed {
        0 => None,
        // Counts stay far below 2^52, where f64 is exact.
        total => Some(delivered as f64 / total as f64),
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|&o| o == outcome)
        .unwrap_or_default()
}

/// What `range` reads at time `now_ms`, given the first recorded hour of the scope (read only
/// for All time).
pub(super) fn plan(range: Range, now_ms: i64, first_ms: Option<i64>) -> RangeQuery {
    let (start_ms, end_ms) = range.bounds(now_ms, first_ms);
    let bucket_ms = range.bucket_ms(start_ms, end_ms);
    // Ranges of several days read daily rollups: a few rows per day however busy the site.
    let grain = if bucket_ms >= DAY_MS {
        Grain::Day
    } else {
        Grain::Hour
    };
    RangeQuery {
        start_ms,
        end_ms,
        slot_ms: bucket_ms,
        grain,
        // All time covers every recorded day, so the all-time histogram is that sum in one row
        // per bucket (only deliveries dated after today, by a clock set back, would differ).
        latency_days: (range != Range::All).then_some((start_ms, end_ms)),
        latest: RECENT,
    }
}

/// The statistics of `range` made of the rows read for it.
pub(super) fn stats_of(range: Range, rows: RangeRows) -> Result<Stats, StoreError> {
    let RangeQuery {
        start_ms,
        end_ms,
        slot_ms: bucket_ms,
        ..
    } = rows.query;
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
            destinations: PerDestination::default(),
        })
        .collect();

    let mut by_outcome: PerDestination<[u64; Outcome::ALL.len()]> = PerDestination::default();
    let mut test_deliveries = 0u64;
    for slot in rows.slots {
        let outcome = parse_outcome(&slot.outcome)?;
        let destination = parse_destination(&slot.destination)?;
        if slot.is_test {
            test_deliveries += slot.count;
            continue;
        }
        by_outcome.get_mut(destination)[outcome_index(outcome)] += slot.count;
        let point = usize::try_from(slot.slot)
            .ok()
            .and_then(|i| series.get_mut(i));
        if let Some(point) = point {
            let tally = point.destinations.get_mut(destination);
            if outcome == Outcome::Delivered {
                point.delivered += slot.count;
                tally.delivered += slot.count;
            } else {
                point.failed += slot.count;
                tally.failed += slot.count;
            }
        }
    }
    let mut histograms: PerDestination<Vec<(u32, u64)>> = PerDestination::default();
    let mut histogram: BTreeMap<u32, u64> = BTreeMap::new();
    for (destination, bucket, n) in rows.latency {
        // Read in ascending bucket order per destination, as `percentile` wants them.
        histograms
            .get_mut(parse_destination(&destination)?)
            .push((bucket, n));
        *histogram.entry(bucket).or_default() += n;
    }
    let histogram: Vec<(u32, u64)> = histogram.into_iter().collect();
    let of_destination = |destination: Destination| {
        let counts = by_outcome.get(destination);
        let failures_by_category: Vec<(Outcome, u64)> = destination
            .outcomes()
            .iter()
            .filter(|&&o| o != Outcome::Delivered)
            .map(|&o| (o, counts[outcome_index(o)]))
            .collect();
        let delivered = counts[outcome_index(Outcome::Delivered)];
        let failed = failures_by_category.iter().map(|&(_, n)| n).sum::<u64>();
        let latency = histograms.get(destination);
        DestinationStats {
            delivered,
            failed,
            success_rate: rate(delivered, failed),
            p50_ms: percentile(latency, 50),
            p95_ms: percentile(latency, 95),
            failures_by_category,
        }
    };
    let destinations = PerDestination {
        webhook: of_destination(Destination::Webhook),
        email: of_destination(Destination::Email),
    };
    let failures_by_category: Vec<(Outcome, u64)> = Outcome::ALL
        .into_iter()
        .filter(|&o| o != Outcome::Delivered)
        .map(|o| {
            let i = outcome_index(o);
            (o, by_outcome.webhook[i] + by_outcome.email[i])
        })
        .collect();
    let delivered = destinations.webhook.delivered + destinations.email.delivered;
    let failed = destinations.webhook.failed + destinations.email.failed;
    let success_rate = rate(delivered, failed);

    let rejected_by_reason = rows.rejections;
    let challenges = rows.challenges;
    let recent = rows
        .latest
        .into_iter()
        .map(|row| {
            Ok(RecentDelivery {
                at_ms: row.at_ms,
                destination: parse_destination(&row.destination)?,
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
        destinations,
        success_rate,
        challenges_issued: challenges.issued,
        challenges_solved: challenges.solved,
        verification: super::Verification::of(&challenges, &rejected_by_reason),
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

/// Real deliveries `(delivered, failed)` per site id, every site of the account present.
pub(super) fn site_totals(rows: SiteCounts) -> Result<HashMap<String, (u64, u64)>, StoreError> {
    let mut counts: HashMap<String, (u64, u64)> =
        rows.site_ids.into_iter().map(|id| (id, (0, 0))).collect();
    for (site_id, outcome, n) in rows.counts {
        let entry = counts.entry(site_id).or_default();
        if parse_outcome(&outcome)? == Outcome::Delivered {
            entry.0 += n;
        } else {
            entry.1 += n;
        }
    }
    Ok(counts)
}

//! SQL for delivery records, rejection counters and the statistics rollups that answer range
//! queries without scanning `deliveries`: counts per hour and per day (`delivery_hourly`,
//! `delivery_daily`, `rejections`, `rejections_daily`) and latency histograms per day and over
//! all time (`latency_daily`, `latency_total`), the delivery ones per destination (`webhook` or
//! `email`, SPEC §10); and the reads of one statistics query, run in
//! one snapshot ([`read_range`], [`read_site_counts`]).

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{Store, StoreError};
use crate::time::{HOUR_MS, day_start};

/// One delivery to record. Owned, so that it can wait in the writer's queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The site.
    pub site_id: String,
    /// When it finished, epoch ms.
    pub at_ms: i64,
    /// The destination's name (`webhook` or `email`).
    pub destination: &'static str,
    /// A test delivery.
    pub is_test: bool,
    /// The outcome category name.
    pub outcome: &'static str,
    /// The HTTP status, if the webhook answered.
    pub http_status: Option<u16>,
    /// Latency in ms.
    pub latency_ms: u64,
    /// The latency histogram bucket of `latency_ms` (see `stats::latency_bucket`).
    pub latency_bucket: u32,
}

/// One rejected submission to count.
#[derive(Debug, Clone)]
pub struct NewRejection {
    /// The site.
    pub site_id: String,
    /// When, epoch ms.
    pub at_ms: i64,
    /// The error code.
    pub reason: &'static str,
}

/// A statistics record: a delivery (its row and its rollups) or a rejection (its counters).
#[derive(Debug, Clone)]
pub enum Record {
    /// A delivery, real or test.
    Delivery(NewDelivery),
    /// A rejected submission.
    Rejection(NewRejection),
}

impl Record {
    fn site_id(&self) -> &str {
        match self {
            Record::Delivery(d) => &d.site_id,
            Record::Rejection(r) => &r.site_id,
        }
    }
}

/// The start of the UTC hour holding `at_ms`.
fn hour_of(at_ms: i64) -> i64 {
    at_ms - at_ms.rem_euclid(HOUR_MS)
}

/// Records one delivery or rejection atomically: see `write_records`.
pub fn insert(conn: &Connection, record: Record) -> Result<(), StoreError> {
    write_records(conn, std::slice::from_ref(&record)).map(|_| ())
}

/// Increments of the rollup rows a batch of records touches, summed before they are written so
/// that each rollup row is updated once per batch however many records it counts.
#[derive(Default)]
struct Rollups<'a> {
    hourly: BTreeMap<(&'a str, i64, &'static str, bool, &'static str), i64>,
    daily: BTreeMap<(&'a str, i64, &'static str, bool, &'static str), i64>,
    latency_daily: BTreeMap<(&'a str, i64, &'static str, u32), i64>,
    latency_total: BTreeMap<(&'a str, &'static str, u32), i64>,
    rejections: BTreeMap<(&'a str, i64, &'static str), i64>,
    rejections_daily: BTreeMap<(&'a str, i64, &'static str), i64>,
}

impl<'a> Rollups<'a> {
    fn add(&mut self, record: &'a Record) {
        match record {
            Record::Delivery(d) => {
                let (site, to) = (d.site_id.as_str(), d.destination);
                *self
                    .hourly
                    .entry((site, hour_of(d.at_ms), to, d.is_test, d.outcome))
                    .or_default() += 1;
                *self
                    .daily
                    .entry((site, day_start(d.at_ms), to, d.is_test, d.outcome))
                    .or_default() += 1;
                // SPEC §6: latency tiles describe real deliveries only.
                if !d.is_test {
                    *self
                        .latency_daily
                        .entry((site, day_start(d.at_ms), to, d.latency_bucket))
                        .or_default() += 1;
                    *self
                        .latency_total
                        .entry((site, to, d.latency_bucket))
                        .or_default() += 1;
                }
            }
            Record::Rejection(r) => {
                let site = r.site_id.as_str();
                *self
                    .rejections
                    .entry((site, hour_of(r.at_ms), r.reason))
                    .or_default() += 1;
                *self
                    .rejections_daily
                    .entry((site, day_start(r.at_ms), r.reason))
                    .or_default() += 1;
            }
        }
    }

    fn write(&self, conn: &Connection) -> Result<(), StoreError> {
        upsert_each(
            conn,
            "INSERT INTO delivery_hourly (site_id, hour_ms, destination, is_test, outcome, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site_id, hour_ms, destination, is_test, outcome)
             DO UPDATE SET count = count + excluded.count",
            self.hourly
                .iter()
                .map(|(&(s, h, d, t, o), &n)| (s, h, d, t, o, n)),
        )?;
        upsert_each(
            conn,
            "INSERT INTO delivery_daily (site_id, day_ms, destination, is_test, outcome, count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (site_id, day_ms, destination, is_test, outcome)
             DO UPDATE SET count = count + excluded.count",
            self.daily
                .iter()
                .map(|(&(s, day, d, t, o), &n)| (s, day, d, t, o, n)),
        )?;
        upsert_each(
            conn,
            "INSERT INTO latency_daily (site_id, day_ms, destination, bucket, count)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (site_id, day_ms, destination, bucket)
             DO UPDATE SET count = count + excluded.count",
            self.latency_daily
                .iter()
                .map(|(&(s, day, d, b), &n)| (s, day, d, b, n)),
        )?;
        upsert_each(
            conn,
            "INSERT INTO latency_total (site_id, destination, bucket, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (site_id, destination, bucket) DO UPDATE SET count = count + excluded.count",
            self.latency_total
                .iter()
                .map(|(&(s, d, b), &n)| (s, d, b, n)),
        )?;
        upsert_each(
            conn,
            "INSERT INTO rejections (site_id, hour_ms, reason, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (site_id, hour_ms, reason) DO UPDATE SET count = count + excluded.count",
            self.rejections.iter().map(|(&(s, h, r), &n)| (s, h, r, n)),
        )?;
        upsert_each(
            conn,
            "INSERT INTO rejections_daily (site_id, day_ms, reason, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (site_id, day_ms, reason) DO UPDATE SET count = count + excluded.count",
            self.rejections_daily
                .iter()
                .map(|(&(s, d, r), &n)| (s, d, r, n)),
        )
    }
}

/// Runs one prepared statement once per row of parameters.
fn upsert_each<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    rows: impl IntoIterator<Item = P>,
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    for row in rows {
        statement.execute(row)?;
    }
    Ok(())
}

/// True when the site still exists (a site deleted while its records waited leaves them without
/// a home; they are dropped with it).
fn site_exists(conn: &Connection, site_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sites WHERE id = ?1")?
        .query_row([site_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Writes a batch of records: one row per delivery, and the rollups summed over the batch (each
/// rollup row updated once). All or nothing: when `conn` is already inside a transaction (the
/// batch writer, a seeding loop) the statements join it and the caller commits; otherwise this
/// opens its own. Records of sites that no longer exist are skipped; returns how many were.
pub(super) fn write_records(conn: &Connection, records: &[Record]) -> Result<usize, StoreError> {
    if conn.is_autocommit() {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let skipped = write_records_in(&tx, records)?;
        tx.commit()?;
        Ok(skipped)
    } else {
        write_records_in(conn, records)
    }
}

fn write_records_in(conn: &Connection, records: &[Record]) -> Result<usize, StoreError> {
    let mut rollups = Rollups::default();
    let mut known: Option<(&str, bool)> = None;
    let mut skipped = 0;
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries
             (site_id, at_ms, destination, is_test, outcome, http_status, latency_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for record in records {
        let site = record.site_id();
        let exists = match known {
            Some((id, exists)) if id == site => exists,
            _ => {
                let exists = site_exists(conn, site)?;
                known = Some((site, exists));
                exists
            }
        };
        if !exists {
            skipped += 1;
            continue;
        }
        if let Record::Delivery(d) = record {
            let latency = i64::try_from(d.latency_ms).unwrap_or(i64::MAX);
            insert.execute(params![
                d.site_id,
                d.at_ms,
                d.destination,
                d.is_test,
                d.outcome,
                d.http_status,
                latency
            ])?;
        }
        rollups.add(record);
    }
    rollups.write(conn)?;
    Ok(skipped)
}

/// Challenges issued and solved in one hour, and what else the verification endpoints count
/// (SPEC §12's site statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChallengeCount {
    /// Challenges issued.
    pub issued: u64,
    /// Challenges solved (redeemed).
    pub solved: u64,
    /// Redeems refused: a wrong, spent or expired challenge.
    pub redeem_failed: u64,
    /// Verification tokens accepted by siteverify or the form endpoint.
    pub tokens_accepted: u64,
    /// Verification tokens refused by siteverify (a known secret) or the form endpoint.
    pub tokens_refused: u64,
    /// Cap and widget requests refused by the rate limit.
    pub rate_limited: u64,
    /// Cap and widget requests refused for their origin.
    pub origin_refused: u64,
}

/// One event the verification endpoints count per site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// A challenge was issued.
    Issued,
    /// A challenge was solved and redeemed for a token.
    Solved,
    /// A redeem was refused.
    RedeemFailed,
    /// A verification token was accepted.
    TokenAccepted,
    /// A verification token was refused.
    TokenRefused,
    /// A Cap or widget request was over its rate limit.
    RateLimited,
    /// A Cap or widget request came from an origin the site does not allow.
    OriginRefused,
}

impl ChallengeCount {
    /// Counts one event.
    pub fn add(&mut self, event: Verification) {
        let counter = match event {
            Verification::Issued => &mut self.issued,
            Verification::Solved => &mut self.solved,
            Verification::RedeemFailed => &mut self.redeem_failed,
            Verification::TokenAccepted => &mut self.tokens_accepted,
            Verification::TokenRefused => &mut self.tokens_refused,
            Verification::RateLimited => &mut self.rate_limited,
            Verification::OriginRefused => &mut self.origin_refused,
        };
        *counter += 1;
    }
}

/// Challenge counts per site id and hour (epoch ms of the hour's start).
pub type ChallengeCounts =
    std::collections::HashMap<String, std::collections::BTreeMap<i64, ChallengeCount>>;

/// Adds counts to `challenge_hourly`; counts of sites deleted meanwhile are dropped.
pub(super) fn write_challenge_counts(
    conn: &Connection,
    counts: &ChallengeCounts,
) -> Result<(), StoreError> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO challenge_hourly (site_id, hour_ms, issued, solved, redeem_failed,
                                       tokens_accepted, tokens_refused, rate_limited,
                                       origin_refused)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?1)
         ON CONFLICT (site_id, hour_ms) DO UPDATE
         SET issued = issued + excluded.issued, solved = solved + excluded.solved,
             redeem_failed = redeem_failed + excluded.redeem_failed,
             tokens_accepted = tokens_accepted + excluded.tokens_accepted,
             tokens_refused = tokens_refused + excluded.tokens_refused,
             rate_limited = rate_limited + excluded.rate_limited,
             origin_refused = origin_refused + excluded.origin_refused",
    )?;
    for (site_id, hours) in counts {
        for (hour, count) in hours {
            let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            upsert.execute(params![
                site_id,
                hour,
                as_i64(count.issued),
                as_i64(count.solved),
                as_i64(count.redeem_failed),
                as_i64(count.tokens_accepted),
                as_i64(count.tokens_refused),
                as_i64(count.rate_limited),
                as_i64(count.origin_refused)
            ])?;
        }
    }
    Ok(())
}

/// Challenges issued and solved in `[start_ms, end_ms)` by the sites of `set`.
pub(super) fn challenge_counts(
    conn: &Connection,
    set: SiteSet<'_>,
    start_ms: i64,
    end_ms: i64,
) -> Result<ChallengeCount, StoreError> {
    let (filter, value) = set.filter();
    let sql = format!(
        "SELECT COALESCE(SUM(issued), 0), COALESCE(SUM(solved), 0),
                COALESCE(SUM(redeem_failed), 0), COALESCE(SUM(tokens_accepted), 0),
                COALESCE(SUM(tokens_refused), 0), COALESCE(SUM(rate_limited), 0),
                COALESCE(SUM(origin_refused), 0)
         FROM challenge_hourly WHERE {filter} AND hour_ms >= ?2 AND hour_ms < ?3"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![value, start_ms, end_ms], |r| {
            Ok(ChallengeCount {
                issued: count(r.get(0)?),
                solved: count(r.get(1)?),
                redeem_failed: count(r.get(2)?),
                tokens_accepted: count(r.get(3)?),
                tokens_refused: count(r.get(4)?),
                rate_limited: count(r.get(5)?),
                origin_refused: count(r.get(6)?),
            })
        })?)
}

/// Which rollup a range query reads: hourly rows, or daily rows for ranges of whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    /// `delivery_hourly` and `rejections`.
    Hour,
    /// `delivery_daily` and `rejections_daily`; the range must be whole UTC days.
    Day,
}

impl Grain {
    fn deliveries(self) -> (&'static str, &'static str) {
        match self {
            Grain::Hour => ("delivery_hourly", "hour_ms"),
            Grain::Day => ("delivery_daily", "day_ms"),
        }
    }

    fn rejections(self) -> (&'static str, &'static str) {
        match self {
            Grain::Hour => ("rejections", "hour_ms"),
            Grain::Day => ("rejections_daily", "day_ms"),
        }
    }
}

/// The sites a statistics query covers.
#[derive(Debug, Clone, Copy)]
pub enum SiteSet<'a> {
    /// One site, by id.
    Site(&'a str),
    /// Every site of one account.
    Account(i64),
}

impl SiteSet<'_> {
    /// A condition on `site_id` (bound to `?1`) and the value to bind.
    fn filter(self) -> (&'static str, Value) {
        match self {
            SiteSet::Site(id) => ("site_id = ?1", Value::Text(id.to_owned())),
            SiteSet::Account(account) => (
                "site_id IN (SELECT id FROM sites WHERE account_id = ?1)",
                Value::Integer(account),
            ),
        }
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The earliest hour holding a delivery (real or test), a rejection or a challenge count of these
/// sites.
pub(super) fn first_hour(conn: &Connection, set: SiteSet<'_>) -> Result<Option<i64>, StoreError> {
    // Per site, MIN over the primary key's (site_id, hour_ms) prefix is a single index probe.
    let sql = match set {
        SiteSet::Site(_) => {
            "SELECT (SELECT MIN(hour_ms) FROM delivery_hourly WHERE site_id = ?1),
                    (SELECT MIN(hour_ms) FROM rejections WHERE site_id = ?1),
                    (SELECT MIN(hour_ms) FROM challenge_hourly WHERE site_id = ?1)"
        }
        SiteSet::Account(_) => {
            "SELECT MIN((SELECT MIN(hour_ms) FROM delivery_hourly WHERE site_id = s.id)),
                    MIN((SELECT MIN(hour_ms) FROM rejections WHERE site_id = s.id)),
                    MIN((SELECT MIN(hour_ms) FROM challenge_hourly WHERE site_id = s.id))
             FROM sites s WHERE s.account_id = ?1"
        }
    };
    let (_, value) = set.filter();
    let firsts: [Option<i64>; 3] = conn
        .prepare_cached(sql)?
        .query_row([value], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))?;
    Ok(firsts.into_iter().flatten().min())
}

/// Delivery counts of one slot of a range, for one destination, real or test, and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotCount {
    /// The slot: `(hour_ms - start) / slot_ms`.
    pub slot: i64,
    /// The destination's name.
    pub destination: String,
    /// Test deliveries.
    pub is_test: bool,
    /// The outcome category name.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// Delivery counts in `[start_ms, end_ms)` grouped into slots of `slot_ms` from `start_ms`,
/// destination, real/test and outcome, read from the `grain` rollup. `start_ms` and `slot_ms` are whole
/// hours, or whole days for [`Grain::Day`].
pub(super) fn slot_counts(
    conn: &Connection,
    set: SiteSet<'_>,
    grain: Grain,
    start_ms: i64,
    end_ms: i64,
    slot_ms: i64,
) -> Result<Vec<SlotCount>, StoreError> {
    let (filter, value) = set.filter();
    let (table, time) = grain.deliveries();
    let sql = format!(
        "SELECT ({time} - ?2) / ?4, destination, is_test, outcome, SUM(count) FROM {table}
         WHERE {filter} AND {time} >= ?2 AND {time} < ?3
         GROUP BY 1, 2, 3, 4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![value, start_ms, end_ms, slot_ms.max(1)], |r| {
        Ok(SlotCount {
            slot: r.get(0)?,
            destination: r.get(1)?,
            is_test: r.get(2)?,
            outcome: r.get(3)?,
            count: count(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latency histograms of real deliveries on the UTC days in `[start_ms, end_ms)`, or over
/// all time when `days` is `None`: `(destination, bucket, count)` by destination and ascending
/// bucket.
pub(super) fn latency_histogram(
    conn: &Connection,
    set: SiteSet<'_>,
    days: Option<(i64, i64)>,
) -> Result<Vec<(String, u32, u64)>, StoreError> {
    let (filter, value) = set.filter();
    let read = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            count(r.get(2)?),
        ))
    };
    let rows: Vec<(String, i64, u64)> = match days {
        Some((start_ms, end_ms)) => {
            let sql = format!(
                "SELECT destination, bucket, SUM(count) FROM latency_daily
                 WHERE {filter} AND day_ms >= ?2 AND day_ms < ?3
                 GROUP BY destination, bucket ORDER BY destination, bucket"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![value, start_ms, end_ms], read)?
                .collect::<Result<_, _>>()?
        }
        None => {
            let sql = format!(
                "SELECT destination, bucket, SUM(count) FROM latency_total WHERE {filter}
                 GROUP BY destination, bucket ORDER BY destination, bucket"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![value], read)?
                .collect::<Result<_, _>>()?
        }
    };
    rows.into_iter()
        .map(|(destination, bucket, n)| {
            u32::try_from(bucket)
                .map(|b| (destination, b, n))
                .map_err(|_| StoreError::Corrupt(format!("latency bucket {bucket}")))
        })
        .collect()
}

/// Rejected submissions in `[start_ms, end_ms)` by reason, most first, read from the `grain`
/// rollup.
pub(super) fn rejections_by_reason(
    conn: &Connection,
    set: SiteSet<'_>,
    grain: Grain,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    let (filter, value) = set.filter();
    let (table, time) = grain.rejections();
    let sql = format!(
        "SELECT reason, SUM(count) AS n FROM {table}
         WHERE {filter} AND {time} >= ?2 AND {time} < ?3
         GROUP BY reason ORDER BY n DESC, reason"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![value, start_ms, end_ms], |r| {
        Ok((r.get(0)?, count(r.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stored delivery, as the latest-deliveries list shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Row id (orders deliveries recorded in the same millisecond).
    pub id: i64,
    /// When it finished, epoch ms.
    pub at_ms: i64,
    /// The site's id.
    pub site_id: String,
    /// The site's name.
    pub site_name: String,
    /// The destination's name.
    pub destination: String,
    /// A test delivery.
    pub is_test: bool,
    /// The outcome category name.
    pub outcome: String,
    /// The HTTP status, if the webhook answered.
    pub http_status: Option<i64>,
    /// Latency in ms.
    pub latency_ms: i64,
}

fn latest_of_site(
    conn: &Connection,
    site_id: &str,
    (start_ms, end_ms): (i64, i64),
    limit: usize,
) -> Result<Vec<DeliveryRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.at_ms, d.site_id, s.name, d.destination, d.is_test, d.outcome,
                d.http_status, d.latency_ms
         FROM deliveries d JOIN sites s ON s.id = d.site_id
         WHERE d.site_id = ?1 AND d.at_ms >= ?2 AND d.at_ms < ?3
         ORDER BY d.at_ms DESC, d.id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            site_id,
            start_ms,
            end_ms,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok(DeliveryRow {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                site_id: r.get(2)?,
                site_name: r.get(3)?,
                destination: r.get(4)?,
                is_test: r.get(5)?,
                outcome: r.get(6)?,
                http_status: r.get(7)?,
                latency_ms: r.get(8)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest `limit` deliveries (real and test, any time) of these sites, newest first.
pub(super) fn latest(
    conn: &Connection,
    set: SiteSet<'_>,
    range: (i64, i64),
    limit: usize,
) -> Result<Vec<DeliveryRow>, StoreError> {
    match set {
        SiteSet::Site(id) => latest_of_site(conn, id, range, limit),
        SiteSet::Account(account) => {
            // The newest of each site, merged: every step walks the (site_id, at_ms) index
            // backwards, where one ORDER BY over the join would sort every row of the account.
            let mut all = Vec::new();
            for site_id in account_site_ids(conn, account)? {
                all.extend(latest_of_site(conn, &site_id, range, limit)?);
            }
            all.sort_by_key(|d| std::cmp::Reverse((d.at_ms, d.id)));
            all.truncate(limit);
            Ok(all)
        }
    }
}

/// The ids of an account's sites.
pub(super) fn account_site_ids(
    conn: &Connection,
    account_id: i64,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id FROM sites WHERE account_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([account_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Real delivery counts in `[start_ms, end_ms)` for each site of an account that has any, every
/// destination together: `(site_id, outcome, count)`.
pub(super) fn real_counts_by_site(
    conn: &Connection,
    account_id: i64,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT site_id, outcome, SUM(count) FROM delivery_hourly
         WHERE site_id IN (SELECT id FROM sites WHERE account_id = ?1)
           AND is_test = 0 AND hour_ms >= ?2 AND hour_ms < ?3
         GROUP BY site_id, outcome",
    )?;
    let rows = stmt.query_map(params![account_id, start_ms, end_ms], |r| {
        Ok((r.get(0)?, r.get(1)?, count(r.get(2)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs `f` inside one read transaction, so that every query in it sees the same snapshot.
pub(super) fn in_snapshot<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    if !conn.is_autocommit() {
        return f(conn);
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// What one range query reads: its bounds and how they are sliced, decided once the first
/// recorded hour is known (see [`read_range`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeQuery {
    /// Start of the range, epoch ms (inclusive).
    pub start_ms: i64,
    /// End of the range, epoch ms (exclusive).
    pub end_ms: i64,
    /// The width of one slot of `slot_counts`, ms.
    pub slot_ms: i64,
    /// The rollup the counts are read from.
    pub grain: Grain,
    /// The UTC days the latency histogram covers; `None` for the all-time histogram.
    pub latency_days: Option<(i64, i64)>,
    /// How many of the latest deliveries in the range to read.
    pub latest: usize,
}

/// The rows one range query reads, all from the same snapshot.
#[derive(Debug, Clone)]
pub struct RangeRows {
    /// What was read.
    pub query: RangeQuery,
    /// Delivery counts per slot, destination, real/test and outcome (`slot_counts`).
    pub slots: Vec<SlotCount>,
    /// The latency histograms per destination, by ascending bucket (`latency_histogram`).
    pub latency: Vec<(String, u32, u64)>,
    /// Rejections by reason, most first (`rejections_by_reason`).
    pub rejections: Vec<(String, u64)>,
    /// Challenges issued and solved (`challenge_counts`).
    pub challenges: ChallengeCount,
    /// The latest deliveries, newest first (`latest`).
    pub latest: Vec<DeliveryRow>,
}

/// Reads one range query of `set` in one snapshot: the first recorded hour of the sites when
/// `from_first` (else `None`), from which `plan` decides the query, then its counts, latency
/// histogram, rejections, challenge counts and latest deliveries. Blocking.
pub fn read_range(
    store: &Store,
    set: SiteSet<'_>,
    from_first: bool,
    plan: impl FnOnce(Option<i64>) -> RangeQuery,
) -> Result<RangeRows, StoreError> {
    store.read(|c| {
        in_snapshot(c, |c| {
            let first = if from_first {
                first_hour(c, set)?
            } else {
                None
            };
            let query = plan(first);
            let (start_ms, end_ms) = (query.start_ms, query.end_ms);
            Ok(RangeRows {
                slots: slot_counts(c, set, query.grain, start_ms, end_ms, query.slot_ms)?,
                latency: latency_histogram(c, set, query.latency_days)?,
                rejections: rejections_by_reason(c, set, query.grain, start_ms, end_ms)?,
                challenges: challenge_counts(c, set, start_ms, end_ms)?,
                latest: latest(c, set, (start_ms, end_ms), query.latest)?,
                query,
            })
        })
    })
}

/// An account's sites and their real delivery counts in one span, from one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// The ids of every site of the account (`account_site_ids`).
    pub site_ids: Vec<String>,
    /// `(site_id, outcome, count)` for the sites with any (`real_counts_by_site`).
    pub counts: Vec<(String, String, u64)>,
}

/// Reads an account's site ids and their real delivery counts in `[start_ms, end_ms)` in one
/// snapshot. Blocking.
pub fn read_site_counts(
    store: &Store,
    account_id: i64,
    start_ms: i64,
    end_ms: i64,
) -> Result<SiteCounts, StoreError> {
    store.read(|c| {
        in_snapshot(c, |c| {
            Ok(SiteCounts {
                site_ids: account_site_ids(c, account_id)?,
                counts: real_counts_by_site(c, account_id, start_ms, end_ms)?,
            })
        })
    })
}

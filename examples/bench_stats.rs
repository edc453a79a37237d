//! Times the statistics query on a large database: one site with 1,000,000 deliveries spread over
//! 120 days (mixed outcomes and latencies, recorded through `stats::record_delivery_sync`, the
//! code behind `record_delivery`) plus rejections, then `stats::query` + `stats::chart_svg` for
//! every range, site and account scope, 20 runs each.
//!
//! `cargo run --release --example bench_stats [-- DELIVERIES]` (set `BENCH_STATS_DB=path` to keep
//! the database, which must not exist yet).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use caputchin_forwarder::clock::{Clock as _, SystemClock};
use caputchin_forwarder::delivery::{Kind, Outcome, Report};
use caputchin_forwarder::sites::{SiteInput, create_site};
use caputchin_forwarder::stats::{self, Range, Scope};
use caputchin_forwarder::store::{Store, StoreError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const DAYS: i64 = 120;
const RUNS: usize = 20;
const REJECTIONS: usize = 20_000;

/// SplitMix64: a small deterministic generator, so every run seeds the same data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A delivery of the seeded mix: mostly delivered, every failure category present, latencies
/// from a few ms to the 5 s timeout.
fn random_report(rng: &mut SplitMix) -> Report {
    let roll = rng.below(1000);
    let (outcome, http_status) = match roll {
        0..=919 => (Outcome::Delivered, Some(200)),
        920..=944 => (Outcome::Http4xx, Some(404)),
        945..=964 => (Outcome::Http5xx, Some(502)),
        965..=969 => (Outcome::Redirect, Some(302)),
        970..=979 => (Outcome::Timeout, None),
        980..=989 => (Outcome::Connect, None),
        990..=994 => (Outcome::Dns, None),
        995..=997 => (Outcome::Tls, None),
        _ => (Outcome::BlockedDestination, None),
    };
    let latency_ms = match outcome {
        Outcome::Timeout => 5000,
        Outcome::Dns | Outcome::BlockedDestination => rng.below(20),
        _ if rng.below(20) == 0 => 300 + rng.below(4000),
        _ => 20 + rng.below(60) + rng.below(60) + rng.below(120),
    };
    Report {
        outcome,
        http_status,
        latency_ms,
        resolved: Vec::new(),
        connected_to: None,
        response_body: None,
        detail: String::new(),
    }
}

const REASONS: [&str; 5] = [
    "invalid-token",
    "rate-limited",
    "missing-token",
    "origin-not-allowed",
    "payload-too-large",
];

fn seed(store: &Store, site_id: &str, deliveries: u64, now_ms: i64) -> Result<(), StoreError> {
    let start = now_ms - DAYS * DAY_MS;
    let span = u64::try_from(DAYS * DAY_MS).unwrap_or(u64::MAX);
    let mut rng = SplitMix(0x5EED);
    store.write(|c| {
        let tx = c.transaction()?;
        for i in 0..deliveries {
            // In time order, as a live server records them.
            let offset = i64::try_from(i * span / deliveries).unwrap_or(0);
            let kind = if rng.below(200) == 0 {
                Kind::Test
            } else {
                Kind::Real
            };
            let report = random_report(&mut rng);
            stats::record_delivery_sync(&tx, site_id, start + offset, kind, &report)?;
        }
        for i in 0..REJECTIONS {
            let at = start + i64::try_from(rng.below(span)).unwrap_or(0);
            let reason = REASONS[i % REASONS.len()];
            stats::record_rejection_sync(&tx, site_id, at, reason)?;
        }
        tx.commit()?;
        Ok(())
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let deliveries: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("DELIVERIES must be a number")?,
        None => 1_000_000,
    };
    // BENCH_STATS_DB keeps the database for inspection; by default it lives in a temporary folder.
    let dir = tempfile::tempdir()?;
    let path = std::env::var_os("BENCH_STATS_DB")
        .map_or_else(|| dir.path().join("bench.db"), std::path::PathBuf::from);
    let store = Store::open(&path)?;
    let now_ms = SystemClock.now_ms();
    let account = caputchin_forwarder::accounts::create_account(
        &store,
        "bench@example.com",
        "correct horse battery",
        now_ms,
    )?;
    let input = SiteInput {
        name: "Bench".into(),
        webhook_url: "https://hooks.example.com/in".into(),
        enabled: true,
        ..SiteInput::default()
    };
    let site = create_site(&store, "bench@example.com", &input, now_ms)?.site_id;

    let started = Instant::now();
    seed(&store, &site, deliveries, now_ms)?;
    let seeded = started.elapsed();
    let db_bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    println!(
        "seeded {deliveries} deliveries over {DAYS} days and {REJECTIONS} rejections in {:.1} s \
         (database {:.0} MiB)",
        seeded.as_secs_f64(),
        db_bytes as f64 / (1024.0 * 1024.0)
    );

    println!();
    println!(
        "{:<8} {:<10} {:>9} {:>8} {:>8} {:>8} {:>7}",
        "scope", "range", "delivered", "median", "min", "max", "points"
    );
    for (scope_name, scope) in [
        ("site", Scope::Site(&site)),
        ("account", Scope::Account(account)),
    ] {
        for range in Range::ALL {
            let mut times = Vec::with_capacity(RUNS);
            let mut last = None;
            for _ in 0..RUNS {
                let t = Instant::now();
                let s = stats::query(&store, scope, range, now_ms)?;
                let svg = stats::chart_svg(&s);
                times.push(t.elapsed());
                last = Some((s, svg.len()));
            }
            times.sort();
            let Some((s, _)) = last else { continue };
            println!(
                "{:<8} {:<10} {:>9} {:>6.2}ms {:>6.2}ms {:>6.2}ms {:>7}",
                scope_name,
                range.as_str(),
                s.delivered,
                ms(times[RUNS / 2]),
                ms(times[0]),
                ms(times[RUNS - 1]),
                s.series.len()
            );
        }
    }
    Ok(())
}

//! Times the statistics query on a large database: one site with 1,000,000 deliveries spread over
//! 120 days (mixed outcomes and latencies, recorded through `stats::record_delivery_sync`, the
//! code behind `record_delivery`) plus rejections, then `stats::query` + the dashboard's
//! `chart::chart_svg` for every range, site and account scope, 20 runs each.
//!
//! `cargo run --release --example bench_stats [-- DELIVERIES]` (set `BENCH_STATS_DB=path` to keep
//! the database, which must not exist yet).

#[path = "common/seed.rs"]
mod seed;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use caputchin_forwarder::clock::{Clock as _, SystemClock};
use caputchin_forwarder::sites::{SiteInput, create_site};
use caputchin_forwarder::stats::{self, Range, Scope};
use caputchin_forwarder::store::Store;
use caputchin_forwarder::web::dashboard::chart::chart_svg;

const RUNS: usize = 20;

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
    seed::seed(&store, &site, deliveries, now_ms)?;
    let seeded = started.elapsed();
    let db_bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    println!(
        "seeded {deliveries} deliveries over {} days and {} rejections in {:.1} s \
         (database {:.0} MiB)",
        seed::DAYS,
        seed::REJECTIONS,
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
                let svg = chart_svg(&s);
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

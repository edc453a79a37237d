//! Seeds a database for `bench/run`'s statistics-page row: one account with one site holding
//! DELIVERIES deliveries over 120 days plus 20,000 rejections, recorded through the same public
//! functions as `examples/bench_stats.rs` (`stats::record_delivery_sync`,
//! `stats::record_rejection_sync`) with the same deterministic mix of outcomes and latencies.
//! Prints `{"site_id", "account_id"}` on standard output.
//!
//! `cargo run --release --example bench_seed -- DB EMAIL PASSWORD DELIVERIES`

#[path = "common/seed.rs"]
mod seed;

use std::time::Instant;

use anyhow::{Context as _, bail};
use caputchin_forwarder::clock::{Clock as _, SystemClock};
use caputchin_forwarder::sites::{SiteInput, create_site};
use caputchin_forwarder::store::Store;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, email, password, deliveries] = args.as_slice() else {
        bail!("usage: bench_seed DB EMAIL PASSWORD DELIVERIES");
    };
    let deliveries: u64 = deliveries.parse().context("DELIVERIES must be a number")?;
    let store = Store::open(std::path::Path::new(db))?;
    let now_ms = SystemClock.now_ms();
    let account_id =
        caputchin_forwarder::accounts::create_account(&store, email, password, now_ms)?;
    let input = SiteInput {
        name: "Bench".into(),
        webhook_url: "https://hooks.example.com/in".into(),
        enabled: true,
        ..SiteInput::default()
    };
    let site_id = create_site(&store, email, &input, now_ms)?.site_id;
    let started = Instant::now();
    seed::seed(&store, &site_id, deliveries, now_ms)?;
    eprintln!(
        "bench_seed: {deliveries} deliveries and {} rejections in {:.1} s",
        seed::REJECTIONS,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        serde_json::json!({"site_id": site_id, "account_id": account_id})
    );
    Ok(())
}

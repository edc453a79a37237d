//! What counting costs a form post: the calls one delivered post makes (`submission` and
//! `delivery`), timed over many posts on two threads at once, with metrics on and off. A post
//! itself costs tens of microseconds of CPU (README "Performance"); this prints nanoseconds.
//!
//!   cargo run --release --example bench_metrics

use std::time::Instant;

use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};
use caputchin_forwarder::metrics::Metrics;
use caputchin_forwarder::sites::SiteDirectory;
use caputchin_forwarder::store::Store;

const POSTS: u64 = 5_000_000;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("metrics.db"))?;
    let report = Report {
        outcome: Outcome::Delivered,
        http_status: Some(200),
        latency_ms: 3,
        resolved: Vec::new(),
        connected_to: None,
        response_body: None,
        smtp_code: None,
        smtp_reply: None,
        detail: String::new(),
    };
    for enabled in [false, true] {
        let metrics = Metrics::new(store.clone(), SiteDirectory::default(), enabled);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for _ in 0..POSTS {
                        metrics.submission(std::hint::black_box("delivered"));
                        metrics.delivery(
                            Destination::Webhook,
                            Kind::Real,
                            std::hint::black_box(&report),
                        );
                    }
                });
            }
        });
        let per_post = started.elapsed().as_nanos() as f64 / POSTS as f64;
        println!(
            "metrics {}: {per_post:.1} ns per post (two threads counting at once)",
            if enabled { "on " } else { "off" }
        );
    }
    Ok(())
}

//! The benchmark data set shared by `bench_stats` and `bench_seed`: one site's deliveries over
//! 120 days in time order (a deterministic mix of outcomes and latencies, 1 in 200 a test) plus
//! 20,000 rejections, recorded in one transaction through the same public functions the server
//! uses (`stats::record_delivery_sync`, `stats::record_rejection_sync`).

use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};
use caputchin_forwarder::stats;
use caputchin_forwarder::store::{Store, StoreError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
pub const DAYS: i64 = 120;
pub const REJECTIONS: usize = 20_000;
const REASONS: [&str; 5] = [
    "invalid-token",
    "rate-limited",
    "missing-token",
    "origin-not-allowed",
    "payload-too-large",
];

/// SplitMix64: every run seeds the same data.
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

/// The seeded mix: 92 % delivered, every failure category present, latencies from a few
/// ms to the 5 s timeout.
fn random_report(rng: &mut SplitMix) -> Report {
    let (outcome, http_status) = match rng.below(1000) {
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
        smtp_code: None,
        smtp_reply: None,
        detail: String::new(),
    }
}

pub fn seed(store: &Store, site_id: &str, deliveries: u64, now_ms: i64) -> Result<(), StoreError> {
    let start = now_ms - DAYS * DAY_MS;
    let span = u64::try_from(DAYS * DAY_MS).unwrap_or(u64::MAX);
    let mut rng = SplitMix(0x5EED);
    // `write` runs one transaction: every record joins it.
    store.write(|tx| {
        for i in 0..deliveries {
            // In time order, as a live server records them.
            let offset = i64::try_from(i * span / deliveries.max(1)).unwrap_or(0);
            let kind = if rng.below(200) == 0 {
                Kind::Test
            } else {
                Kind::Real
            };
            let report = random_report(&mut rng);
            let at = start + offset;
            stats::record_delivery_sync(tx, site_id, at, Destination::Webhook, kind, &report)?;
        }
        for i in 0..REJECTIONS {
            let at = start + i64::try_from(rng.below(span)).unwrap_or(0);
            stats::record_rejection_sync(tx, site_id, at, REASONS[i % REASONS.len()])?;
        }
        Ok(())
    })
}

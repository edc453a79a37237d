//! Prometheus metrics (SPEC §9): what this process did, counted at the points that write the
//! statistics, served on a listener of their own. Every series with labels is created at start
//! from the closed sets of codes and outcomes, so counting is one atomic add, with no lock and no
//! allocation; no label ever carries a site key, a URL or an address.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::delivery::{Destination, Kind, Report};
use crate::sites::SiteDirectory;
use crate::store::Store;

/// Every result of a form post: `delivered`, `delivery-failed`, or a refusal's code (SPEC §3).
pub const SUBMISSION_RESULTS: &[&str] = &[
    "delivered",
    "delivery-failed",
    "unknown-site",
    "forwarding-disabled",
    "origin-not-allowed",
    "rate-limited",
    "payload-too-large",
    "unsupported-content-type",
    "file-upload-not-supported",
    "malformed-body",
    "too-many-fields",
    "field-name-too-long",
    "missing-token",
    "invalid-token",
    "timeout-or-duplicate",
    "site-mismatch",
    "verifier-unavailable",
    "request-timeout",
    "internal-error",
];

/// Every result of siteverify: `success` or an error code.
pub const SITEVERIFY_RESULTS: &[&str] = &[
    "success",
    "bad-request",
    "missing-input-secret",
    "invalid-input-secret",
    "missing-input-response",
    "invalid-input-response",
    "timeout-or-duplicate",
    "site-mismatch",
    "rate-limited",
    "request-timeout",
    "internal-error",
];

/// Every result of `GET /v1/widget/bootstrap` (SPEC §13): `success` or the refusal's code.
pub const WIDGET_BOOTSTRAP_RESULTS: &[&str] = &[
    "success",
    "unknown-site",
    "forwarding-disabled",
    "origin-not-allowed",
];

/// Every result of `POST /v1/verify/start`: `success` or the refusal's code.
pub const WIDGET_START_RESULTS: &[&str] = &[
    "success",
    "bad-request",
    "payload-too-large",
    "request-timeout",
    "unknown-site",
    "forwarding-disabled",
    "origin-not-allowed",
    "rate-limited",
    "internal-error",
];

/// Every result of `POST /v1/verify/pass`: `success` or the refusal's code.
pub const WIDGET_PASS_RESULTS: &[&str] = &[
    "success",
    "bad-request",
    "payload-too-large",
    "request-timeout",
    "challenge-invalid",
    "unknown-site",
    "forwarding-disabled",
    "origin-not-allowed",
    "rate-limited",
    "invalid-session",
    "invalid-solution",
    "internal-error",
];

/// The endpoints of Caputchin's widget and their results, as the `endpoint` label names them.
pub const WIDGET_ENDPOINTS: &[(&str, &[&str])] = &[
    ("bootstrap", WIDGET_BOOTSTRAP_RESULTS),
    ("start", WIDGET_START_RESULTS),
    ("pass", WIDGET_PASS_RESULTS),
];

/// Every result of a dashboard login: `success` and `failure` ran the password hash, `throttled`
/// was refused before it.
pub const LOGIN_RESULTS: &[&str] = &["success", "failure", "throttled"];

/// Upper bounds of the delivery duration buckets, in seconds (the delivery timeout is at most
/// 10 s).
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

type Labels = Vec<(&'static str, &'static str)>;

/// The metrics of one process.
pub struct Metrics {
    /// False when nothing serves the metrics: counting is then skipped.
    enabled: bool,
    registry: Registry,
    submissions: HashMap<&'static str, Counter>,
    deliveries: HashMap<(Destination, bool, &'static str), Counter>,
    /// Per destination and kind, in [`duration_index`] order.
    durations: [Arc<AtomicHistogram>; 4],
    cap_challenges: Counter,
    cap_redeems: HashMap<&'static str, Counter>,
    siteverify: HashMap<&'static str, Counter>,
    widget: HashMap<(&'static str, &'static str), Counter>,
    logins: HashMap<&'static str, Counter>,
}

/// Registers a counter family labelled `result` and creates one series per result.
fn result_counters(
    registry: &mut Registry,
    name: &str,
    help: &str,
    results: &[&'static str],
) -> HashMap<&'static str, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    // Each `get_or_create` guard is gone before the next call (they share one lock).
    results
        .iter()
        .map(|&r| (r, family.get_or_create(&vec![("result", r)]).clone()))
        .collect()
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Real => "real",
        Kind::Test => "test",
    }
}

const KINDS: [Kind; 2] = [Kind::Real, Kind::Test];

/// The index of a destination's and kind's duration histogram.
fn duration_index(destination: Destination, kind: Kind) -> usize {
    let destination = Destination::ALL
        .iter()
        .position(|&d| d == destination)
        .unwrap_or_default();
    destination * KINDS.len() + usize::from(kind == Kind::Test)
}

impl Metrics {
    /// Registers every series; the gauges read `store` and `sites` at each scrape. When not
    /// `enabled` (no metrics listener) the counting methods do nothing.
    pub fn new(store: Store, sites: SiteDirectory, enabled: bool) -> Metrics {
        let mut registry = Registry::default();

        let submissions = result_counters(
            &mut registry,
            "caputchin_submissions",
            "Form posts answered, by result: delivered, delivery-failed or the refusal's code",
            SUBMISSION_RESULTS,
        );

        let family = Family::<Labels, Counter>::default();
        registry.register(
            "caputchin_deliveries",
            "Deliveries, by destination (webhook or email), kind (real or test) and outcome",
            family.clone(),
        );
        // Each destination has only its own outcomes (SPEC §6, §10): no series that can never
        // move.
        let mut deliveries = HashMap::new();
        for destination in Destination::ALL {
            for kind in KINDS {
                for outcome in destination.outcomes() {
                    let labels = vec![
                        ("destination", destination.as_str()),
                        ("kind", kind_label(kind)),
                        ("outcome", outcome.as_str()),
                    ];
                    deliveries.insert(
                        (destination, kind == Kind::Test, outcome.as_str()),
                        family.get_or_create(&labels).clone(),
                    );
                }
            }
        }

        let durations: [Arc<AtomicHistogram>; 4] = Default::default();
        registry.register_collector(Box::new(DurationCollector {
            histograms: durations.clone(),
        }));

        let cap_challenges = Counter::default();
        registry.register(
            "caputchin_cap_challenges",
            "Cap challenges issued",
            cap_challenges.clone(),
        );
        let cap_redeems = result_counters(
            &mut registry,
            "caputchin_cap_redeems",
            "Cap redeem requests answered, by result: success or failure",
            &["success", "failure"],
        );
        let siteverify = result_counters(
            &mut registry,
            "caputchin_siteverify",
            "Siteverify requests answered, by result: success or the error code",
            SITEVERIFY_RESULTS,
        );

        let family = Family::<Labels, Counter>::default();
        registry.register(
            "caputchin_widget_requests",
            "Requests of Caputchin's widget answered, by endpoint (bootstrap, start or pass) and result: success or the refusal's code",
            family.clone(),
        );
        let widget = WIDGET_ENDPOINTS
            .iter()
            .flat_map(|&(endpoint, results)| results.iter().map(move |&r| (endpoint, r)))
            .map(|(endpoint, result)| {
                let labels = vec![("endpoint", endpoint), ("result", result)];
                ((endpoint, result), family.get_or_create(&labels).clone())
            })
            .collect();

        let logins = result_counters(
            &mut registry,
            "caputchin_dashboard_logins",
            "Dashboard login attempts, by result: success or failure (the password was checked) or throttled",
            LOGIN_RESULTS,
        );

        let build = Family::<Labels, Gauge>::default();
        registry.register(
            "caputchin_build_info",
            "Always 1; the version label names the running build",
            build.clone(),
        );
        build
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);

        registry.register_collector(Box::new(StateCollector { store, sites }));
        registry.register_collector(Box::new(ProcessCollector));

        Metrics {
            enabled,
            registry,
            submissions,
            deliveries,
            durations,
            cap_challenges,
            cap_redeems,
            siteverify,
            widget,
            logins,
        }
    }

    /// Counts one answered form post.
    pub fn submission(&self, result: &str) {
        if !self.enabled {
            return;
        }
        match self.submissions.get(result) {
            Some(counter) => {
                counter.inc();
            }
            None => tracing::error!(result, "no submission series for this result"),
        }
    }

    /// Counts one finished delivery to `destination` and its duration.
    pub fn delivery(&self, destination: Destination, kind: Kind, report: &Report) {
        if !self.enabled {
            return;
        }
        let key = (destination, kind == Kind::Test, report.outcome.as_str());
        match self.deliveries.get(&key) {
            Some(counter) => {
                counter.inc();
            }
            None => tracing::error!(
                destination = destination.as_str(),
                outcome = report.outcome.as_str(),
                "no delivery series for this outcome"
            ),
        }
        if let Some(histogram) = self.durations.get(duration_index(destination, kind)) {
            histogram.observe_ms(report.latency_ms);
        }
    }

    /// Counts one issued challenge.
    pub fn cap_challenge(&self) {
        if self.enabled {
            self.cap_challenges.inc();
        }
    }

    /// Counts one answered redeem.
    pub fn cap_redeem(&self, success: bool) {
        if self.enabled
            && let Some(counter) = self
                .cap_redeems
                .get(if success { "success" } else { "failure" })
        {
            counter.inc();
        }
    }

    /// Counts one answered siteverify by its result.
    pub fn siteverify(&self, result: &str) {
        if !self.enabled {
            return;
        }
        match self.siteverify.get(result) {
            Some(counter) => {
                counter.inc();
            }
            None => tracing::error!(result, "no siteverify series for this result"),
        }
    }

    /// Counts one answered request of Caputchin's widget: `endpoint` and `result` are one of
    /// [`WIDGET_ENDPOINTS`] and one of its results.
    pub fn widget(&self, endpoint: &'static str, result: &str) {
        if !self.enabled {
            return;
        }
        match self.widget.get(&(endpoint, result)) {
            Some(counter) => {
                counter.inc();
            }
            None => tracing::error!(endpoint, result, "no widget series for this result"),
        }
    }

    /// Counts one dashboard login attempt by its result (one of [`LOGIN_RESULTS`]).
    pub fn login(&self, result: &'static str) {
        if self.enabled
            && let Some(counter) = self.logins.get(result)
        {
            counter.inc();
        }
    }

    /// The Prometheus text format (0.0.4), or OpenMetrics text when `openmetrics`.
    pub fn encode(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        }
        Ok(out)
    }
}

/// A histogram of delivery durations kept in atomics (the crate's own takes a lock on every
/// observation, and deliveries are on the form path).
#[derive(Debug, Default)]
struct AtomicHistogram {
    /// Per bucket (not cumulative), the last one for +Inf.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ms: AtomicU64,
}

impl AtomicHistogram {
    fn observe_ms(&self, ms: u64) {
        let seconds = ms as f64 / 1000.0;
        let index = DURATION_BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_ms.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // The count is the sum of the buckets read, so the exposition is self-consistent even
        // while observations land.
        let count = buckets.iter().map(|b| b.1).sum();
        let sum = self.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[derive(Debug)]
struct DurationCollector {
    histograms: [Arc<AtomicHistogram>; 4],
}

impl Collector for DurationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "caputchin_delivery_duration_seconds",
            "Delivery duration in seconds, by destination (webhook or email) and kind",
            None,
            MetricType::Histogram,
        )?;
        for destination in Destination::ALL {
            for kind in KINDS {
                let labels = [
                    ("destination", destination.as_str()),
                    ("kind", kind_label(kind)),
                ];
                if let Some(histogram) = self.histograms.get(duration_index(destination, kind)) {
                    histogram.encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Gauges read at scrape time: the write queue's depth and the number of sites.
struct StateCollector {
    store: Store,
    sites: SiteDirectory,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCollector").finish_non_exhaustive()
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "caputchin_write_queue_depth",
            "Statistics records and spent challenges waiting for the batch writer",
            self.store.queue_depth() as f64,
        )?;
        gauge(
            &mut encoder,
            "caputchin_sites",
            "Sites this process serves",
            self.sites.len() as f64,
        )
    }
}

/// The standard `process_*` series, read from `/proc/self` at scrape time.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
            let page = procfs::page_size() as f64;
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.rss as f64 * page,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.vsize as f64,
            )?;
            if let Ok(boot) = procfs::boot_time_secs() {
                gauge(
                    &mut encoder,
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch in seconds",
                    boot as f64 + stat.starttime as f64 / ticks,
                )?;
            }
        }
        if let Ok(fds) = me.fd_count() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                fds as f64,
            )?;
        }
        if let Ok(limits) = me.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_listener_nothing_is_counted_and_with_one_everything_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.db")).unwrap();
        for (enabled, expected) in [(false, "0"), (true, "1")] {
            let metrics = Metrics::new(store.clone(), SiteDirectory::default(), enabled);
            metrics.submission("delivered");
            metrics.cap_challenge();
            metrics.siteverify("success");
            let text = metrics.encode(false).unwrap();
            for line in [
                format!("caputchin_submissions_total{{result=\"delivered\"}} {expected}"),
                format!("caputchin_cap_challenges_total {expected}"),
                format!("caputchin_siteverify_total{{result=\"success\"}} {expected}"),
            ] {
                assert!(
                    text.lines().any(|l| l == line),
                    "{line} missing in:\n{text}"
                );
            }
        }
    }

    #[test]
    fn histogram_buckets_hold_each_observation_once_and_sum_in_seconds() {
        let h = AtomicHistogram::default();
        for ms in [1, 5, 6, 10_000, 20_000] {
            h.observe_ms(ms);
        }
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 2, "1 ms and 5 ms are within 0.005 s");
        assert_eq!(counts[1], 1, "6 ms is within 0.01 s");
        assert_eq!(counts[DURATION_BUCKETS.len() - 1], 1, "10 s is within 10 s");
        assert_eq!(
            counts[DURATION_BUCKETS.len()],
            1,
            "20 s is beyond every bound"
        );
        assert_eq!(h.count.load(Ordering::Relaxed), 5);
        assert_eq!(h.sum_ms.load(Ordering::Relaxed), 30_012);
    }
}

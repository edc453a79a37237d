//! Dashboard chart of the statistics series (SPEC §6, §10): a server-rendered SVG of stacked
//! delivered/failed bars per bucket, split by destination, with UTC axis labels; its geometry and
//! colours.

use crate::delivery::Destination;
// HTML's escaping is XML's for SVG text and attribute values.
use crate::delivery::message::escape_html as escape_xml;
use crate::stats::{PerDestination, Stats, Tally};
use crate::time::{DAY_MS, HOUR_MS, WEEK_MS, day_start, utc_date, utc_hour, utc_month_day};

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
/// Email's segments: the same hues, lighter, so that delivered and failed read at a glance and
/// the destinations apart.
const COLOR_EMAIL_DELIVERED: &str = "#81c784";
const COLOR_EMAIL_FAILED: &str = "#ef9a9a";

/// The segments of one bar, bottom to top: both destinations' delivered, then both failed (so
/// that failures sit on top, as before destinations), each with its CSS class and fallback fill.
const SEGMENTS: [(Destination, bool, &str, &str); 4] = [
    (
        Destination::Webhook,
        true,
        "bar-webhook-delivered",
        COLOR_DELIVERED,
    ),
    (
        Destination::Email,
        true,
        "bar-email-delivered",
        COLOR_EMAIL_DELIVERED,
    ),
    (
        Destination::Webhook,
        false,
        "bar-webhook-failed",
        COLOR_FAILED,
    ),
    (
        Destination::Email,
        false,
        "bar-email-failed",
        COLOR_EMAIL_FAILED,
    ),
];

/// "webhook: 1 delivered, 0 failed; email: 0 delivered, 2 failed".
fn per_destination(counts: &PerDestination<Tally>) -> String {
    counts
        .iter()
        .map(|(d, t)| {
            format!(
                "{}: {} delivered, {} failed",
                d.as_str(),
                t.delivered,
                t.failed
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
const COLOR_AXIS: &str = "#555555";
const COLOR_GRID: &str = "#e0e0e0";

/// The series as a server-rendered SVG (no JavaScript): stacked bars of real deliveries per
/// bucket — webhook delivered, email delivered, webhook failed, email failed, bottom to top —
/// UTC axis labels (`HH:00` hourly, `MM-DD` daily or weekly), a `<title>` and an `aria-label`
/// summarising it per destination, and a tooltip per bar. Segments carry the CSS classes
/// `bar-webhook-delivered`, `bar-email-delivered`, `bar-webhook-failed` and `bar-email-failed`
/// and `fill` attributes that work without CSS; the `viewBox` is 720 wide and the element scales
/// to its container (`width="100%"`).
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
    let totals = PerDestination {
        webhook: Tally {
            delivered: stats.destinations.webhook.delivered,
            failed: stats.destinations.webhook.failed,
        },
        email: Tally {
            delivered: stats.destinations.email.delivered,
            failed: stats.destinations.email.failed,
        },
    };
    let summary = format!(
        "Real deliveries per {per}, {} (UTC, {dates}): {} delivered, {} failed ({})",
        stats.range.label(),
        stats.delivered,
        stats.failed,
        per_destination(&totals)
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
                "<g><title>{}: {} delivered, {} failed ({})</title>",
                escape_xml(&when),
                point.delivered,
                point.failed,
                per_destination(&point.destinations)
            ));
            let mut top = base;
            for (destination, delivered, class, fill) in SEGMENTS {
                let tally = point.destinations.get(destination);
                let n = if delivered {
                    tally.delivered
                } else {
                    tally.failed
                };
                if n == 0 {
                    continue;
                }
                let h = height_of(n);
                top -= h;
                svg.push_str(&format!(
                    "<rect class=\"{class}\" fill=\"{fill}\" x=\"{bar_x:.2}\" y=\"{top:.2}\" \
                     width=\"{bar_w:.2}\" height=\"{h:.2}\"/>"
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

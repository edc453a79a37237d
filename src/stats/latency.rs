//! Latency histogram buckets (SPEC §6): which bucket a delivery's latency is counted in, the
//! latencies each bucket holds and stands for, and nearest-rank percentiles of a histogram. The
//! rollups store bucket numbers; migration 0003 computes the same buckets in SQL.

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
}

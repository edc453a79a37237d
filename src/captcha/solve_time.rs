//! How long a visitor waits for a site's proof of work: the expected number of hashes for its
//! challenges × difficulty, divided by our widget's measured hash rates.
//!
//! A challenge of difficulty `d` wants a SHA-256 whose hex digest starts with `d` given hex
//! digits, so each try succeeds with probability 16^-d and a challenge takes 16^d hashes on
//! average; a verification solves `count` of them. The rates are `static/widget.js` as measured by
//! `bench/widget/run --reps 3` (whole verifications at the site default, 32 × 4, with the widget's
//! own Worker pool) in headless Chromium 156 on a 2-core x86-64 machine: 2.86 MH/s as is for the
//! laptop, 1.39 MH/s with `--cpu-slowdown 4` (Chrome's CPU throttling at the factor Lighthouse
//! uses to stand for a mid-range phone) for the phone. That throttling slowed the Worker solver
//! about 2×, not 4×, so a slow phone waits longer than the estimate. README "Choosing a
//! difficulty" keeps the figures; `static/dashboard.js` repeats the arithmetic live.

use crate::captcha::cap::ChallengeParams;

/// Our widget's hash rate on a laptop, hashes per second.
pub const LAPTOP_HASHES_PER_SEC: u64 = 2_860_000;
/// Our widget's hash rate on a mid-range phone, hashes per second.
pub const PHONE_HASHES_PER_SEC: u64 = 1_390_000;
/// Above this wait on a phone, the site form warns: many visitors give up.
pub const SLOW_MS: u64 = 3_000;

/// Expected solve times of one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolveTime {
    /// Expected hashes.
    pub hashes: u64,
    /// On a laptop, in milliseconds.
    pub laptop_ms: u64,
    /// On a mid-range phone, in milliseconds.
    pub phone_ms: u64,
}

impl SolveTime {
    /// The expected times for these parameters.
    pub fn of(params: ChallengeParams) -> SolveTime {
        let hashes =
            u64::from(params.count).saturating_mul(16_u64.pow(u32::from(params.difficulty)));
        let ms = |rate: u64| hashes.saturating_mul(1000) / rate;
        SolveTime {
            hashes,
            laptop_ms: ms(LAPTOP_HASHES_PER_SEC),
            phone_ms: ms(PHONE_HASHES_PER_SEC),
        }
    }

    /// Whether the phone's wait is past [`SLOW_MS`].
    pub fn is_slow(self) -> bool {
        self.phone_ms > SLOW_MS
    }

    /// One sentence: "Expected solve time: about 0.7 s on a laptop, 1.5 s on a mid-range phone."
    pub fn sentence(self) -> String {
        format!(
            "Expected solve time: about {} on a laptop, {} on a mid-range phone.",
            duration(self.laptop_ms),
            duration(self.phone_ms)
        )
    }
}

/// A wait in words: tenths of a second below ten seconds (at least 0.1 s), then whole seconds,
/// minutes, hours or days.
pub fn duration(ms: u64) -> String {
    let round = |unit: u64| (ms + unit / 2) / unit;
    match ms {
        0..9_950 => {
            let tenths = (ms.max(100) + 50) / 100;
            format!("{}.{} s", tenths / 10, tenths % 10)
        }
        9_950..60_000 => format!("{} s", round(1_000)),
        60_000..3_600_000 => format!("{} min", round(60_000)),
        3_600_000..86_400_000 => format!("{} h", round(3_600_000)),
        _ => match round(86_400_000) {
            1 => "1 day".to_owned(),
            days => format!("{days} days"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(count: u16, difficulty: u8) -> SolveTime {
        SolveTime::of(ChallengeParams::new(count, difficulty).unwrap_or_default())
    }

    #[test]
    fn each_difficulty_step_costs_sixteen_times_the_hashes() {
        assert_eq!(at(32, 4).hashes, 32 * 65_536);
        assert_eq!(at(32, 5).hashes, 16 * at(32, 4).hashes);
        assert_eq!(at(1, 1).hashes, 16);
        assert_eq!(at(500, 8).hashes, 500 * 16_u64.pow(8));
    }

    #[test]
    fn the_defaults_are_quick_and_eight_is_flagged() {
        let default = SolveTime::of(ChallengeParams::default());
        assert!(!default.is_slow(), "{default:?}");
        assert!(at(32, 5).is_slow());
        assert!(at(32, 8).is_slow());
        assert_eq!(
            default.phone_ms,
            default.hashes * 1000 / PHONE_HASHES_PER_SEC
        );
    }

    #[test]
    fn waits_read_as_words() {
        assert_eq!(duration(0), "0.1 s");
        assert_eq!(duration(640), "0.6 s");
        assert_eq!(duration(960), "1.0 s");
        assert_eq!(duration(1_509), "1.5 s");
        assert_eq!(duration(9_960), "10 s");
        assert_eq!(duration(12_400), "12 s");
        assert_eq!(duration(90_000), "2 min");
        assert_eq!(duration(7_200_000), "2 h");
        assert_eq!(duration(3 * 86_400_000), "3 days");
        assert_eq!(duration(98_876_944), "1 day");
    }
}

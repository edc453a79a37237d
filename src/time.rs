//! Civil time in UTC: hours, days and weeks as epoch-millisecond spans, UTC day boundaries, and
//! the date and time texts the dashboard, the statistics chart and the CLI show (proleptic
//! Gregorian calendar, no time zones).

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * 60 * 1000;
/// One day in milliseconds (UTC has no daylight saving; leap seconds are not counted).
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// One week in milliseconds.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// The UTC calendar date `(year, month, day)` of a day number since 1970-01-01, negative before
/// it, in the proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The start of the UTC day holding `ms`, epoch ms.
pub fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// `YYYY-MM-DD` of the UTC day holding `ms`.
pub fn utc_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS` of the UTC second holding `ms`.
pub fn utc_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `MM-DD` of the UTC day holding `ms`.
pub fn utc_month_day(ms: i64) -> String {
    let (_, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{m:02}-{d:02}")
}

/// `HH:00` of the UTC hour holding `ms`.
pub fn utc_hour(ms: i64) -> String {
    format!("{:02}:00", ms.rem_euclid(DAY_MS) / HOUR_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(utc_date(1_717_200_000_000), "2024-06-01");
        assert_eq!(utc_hour(1_717_200_000_000 + 13 * HOUR_MS + 59_000), "13:00");
    }

    #[test]
    fn century_leap_rules_hold() {
        // 2100 and 1900 are not leap years, 1600 is.
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(civil_from_days(-135_081), (1600, 2, 29));
    }

    #[test]
    fn utc_formatting_matches_known_instants() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(1_748_640_000_000), "2025-05-30 21:20:00");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc_date(1_795_996_799_999), "2026-11-29");
        assert_eq!(utc_month_day(951_782_400_000), "02-29");
        assert_eq!(utc_hour(0), "00:00");
    }

    #[test]
    fn instants_before_the_epoch_round_down() {
        assert_eq!(utc_datetime(-1), "1969-12-31 23:59:59");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(utc_month_day(-DAY_MS), "12-31");
        assert_eq!(utc_hour(-1), "23:00");
        assert_eq!(day_start(-1), -DAY_MS);
        assert_eq!(day_start(-DAY_MS), -DAY_MS);
    }

    #[test]
    fn a_day_starts_at_utc_midnight() {
        assert_eq!(day_start(0), 0);
        assert_eq!(day_start(DAY_MS - 1), 0);
        assert_eq!(
            day_start(1_717_200_000_000 + 13 * HOUR_MS),
            1_717_200_000_000
        );
        assert_eq!(WEEK_MS, 7 * 24 * 3_600_000);
    }
}

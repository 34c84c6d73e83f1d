//! KAZOO time: "gregorian seconds", seconds since 0000-01-01. Timestamps in documents, attempt
//! listings and payloads use it, so conversions live in one place.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between 0000-01-01 and 1970-01-01 in the proleptic Gregorian calendar.
pub const UNIX_EPOCH_IN_GREGORIAN: i64 = 62_167_219_200;

/// Now, in gregorian seconds.
pub fn now_gregorian() -> i64 {
    unix_to_gregorian(now_unix())
}

/// Now, in unix seconds.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now, in unix milliseconds (the failure window is counted in these).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn unix_to_gregorian(unix: i64) -> i64 {
    unix + UNIX_EPOCH_IN_GREGORIAN
}

pub fn gregorian_to_unix(greg: i64) -> i64 {
    greg - UNIX_EPOCH_IN_GREGORIAN
}

/// (year, month 1 to 12) of a day counted from 1970-01-01: what KAZOO's monthly database
/// names are made of.
pub fn civil_from_days(days: i64) -> (i64, i64) {
    let (year, month, _) = civil_date(days);
    (year, month)
}

/// (year, month 1 to 12, day 1 to 31) of a day counted from 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil_date(days: i64) -> (i64, i64, i64) {
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

/// Days from 1970-01-01 to the first of (year, month): the inverse of [`civil_from_days`] for
/// a month's first day.
pub fn days_from_civil(year: i64, month: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }

    #[test]
    fn epoch_offset_matches_kazoo() {
        // 2024-01-01T00:00:00Z is 1704067200 unix; KAZOO prints 63871286400 for it.
        assert_eq!(unix_to_gregorian(1_704_067_200), 63_871_286_400);
        assert_eq!(gregorian_to_unix(63_871_286_400), 1_704_067_200);
    }
}

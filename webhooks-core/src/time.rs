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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_offset_matches_kazoo() {
        // 2024-01-01T00:00:00Z is 1704067200 unix; KAZOO prints 63871286400 for it.
        assert_eq!(unix_to_gregorian(1_704_067_200), 63_871_286_400);
        assert_eq!(gregorian_to_unix(63_871_286_400), 1_704_067_200);
    }
}

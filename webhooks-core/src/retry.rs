//! When a failed delivery is tried again (spec §7.3, and issue 13's schedules).
//!
//! KAZOO's schedule is the default: tries a fixed delay apart (2 s), `retries` tries in all. A
//! hook may choose the exponential one instead (`"retry_schedule": "exponential"`, a field
//! KAZOO's clients ignore): tries spread over about a day with growing gaps and some jitter, so
//! a receiver that is down for hours still gets its events, and a thousand hooks failing
//! together do not retry in lockstep. A receiver may ask for more time with `Retry-After`
//! on a 429 or 503; it gets it, within [`RETRY_AFTER_MAX`].

use std::time::Duration;

/// How a hook's failed deliveries are retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RetrySchedule {
    /// KAZOO's: `retries` tries in all, the engine's retry delay apart.
    #[default]
    Kazoo,
    /// [`EXPONENTIAL_TRIES`] tries, gaps from 5 s growing threefold up to 6 h, each
    /// ±20% at random: the last try comes about a day after the first.
    Exponential,
}

/// Tries of the exponential schedule: gaps 5 s, 15 s, 45 s, 2.25 min, 6.75 min, 20 min,
/// 1 h, 3 h, 6 h, 6 h, 6 h (about 22.5 h in all, before jitter).
pub const EXPONENTIAL_TRIES: u8 = 12;

/// The longest wait a receiver's `Retry-After` can ask for.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

const EXPONENTIAL_FIRST: Duration = Duration::from_secs(5);
const EXPONENTIAL_CAP: Duration = Duration::from_secs(6 * 3600);

impl RetrySchedule {
    /// The field's value in a hook document (absent, or anything else, is KAZOO's).
    pub fn parse(s: Option<&str>) -> RetrySchedule {
        match s {
            Some("exponential") => RetrySchedule::Exponential,
            _ => RetrySchedule::Kazoo,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RetrySchedule::Kazoo => "kazoo",
            RetrySchedule::Exponential => "exponential",
        }
    }

    /// Tries in all for a hook with KAZOO's `retries` field set to `retries`.
    pub fn max_tries(self, retries: u8) -> u8 {
        match self {
            RetrySchedule::Kazoo => retries,
            RetrySchedule::Exponential => EXPONENTIAL_TRIES,
        }
    }

    /// The wait after try number `tries` (1 for the first) failed. `fixed` is the engine's
    /// retry delay (KAZOO's schedule); `unit` is a random draw in [0, 1) for the jitter.
    pub fn delay(self, tries: u8, fixed: Duration, unit: f64) -> Duration {
        match self {
            RetrySchedule::Kazoo => fixed,
            RetrySchedule::Exponential => {
                let growth = 3u32.saturating_pow(u32::from(tries.saturating_sub(1)).min(12));
                let base = EXPONENTIAL_FIRST
                    .saturating_mul(growth)
                    .min(EXPONENTIAL_CAP);
                base.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
            }
        }
    }
}

/// The wait to use when a receiver answered `status` with `retry_after` (the header's text):
/// for a 429 or a 503 that names a wait (delta seconds; an HTTP date is not honoured), the
/// longer of it and `scheduled`, capped at [`RETRY_AFTER_MAX`]; otherwise `scheduled`.
pub fn honour_retry_after(status: u16, retry_after: Option<&str>, scheduled: Duration) -> Duration {
    if status != 429 && status != 503 {
        return scheduled;
    }
    match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(secs) => Duration::from_secs(secs)
            .min(RETRY_AFTER_MAX)
            .max(scheduled),
        None => scheduled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_is_fixed_and_counts_retries_as_tries() {
        let s = RetrySchedule::parse(None);
        assert_eq!(s, RetrySchedule::Kazoo);
        assert_eq!(s.max_tries(3), 3);
        assert_eq!(
            s.delay(1, Duration::from_secs(2), 0.9),
            Duration::from_secs(2)
        );
        assert_eq!(
            s.delay(3, Duration::from_secs(2), 0.1),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn exponential_grows_threefold_with_jitter_and_spans_about_a_day() {
        let s = RetrySchedule::parse(Some("exponential"));
        let fixed = Duration::from_secs(2);
        assert_eq!(s.delay(1, fixed, 0.5), Duration::from_secs(5));
        assert_eq!(s.delay(2, fixed, 0.5), Duration::from_secs(15));
        assert_eq!(s.delay(3, fixed, 0.5), Duration::from_secs(45));
        assert_eq!(s.delay(1, fixed, 0.0), Duration::from_secs(4));
        assert_eq!(s.delay(1, fixed, 1.0), Duration::from_secs(6));
        assert_eq!(s.delay(11, fixed, 0.5), Duration::from_secs(6 * 3600));
        let total: Duration = (1..EXPONENTIAL_TRIES).map(|t| s.delay(t, fixed, 0.5)).sum();
        assert!(total > Duration::from_secs(20 * 3600) && total < Duration::from_secs(26 * 3600));
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_within_bounds() {
        let two = Duration::from_secs(2);
        assert_eq!(
            honour_retry_after(429, Some("7"), two),
            Duration::from_secs(7)
        );
        assert_eq!(
            honour_retry_after(503, Some(" 30 "), two),
            Duration::from_secs(30)
        );
        assert_eq!(honour_retry_after(503, Some("0"), two), two);
        assert_eq!(
            honour_retry_after(429, Some("999999"), two),
            RETRY_AFTER_MAX
        );
        assert_eq!(honour_retry_after(500, Some("7"), two), two);
        assert_eq!(
            honour_retry_after(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), two),
            two
        );
        assert_eq!(honour_retry_after(429, None, two), two);
    }
}

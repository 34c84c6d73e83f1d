//! One monotonic clock for the publisher and the receiver, and the stamp that carries a publish
//! instant through the engine to the receiver.
//!
//! Publisher, engine and receiver share one process, so a nanosecond count since a process-wide
//! origin is comparable on both ends. The stamp travels as the event's `Call-ID`
//! (`LOADT<nanoseconds>`), which every channel payload repeats as `call_id`; letters and digits
//! survive both KAZOO's form encoding and JSON unchanged, so the receiver finds it by scanning
//! the raw body (or the query string of a GET) without parsing either format.

use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

const MARK: &[u8] = b"LOADT";

/// Nanoseconds since the process's first call.
pub fn now_ns() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The `Call-ID` that carries `ns`.
pub fn stamp(ns: u64) -> String {
    format!("LOADT{ns}")
}

/// The nanoseconds of the first stamp in `bytes`.
pub fn find_stamp(bytes: &[u8]) -> Option<u64> {
    let at = bytes.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = bytes[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut value: u64 = 0;
    let mut any = false;
    for d in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_form_json_and_query_text() {
        assert_eq!(find_stamp(b"a=1&call_id=LOADT123&b=2"), Some(123));
        assert_eq!(find_stamp(b"{\n  \"call_id\": \"LOADT9\"\n}"), Some(9));
        assert_eq!(find_stamp(b"call_id=LOADT&x"), None);
        assert_eq!(find_stamp(b"nothing here"), None);
    }
}

//! Time as the API stores and shows it.
//!
//! Spin's MySQL interface cannot read DATETIME columns, so every timestamp is
//! stored as integer milliseconds since the Unix epoch and shown as RFC 3339 UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now (the real clock; handlers take the
/// time from their [`crate::context::RequestContext`] so tests can fix it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z.
const LAST_RFC3339_MS: i64 = 253_402_300_799_999;

/// Formats epoch milliseconds as an RFC 3339 UTC string, e.g.
/// `2026-11-21T02:53:56.123Z`; times before the epoch show as the epoch,
/// times after year 9999 as its last millisecond.
pub fn rfc3339(ms: i64) -> String {
    // Clamped at both ends: humantime's formatter fails past year 9999, and
    // `to_string` turns that failure into a panic (which traps the
    // component); a stored time that large is corrupt, not worth a crash.
    let t = UNIX_EPOCH + Duration::from_millis(ms.clamp(0, LAST_RFC3339_MS) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_millis_as_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn times_past_year_9999_show_as_its_last_millisecond() {
        // Found by `any_millisecond_count_formats_as_rfc3339_utc`: from
        // 253402300800000 ms on, humantime's formatter failed and
        // `to_string` panicked.
        assert_eq!(rfc3339(253_402_300_800_000), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(-1), "1970-01-01T00:00:00.000Z");
    }

    use proptest::prelude::*;

    /// The last millisecond of year 9999, the latest time RFC 3339 can write.
    const LAST_MS: i64 = 253_402_300_799_999;

    fn any_ms() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            0..=LAST_MS,
            LAST_MS - 1000..=LAST_MS + 1000,
            Just(i64::MAX),
            Just(i64::MIN),
        ]
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    fn is_rfc3339_millis(s: &str) -> bool {
        let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        s.len() == shape.len()
            && s.bytes().zip(shape.bytes()).all(|(c, p)| match p {
                b'd' => c.is_ascii_digit(),
                _ => c == p,
            })
    }

    proptest! {
        #[test]
        fn any_millisecond_count_formats_as_rfc3339_utc(ms in any_ms()) {
            let text = rfc3339(ms);
            prop_assert!(is_rfc3339_millis(&text), "{ms} -> {text:?}");
        }

        #[test]
        fn formatting_keeps_the_order_of_times(a in any_ms(), b in any_ms()) {
            let (early, late) = (a.min(b), a.max(b));
            prop_assert!(rfc3339(early) <= rfc3339(late));
        }

        #[test]
        fn times_in_range_parse_back_to_themselves(ms in 0..=LAST_MS) {
            let parsed = humantime::parse_rfc3339(&rfc3339(ms)).unwrap();
            let back = parsed.duration_since(UNIX_EPOCH).unwrap().as_millis();
            prop_assert_eq!(back, ms as u128);
        }
    }
}

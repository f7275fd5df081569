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

/// Formats epoch milliseconds as an RFC 3339 UTC string, e.g. `2026-11-21T02:53:56.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_millis_as_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}

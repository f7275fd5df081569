//! Time as the API stores and shows it.
//!
//! Spin's MySQL interface cannot read DATETIME columns, so every timestamp is
//! stored as integer milliseconds since the Unix epoch and shown as RFC 3339 UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now (the real clock; handlers take the
/// time from their [`crate::context::RequestContext`] so tests can fix it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The last millisecond a time is shown as: 9999-12-30T22:00:00.000Z, the
/// end of the range the formatter takes (a day short of year 9999's end, so
/// that any UTC offset of it is still a year RFC 3339 can write).
const LAST_SHOWN_MS: i64 = 253_402_207_200_000;

/// Formats epoch milliseconds as an RFC 3339 UTC string, e.g.
/// `2026-11-21T02:53:56.123Z`; times before the epoch show as the epoch,
/// times after 9999-12-30T22:00:00Z as that time.
pub fn rfc3339(ms: i64) -> String {
    // Clamped at both ends: a stored time that far out is corrupt, not
    // worth a failed request.
    let t = jiff::Timestamp::from_millisecond(ms.clamp(0, LAST_SHOWN_MS))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    // Always three fractional digits, so the strings sort as the times do.
    format!("{t:.3}")
}

#[cfg(test)]
mod tests;

//! How much one user may hold. Every upload counts its own size, even when
//! its bytes are shared with an identical file (the user cannot see that
//! sharing, so it must not change what they may store), and so does every
//! direct upload announced and not yet completed, until it expires.
//!
//! The repositories gather the numbers — MySQL under the owner's row lock,
//! so one user's requests are checked one at a time — and these functions
//! decide.

use shared::ApiError;

/// Most unexpired direct-upload announcements one user may hold: each is a
/// row, and 1-byte announcements would otherwise fit the quota by millions.
pub const MAX_PENDING_PER_USER: u64 = 20;

/// What one user holds against the quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The sizes of their uploads, added up.
    pub stored_bytes: u64,
    /// The announced sizes of their direct uploads that still hold room
    /// ([`crate::model::Pending::holds_room_at`]), added up.
    pub pending_bytes: u64,
}

/// Whether `new_bytes` more fit in `quota_bytes` beside `usage`: Ok, or 409
/// `quota_exceeded` naming the quota. Up to the quota exactly fits.
pub fn check_quota(usage: Usage, new_bytes: u64, quota_bytes: u64) -> Result<(), ApiError> {
    // Saturating: sizes near u64::MAX (a hostile announcement) must refuse,
    // not wrap around into "fits".
    let after = usage
        .stored_bytes
        .saturating_add(usage.pending_bytes)
        .saturating_add(new_bytes);
    if after > quota_bytes {
        return Err(ApiError::QuotaExceeded { quota: quota_bytes });
    }
    Ok(())
}

/// Whether one more announcement may join the `held` unexpired ones, the
/// oldest of which expires at `oldest_expires_at_ms`: Ok, or 429
/// `too_many_attempts` telling the client to retry when the oldest expires.
pub fn check_pending_cap(
    held: u64,
    oldest_expires_at_ms: i64,
    now_ms: i64,
) -> Result<(), ApiError> {
    if held < MAX_PENDING_PER_USER {
        return Ok(());
    }
    Err(too_many_pending(oldest_expires_at_ms, now_ms))
}

/// The refusal of one announcement too many: retry when the oldest expires,
/// and never sooner than a second from now (an expiry already past, or a
/// clock skewed between instances, must not say "retry at once").
fn too_many_pending(oldest_expires_at_ms: i64, now_ms: i64) -> ApiError {
    let wait_ms = oldest_expires_at_ms.saturating_sub(now_ms).max(1000);
    ApiError::TooManyAttempts {
        retry_after_secs: wait_ms.unsigned_abs().div_ceil(1000),
    }
}

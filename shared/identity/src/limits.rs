//! Attempt limits on every password check: login (per email + client
//! address, and per address), `current_password` (per user) and registration
//! (per address, since each one costs an argon2 hash).
//!
//! An attempt is counted *before* its password is looked at, atomically, in
//! MySQL — which these requests open anyway — because Spin's key-value store
//! has no atomic increment on most platforms (none in spin-sdk 5.2, none on
//! Akamai Functions). A burst of 40 simultaneous guesses therefore gets at
//! most `max` password checks, and 429 for the rest. If the attempt cannot
//! be recorded the request answers 503 and no password is checked: without a
//! count there is no limit.
//!
//! Buckets are SHA-256 digests of what they count, so the table holds no
//! email or address and every key has the same short size.

use sha2::{Digest, Sha256};
use shared::domain::Email;
use shared::ApiError;

use crate::repo::AttemptRepo;

/// At most `max` attempts per window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed in one window.
    pub max: u32,
    /// The window (and so the lock) length in seconds.
    pub window_secs: i64,
}

impl Limit {
    /// A limit if it makes sense, otherwise a configuration error (500,
    /// logged): a zero limit would refuse every attempt, a non-positive
    /// window would never refuse any, and a window longer than
    /// [`shared::config::MAX_DURATION_SECS`] would overflow in milliseconds.
    /// `name` names the variable at fault.
    pub fn new(name: &str, max: u32, window_secs: i64) -> Result<Self, ApiError> {
        if max == 0 || window_secs <= 0 {
            return Err(ApiError::Internal(format!(
                "configuration: {name} and its window must be at least 1"
            )));
        }
        // `admit` counts in `window_secs * 1000` ms added to the clock: an
        // unbounded window overflows `i64` (a panic traps the component; a
        // release build wraps to a window already over, so no limit at all).
        if window_secs > shared::config::MAX_DURATION_SECS {
            return Err(ApiError::Internal(format!(
                "configuration: the window of {name} must be at most {} seconds",
                shared::config::MAX_DURATION_SECS
            )));
        }
        Ok(Self { max, window_secs })
    }
}

fn bucket(kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        // A separator no email or address contains keeps ("a","bc") and ("ab","c") apart.
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The bucket of logins for one email from one client address.
pub fn login_pair(email: &Email, client: &str) -> String {
    bucket("login-pair", &[email.as_str(), client])
}

/// The bucket of logins from one client address, whatever the email.
pub fn login_address(client: &str) -> String {
    bucket("login-address", &[client])
}

/// The bucket of `current_password` checks of one user.
pub fn password_check(user_id: &str) -> String {
    bucket("current-password", &[user_id])
}

/// The bucket of registrations from one client address.
pub fn registration(client: &str) -> String {
    bucket("registration", &[client])
}

/// Counts one attempt in every `(bucket, limit)` and admits it only if no
/// bucket is over its limit; otherwise 429 `too_many_attempts` with the
/// seconds until the longest lock ends. Every bucket is counted even when an
/// earlier one refuses, so a locked address cannot spray fresh pairs for free.
pub fn admit(
    repo: &dyn AttemptRepo,
    checks: &[(&str, Limit)],
    now_ms: i64,
) -> Result<(), ApiError> {
    let mut retry_after_ms = 0;
    for (bucket, limit) in checks {
        let count = repo
            .count_attempt(bucket, limit.max, limit.window_secs * 1000, now_ms)
            .map_err(|e| {
                ApiError::Unavailable(format!("attempt not recorded: {}", e.log_detail()))
            })?;
        if count.attempts > limit.max {
            retry_after_ms = retry_after_ms.max(count.window_ends_ms - now_ms);
        }
    }
    if retry_after_ms > 0 {
        // Round up: a client that waits exactly Retry-After must find the lock gone.
        let secs = (retry_after_ms + 999) / 1000;
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: secs.max(1) as u64,
        });
    }
    Ok(())
}

/// After a password check succeeded: `clear` buckets are forgotten (the pair
/// of a successful login), `refund` buckets get this attempt back (the
/// address, which only counts failures). Best effort: a failure here leaves a
/// count that expires with its window, so it is logged, not answered.
pub fn succeeded(repo: &dyn AttemptRepo, clear: &[&str], refund: &[&str]) {
    let results = clear
        .iter()
        .map(|b| repo.clear_attempts(b))
        .chain(refund.iter().map(|b| repo.refund_attempt(b)));
    for result in results {
        if let Err(e) = result {
            shared::log::warn(format!(
                "attempt limits: could not reset a counter: {}",
                e.log_detail()
            ));
        }
    }
}

#[cfg(test)]
mod tests;

//! Revocation: one mark per login session in the key-value store, so that
//! every component, and every instance sharing the store, refuses a revoked
//! token at once.
//!
//! The mark is `rv:s:<sid>` ([`crate::keys::session_revoked`]): the access
//! tokens carrying that `sid` and issued at or before the stored second are
//! void. Ending a session (logout, refresh-token reuse, password change,
//! deletion) stores "every token"; a role change stores "up to now", so the
//! session's next refresh carries the new role. A user-wide revocation
//! writes the mark of each of the user's sessions, which the identity
//! repository lists — so checking a token costs exactly one key-value read,
//! and no revocation is a read-modify-write that a concurrent one could undo.
//!
//! A mark lives one access-token lifetime (plus leeway): every token it voids
//! has expired by then, and an ended session can mint no new token (refresh
//! checks the session row in MySQL). If the store cannot be read the request
//! fails with 503: a revoked token must never pass because the cache is down.

use super::principal::Claims;
use super::token::{TokenConfig, LEEWAY_SECS};
use crate::error::ApiError;
use crate::keys;
use crate::kv::{get_unexpired, put_expiring, KeyValue};

/// True when the token's session was ended, or its tokens voided up to a
/// second at or after the token's `iat`.
pub fn is_revoked(kv: &dyn KeyValue, claims: &Claims, now_ms: i64) -> Result<bool, ApiError> {
    let Some(mark) = get_unexpired(kv, &keys::session_revoked(&claims.sid), now_ms)? else {
        return Ok(false);
    };
    let revoked_through = mark
        .as_slice()
        .try_into()
        .map(i64::from_be_bytes)
        .unwrap_or(i64::MAX);
    // `iat` has one-second resolution, so a token issued in the same second
    // as the mark counts as revoked: better one extra refresh than a token
    // minted just before a role change surviving it.
    Ok(claims.iat <= revoked_through)
}

/// Ends every access token of session `sid`, whenever issued (logout, reuse,
/// password change, deletion).
pub fn end_session(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    write_mark(kv, config, sid, i64::MAX, now_ms)
}

/// Voids the access tokens of session `sid` issued up to `now_ms`; the
/// session itself lives on, and its next refresh issues a fresh token (role
/// change, or the caller's own session after a password change).
pub fn void_session_tokens(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    write_mark(kv, config, sid, now_ms.div_euclid(1000), now_ms)
}

fn write_mark(
    kv: &dyn KeyValue,
    config: &TokenConfig,
    sid: &str,
    through_secs: i64,
    now_ms: i64,
) -> Result<(), ApiError> {
    // A minute beyond the longest token life covers a login or refresh that
    // was still in flight, minting its token, when the mark was written.
    let until_ms = now_ms + (config.access_ttl_secs + LEEWAY_SECS + 60) * 1000;
    put_expiring(
        kv,
        &keys::session_revoked(sid),
        &through_secs.to_be_bytes(),
        until_ms,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! Refresh tokens, and ending a user's sessions everywhere.
//!
//! Ending a session takes two writes: the session row in MySQL (its refresh
//! token stops) and its revocation mark in the key-value store (its access
//! tokens stop, in every component — [`shared::auth::end_session`]). A
//! user-wide revocation (password change, deletion, bootstrap takeover)
//! marks each session: those it found live before changing the database, and
//! those the change itself ended — which includes a login that recorded its
//! session in between. Marks first means a store that is down answers 503
//! before anything changed.

use sha2::{Digest, Sha256};
use shared::auth::{end_session, void_session_tokens, TokenConfig};
use shared::kv::KeyValue;
use shared::ApiError;

/// A fresh refresh token (256 random bits, hex) and the SHA-256 (hex) stored for it.
pub fn new_refresh_token() -> Result<(String, String), ApiError> {
    let token = hex::encode(shared::id::random_bytes::<32>()?);
    let hash = sha256_hex(&token);
    Ok((token, hash))
}

/// The stored hash of a presented refresh token, or `None` when it cannot be
/// one we issued (64 lower-case hex chars) — refused without a database trip.
pub fn refresh_token_hash(token: &str) -> Option<String> {
    let well_formed = token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| sha256_hex(token))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The cut-off for [`crate::repo::SessionRepo::live_sessions`]: a session
/// whose refresh token expired before it can hold no unexpired access token.
pub fn tokens_alive_since(tokens: &TokenConfig, now_ms: i64) -> i64 {
    now_ms - (tokens.access_ttl_secs + 120) * 1000
}

/// Ends the access tokens of every session in `ids`.
pub fn end_all(
    kv: &dyn KeyValue,
    tokens: &TokenConfig,
    ids: &[String],
    now_ms: i64,
) -> Result<(), ApiError> {
    ids.iter()
        .try_for_each(|sid| end_session(kv, tokens, sid, now_ms))
}

/// Voids the access tokens issued up to now in every session of `ids`; the
/// sessions live on and refresh into tokens with the account's new state.
pub fn void_all(
    kv: &dyn KeyValue,
    tokens: &TokenConfig,
    ids: &[String],
    now_ms: i64,
) -> Result<(), ApiError> {
    ids.iter()
        .try_for_each(|sid| void_session_tokens(kv, tokens, sid, now_ms))
}

/// The ids in `after` that `before` lacks: sessions recorded while a
/// user-wide change was running, which still need their marks.
pub fn newly_found(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|id| !before.contains(id))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;

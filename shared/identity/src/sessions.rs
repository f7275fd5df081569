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
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_256_bit_hex_and_hash_consistently() {
        let (token, hash) = new_refresh_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(refresh_token_hash(&token), Some(hash));
        assert_eq!(refresh_token_hash("not-a-token"), None);
    }

    #[test]
    fn newly_found_keeps_only_the_sessions_the_first_look_missed() {
        let before = vec!["a".to_string(), "b".to_string()];
        let after = vec!["b".to_string(), "c".to_string()];
        assert_eq!(newly_found(&before, &after), ["c"]);
    }

    use proptest::prelude::*;
    use shared::testing::hostile_text;

    proptest! {
        #[test]
        fn only_64_lower_case_hex_characters_are_refresh_tokens(
            token in prop_oneof![hostile_text(), "[0-9a-fA-F]{62,66}", "[0-9a-f\\u{e9}]{63,65}"]
        ) {
            let well_formed = token.chars().count() == 64
                && token.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            match refresh_token_hash(&token) {
                Some(hash) => {
                    prop_assert!(well_formed, "{token:?}");
                    prop_assert_eq!(hash.len(), 64);
                    prop_assert_ne!(hash, token);
                }
                None => prop_assert!(!well_formed, "{token:?}"),
            }
        }

        #[test]
        fn newly_found_is_exactly_what_the_second_look_added(
            before in prop::collection::vec(hostile_text(), 0..5),
            after in prop::collection::vec(hostile_text(), 0..5),
        ) {
            let new = newly_found(&before, &after);
            prop_assert!(new.iter().all(|id| after.contains(id) && !before.contains(id)));
            prop_assert!(after.iter().filter(|id| !before.contains(id)).all(|id| new.contains(id)));
        }
    }
}

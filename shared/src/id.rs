//! Opaque identifiers and secure random bytes.

use crate::error::ApiError;

/// `N` bytes from the platform's secure random source (WASI's `random` on Spin).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| ApiError::Internal(format!("random source: {e}")))?;
    Ok(buf)
}

/// A new opaque id: 32 lower-case hex characters.
///
/// The first 6 bytes are the creation time in milliseconds, so ids sort by age
/// and inserts land at the end of the primary-key index; the other 10 bytes are
/// random, so ids cannot be guessed or enumerated.
pub fn new_id(now_ms: i64) -> Result<String, ApiError> {
    let random: [u8; 10] = random_bytes()?;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&(now_ms as u64).to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random);
    Ok(hex::encode(bytes))
}

/// True when `s` could be an id made by [`new_id`]; anything else cannot name a
/// record, so callers answer 404 without asking the database.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;

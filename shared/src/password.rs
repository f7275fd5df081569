//! Password hashing with argon2id.
//!
//! Parameters are OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1): about
//! 50 ms per hash or verify inside a Spin component on a 2-core machine. That
//! is the cost we accept per login; the brute-force limits run before it so an
//! attacker cannot make us spend it at will.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::ApiError;

/// A PHC string of a random password nobody knows, with the same parameters as
/// real hashes. Verifying against it when the email is unknown makes a failed
/// login cost the same whether or not the account exists, so timing cannot
/// reveal which emails are registered.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3Bpbi1hcGktZHVtbXktc2FsdA$JFhL8k9KnVnNzk3T8KMU4qyD0Ut7wS3bH8WzVYx6Zyw";

fn hasher() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| ApiError::Internal(format!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a new password into a PHC string with a fresh random salt.
pub fn hash_password(password: &Password) -> Result<String, ApiError> {
    let salt_bytes: [u8; 16] = crate::id::random_bytes()?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ApiError::Internal(format!("argon2 salt: {e}")))?;
    hasher()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2 hash: {e}")))
}

/// True when `candidate` matches the stored PHC string. A stored hash that does
/// not parse never matches.
pub fn verify_password(stored_hash: &str, candidate: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    // The parameters come from the PHC string itself, so older hashes still verify.
    Argon2::default()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the same time as [`verify_password`] and always fails: used when the
/// email is unknown (see [`DUMMY_HASH`]).
pub fn verify_against_dummy(candidate: &str) -> bool {
    let _ = verify_password(DUMMY_HASH, candidate);
    false
}

#[cfg(test)]
mod tests;

//! Password hashing with argon2id.
//!
//! New hashes get [`CURRENT`]: m = 7 MiB, t = 5, p = 1, one of the five
//! argon2id configurations OWASP's Password Storage Cheat Sheet lists as
//! equally strong (m = 19/12/9/7 MiB with t = 2/3/4/5, and 46 MiB with
//! t = 1). Each needs about the same memory × passes, so an attacker pays
//! about the same per guess; this one needs the least memory per check, and
//! was the fastest login in the component (issue 32: 34 ms a login against
//! 45 ms with m = 19 MiB, t = 2 on the test host — each login's fresh
//! instance grows and faults in 7 MiB instead of 19 — and natively too,
//! 11.3 against 13.7 ms a verification).
//!
//! Hashes made with other parameters — [`PREVIOUS`], or any other — keep
//! verifying, since the PHC string carries its own parameters; a login that
//! verified one stores a hash with [`CURRENT`] in its place ([`needs_rehash`],
//! [`rehash`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Password;
use crate::error::ApiError;

/// Argon2id cost parameters, as the PHC string's `m`, `t` and `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Memory per check, KiB (`m`).
    pub memory_kib: u32,
    /// Passes over that memory (`t`).
    pub passes: u32,
    /// Lanes (`p`).
    pub lanes: u32,
}

/// What new hashes get (see the module's docs for why).
pub const CURRENT: Cost = Cost {
    memory_kib: 7 * 1024,
    passes: 5,
    lanes: 1,
};

/// What hashes were made with before [`CURRENT`] (OWASP's first set,
/// m = 19 MiB, t = 2): still verified, and replaced at the next login.
pub const PREVIOUS: Cost = Cost {
    memory_kib: 19 * 1024,
    passes: 2,
    lanes: 1,
};

/// A PHC string of a random password nobody knows, with [`CURRENT`]'s
/// parameters. Verifying against it when the email is unknown makes a failed
/// login cost the same whether or not the account exists, so timing cannot
/// reveal which emails are registered. (Made once from 32 random bytes that
/// were then thrown away; a test keeps it in step with [`CURRENT`].)
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=7168,t=5,p=1$TE4aGCpwIyHXML9eLeo2Eg$N7khsvgobuD47o7loF8V7nqtpY4yudv8ASBW1bMInPk";

fn hasher(cost: Cost) -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, None)
        .map_err(|e| ApiError::Internal(format!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a new password into a PHC string with a fresh random salt.
pub fn hash_password(password: &Password) -> Result<String, ApiError> {
    hash_password_with(password.expose(), CURRENT)
}

/// Hashes `password` with `cost` (tests and the native baseline use other
/// costs than [`CURRENT`]; the components never do).
pub fn hash_password_with(password: &str, cost: Cost) -> Result<String, ApiError> {
    let salt_bytes: [u8; 16] = crate::id::random_bytes()?;
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ApiError::Internal(format!("argon2 salt: {e}")))?;
    hasher(cost)?
        .hash_password(password.as_bytes(), &salt)
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

/// True when a stored hash that just verified was not made as
/// [`hash_password`] makes hashes today: another algorithm or version, other
/// parameters than [`CURRENT`], or another output length. The login then
/// stores [`rehash`]'s hash in its place.
pub fn needs_rehash(stored_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return true;
    };
    let current = Params::try_from(&parsed).is_ok_and(|p| {
        p.m_cost() == CURRENT.memory_kib
            && p.t_cost() == CURRENT.passes
            && p.p_cost() == CURRENT.lanes
            && p.keyid().is_empty()
            && p.data().is_empty()
    });
    let output_len = parsed.hash.map(|h| h.len());
    !(current
        && parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && output_len == Some(Params::DEFAULT_OUTPUT_LEN))
}

/// A hash with [`CURRENT`] of a password that has just verified against an
/// outdated hash ([`needs_rehash`]). It takes the password as the client
/// sent it, not as a [`Password`]: it was accepted when it was set, whatever
/// today's rules for new passwords say.
pub fn rehash(candidate: &str) -> Result<String, ApiError> {
    hash_password_with(candidate, CURRENT)
}

/// Spends the same time as [`verify_password`] and always fails: used when the
/// email is unknown (see [`DUMMY_HASH`]).
pub fn verify_against_dummy(candidate: &str) -> bool {
    let _ = verify_password(DUMMY_HASH, candidate);
    false
}

#[cfg(test)]
mod tests;

//! Access tokens: issuing and verifying HS256 JWTs, reading the bearer token,
//! and global revocation through the key-value store.
//!
//! One concern a submodule, all of it re-exported here, so callers write
//! `shared::auth::X` whichever file holds `X`:
//!
//! * `principal` — who a token speaks for: [`Role`], the token's [`Claims`],
//!   and the verified caller, [`Principal`].
//! * `token` — issuing and verifying tokens: [`TokenConfig`], the expiry
//!   leeway [`LEEWAY_SECS`] and the secret's minimum [`MIN_SECRET_BYTES`].
//! * `hs256` — jsonwebtoken's crypto provider, HS256 and nothing else,
//!   installed by [`TokenConfig::new`].
//! * `revocation` — one mark per login session in the key-value store:
//!   [`end_session`], [`void_session_tokens`], [`is_revoked`].
//! * `request` — a request to its caller: [`bearer_token`], then the
//!   token verified and its session's mark read ([`authenticate`], or
//!   [`authenticate_reading_ahead`] for a handler that reads cached data next).
//!
//! Revocation lives in the key-value store so that every component, and
//! every instance sharing the store, refuses a revoked token at once; if the
//! store cannot be read the request fails with 503, never passes.

mod hs256;
mod principal;
mod request;
mod revocation;
mod token;

pub use principal::{Claims, Principal, Role};
pub use request::{authenticate, authenticate_reading_ahead, bearer_token};
pub use revocation::{end_session, is_revoked, void_session_tokens};
pub use token::{TokenConfig, LEEWAY_SECS, MIN_SECRET_BYTES};

#[cfg(test)]
mod tests;

//! Accounts, login sessions and password-attempt limits, shared by the two
//! components that own them (`login` and `users`) and by nobody else: orders,
//! uploads and docs only verify access tokens, which [`shared::auth`] does.
//!
//! * [`model`] — users, sessions and their JSON view.
//! * [`repo`] — the ports ([`repo::AccountRepo`], [`repo::SessionRepo`],
//!   [`repo::AttemptRepo`]) and their MySQL adapter [`repo::SqlIdentity`];
//!   with the `testing` feature, the in-memory fake `repo::MemoryIdentity`.
//! * [`limits`] — attempt limits on every password check, counted atomically
//!   in MySQL before the password is looked at.
//! * [`sessions`] — refresh tokens, and ending sessions everywhere.
//! * [`bootstrap`] — the bootstrap admin from Spin variables.
//!
//! Schema: `migrations/0001_users.sql` and `migrations/0004_auth_attempts.sql`.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod limits;
pub mod model;
pub mod repo;
pub mod sessions;

pub use model::{Credentials, User, UserView};

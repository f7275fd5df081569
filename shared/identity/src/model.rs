//! Users and login sessions as the handlers see them.

use serde::{Deserialize, Serialize};
use shared::auth::Role;

/// An account as the API knows it — never with its password hash, so a
/// `User` can be cached and shown without any risk of leaking the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Opaque id ([`shared::id::new_id`]).
    pub id: String,
    /// Normalised (trimmed, lower-cased) email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
    /// Last change, epoch milliseconds.
    pub updated_at_ms: i64,
}

impl User {
    /// The public JSON shape of docs/API.md: `{"id","email","name","role","created_at","updated_at"}`.
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            created_at: shared::time::rfc3339(self.created_at_ms),
            updated_at: shared::time::rfc3339(self.updated_at_ms),
        }
    }
}

/// The User JSON of docs/API.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// Opaque id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: Role,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// A user together with their password hash: only ever read to check a
/// password (and to fence the session it opens), never cached or serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// The argon2id PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A new login session to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Session id (the `sid` claim of its access tokens).
    pub id: String,
    /// The user logged in.
    pub user_id: String,
    /// SHA-256 (hex) of the first refresh token.
    pub refresh_hash: String,
    /// Creation time, epoch milliseconds: the start of its absolute lifetime.
    pub created_at_ms: i64,
    /// When the refresh token stops working, epoch milliseconds.
    pub expires_at_ms: i64,
}

/// A session found by its current refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Its user.
    pub user_id: String,
    /// The user's role now (a refreshed access token carries the current role).
    pub role: Role,
    /// When the login that started it happened, epoch milliseconds.
    pub created_at_ms: i64,
    /// When the current refresh token expires, epoch milliseconds.
    pub expires_at_ms: i64,
    /// True once the session was ended (logout, reuse, password change).
    pub revoked: bool,
}

/// What a presented refresh token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshLookup {
    /// The current token of a session.
    Current(SessionInfo),
    /// A token its session already rotated away from: a replay.
    Superseded {
        /// The session it belonged to.
        session_id: String,
        /// The session's user.
        user_id: String,
    },
    /// Not a token we issued (or its session is gone).
    Unknown,
}

/// Changes to an account's profile; `None` leaves a column as it is.
/// Passwords change through [`crate::repo::AccountRepo::change_password`],
/// which also ends sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New display name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
}

#[cfg(test)]
mod tests;

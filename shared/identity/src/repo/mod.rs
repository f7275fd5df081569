//! The users, sessions and attempt tables as the handlers see them: three
//! ports, one MySQL adapter ([`SqlIdentity`]) implementing all of them on
//! one connection, and an in-memory fake with the same semantics for unit
//! tests (feature `testing`). Every method maps database failures to
//! [`ApiError`] (503 when unreachable, 500 otherwise).

use shared::cache::Cache;
use shared::ApiError;

use crate::model::{Credentials, NewSession, ProfileChanges, RefreshLookup, User};

mod sql;
pub use sql::SqlIdentity;

#[cfg(any(test, feature = "testing"))]
mod memory;
#[cfg(any(test, feature = "testing"))]
pub use memory::{MemoryIdentity, SessionRow};

/// The `users` table.
pub trait AccountRepo {
    /// Inserts a user; a taken email is [`ApiError::EmailTaken`].
    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), ApiError>;
    /// The user with `id`.
    fn find_user(&self, id: &str) -> Result<Option<User>, ApiError>;
    /// The user with this (normalised) email and their password hash.
    fn find_credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, ApiError>;
    /// The user with `id` and their password hash.
    fn find_credentials(&self, id: &str) -> Result<Option<Credentials>, ApiError>;
    /// One page of users ordered by creation time then id, and the total count.
    fn list_users(&self, offset: u64, limit: u32) -> Result<(Vec<User>, u64), ApiError>;
    /// Applies `changes` (and `updated_at`); the updated user, or `None` if absent.
    fn update_profile(
        &self,
        id: &str,
        changes: &ProfileChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError>;
    /// Sets a new password hash and, in the same transaction, ends every
    /// session of the user except `keep`. Returns the ids of the sessions it
    /// ended (their access tokens must be revoked too), or `None` when there
    /// is no such user. A login that verified the old password and has not
    /// yet recorded its session can no longer record it
    /// ([`SessionRepo::create_session`] is fenced on the hash).
    fn change_password(
        &self,
        id: &str,
        new_hash: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError>;
    /// The bootstrap admin's takeover of an existing account: only if its
    /// hash is still `expected_hash`, sets `new_hash` and role `admin` and
    /// ends every session, in one transaction. `None` when the hash had
    /// changed (a concurrent takeover won); otherwise the ended session ids.
    fn take_over(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError>;
    /// Replaces the password hash by `new_hash` only while it is still
    /// `expected_hash`: a login that verified a hash made with older
    /// parameters stores one with today's (`shared::password::needs_rehash`).
    /// The same password, so nothing else changes — no session ends, and
    /// `updated_at` stays. False when the hash had changed in between (a
    /// password change or takeover won) or the user is gone.
    fn replace_password_hash(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
    ) -> Result<bool, ApiError>;
    /// Deletes the user and all their sessions; the ids of the sessions it
    /// had, or `None` if there was no such user.
    fn delete_user(&self, id: &str) -> Result<Option<Vec<String>>, ApiError>;
}

/// The `sessions` and `refresh_tokens` tables.
pub trait SessionRepo {
    /// Ids of the user's sessions that are not ended and whose refresh
    /// token expired after `since_ms` — every session that may still have a
    /// valid access token.
    fn live_sessions(&self, user_id: &str, since_ms: i64) -> Result<Vec<String>, ApiError>;
    /// Records a new session, only while the account still has the password
    /// hash and role in `verified` (read when the password was checked).
    /// False when either changed in between: a password change, a role
    /// change or a deletion won the race, and the login must not succeed.
    fn create_session(
        &self,
        session: &NewSession,
        verified: &Credentials,
    ) -> Result<bool, ApiError>;
    /// Finds what a refresh token (by hash) is.
    fn find_refresh(&self, token_hash: &str) -> Result<RefreshLookup, ApiError>;
    /// Replaces the session's current token `old_hash` by `new_hash`, only if
    /// `old_hash` is still current and the session is live, and remembers
    /// `old_hash` as superseded. False when another request rotated it first:
    /// of two concurrent refreshes with one token, exactly one succeeds.
    fn rotate_refresh(
        &self,
        session_id: &str,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, ApiError>;
    /// Ends one session (its refresh token stops working).
    fn revoke_session(&self, session_id: &str, now_ms: i64) -> Result<(), ApiError>;
}

/// One counted attempt: how many the bucket holds in its current window
/// (this one included), and when that window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCount {
    /// Attempts in the window, this one included.
    pub attempts: u32,
    /// End of the window, epoch milliseconds.
    pub window_ends_ms: i64,
}

/// The `auth_attempts` table: atomic counters of password attempts.
pub trait AttemptRepo {
    /// Counts one attempt in `bucket` atomically and returns the count this
    /// attempt made. A window opens at a bucket's first attempt and lasts
    /// `window_ms`; the attempt that reaches `max` restarts it, so a lock
    /// always lasts a full window.
    fn count_attempt(
        &self,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<AttemptCount, ApiError>;
    /// Forgets the bucket (a successful login clears its email + address pair).
    fn clear_attempts(&self, bucket: &str) -> Result<(), ApiError>;
    /// Takes back one attempt (a successful login is not a failure of its address).
    fn refund_attempt(&self, bucket: &str) -> Result<(), ApiError>;
}

/// How long "no such user" is cached: short, so a user created under a
/// probed id (impossible with random ids, but cheap to allow) shows up soon.
/// Only reached by an authenticated self or admin read, never by anonymous
/// traffic, so these entries cannot be made in bulk.
pub const MISSING_TTL_MS: i64 = 30_000;

/// Cache-aside read of a user: a warm entry answers without touching the
/// database (so no MySQL connection is opened), a miss loads and caches.
pub fn cached_user(
    cache: &Cache<'_>,
    repo: &dyn AccountRepo,
    id: &str,
    ttl_ms: i64,
) -> Result<Option<User>, ApiError> {
    cache.get_or_load(&shared::keys::user(id), ttl_ms, MISSING_TTL_MS, || {
        repo.find_user(id)
    })
}

/// The ports the login and users components work with: the key-value store
/// and the three identity ports (on Spin, one [`SqlIdentity`] serves all
/// three on one lazily opened connection). Each component's handlers see
/// them inside their per-request `Env`; users adds its `db` beside them.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// The key-value store (cache and revocation marks).
    pub kv: &'a dyn shared::kv::KeyValue,
    /// The `users` table.
    pub accounts: &'a dyn AccountRepo,
    /// The `sessions` and `refresh_tokens` tables.
    pub sessions: &'a dyn SessionRepo,
    /// The `auth_attempts` table.
    pub attempts: &'a dyn AttemptRepo,
}

impl<'a> Ports<'a> {
    /// Ports whose three repositories are all `repo`.
    pub fn new<R>(kv: &'a dyn shared::kv::KeyValue, repo: &'a R) -> Self
    where
        R: AccountRepo + SessionRepo + AttemptRepo,
    {
        Self {
            kv,
            accounts: repo,
            sessions: repo,
            attempts: repo,
        }
    }
}

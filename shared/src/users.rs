//! Users and login sessions: the model, its public JSON view, and the
//! repository port both auth components (`login`, `users`) work through, with
//! its MySQL implementation ([`MySqlUsers`]) and an in-memory fake
//! ([`MemoryUsers`]) for unit tests.
//!
//! Schema (`migrations/0001_users.sql`):
//! * `users` — one row per account; the password only as an argon2id PHC string.
//! * `sessions` — one row per login. `refresh_hash` is the SHA-256 of the
//!   session's *current* refresh token: the token itself is never stored, so a
//!   leaked table cannot be replayed.
//! * `refresh_tokens` — the hashes of tokens a session has already rotated
//!   away from. Keeping every superseded hash (not just the previous one) means
//!   reuse is detected however many rotations happened since the theft; rows go
//!   with their session (`ON DELETE CASCADE`), so the table is bounded by the
//!   sessions' own lifetime.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Role;
use crate::cache::Cache;
use crate::db::{Row, Sql, Value};
use crate::error::ApiError;

/// An account as the API knows it — never with its password hash, so a
/// `User` can be cached and shown without any risk of leaking the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Opaque id ([`crate::id::new_id`]).
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
    /// The public JSON shape of API.md: `{"id","email","name","role","created_at","updated_at"}`.
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            created_at: crate::time::rfc3339(self.created_at_ms),
            updated_at: crate::time::rfc3339(self.updated_at_ms),
        }
    }
}

/// The User JSON of API.md.
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
/// password, never cached or serialised.
#[derive(Clone)]
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
    /// Creation time, epoch milliseconds.
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

/// Changes to an account; `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// New display name.
    pub name: Option<String>,
    /// New role.
    pub role: Option<Role>,
    /// New password hash.
    pub password_hash: Option<String>,
}

/// The users and sessions tables as the handlers see them. Every method maps
/// database failures to [`ApiError`] (503 when unreachable, 500 otherwise).
pub trait UserRepo {
    /// A trivial round trip, for the health check.
    fn ping(&self) -> Result<(), ApiError>;
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
    fn update_user(
        &self,
        id: &str,
        changes: &UserChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError>;
    /// Deletes the user and all their sessions; false if there was no such user.
    fn delete_user(&self, id: &str) -> Result<bool, ApiError>;
    /// Records a new login session.
    fn create_session(&self, session: &NewSession) -> Result<(), ApiError>;
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
    /// Ends every live session of `user_id` except `keep` (the caller's own).
    fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ApiError>;
}

/// The cache key of a user record.
pub fn cache_key(user_id: &str) -> String {
    format!("u:{user_id}")
}

/// How long "no such user" is cached: short, so a user created under a
/// probed id (impossible with random ids, but cheap to allow) shows up soon.
pub const MISSING_TTL_MS: i64 = 30_000;

/// Cache-aside read of a user: a warm entry answers without touching the
/// database (so no MySQL connection is opened), a miss loads and caches.
pub fn cached_user(
    cache: &Cache<'_>,
    repo: &dyn UserRepo,
    id: &str,
    ttl_ms: i64,
) -> Result<Option<User>, ApiError> {
    cache.get_or_load(&cache_key(id), ttl_ms, MISSING_TTL_MS, || {
        repo.find_user(id)
    })
}

/// A fresh refresh token (256 random bits, hex) and the SHA-256 (hex) stored for it.
pub fn new_refresh_token() -> Result<(String, String), ApiError> {
    let token = hex::encode(crate::id::random_bytes::<32>()?);
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

// ------------------------------------------------------------------ MySQL

/// [`UserRepo`] over the SQL port (Spin's MySQL on wasm).
pub struct MySqlUsers<'a, S: Sql> {
    sql: &'a S,
}

impl<'a, S: Sql> MySqlUsers<'a, S> {
    /// A repository on `sql` (whose connection opens on first use).
    pub fn new(sql: &'a S) -> Self {
        Self { sql }
    }

    /// The account and hash whose unique `column` (`id` or `email`) is `value`.
    fn credentials_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Credentials>, ApiError> {
        let rows = self.sql.query(
            &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE {column} = ?"),
            &[Value::from(value)],
        )?;
        rows.first().map(credentials_from_row).transpose()
    }
}

const USER_COLUMNS: &str = "id, email, name, role, created_at_ms, updated_at_ms";

fn user_from_row(row: &Row) -> Result<User, ApiError> {
    let role = row.string(3)?;
    Ok(User {
        id: row.string(0)?,
        email: row.string(1)?,
        name: row.string(2)?,
        role: Role::parse(&role)
            .ok_or_else(|| ApiError::Internal(format!("unknown role {role:?} in users")))?,
        created_at_ms: row.i64(4)?,
        updated_at_ms: row.i64(5)?,
    })
}

fn credentials_from_row(row: &Row) -> Result<Credentials, ApiError> {
    Ok(Credentials {
        user: user_from_row(row)?,
        password_hash: row.string(6)?,
    })
}

impl<S: Sql> UserRepo for MySqlUsers<'_, S> {
    fn ping(&self) -> Result<(), ApiError> {
        self.sql.query("SELECT 1", &[])?;
        Ok(())
    }

    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), ApiError> {
        let result = self.sql.execute(
            "INSERT INTO users (id, email, name, role, password_hash, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::from(&user.id),
                Value::from(&user.email),
                Value::from(&user.name),
                Value::from(user.role.as_str()),
                Value::from(password_hash),
                Value::from(user.created_at_ms),
                Value::from(user.updated_at_ms),
            ],
        );
        match result {
            Err(e) if e.is_duplicate_of("uq_users_email") => Err(ApiError::EmailTaken),
            other => Ok(other?),
        }
    }

    fn find_user(&self, id: &str) -> Result<Option<User>, ApiError> {
        let rows = self.sql.query(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"),
            &[Value::from(id)],
        )?;
        rows.first().map(user_from_row).transpose()
    }

    fn find_credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, ApiError> {
        self.credentials_where("email", email)
    }

    fn find_credentials(&self, id: &str) -> Result<Option<Credentials>, ApiError> {
        self.credentials_where("id", id)
    }

    fn list_users(&self, offset: u64, limit: u32) -> Result<(Vec<User>, u64), ApiError> {
        let total = self
            .sql
            .query("SELECT COUNT(*) FROM users", &[])?
            .first()
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0);
        let rows = self.sql.query(
            &format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY created_at_ms, id LIMIT ? OFFSET ?"
            ),
            &[Value::from(limit), Value::from(offset)],
        )?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((users, total))
    }

    fn update_user(
        &self,
        id: &str,
        changes: &UserChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError> {
        // COALESCE keeps a column when its change is NULL: one statement for any mix of changes.
        self.sql.execute(
            "UPDATE users SET name = COALESCE(?, name), role = COALESCE(?, role), \
             password_hash = COALESCE(?, password_hash), updated_at_ms = ? WHERE id = ?",
            &[
                Value::from(changes.name.as_deref()),
                Value::from(changes.role.map(|r| r.as_str())),
                Value::from(changes.password_hash.as_deref()),
                Value::from(now_ms),
                Value::from(id),
            ],
        )?;
        self.find_user(id)
    }

    fn delete_user(&self, id: &str) -> Result<bool, ApiError> {
        // Sessions go first (the foreign key would cascade anyway); their
        // superseded refresh hashes cascade from the sessions.
        self.sql
            .execute("DELETE FROM sessions WHERE user_id = ?", &[Value::from(id)])?;
        self.sql
            .execute("DELETE FROM users WHERE id = ?", &[Value::from(id)])?;
        Ok(self.sql.affected_rows()? > 0)
    }

    fn create_session(&self, session: &NewSession) -> Result<(), ApiError> {
        self.sql.execute(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?)",
            &[
                Value::from(&session.id),
                Value::from(&session.user_id),
                Value::from(&session.refresh_hash),
                Value::from(session.created_at_ms),
                Value::from(session.expires_at_ms),
            ],
        )?;
        Ok(())
    }

    fn find_refresh(&self, token_hash: &str) -> Result<RefreshLookup, ApiError> {
        let rows = self.sql.query(
            "SELECT s.id, s.user_id, u.role, s.expires_at_ms, s.revoked_at_ms \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.refresh_hash = ?",
            &[Value::from(token_hash)],
        )?;
        if let Some(row) = rows.first() {
            let role = row.string(2)?;
            return Ok(RefreshLookup::Current(SessionInfo {
                id: row.string(0)?,
                user_id: row.string(1)?,
                role: Role::parse(&role)
                    .ok_or_else(|| ApiError::Internal(format!("unknown role {role:?} in users")))?,
                expires_at_ms: row.i64(3)?,
                revoked: row.opt_i64(4)?.is_some(),
            }));
        }
        let rows = self.sql.query(
            "SELECT r.session_id, s.user_id FROM refresh_tokens r \
             JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = ?",
            &[Value::from(token_hash)],
        )?;
        match rows.first() {
            Some(row) => Ok(RefreshLookup::Superseded {
                session_id: row.string(0)?,
                user_id: row.string(1)?,
            }),
            None => Ok(RefreshLookup::Unknown),
        }
    }

    fn rotate_refresh(
        &self,
        session_id: &str,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, ApiError> {
        // The conditional UPDATE is the arbiter: InnoDB row-locks the session,
        // so a concurrent refresh with the same token waits, then re-reads the
        // row, finds the hash changed and updates nothing. The superseded hash
        // is recorded in the same transaction, so a token can never be both
        // rotated away and unrecognised as a replay.
        self.sql.transaction(|sql| {
            sql.execute(
                "UPDATE sessions SET refresh_hash = ?, expires_at_ms = ? \
                 WHERE id = ? AND refresh_hash = ? AND revoked_at_ms IS NULL AND expires_at_ms > ?",
                &[
                    Value::from(new_hash),
                    Value::from(new_expires_at_ms),
                    Value::from(session_id),
                    Value::from(old_hash),
                    Value::from(now_ms),
                ],
            )?;
            if sql.affected_rows()? != 1 {
                return Ok(false);
            }
            sql.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, superseded_at_ms) VALUES (?, ?, ?)",
                &[Value::from(old_hash), Value::from(session_id), Value::from(now_ms)],
            )?;
            Ok(true)
        })
    }

    fn revoke_session(&self, session_id: &str, now_ms: i64) -> Result<(), ApiError> {
        self.sql.execute(
            "UPDATE sessions SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL",
            &[Value::from(now_ms), Value::from(session_id)],
        )?;
        Ok(())
    }

    fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        self.sql.execute(
            "UPDATE sessions SET revoked_at_ms = ? WHERE user_id = ? AND id <> ? AND revoked_at_ms IS NULL",
            &[Value::from(now_ms), Value::from(user_id), Value::from(keep.unwrap_or(""))],
        )?;
        Ok(())
    }
}

// ------------------------------------------------------------------ fake

/// One session row of the fake, public so tests can assert on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Its user.
    pub user_id: String,
    /// Hash of the current refresh token.
    pub refresh_hash: String,
    /// Refresh-token expiry, epoch milliseconds.
    pub expires_at_ms: i64,
    /// When it was ended, if it was.
    pub revoked_at_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct Tables {
    users: Vec<(User, String)>,
    sessions: Vec<SessionRow>,
    superseded: Vec<(String, String)>,
    down: bool,
}

/// An in-memory [`UserRepo`] with the MySQL implementation's semantics, for
/// unit tests. [`MemoryUsers::set_down`] makes every call fail as an
/// unreachable database would.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    tables: Mutex<Tables>,
    calls: Mutex<u32>,
}

impl MemoryUsers {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail with 503 (`down = true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// The stored user with `id` and its password hash.
    pub fn user_row(&self, id: &str) -> Option<(User, String)> {
        self.lock().users.iter().find(|(u, _)| u.id == id).cloned()
    }

    /// The user stored under `email`.
    pub fn user_by_email(&self, email: &str) -> Option<User> {
        self.lock()
            .users
            .iter()
            .find(|(u, _)| u.email == email)
            .map(|(u, _)| u.clone())
    }

    /// Every session row.
    pub fn sessions(&self) -> Vec<SessionRow> {
        self.lock().sessions.clone()
    }

    /// How many repository calls were made (to assert a cache hit made none).
    pub fn calls(&self) -> u32 {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<std::sync::MutexGuard<'_, Tables>, ApiError> {
        *self.calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let tables = self.lock();
        if tables.down {
            return Err(ApiError::Unavailable("database: fake is down".into()));
        }
        Ok(tables)
    }
}

impl UserRepo for MemoryUsers {
    fn ping(&self) -> Result<(), ApiError> {
        self.open().map(|_| ())
    }

    fn insert_user(&self, user: &User, password_hash: &str) -> Result<(), ApiError> {
        let mut t = self.open()?;
        if t.users.iter().any(|(u, _)| u.email == user.email) {
            return Err(ApiError::EmailTaken);
        }
        t.users.push((user.clone(), password_hash.to_string()));
        Ok(())
    }

    fn find_user(&self, id: &str) -> Result<Option<User>, ApiError> {
        let t = self.open()?;
        Ok(t.users
            .iter()
            .find(|(u, _)| u.id == id)
            .map(|(u, _)| u.clone()))
    }

    fn find_credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, ApiError> {
        let t = self.open()?;
        Ok(t.users
            .iter()
            .find(|(u, _)| u.email == email)
            .map(|(u, h)| Credentials {
                user: u.clone(),
                password_hash: h.clone(),
            }))
    }

    fn find_credentials(&self, id: &str) -> Result<Option<Credentials>, ApiError> {
        let t = self.open()?;
        Ok(t.users
            .iter()
            .find(|(u, _)| u.id == id)
            .map(|(u, h)| Credentials {
                user: u.clone(),
                password_hash: h.clone(),
            }))
    }

    fn list_users(&self, offset: u64, limit: u32) -> Result<(Vec<User>, u64), ApiError> {
        let t = self.open()?;
        let mut users: Vec<User> = t.users.iter().map(|(u, _)| u.clone()).collect();
        users.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        let total = users.len() as u64;
        let page = users
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect();
        Ok((page, total))
    }

    fn update_user(
        &self,
        id: &str,
        changes: &UserChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError> {
        let mut t = self.open()?;
        let Some((user, hash)) = t.users.iter_mut().find(|(u, _)| u.id == id) else {
            return Ok(None);
        };
        if let Some(name) = &changes.name {
            user.name = name.clone();
        }
        if let Some(role) = changes.role {
            user.role = role;
        }
        if let Some(h) = &changes.password_hash {
            *hash = h.clone();
        }
        user.updated_at_ms = now_ms;
        Ok(Some(user.clone()))
    }

    fn delete_user(&self, id: &str) -> Result<bool, ApiError> {
        let mut t = self.open()?;
        let before = t.users.len();
        t.users.retain(|(u, _)| u.id != id);
        let gone: Vec<String> = t
            .sessions
            .iter()
            .filter(|s| s.user_id == id)
            .map(|s| s.id.clone())
            .collect();
        t.sessions.retain(|s| s.user_id != id);
        t.superseded.retain(|(_, sid)| !gone.contains(sid));
        Ok(t.users.len() < before)
    }

    fn create_session(&self, session: &NewSession) -> Result<(), ApiError> {
        let mut t = self.open()?;
        t.sessions.push(SessionRow {
            id: session.id.clone(),
            user_id: session.user_id.clone(),
            refresh_hash: session.refresh_hash.clone(),
            expires_at_ms: session.expires_at_ms,
            revoked_at_ms: None,
        });
        Ok(())
    }

    fn find_refresh(&self, token_hash: &str) -> Result<RefreshLookup, ApiError> {
        let t = self.open()?;
        if let Some(s) = t.sessions.iter().find(|s| s.refresh_hash == token_hash) {
            if let Some((user, _)) = t.users.iter().find(|(u, _)| u.id == s.user_id) {
                return Ok(RefreshLookup::Current(SessionInfo {
                    id: s.id.clone(),
                    user_id: s.user_id.clone(),
                    role: user.role,
                    expires_at_ms: s.expires_at_ms,
                    revoked: s.revoked_at_ms.is_some(),
                }));
            }
        }
        let superseded = t.superseded.iter().find(|(h, _)| h == token_hash);
        let session = superseded.and_then(|(_, sid)| t.sessions.iter().find(|s| s.id == *sid));
        Ok(match session {
            Some(s) => RefreshLookup::Superseded {
                session_id: s.id.clone(),
                user_id: s.user_id.clone(),
            },
            None => RefreshLookup::Unknown,
        })
    }

    fn rotate_refresh(
        &self,
        session_id: &str,
        old_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, ApiError> {
        let mut t = self.open()?;
        let Some(s) = t.sessions.iter_mut().find(|s| {
            s.id == session_id
                && s.refresh_hash == old_hash
                && s.revoked_at_ms.is_none()
                && s.expires_at_ms > now_ms
        }) else {
            return Ok(false);
        };
        s.refresh_hash = new_hash.to_string();
        s.expires_at_ms = new_expires_at_ms;
        t.superseded
            .push((old_hash.to_string(), session_id.to_string()));
        Ok(true)
    }

    fn revoke_session(&self, session_id: &str, now_ms: i64) -> Result<(), ApiError> {
        let mut t = self.open()?;
        for s in t.sessions.iter_mut() {
            if s.id == session_id && s.revoked_at_ms.is_none() {
                s.revoked_at_ms = Some(now_ms);
            }
        }
        Ok(())
    }

    fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let mut t = self.open()?;
        for s in t.sessions.iter_mut() {
            if s.user_id == user_id && Some(s.id.as_str()) != keep && s.revoked_at_ms.is_none() {
                s.revoked_at_ms = Some(now_ms);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    fn user(id: &str, email: &str) -> User {
        User {
            id: id.into(),
            email: email.into(),
            name: "N".into(),
            role: Role::User,
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn view_has_exactly_the_api_fields_and_no_hash() {
        let v = serde_json::to_value(user("a", "a@b.cd").view()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["created_at", "email", "id", "name", "role", "updated_at"]
        );
        assert_eq!(v["created_at"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn refresh_tokens_are_256_bit_hex_and_hash_consistently() {
        let (token, hash) = new_refresh_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(refresh_token_hash(&token), Some(hash));
        assert_eq!(refresh_token_hash("not-a-token"), None);
    }

    #[test]
    fn rotation_succeeds_once_per_token() {
        let repo = MemoryUsers::new();
        repo.insert_user(&user("u", "u@x.io"), "h").unwrap();
        repo.create_session(&NewSession {
            id: "s".into(),
            user_id: "u".into(),
            refresh_hash: "h1".into(),
            created_at_ms: 0,
            expires_at_ms: 100,
        })
        .unwrap();
        assert!(repo.rotate_refresh("s", "h1", "h2", 200, 1).unwrap());
        assert!(!repo.rotate_refresh("s", "h1", "h3", 200, 1).unwrap());
        assert_eq!(
            repo.find_refresh("h1").unwrap(),
            RefreshLookup::Superseded {
                session_id: "s".into(),
                user_id: "u".into()
            }
        );
    }

    #[test]
    fn cached_user_hit_makes_no_repository_call() {
        let repo = MemoryUsers::new();
        repo.insert_user(&user("u", "u@x.io"), "h").unwrap();
        let kv = MemoryKv::new();
        let cache = Cache::new(&kv, 0);
        assert!(cached_user(&cache, &repo, "u", 60_000).unwrap().is_some());
        let calls = repo.calls();
        assert!(cached_user(&cache, &repo, "u", 60_000).unwrap().is_some());
        assert_eq!(repo.calls(), calls);
        assert!(kv.contains("u:u"));
    }
}

//! An in-memory fake of the identity ports with the MySQL adapter's
//! semantics, for the components' unit tests (feature `testing`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use shared::auth::Role;
use shared::ApiError;

use super::{AccountRepo, AttemptCount, AttemptRepo, SessionRepo};
use crate::model::{Credentials, NewSession, ProfileChanges, RefreshLookup, SessionInfo, User};

/// One session row of the fake, public so tests can assert on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Its user.
    pub user_id: String,
    /// Hash of the current refresh token.
    pub refresh_hash: String,
    /// When the session started, epoch milliseconds.
    pub created_at_ms: i64,
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
    attempts: HashMap<String, AttemptCount>,
    down: bool,
    attempts_down: bool,
    hash_writes_down: bool,
    calls: u32,
    credential_reads: u32,
}

/// In-memory users, sessions and attempt counters. [`MemoryIdentity::set_down`]
/// makes every call fail as an unreachable database would;
/// [`MemoryIdentity::set_attempts_down`] fails only the attempt counters.
#[derive(Debug, Default)]
pub struct MemoryIdentity {
    tables: Mutex<Tables>,
}

impl MemoryIdentity {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail with 503 (`down = true`) or work again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Makes every attempt-counter call fail, as a database that refuses
    /// writes would, while the rest keeps working.
    pub fn set_attempts_down(&self, down: bool) {
        self.lock().attempts_down = down;
    }

    /// Makes [`AccountRepo::replace_password_hash`] fail (`down = true`), as
    /// a database that refuses that write would, while the rest keeps working.
    pub fn set_hash_writes_down(&self, down: bool) {
        self.lock().hash_writes_down = down;
    }

    /// Sets the stored password hash of `id` as it is, bypassing every rule
    /// (e.g. to plant a hash made with older parameters) — for tests.
    pub fn set_password_hash(&self, id: &str, hash: &str) {
        if let Some((_, h)) = self.lock().users.iter_mut().find(|(u, _)| u.id == id) {
            *h = hash.to_string();
        }
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

    /// Changes a stored session (e.g. to age it) — for tests.
    pub fn edit_session(&self, id: &str, edit: impl FnOnce(&mut SessionRow)) {
        if let Some(s) = self.lock().sessions.iter_mut().find(|s| s.id == id) {
            edit(s);
        }
    }

    /// The attempt counter of `bucket`.
    pub fn attempts(&self, bucket: &str) -> Option<AttemptCount> {
        self.lock().attempts.get(bucket).copied()
    }

    /// How many repository calls were made (to assert a cache hit made none).
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// How many times a password hash was read — the step before every
    /// password check, so a refused attempt must leave this unchanged.
    pub fn credential_reads(&self) -> u32 {
        self.lock().credential_reads
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A poisoned lock only means another test thread panicked; the tables are still usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<MutexGuard<'_, Tables>, ApiError> {
        let mut tables = self.lock();
        tables.calls += 1;
        if tables.down {
            return Err(ApiError::Unavailable("database: fake is down".into()));
        }
        Ok(tables)
    }

    fn credentials(
        &self,
        matches: impl Fn(&User) -> bool,
    ) -> Result<Option<Credentials>, ApiError> {
        let mut t = self.open()?;
        t.credential_reads += 1;
        Ok(t.users
            .iter()
            .find(|(u, _)| matches(u))
            .map(|(u, h)| Credentials {
                user: u.clone(),
                password_hash: h.clone(),
            }))
    }
}

fn end_sessions_of(t: &mut Tables, user_id: &str, keep: Option<&str>, now_ms: i64) -> Vec<String> {
    let mut ended = Vec::new();
    for s in t.sessions.iter_mut() {
        if s.user_id == user_id && Some(s.id.as_str()) != keep && s.revoked_at_ms.is_none() {
            s.revoked_at_ms = Some(now_ms);
            ended.push(s.id.clone());
        }
    }
    ended
}

impl AccountRepo for MemoryIdentity {
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
        self.credentials(|u| u.email == email)
    }

    fn find_credentials(&self, id: &str) -> Result<Option<Credentials>, ApiError> {
        self.credentials(|u| u.id == id)
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

    fn update_profile(
        &self,
        id: &str,
        changes: &ProfileChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError> {
        let mut t = self.open()?;
        let Some((user, _)) = t.users.iter_mut().find(|(u, _)| u.id == id) else {
            return Ok(None);
        };
        if let Some(name) = &changes.name {
            user.name = name.clone();
        }
        if let Some(role) = changes.role {
            user.role = role;
        }
        user.updated_at_ms = now_ms;
        Ok(Some(user.clone()))
    }

    fn change_password(
        &self,
        id: &str,
        new_hash: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let mut t = self.open()?;
        let Some((user, hash)) = t.users.iter_mut().find(|(u, _)| u.id == id) else {
            return Ok(None);
        };
        *hash = new_hash.to_string();
        user.updated_at_ms = now_ms;
        Ok(Some(end_sessions_of(&mut t, id, keep, now_ms)))
    }

    fn take_over(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let mut t = self.open()?;
        let Some((user, hash)) = t
            .users
            .iter_mut()
            .find(|(u, h)| u.id == id && h == expected_hash)
        else {
            return Ok(None);
        };
        *hash = new_hash.to_string();
        user.role = Role::Admin;
        user.updated_at_ms = now_ms;
        Ok(Some(end_sessions_of(&mut t, id, None, now_ms)))
    }

    fn replace_password_hash(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
    ) -> Result<bool, ApiError> {
        let mut t = self.open()?;
        if t.hash_writes_down {
            return Err(ApiError::Unavailable(
                "database: fake refuses password hash writes".into(),
            ));
        }
        match t
            .users
            .iter_mut()
            .find(|(u, h)| u.id == id && h == expected_hash)
        {
            Some((_, hash)) => {
                *hash = new_hash.to_string();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn delete_user(&self, id: &str) -> Result<Option<Vec<String>>, ApiError> {
        let mut t = self.open()?;
        if !t.users.iter().any(|(u, _)| u.id == id) {
            return Ok(None);
        }
        t.users.retain(|(u, _)| u.id != id);
        let live: Vec<String> = t
            .sessions
            .iter()
            .filter(|s| s.user_id == id && s.revoked_at_ms.is_none())
            .map(|s| s.id.clone())
            .collect();
        let gone: Vec<String> = t
            .sessions
            .iter()
            .filter(|s| s.user_id == id)
            .map(|s| s.id.clone())
            .collect();
        t.sessions.retain(|s| s.user_id != id);
        t.superseded.retain(|(_, sid)| !gone.contains(sid));
        Ok(Some(live))
    }
}

impl SessionRepo for MemoryIdentity {
    fn live_sessions(&self, user_id: &str, since_ms: i64) -> Result<Vec<String>, ApiError> {
        let t = self.open()?;
        Ok(t.sessions
            .iter()
            .filter(|s| {
                s.user_id == user_id && s.revoked_at_ms.is_none() && s.expires_at_ms > since_ms
            })
            .map(|s| s.id.clone())
            .collect())
    }

    fn create_session(
        &self,
        session: &NewSession,
        verified: &Credentials,
    ) -> Result<bool, ApiError> {
        let mut t = self.open()?;
        let still_valid = t.users.iter().any(|(u, h)| {
            u.id == session.user_id && *h == verified.password_hash && u.role == verified.user.role
        });
        if !still_valid {
            return Ok(false);
        }
        t.sessions.push(SessionRow {
            id: session.id.clone(),
            user_id: session.user_id.clone(),
            refresh_hash: session.refresh_hash.clone(),
            created_at_ms: session.created_at_ms,
            expires_at_ms: session.expires_at_ms,
            revoked_at_ms: None,
        });
        Ok(true)
    }

    fn find_refresh(&self, token_hash: &str) -> Result<RefreshLookup, ApiError> {
        let t = self.open()?;
        if let Some(s) = t.sessions.iter().find(|s| s.refresh_hash == token_hash) {
            if let Some((user, _)) = t.users.iter().find(|(u, _)| u.id == s.user_id) {
                return Ok(RefreshLookup::Current(SessionInfo {
                    id: s.id.clone(),
                    user_id: s.user_id.clone(),
                    role: user.role,
                    created_at_ms: s.created_at_ms,
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
}

impl MemoryIdentity {
    fn open_attempts(&self) -> Result<MutexGuard<'_, Tables>, ApiError> {
        let t = self.open()?;
        if t.attempts_down {
            return Err(ApiError::Unavailable(
                "database: attempt counters refuse writes".into(),
            ));
        }
        Ok(t)
    }
}

impl AttemptRepo for MemoryIdentity {
    fn count_attempt(
        &self,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<AttemptCount, ApiError> {
        let mut t = self.open_attempts()?;
        let new_end = now_ms + window_ms;
        let count = t
            .attempts
            .entry(bucket.to_string())
            .or_insert(AttemptCount {
                attempts: 0,
                window_ends_ms: new_end,
            });
        if count.window_ends_ms <= now_ms {
            *count = AttemptCount {
                attempts: 0,
                window_ends_ms: new_end,
            };
        }
        count.attempts = count.attempts.saturating_add(1);
        if count.attempts == max {
            count.window_ends_ms = new_end;
        }
        Ok(*count)
    }

    fn clear_attempts(&self, bucket: &str) -> Result<(), ApiError> {
        self.open_attempts()?.attempts.remove(bucket);
        Ok(())
    }

    fn refund_attempt(&self, bucket: &str) -> Result<(), ApiError> {
        if let Some(c) = self.open_attempts()?.attempts.get_mut(bucket) {
            c.attempts = c.attempts.saturating_sub(1);
        }
        Ok(())
    }
}

//! The identity ports over the SQL port (Spin's MySQL or SQLite on wasm).

use shared::auth::Role;
use shared::db::{DbError, Dialect, Replica, Row, Sql, TxError, UniqueKey, Value};
use shared::ApiError;

use super::{AccountRepo, AttemptCount, AttemptRepo, SessionRepo};
use crate::model::{Credentials, NewSession, ProfileChanges, RefreshLookup, SessionInfo, User};

/// [`AccountRepo`], [`SessionRepo`] and [`AttemptRepo`] on one lazily opened
/// connection, so a request that uses several of them still opens one.
///
/// Which side each read takes: the admin's list of accounts reads the
/// replica when there is one ([`Replica::reads`]; it tolerates replication
/// lag); credentials, sessions, attempt counts and an account by id read the
/// primary, since authentication must see the latest password and session.
pub struct SqlIdentity<'a, S: Sql> {
    sql: &'a S,
    replica: Replica<&'a S>,
}

impl<'a, S: Sql> SqlIdentity<'a, S> {
    /// The repositories on `sql` (whose connection opens on first use).
    pub fn new(sql: &'a S) -> Self {
        Self {
            sql,
            replica: Replica::none(),
        }
    }

    /// The same, reading what tolerates replication lag from `replica`.
    pub fn with_replica(self, replica: Option<&'a S>) -> Self {
        Self {
            replica: Replica::new(replica),
            ..self
        }
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

fn role_from(text: &str) -> Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| ApiError::Internal(format!("unknown role {text:?} in users")))
}

fn user_from_row(row: &Row) -> Result<User, ApiError> {
    Ok(User {
        id: row.string(0)?,
        email: row.string(1)?,
        name: row.string(2)?,
        role: role_from(&row.string(3)?)?,
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

fn ids(rows: &[Row]) -> Result<Vec<String>, DbError> {
    rows.iter().map(|r| r.string(0)).collect()
}

/// Transactions here are short; a deadlock victim (e.g. a password change
/// meeting a login on the same account) is simply run again.
const ATTEMPTS: u32 = 3;

/// Ends every live session of `user_id` but `keep`, inside the caller's
/// transaction; the ids it ended. The rows are locked first, so a refresh
/// racing with this either rotated before (and its session is ended here)
/// or finds the session ended.
fn end_sessions_of<S: Sql>(
    sql: &S,
    user_id: &str,
    keep: Option<&str>,
    now_ms: i64,
) -> Result<Vec<String>, TxError> {
    let keep = Value::from(keep.unwrap_or(""));
    let ended = ids(&sql.query(
        &format!(
            "SELECT id FROM sessions WHERE user_id = ? AND id <> ? AND revoked_at_ms IS NULL{}",
            sql.dialect().for_update()
        ),
        &[Value::from(user_id), keep.clone()],
    )?)?;
    sql.execute(
        "UPDATE sessions SET revoked_at_ms = ? WHERE user_id = ? AND id <> ? AND revoked_at_ms IS NULL",
        &[Value::from(now_ms), Value::from(user_id), keep],
    )?;
    Ok(ended)
}

impl<S: Sql> AccountRepo for SqlIdentity<'_, S> {
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
            Err(e) if e.is_duplicate(&USERS_EMAIL) => Err(ApiError::EmailTaken),
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
        let reads = self.replica.reads(self.sql);
        let total = reads
            .query("SELECT COUNT(*) FROM users", &[])?
            .first()
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0);
        let rows = reads.query(
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

    fn update_profile(
        &self,
        id: &str,
        changes: &ProfileChanges,
        now_ms: i64,
    ) -> Result<Option<User>, ApiError> {
        // COALESCE keeps a column when its change is NULL: one statement for any mix of changes.
        self.sql.execute(
            "UPDATE users SET name = COALESCE(?, name), role = COALESCE(?, role), \
             updated_at_ms = ? WHERE id = ?",
            &[
                Value::from(changes.name.as_deref()),
                Value::from(changes.role.map(|r| r.as_str())),
                Value::from(now_ms),
                Value::from(id),
            ],
        )?;
        self.find_user(id)
    }

    fn change_password(
        &self,
        id: &str,
        new_hash: &str,
        keep: Option<&str>,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        self.sql.transaction_retrying(ATTEMPTS, |sql| {
            // The row lock taken here is what a concurrent login's fenced
            // session insert waits on; after commit it sees the new hash.
            sql.execute(
                "UPDATE users SET password_hash = ?, updated_at_ms = ? WHERE id = ?",
                &[Value::from(new_hash), Value::from(now_ms), Value::from(id)],
            )?;
            // A fresh salt makes every new hash differ, so 0 rows means no user.
            if sql.affected_rows()? == 0 {
                return Ok(None);
            }
            end_sessions_of(sql, id, keep, now_ms).map(Some)
        })
    }

    fn take_over(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, ApiError> {
        self.sql.transaction_retrying(ATTEMPTS, |sql| {
            sql.execute(
                "UPDATE users SET password_hash = ?, role = 'admin', updated_at_ms = ? \
                 WHERE id = ? AND password_hash = ?",
                &[
                    Value::from(new_hash),
                    Value::from(now_ms),
                    Value::from(id),
                    Value::from(expected_hash),
                ],
            )?;
            if sql.affected_rows()? == 0 {
                return Ok(None);
            }
            end_sessions_of(sql, id, None, now_ms).map(Some)
        })
    }

    fn replace_password_hash(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
    ) -> Result<bool, ApiError> {
        // One conditional UPDATE: it waits for a password change holding the
        // row, then finds the hash changed and updates nothing. The new hash
        // has a fresh salt, so it always differs from the old: the count of
        // changed rows is the count of matched ones on MySQL too.
        self.sql.execute(
            "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
            &[
                Value::from(new_hash),
                Value::from(id),
                Value::from(expected_hash),
            ],
        )?;
        Ok(self.sql.affected_rows()? == 1)
    }

    fn delete_user(&self, id: &str) -> Result<Option<Vec<String>>, ApiError> {
        self.sql.transaction_retrying(ATTEMPTS, |sql| {
            let exists = !sql
                .query(
                    &format!(
                        "SELECT id FROM users WHERE id = ?{}",
                        sql.dialect().for_update()
                    ),
                    &[Value::from(id)],
                )?
                .is_empty();
            if !exists {
                return Ok(None);
            }
            let sessions = ids(&sql.query(
                &format!(
                    "SELECT id FROM sessions WHERE user_id = ? AND revoked_at_ms IS NULL{}",
                    sql.dialect().for_update()
                ),
                &[Value::from(id)],
            )?)?;
            // Superseded refresh hashes cascade from their sessions, sessions
            // from the user (foreign keys with ON DELETE CASCADE).
            sql.execute("DELETE FROM users WHERE id = ?", &[Value::from(id)])?;
            Ok(Some(sessions))
        })
    }
}

impl<S: Sql> SessionRepo for SqlIdentity<'_, S> {
    fn live_sessions(&self, user_id: &str, since_ms: i64) -> Result<Vec<String>, ApiError> {
        Ok(ids(&self.sql.query(
            "SELECT id FROM sessions WHERE user_id = ? AND revoked_at_ms IS NULL AND expires_at_ms > ?",
            &[Value::from(user_id), Value::from(since_ms)],
        )?)?)
    }

    fn create_session(
        &self,
        session: &NewSession,
        verified: &Credentials,
    ) -> Result<bool, ApiError> {
        // Fenced on what the login verified: the shared lock on the user row
        // waits for a password change, role change or deletion in progress,
        // and then finds no row if any of them won, so nothing is recorded.
        // (A transaction rather than one INSERT … SELECT … LOCK IN SHARE MODE,
        // which MariaDB refuses as a prepared statement, error 1295; and
        // without the explicit lock a READ COMMITTED server would not wait.)
        self.sql.transaction_retrying(ATTEMPTS, |sql| {
            let still_valid = !sql
                .query(
                    &format!(
                        "SELECT id FROM users WHERE id = ? AND password_hash = ? AND role = ?{}",
                        sql.dialect().share_lock()
                    ),
                    &[
                        Value::from(&session.user_id),
                        Value::from(&verified.password_hash),
                        Value::from(verified.user.role.as_str()),
                    ],
                )?
                .is_empty();
            if !still_valid {
                return Ok(false);
            }
            sql.execute(
                "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms) \
                 VALUES (?, ?, ?, ?, ?)",
                &[
                    Value::from(&session.id),
                    Value::from(&session.user_id),
                    Value::from(&session.refresh_hash),
                    Value::from(session.created_at_ms),
                    Value::from(session.expires_at_ms),
                ],
            )?;
            Ok(true)
        })
    }

    fn find_refresh(&self, token_hash: &str) -> Result<RefreshLookup, ApiError> {
        let rows = self.sql.query(
            "SELECT s.id, s.user_id, u.role, s.created_at_ms, s.expires_at_ms, s.revoked_at_ms \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.refresh_hash = ?",
            &[Value::from(token_hash)],
        )?;
        if let Some(row) = rows.first() {
            return Ok(RefreshLookup::Current(SessionInfo {
                id: row.string(0)?,
                user_id: row.string(1)?,
                role: role_from(&row.string(2)?)?,
                created_at_ms: row.i64(3)?,
                expires_at_ms: row.i64(4)?,
                revoked: row.opt_i64(5)?.is_some(),
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
        self.sql.transaction_retrying(ATTEMPTS, |sql| {
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
}

impl<S: Sql> AttemptRepo for SqlIdentity<'_, S> {
    fn count_attempt(
        &self,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<AttemptCount, ApiError> {
        let new_end = now_ms + window_ms;
        if self.sql.dialect() == Dialect::Sqlite {
            return count_attempt_sqlite(self.sql, bucket, max, new_end, now_ms);
        }
        // One atomic upsert: concurrent attempts on one bucket serialise on
        // its row, so each sees a distinct count. LAST_INSERT_ID(expr) hands
        // this statement's count back to this connection alone — reading the
        // row afterwards could already include later attempts. Assignments
        // run left to right: `attempts` is updated first, against the old
        // window, and the window then restarts on expiry or at the limit.
        self.sql.execute(
            "INSERT INTO auth_attempts (bucket, attempts, window_ends_ms) \
             VALUES (?, LAST_INSERT_ID(1), ?) \
             ON DUPLICATE KEY UPDATE \
             attempts = LAST_INSERT_ID(IF(window_ends_ms <= ?, 1, LEAST(attempts + 1, 1000000000))), \
             window_ends_ms = IF(window_ends_ms <= ?, ?, IF(attempts = ?, ?, window_ends_ms))",
            &[
                Value::from(bucket),
                Value::from(new_end),
                Value::from(now_ms),
                Value::from(now_ms),
                Value::from(new_end),
                Value::from(max),
                Value::from(new_end),
            ],
        )?;
        // The window end is read separately: a concurrent successful login
        // may have cleared the bucket since (then this attempt's window is new).
        let rows = self.sql.query(
            "SELECT LAST_INSERT_ID(), \
             (SELECT window_ends_ms FROM auth_attempts WHERE bucket = ?)",
            &[Value::from(bucket)],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| ApiError::Internal("SELECT LAST_INSERT_ID() returned no row".into()))?;
        Ok(AttemptCount {
            attempts: u32::try_from(row.u64(0)?).unwrap_or(u32::MAX),
            window_ends_ms: row.opt_i64(1)?.unwrap_or(new_end),
        })
    }

    fn clear_attempts(&self, bucket: &str) -> Result<(), ApiError> {
        self.sql.execute(
            "DELETE FROM auth_attempts WHERE bucket = ?",
            &[Value::from(bucket)],
        )?;
        Ok(())
    }

    fn refund_attempt(&self, bucket: &str) -> Result<(), ApiError> {
        self.sql.execute(
            "UPDATE auth_attempts SET attempts = attempts - 1 WHERE bucket = ? AND attempts > 0",
            &[Value::from(bucket)],
        )?;
        Ok(())
    }
}

/// [`AttemptRepo::count_attempt`] on SQLite: the same rule in one upsert
/// that hands its own row back (`RETURNING`). SQLite's `SET` reads the old
/// row in every expression (MySQL's runs left to right), so the window's
/// rule repeats the count's; statements never interleave on SQLite, so the
/// returned row is this attempt's.
fn count_attempt_sqlite<S: Sql>(
    sql: &S,
    bucket: &str,
    max: u32,
    new_end: i64,
    now_ms: i64,
) -> Result<AttemptCount, ApiError> {
    let rows = sql.query(
        "INSERT INTO auth_attempts (bucket, attempts, window_ends_ms) VALUES (?, 1, ?) \
         ON CONFLICT (bucket) DO UPDATE SET \
         attempts = CASE WHEN window_ends_ms <= ? THEN 1 ELSE MIN(attempts + 1, 1000000000) END, \
         window_ends_ms = CASE WHEN window_ends_ms <= ? THEN ? \
             WHEN MIN(attempts + 1, 1000000000) = ? THEN ? ELSE window_ends_ms END \
         RETURNING attempts, window_ends_ms",
        &[
            Value::from(bucket),
            Value::from(new_end),
            Value::from(now_ms),
            Value::from(now_ms),
            Value::from(new_end),
            Value::from(max),
            Value::from(new_end),
        ],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::Internal("the attempts upsert returned no row".into()))?;
    Ok(AttemptCount {
        attempts: u32::try_from(row.u64(0)?).unwrap_or(u32::MAX),
        window_ends_ms: row.i64(1)?,
    })
}

const USERS_EMAIL: UniqueKey = UniqueKey {
    index: "uq_users_email",
    columns: "users.email",
};

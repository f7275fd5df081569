//! [`UploadRepo`] over MySQL/MariaDB or SQLite through the [`Sql`] port (one
//! lazily opened connection per request), and the mapping of its rows.
//! On SQLite every transaction holds the database's write lock from its
//! first statement (`BEGIN IMMEDIATE`), so the row locks below are dropped
//! ([`shared::db::Dialect`]) and the protocol holds because transactions
//! never interleave.
//!
//! Bytes are content-addressed: `upload_blobs` holds each distinct content
//! once, keyed by its SHA-256 (hex); `uploads` holds one metadata row per
//! upload, pointing at its blob (see `migrations/0003_uploads.sql`). A blob's
//! references are computed (the `uploads` rows with its hash), not counted in
//! a column, so no counter can drift. A blob holds its bytes itself (MySQL
//! storage) or names the object that does (`object_key`, S3 storage; see
//! `migrations/0007_upload_objects.sql`); `pending_uploads` holds direct
//! uploads announced but not yet completed, whose sizes count against the
//! quota until they expire.
//!
//! Concurrency. The blob row is the lock both paths take first:
//! * create locks the existing blob in share mode (or inserts it, which locks
//!   it exclusively) and then inserts its metadata row;
//! * delete locks the blob `FOR UPDATE`, deletes the metadata row, counts the
//!   remaining references with a locking read (which sees the latest committed
//!   rows), and deletes the blob when none remain.
//!
//! So a delete either runs wholly before a concurrent create of the same
//! content (the create then finds no blob and inserts it again) or wholly after
//! it (and sees the new reference): the bytes of a live upload are never
//! deleted, and two users uploading the same file at once store it once.
//!
//! The quota is checked under the owner's `users` row lock (`FOR UPDATE`),
//! the first lock of every create and announcement, so one user's uploads
//! are checked one at a time; the numbers are read here and judged by
//! [`check_quota`] and [`check_pending_cap`], the rules the fake applies too.

use shared::db::{DbError, Dialect, Replica, Row, Sql, TxError, Value};
use shared::domain::Pagination;
use shared::ApiError;

use crate::model::{
    check_pending_cap, check_quota, Content, Deleted, NewBytes, Pending, Stored, Upload, Usage,
    Visibility,
};
use crate::repo::UploadRepo;

/// How many times a create is retried when MySQL picks it as a deadlock
/// victim (possible only when a blob vanishes between the existence check
/// and the lock while another client stores the same content).
const DEADLOCK_ATTEMPTS: u32 = 3;

const COLUMNS: &str =
    "id, user_id, filename, content_type, size, sha256, visibility, created_at_ms";

/// [`UploadRepo`] over MySQL.
///
/// Which side each read takes: a user's list of uploads reads the replica
/// when there is one ([`Replica::reads`]; it tolerates replication lag);
/// everything else — an upload by id, its content, the quota, and every
/// transaction — reads the primary.
pub struct SqlUploads<'a, S: Sql> {
    sql: &'a S,
    replica: Replica<&'a S>,
}

impl<'a, S: Sql> SqlUploads<'a, S> {
    /// A repository on this (lazily opened) connection, with no replica.
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

    fn blob_exists(&self, sha256: &str, lock: bool) -> Result<bool, DbError> {
        let lock = if lock {
            self.sql.dialect().share_lock()
        } else {
            ""
        };
        Ok(!self
            .sql
            .query(
                &format!("SELECT 1 FROM upload_blobs WHERE sha256 = ?{lock}"),
                &[Value::from(sha256)],
            )?
            .is_empty())
    }

    /// Locks the owner's row, so one user's uploads are checked against the
    /// quota one at a time, and refuses when `size` more would pass it.
    fn check_owner_quota(
        &self,
        user_id: &str,
        size: u64,
        now_ms: i64,
        quota_bytes: u64,
    ) -> Result<(), TxError> {
        let owner = Value::from(user_id);
        let locked = self.sql.query(
            &format!(
                "SELECT 1 FROM users WHERE id = ?{}",
                self.sql.dialect().for_update()
            ),
            std::slice::from_ref(&owner),
        )?;
        if locked.is_empty() {
            // The account was deleted while its token was still valid.
            return Err(ApiError::InvalidToken.into());
        }
        // SUM is DECIMAL, which Spin's MySQL interface cannot read: cast it.
        // `expires_at_ms > ?` is `Pending::holds_room_at`, said in SQL so an
        // expired announcement's row is never read.
        let sums = self.sql.query(
            "SELECT CAST(COALESCE((SELECT SUM(size) FROM uploads WHERE user_id = ?), 0) AS SIGNED), \
             CAST(COALESCE((SELECT SUM(size) FROM pending_uploads WHERE user_id = ? AND expires_at_ms > ?), 0) AS SIGNED)",
            &[owner.clone(), owner, Value::Int(now_ms)],
        )?;
        let usage = match sums.first() {
            Some(row) => Usage {
                stored_bytes: row.u64(0)?,
                pending_bytes: row.u64(1)?,
            },
            None => Usage::default(),
        };
        check_quota(usage, size, quota_bytes)?;
        Ok(())
    }

    /// Shares the blob of `upload`'s content, or stores `bytes` as a new one.
    /// Runs inside a transaction.
    fn place_blob(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        blob_known: bool,
    ) -> Result<Stored, TxError> {
        // With the blob already stored, a share lock keeps it alive until the
        // metadata row commits, and the bytes need not cross the wire again.
        if blob_known && self.blob_exists(&upload.sha256, true)? {
            return Ok(Stored::Shared);
        }
        let (data, object_key) = match bytes {
            NewBytes::Inline(b) => (Value::Bytes(b.to_vec()), Value::Null),
            NewBytes::Object(key) => (Value::Null, Value::from(key)),
            NewBytes::Absent => {
                return Ok(if self.blob_exists(&upload.sha256, true)? {
                    Stored::Shared
                } else {
                    Stored::NeedsBytes
                })
            }
        };
        // ON DUPLICATE KEY (SQLite: ON CONFLICT on the key), not INSERT
        // IGNORE: IGNORE would also turn a truncation or any other error into
        // a silent warning. A concurrent upload of the same content that
        // inserted first wins; this one shares its blob.
        let on_duplicate = match self.sql.dialect() {
            Dialect::MySql => "ON DUPLICATE KEY UPDATE sha256 = sha256",
            Dialect::Sqlite => "ON CONFLICT (sha256) DO NOTHING",
        };
        self.sql.execute(
            &format!(
                "INSERT INTO upload_blobs (sha256, size, data, object_key, created_at_ms) \
                 VALUES (?, ?, ?, ?, ?) {on_duplicate}"
            ),
            &[
                Value::from(&upload.sha256),
                Value::UInt(upload.size),
                data,
                object_key,
                Value::Int(upload.created_at_ms),
            ],
        )?;
        let NewBytes::Object(key) = bytes else {
            // Inline bytes: whichever insert won holds the same bytes.
            return Ok(Stored::NewBlob);
        };
        // Which object did the row get? (Not ROW_COUNT(): a client with
        // CLIENT_FOUND_ROWS counts an untouched duplicate as a changed row.)
        let winner = self.sql.query(
            "SELECT object_key FROM upload_blobs WHERE sha256 = ?",
            &[Value::from(&upload.sha256)],
        )?;
        let ours = winner
            .first()
            .map(|r| r.string(0))
            .transpose()
            .ok()
            .flatten()
            .is_some_and(|k| k == key);
        Ok(if ours {
            Stored::NewBlob
        } else {
            Stored::Shared
        })
    }

    fn insert_row(&self, upload: &Upload) -> Result<(), TxError> {
        self.sql.execute(
            "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, visibility, created_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::from(&upload.id),
                Value::from(&upload.user_id),
                Value::from(&upload.filename),
                Value::from(&upload.content_type),
                Value::UInt(upload.size),
                Value::from(&upload.sha256),
                Value::from(upload.visibility.as_str()),
                Value::Int(upload.created_at_ms),
            ],
        )
        .map_err(|e| {
            // The owner's row is gone (the account was deleted while its
            // token was still valid): the caller's identity no longer exists.
            if e.is_foreign_key("fk_uploads_user") {
                TxError::Api(ApiError::InvalidToken)
            } else {
                e.into()
            }
        })
    }

    fn insert(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        blob_known: bool,
        quota_bytes: u64,
    ) -> Result<Stored, TxError> {
        // The owner's row first (as the first lock of every create), then the
        // blob, as delete and the purge take it.
        self.check_owner_quota(
            &upload.user_id,
            upload.size,
            upload.created_at_ms,
            quota_bytes,
        )?;
        let stored = self.place_blob(upload, bytes, blob_known)?;
        if stored != Stored::NeedsBytes {
            self.insert_row(upload)?;
        }
        Ok(stored)
    }
}

/// A visibility column read back; anything else is a bug (500, logged).
fn stored_visibility(value: &str) -> Result<Visibility, ApiError> {
    Visibility::parse(value)
        .ok_or_else(|| ApiError::Internal(format!("stored visibility {value:?}")))
}

fn upload_from_row(row: &Row) -> Result<Upload, ApiError> {
    let visibility = row.string(6)?;
    Ok(Upload {
        id: row.string(0)?,
        user_id: row.string(1)?,
        filename: row.string(2)?,
        content_type: row.string(3)?,
        size: row.u64(4)?,
        sha256: row.string(5)?,
        visibility: stored_visibility(&visibility)?,
        created_at_ms: row.i64(7)?,
    })
}

const PENDING_COLUMNS: &str =
    "id, user_id, filename, size, sha256, visibility, object_key, created_at_ms, expires_at_ms";

fn pending_from_row(row: &Row) -> Result<Pending, ApiError> {
    let visibility = row.string(5)?;
    Ok(Pending {
        id: row.string(0)?,
        user_id: row.string(1)?,
        filename: row.string(2)?,
        size: row.u64(3)?,
        sha256: row.string(4)?,
        visibility: stored_visibility(&visibility)?,
        object_key: row.string(6)?,
        created_at_ms: row.i64(7)?,
        expires_at_ms: row.i64(8)?,
    })
}

/// Takes a column's bytes out of its row rather than copying megabytes.
fn bytes_of(value: Value) -> Result<Option<Vec<u8>>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::Bytes(b) => Ok(Some(b)),
        Value::Str(s) => Ok(Some(s.into_bytes())),
        other => Err(ApiError::Internal(format!("blob column read as {other:?}"))),
    }
}

impl<S: Sql> UploadRepo for SqlUploads<'_, S> {
    fn create(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        quota_bytes: u64,
    ) -> Result<Stored, ApiError> {
        // Outside the transaction and unlocked: a hint only, re-checked under lock.
        let blob_known = self.blob_exists(&upload.sha256, false)?;
        self.sql.transaction_retrying(DEADLOCK_ATTEMPTS, |_| {
            self.insert(upload, bytes, blob_known, quota_bytes)
        })
    }

    fn announce(&self, pending: &Pending, quota_bytes: u64) -> Result<(), ApiError> {
        self.sql.transaction(|sql| {
            self.check_owner_quota(
                &pending.user_id,
                pending.size,
                pending.created_at_ms,
                quota_bytes,
            )?;
            // Under the owner's row lock taken by the quota check.
            let held = sql.query(
                "SELECT COUNT(*), COALESCE(MIN(expires_at_ms), 0) FROM pending_uploads \
                 WHERE user_id = ? AND expires_at_ms > ?",
                &[
                    Value::from(&pending.user_id),
                    Value::Int(pending.created_at_ms),
                ],
            )?;
            if let Some(row) = held.first() {
                check_pending_cap(row.u64(0)?, row.i64(1)?, pending.created_at_ms)?;
            }
            sql.execute(
                &format!(
                    "INSERT INTO pending_uploads ({PENDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                &[
                    Value::from(&pending.id),
                    Value::from(&pending.user_id),
                    Value::from(&pending.filename),
                    Value::UInt(pending.size),
                    Value::from(&pending.sha256),
                    Value::from(pending.visibility.as_str()),
                    Value::from(&pending.object_key),
                    Value::Int(pending.created_at_ms),
                    Value::Int(pending.expires_at_ms),
                ],
            )?;
            Ok(())
        })
    }

    fn find_pending(&self, id: &str) -> Result<Option<Pending>, ApiError> {
        let rows = self.sql.query(
            &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads WHERE id = ?"),
            &[Value::from(id)],
        )?;
        rows.first().map(pending_from_row).transpose()
    }

    fn complete(&self, pending: &Pending, upload: &Upload, key: &str) -> Result<Stored, ApiError> {
        self.sql.transaction_retrying(DEADLOCK_ATTEMPTS, |sql| {
            // The pending row is the lock two completions of one upload meet
            // at: the second finds it gone.
            let claimed = sql.query(
                &format!(
                    "SELECT 1 FROM pending_uploads WHERE id = ?{}",
                    sql.dialect().for_update()
                ),
                &[Value::from(&pending.id)],
            )?;
            if claimed.is_empty() {
                return Err(ApiError::NotFound.into());
            }
            let stored = self.place_blob(upload, NewBytes::Object(key), true)?;
            self.insert_row(upload)?;
            sql.execute(
                "DELETE FROM pending_uploads WHERE id = ?",
                &[Value::from(&pending.id)],
            )?;
            Ok(stored)
        })
    }

    fn discard(&self, id: &str) -> Result<bool, ApiError> {
        self.sql.execute(
            "DELETE FROM pending_uploads WHERE id = ?",
            &[Value::from(id)],
        )?;
        Ok(self.sql.affected_rows()? > 0)
    }

    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError> {
        let rows = self.sql.query(
            &format!("SELECT {COLUMNS} FROM uploads WHERE id = ?"),
            &[Value::from(id)],
        )?;
        rows.first().map(upload_from_row).transpose()
    }

    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError> {
        let reads = self.replica.reads(self.sql);
        let rows = reads.query(
            &format!(
                "SELECT {COLUMNS} FROM uploads WHERE user_id = ? \
                 ORDER BY created_at_ms DESC, id DESC LIMIT ? OFFSET ?"
            ),
            &[
                Value::from(user_id),
                Value::UInt(page.limit.into()),
                Value::UInt(page.offset()),
            ],
        )?;
        let items = rows
            .iter()
            .map(upload_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total = reads
            .query(
                "SELECT COUNT(*) FROM uploads WHERE user_id = ?",
                &[Value::from(user_id)],
            )?
            .first()
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0);
        Ok((items, total))
    }

    fn content(&self, id: &str) -> Result<Option<Content>, ApiError> {
        // Joined through the metadata row, so a deleted upload whose bytes live
        // on for another user's upload is not served from stale metadata.
        let rows = self.sql.query(
            "SELECT b.object_key, b.data FROM uploads u JOIN upload_blobs b ON b.sha256 = u.sha256 WHERE u.id = ?",
            &[Value::from(id)],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let mut columns = row.0.into_iter();
        let key = columns.next().map(bytes_of).transpose()?.flatten();
        let data = columns.next().map(bytes_of).transpose()?.flatten();
        match (key, data) {
            (Some(key), _) => Ok(Some(Content::Object(
                String::from_utf8(key)
                    .map_err(|_| ApiError::Internal("object key is not UTF-8".into()))?,
            ))),
            (None, Some(data)) => Ok(Some(Content::Inline(data))),
            (None, None) => Err(ApiError::Internal("blob without bytes or object".into())),
        }
    }

    fn delete(&self, upload: &Upload) -> Result<Deleted, ApiError> {
        let sha = Value::from(&upload.sha256);
        self.sql.transaction(|sql| {
            // Blob first, as create does: one lock order, no deadlock between
            // two deletes of the same content or a delete and a create.
            let blob = sql.query(
                &format!(
                    "SELECT object_key FROM upload_blobs WHERE sha256 = ?{}",
                    sql.dialect().for_update()
                ),
                std::slice::from_ref(&sha),
            )?;
            sql.execute(
                "DELETE FROM uploads WHERE id = ?",
                &[Value::from(&upload.id)],
            )?;
            if sql.affected_rows()? == 0 {
                return Ok(Deleted::Missing);
            }
            let remaining = sql
                .query(
                    &format!(
                        "SELECT COUNT(*) FROM uploads WHERE sha256 = ?{}",
                        sql.dialect().share_lock()
                    ),
                    std::slice::from_ref(&sha),
                )?
                .first()
                .map(|r| r.u64(0))
                .transpose()?
                .unwrap_or(0);
            if remaining > 0 {
                return Ok(Deleted::Gone { freed_object: None });
            }
            sql.execute(
                "DELETE FROM upload_blobs WHERE sha256 = ?",
                std::slice::from_ref(&sha),
            )?;
            let freed_object = match blob.into_iter().next().and_then(|r| r.0.into_iter().next()) {
                Some(Value::Str(key)) => Some(key),
                Some(Value::Bytes(key)) => String::from_utf8(key).ok(),
                _ => None,
            };
            Ok(Deleted::Gone { freed_object })
        })
    }
}

#[cfg(test)]
mod tests;

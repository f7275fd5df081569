//! Storage of uploads: the repository port, its MySQL implementation, and the
//! in-memory fake the unit tests use.
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

use serde::{Deserialize, Serialize};
use shared::db::{DbError, Row, Sql, TxError, Value};
use shared::domain::Pagination;
use shared::ApiError;

/// Who may read an upload's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owner and admins.
    Private,
    /// Anyone, without a token; cacheable by CDNs.
    Public,
}

impl Visibility {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }

    /// Parses `private` or `public`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Visibility::Private),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// An upload's metadata (the bytes live in the blob its `sha256` names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// Opaque id.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Sanitised filename.
    pub filename: String,
    /// Detected type, e.g. `image/png`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Who may read the content.
    pub visibility: Visibility,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
}

/// A direct upload announced by `presign` and not yet completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The id the upload keeps once completed.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Sanitised filename.
    pub filename: String,
    /// Announced size in bytes.
    pub size: u64,
    /// Announced SHA-256, lower-case hex.
    pub sha256: String,
    /// Who may read the content once live.
    pub visibility: Visibility,
    /// Where the client puts the bytes.
    pub object_key: String,
    /// Announcement time, epoch milliseconds.
    pub created_at_ms: i64,
    /// After this the announcement no longer counts and cannot be completed.
    pub expires_at_ms: i64,
}

/// Where a new upload's bytes are, for the blob row if its content is new.
#[derive(Debug, Clone, Copy)]
pub enum NewBytes<'a> {
    /// In hand: stored in MySQL.
    Inline(&'a [u8]),
    /// Already in the object store under this key.
    Object(&'a str),
    /// Nowhere yet: the upload can only share an existing blob.
    Absent,
}

/// What storing an upload did with its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Its bytes became a new blob.
    NewBlob,
    /// The same content was already stored; the upload shares that blob (an
    /// object the caller put for it is now unreferenced).
    Shared,
    /// [`NewBytes::Absent`] and no blob has this content: nothing was stored.
    NeedsBytes,
}

/// Where an upload's bytes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The bytes, from MySQL.
    Inline(Vec<u8>),
    /// The key of the object holding them.
    Object(String),
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The upload was already gone.
    Missing,
    /// The upload is gone; `freed_object` names the object nothing refers
    /// to any more (to be deleted from the store after the commit).
    Gone {
        /// The object of a blob that was deleted with its last reference.
        freed_object: Option<String>,
    },
}

/// The storage operations the handlers need.
pub trait UploadRepo {
    /// Stores `upload` and, unless the same content is already stored, a
    /// blob for `bytes` — or nothing, with 409 `quota_exceeded`, when the
    /// owner's uploads and pending uploads would then add up to more than
    /// `quota_bytes`.
    fn create(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        quota_bytes: u64,
    ) -> Result<Stored, ApiError>;
    /// Records a direct upload — or nothing: 409 `quota_exceeded`, as
    /// [`UploadRepo::create`], or 429 `too_many_attempts` while the owner
    /// already has [`MAX_PENDING_PER_USER`] unexpired announcements.
    fn announce(&self, pending: &Pending, quota_bytes: u64) -> Result<(), ApiError>;
    /// The pending upload with this id.
    fn find_pending(&self, id: &str) -> Result<Option<Pending>, ApiError>;
    /// Makes `pending` live as `upload`, whose bytes are the object `key`,
    /// sharing an existing blob of the same content if there is one; 404
    /// when another request completed or discarded it first.
    fn complete(&self, pending: &Pending, upload: &Upload, key: &str) -> Result<Stored, ApiError>;
    /// Forgets a pending upload; false when it was already gone.
    fn discard(&self, id: &str) -> Result<bool, ApiError>;
    /// The upload with this id.
    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError>;
    /// One page of `user_id`'s uploads, newest first, and their total count.
    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError>;
    /// Where the bytes of the upload with this id are, if it still exists.
    fn content(&self, id: &str) -> Result<Option<Content>, ApiError>;
    /// Deletes `upload`, and its blob when no other upload references it.
    fn delete(&self, upload: &Upload) -> Result<Deleted, ApiError>;
}

/// Most unexpired direct-upload announcements one user may hold: each is a
/// row, and 1-byte announcements would otherwise fit the quota by millions.
pub const MAX_PENDING_PER_USER: u64 = 20;

/// The refusal of one announcement too many: retry when the oldest expires.
fn too_many_pending(oldest_expires_at_ms: i64, now_ms: i64) -> ApiError {
    let wait_ms = oldest_expires_at_ms.saturating_sub(now_ms).max(1000);
    ApiError::TooManyAttempts {
        retry_after_secs: (wait_ms.unsigned_abs()).div_ceil(1000),
    }
}

/// How many times a create is retried when MySQL picks it as a deadlock
/// victim (possible only when a blob vanishes between the existence check
/// and the lock while another client stores the same content).
const DEADLOCK_ATTEMPTS: u32 = 3;

const COLUMNS: &str =
    "id, user_id, filename, content_type, size, sha256, visibility, created_at_ms";

/// [`UploadRepo`] over MySQL.
pub struct MySqlUploads<'a, S: Sql> {
    sql: &'a S,
}

impl<'a, S: Sql> MySqlUploads<'a, S> {
    /// A repository on this (lazily opened) connection.
    pub fn new(sql: &'a S) -> Self {
        Self { sql }
    }

    fn blob_exists(&self, sha256: &str, lock: bool) -> Result<bool, DbError> {
        let statement = if lock {
            "SELECT 1 FROM upload_blobs WHERE sha256 = ? LOCK IN SHARE MODE"
        } else {
            "SELECT 1 FROM upload_blobs WHERE sha256 = ?"
        };
        Ok(!self
            .sql
            .query(statement, &[Value::from(sha256)])?
            .is_empty())
    }

    /// Locks the owner's row, so one user's uploads are checked against the
    /// quota one at a time, and refuses when `size` more would pass it. The
    /// stored sizes count, and so do pending direct uploads until they expire.
    fn check_quota(
        &self,
        user_id: &str,
        size: u64,
        now_ms: i64,
        quota_bytes: u64,
    ) -> Result<(), TxError> {
        let owner = Value::from(user_id);
        let locked = self.sql.query(
            "SELECT 1 FROM users WHERE id = ? FOR UPDATE",
            std::slice::from_ref(&owner),
        )?;
        if locked.is_empty() {
            // The account was deleted while its token was still valid.
            return Err(ApiError::InvalidToken.into());
        }
        // SUM is DECIMAL, which Spin's MySQL interface cannot read: cast it.
        let stored = self
            .sql
            .query(
                "SELECT CAST(COALESCE((SELECT SUM(size) FROM uploads WHERE user_id = ?), 0) \
                 + COALESCE((SELECT SUM(size) FROM pending_uploads WHERE user_id = ? AND expires_at_ms > ?), 0) \
                 AS SIGNED)",
                &[owner.clone(), owner, Value::Int(now_ms)],
            )?
            .first()
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0);
        if stored.saturating_add(size) > quota_bytes {
            return Err(ApiError::QuotaExceeded { quota: quota_bytes }.into());
        }
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
        // ON DUPLICATE KEY, not INSERT IGNORE: IGNORE would also turn a
        // truncation or any other error into a silent warning. A concurrent
        // upload of the same content that inserted first wins; this one
        // shares its blob.
        self.sql.execute(
            "INSERT INTO upload_blobs (sha256, size, data, object_key, created_at_ms) \
             VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE sha256 = sha256",
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
        self.check_quota(
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

impl<S: Sql> UploadRepo for MySqlUploads<'_, S> {
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
            self.check_quota(
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
                if row.u64(0)? >= MAX_PENDING_PER_USER {
                    return Err(too_many_pending(row.i64(1)?, pending.created_at_ms).into());
                }
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
                "SELECT 1 FROM pending_uploads WHERE id = ? FOR UPDATE",
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
        let rows = self.sql.query(
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
        let total = self
            .sql
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
                "SELECT object_key FROM upload_blobs WHERE sha256 = ? FOR UPDATE",
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
                    "SELECT COUNT(*) FROM uploads WHERE sha256 = ? LOCK IN SHARE MODE",
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

/// In-memory [`UploadRepo`] for unit tests, with the same
/// content-addressing rules, and a switch to make every call fail.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryUploads {
    state: std::sync::Mutex<MemoryState>,
    /// When set, every call fails with this error.
    pub fail_with: Option<ApiError>,
}

#[cfg(test)]
#[derive(Default)]
struct MemoryState {
    uploads: Vec<Upload>,
    pending: Vec<Pending>,
    blobs: std::collections::HashMap<String, Content>,
    blob_writes: usize,
}

#[cfg(test)]
impl MemoryState {
    fn check_quota(
        &self,
        user_id: &str,
        size: u64,
        now_ms: i64,
        quota: u64,
    ) -> Result<(), ApiError> {
        let stored: u64 = self
            .uploads
            .iter()
            .filter(|u| u.user_id == user_id)
            .map(|u| u.size)
            .chain(
                self.pending
                    .iter()
                    .filter(|p| p.user_id == user_id && p.expires_at_ms > now_ms)
                    .map(|p| p.size),
            )
            .sum();
        if stored + size > quota {
            return Err(ApiError::QuotaExceeded { quota });
        }
        Ok(())
    }

    fn place_blob(&mut self, sha256: &str, bytes: NewBytes) -> Stored {
        if self.blobs.contains_key(sha256) {
            return Stored::Shared;
        }
        let content = match bytes {
            NewBytes::Inline(b) => Content::Inline(b.to_vec()),
            NewBytes::Object(key) => Content::Object(key.to_string()),
            NewBytes::Absent => return Stored::NeedsBytes,
        };
        self.blobs.insert(sha256.to_string(), content);
        self.blob_writes += 1;
        Stored::NewBlob
    }
}

#[cfg(test)]
impl MemoryUploads {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, ApiError> {
        if let Some(e) = &self.fail_with {
            return Err(e.clone());
        }
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The stored metadata rows.
    pub fn rows(&self) -> Vec<Upload> {
        self.state.lock().unwrap().uploads.clone()
    }

    /// The pending direct uploads.
    pub fn pending(&self) -> Vec<Pending> {
        self.state.lock().unwrap().pending.clone()
    }

    /// Number of stored blobs.
    pub fn blob_count(&self) -> usize {
        self.state.lock().unwrap().blobs.len()
    }

    /// Where the blob of this content is.
    pub fn blob(&self, sha256: &str) -> Option<Content> {
        self.state.lock().unwrap().blobs.get(sha256).cloned()
    }

    /// How many times bytes were written (a duplicate content writes none).
    pub fn blob_writes(&self) -> usize {
        self.state.lock().unwrap().blob_writes
    }
}

#[cfg(test)]
impl UploadRepo for MemoryUploads {
    fn create(
        &self,
        upload: &Upload,
        bytes: NewBytes,
        quota_bytes: u64,
    ) -> Result<Stored, ApiError> {
        let mut s = self.lock()?;
        s.check_quota(
            &upload.user_id,
            upload.size,
            upload.created_at_ms,
            quota_bytes,
        )?;
        let stored = s.place_blob(&upload.sha256, bytes);
        if stored != Stored::NeedsBytes {
            s.uploads.push(upload.clone());
        }
        Ok(stored)
    }

    fn announce(&self, pending: &Pending, quota_bytes: u64) -> Result<(), ApiError> {
        let mut s = self.lock()?;
        s.check_quota(
            &pending.user_id,
            pending.size,
            pending.created_at_ms,
            quota_bytes,
        )?;
        let held: Vec<i64> = s
            .pending
            .iter()
            .filter(|p| p.user_id == pending.user_id && p.expires_at_ms > pending.created_at_ms)
            .map(|p| p.expires_at_ms)
            .collect();
        if held.len() as u64 >= MAX_PENDING_PER_USER {
            let oldest = held.iter().copied().min().unwrap_or_default();
            return Err(too_many_pending(oldest, pending.created_at_ms));
        }
        s.pending.push(pending.clone());
        Ok(())
    }

    fn find_pending(&self, id: &str) -> Result<Option<Pending>, ApiError> {
        Ok(self.lock()?.pending.iter().find(|p| p.id == id).cloned())
    }

    fn complete(&self, pending: &Pending, upload: &Upload, key: &str) -> Result<Stored, ApiError> {
        let mut s = self.lock()?;
        let before = s.pending.len();
        s.pending.retain(|p| p.id != pending.id);
        if s.pending.len() == before {
            return Err(ApiError::NotFound);
        }
        let stored = s.place_blob(&upload.sha256, NewBytes::Object(key));
        s.uploads.push(upload.clone());
        Ok(stored)
    }

    fn discard(&self, id: &str) -> Result<bool, ApiError> {
        let mut s = self.lock()?;
        let before = s.pending.len();
        s.pending.retain(|p| p.id != id);
        Ok(s.pending.len() < before)
    }

    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError> {
        Ok(self.lock()?.uploads.iter().find(|u| u.id == id).cloned())
    }

    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError> {
        let s = self.lock()?;
        let mut own: Vec<Upload> = s
            .uploads
            .iter()
            .filter(|u| u.user_id == user_id)
            .cloned()
            .collect();
        own.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        let total = own.len() as u64;
        let items = own
            .into_iter()
            .skip(page.offset() as usize)
            .take(page.limit as usize)
            .collect();
        Ok((items, total))
    }

    fn content(&self, id: &str) -> Result<Option<Content>, ApiError> {
        let s = self.lock()?;
        Ok(s.uploads
            .iter()
            .find(|u| u.id == id)
            .and_then(|u| s.blobs.get(&u.sha256).cloned()))
    }

    fn delete(&self, upload: &Upload) -> Result<Deleted, ApiError> {
        let mut s = self.lock()?;
        let before = s.uploads.len();
        s.uploads.retain(|u| u.id != upload.id);
        if s.uploads.len() == before {
            return Ok(Deleted::Missing);
        }
        if s.uploads.iter().any(|u| u.sha256 == upload.sha256) {
            return Ok(Deleted::Gone { freed_object: None });
        }
        let freed_object = match s.blobs.remove(&upload.sha256) {
            Some(Content::Object(key)) => Some(key),
            _ => None,
        };
        Ok(Deleted::Gone { freed_object })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::db::DbError;
    use std::cell::RefCell;

    /// Records statements and answers queries from a script, to check the
    /// MySQL repository's statements and their order.
    #[derive(Default)]
    struct ScriptedSql {
        log: RefCell<Vec<String>>,
        answers: RefCell<Vec<Vec<Row>>>,
    }

    impl ScriptedSql {
        fn answering(answers: Vec<Vec<Row>>) -> Self {
            Self {
                log: RefCell::default(),
                answers: RefCell::new(answers),
            }
        }
        fn statements(&self) -> Vec<String> {
            self.log.borrow().clone()
        }
    }

    impl Sql for ScriptedSql {
        fn execute(&self, sql: &str, _: &[Value]) -> Result<(), DbError> {
            self.log.borrow_mut().push(sql.to_string());
            Ok(())
        }
        fn query(&self, sql: &str, _: &[Value]) -> Result<Vec<Row>, DbError> {
            self.log.borrow_mut().push(sql.to_string());
            let mut answers = self.answers.borrow_mut();
            Ok(if answers.is_empty() {
                Vec::new()
            } else {
                answers.remove(0)
            })
        }
    }

    fn upload() -> Upload {
        Upload {
            id: "a".repeat(32),
            user_id: "u".repeat(32),
            filename: "f.txt".into(),
            content_type: "text/plain; charset=utf-8".into(),
            size: 3,
            sha256: "0".repeat(64),
            visibility: Visibility::Private,
            created_at_ms: 1,
        }
    }

    fn one(v: Value) -> Vec<Row> {
        vec![Row(vec![v])]
    }

    #[test]
    fn create_of_known_content_locks_the_blob_and_sends_no_bytes() {
        // blob hint, user lock, stored bytes, blob share lock
        let sql = ScriptedSql::answering(vec![
            one(Value::Int(1)),
            one(Value::Int(1)),
            one(Value::Int(0)),
            one(Value::Int(1)),
        ]);
        MySqlUploads::new(&sql)
            .create(&upload(), NewBytes::Inline(b"abc"), 100)
            .unwrap();
        let log = sql.statements();
        assert!(log.iter().any(|s| s.contains("LOCK IN SHARE MODE")));
        assert!(!log
            .iter()
            .any(|s| s.starts_with("INSERT INTO upload_blobs")));
        assert!(log.iter().any(|s| s.starts_with("INSERT INTO uploads")));
        assert_eq!(log.last().unwrap(), "SET autocommit = 1");
    }

    #[test]
    fn create_of_new_content_inserts_the_blob_then_the_row_in_one_transaction() {
        // no blob, user lock, stored bytes
        let sql = ScriptedSql::answering(vec![vec![], one(Value::Int(1)), one(Value::Int(0))]);
        MySqlUploads::new(&sql)
            .create(&upload(), NewBytes::Inline(b"abc"), 100)
            .unwrap();
        let log = sql.statements();
        let pos = |p: &str| log.iter().position(|s| s.starts_with(p)).unwrap();
        assert!(pos("SET autocommit = 0") < pos("SELECT 1 FROM users"));
        assert!(pos("SELECT 1 FROM users") < pos("INSERT INTO upload_blobs"));
        assert!(log[pos("SELECT 1 FROM users")].ends_with("FOR UPDATE"));
        assert!(pos("INSERT INTO upload_blobs") < pos("INSERT INTO uploads"));
        assert!(pos("INSERT INTO uploads") < pos("SET autocommit = 1"));
        assert!(log.iter().any(|s| s.contains("ON DUPLICATE KEY")));
    }

    #[test]
    fn create_past_the_quota_is_409_and_rolls_back_before_any_insert() {
        // no blob, user lock, 98 bytes stored; 3 more would pass 100
        let sql = ScriptedSql::answering(vec![vec![], one(Value::Int(1)), one(Value::Int(98))]);
        let err = MySqlUploads::new(&sql)
            .create(&upload(), NewBytes::Inline(b"abc"), 100)
            .unwrap_err();
        assert_eq!(err, ApiError::QuotaExceeded { quota: 100 });
        let log = sql.statements();
        assert!(!log.iter().any(|s| s.starts_with("INSERT")));
        assert!(log.iter().any(|s| s == "ROLLBACK"));
    }

    #[test]
    fn create_for_a_deleted_owner_is_401() {
        let sql = ScriptedSql::answering(vec![vec![], vec![]]);
        let err = MySqlUploads::new(&sql)
            .create(&upload(), NewBytes::Inline(b"abc"), 100)
            .unwrap_err();
        assert_eq!(err, ApiError::InvalidToken);
    }

    #[test]
    fn delete_of_last_reference_removes_the_blob_under_its_lock() {
        // blob lock row, ROW_COUNT() = 1, remaining = 0
        let sql = ScriptedSql::answering(vec![
            one(Value::Int(1)),
            one(Value::Int(1)),
            one(Value::Int(0)),
        ]);
        assert!(matches!(
            MySqlUploads::new(&sql).delete(&upload()).unwrap(),
            Deleted::Gone { .. }
        ));
        let log = sql.statements();
        let pos = |p: &str| log.iter().position(|s| s.starts_with(p)).unwrap();
        assert!(pos("SELECT object_key FROM upload_blobs") < pos("DELETE FROM uploads"));
        assert!(log[pos("SELECT object_key FROM upload_blobs")].ends_with("FOR UPDATE"));
        assert!(pos("DELETE FROM uploads") < pos("DELETE FROM upload_blobs"));
        assert!(pos("DELETE FROM upload_blobs") < pos("SET autocommit = 1"));
    }

    #[test]
    fn delete_keeps_a_blob_that_is_still_referenced() {
        let sql = ScriptedSql::answering(vec![
            one(Value::Int(1)),
            one(Value::Int(1)),
            one(Value::Int(1)),
        ]);
        assert!(matches!(
            MySqlUploads::new(&sql).delete(&upload()).unwrap(),
            Deleted::Gone { .. }
        ));
        assert!(!sql
            .statements()
            .iter()
            .any(|s| s.starts_with("DELETE FROM upload_blobs")));
    }

    #[test]
    fn delete_of_an_already_deleted_upload_is_false() {
        let sql = ScriptedSql::answering(vec![one(Value::Int(1)), one(Value::Int(0))]);
        assert_eq!(
            MySqlUploads::new(&sql).delete(&upload()).unwrap(),
            Deleted::Missing
        );
        assert!(!sql
            .statements()
            .iter()
            .any(|s| s.starts_with("DELETE FROM upload_blobs")));
    }

    #[test]
    fn rows_read_back_into_uploads() {
        let u = upload();
        let row = Row(vec![
            Value::from(&u.id),
            Value::from(&u.user_id),
            Value::from(&u.filename),
            Value::from(&u.content_type),
            Value::Int(3),
            Value::from(&u.sha256),
            Value::from("private"),
            Value::Int(1),
        ]);
        let sql = ScriptedSql::answering(vec![vec![row]]);
        assert_eq!(MySqlUploads::new(&sql).find(&u.id).unwrap(), Some(u));
    }

    #[test]
    fn deadlock_victim_create_is_retried_in_a_fresh_transaction() {
        struct DeadlockOnce(ScriptedSql, RefCell<bool>);
        impl Sql for DeadlockOnce {
            fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
                if sql.starts_with("INSERT INTO uploads") && !self.1.replace(true) {
                    self.0.log.borrow_mut().push(sql.to_string());
                    return Err(DbError::Deadlock);
                }
                self.0.execute(sql, params)
            }
            fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
                // The owner's row is there on every attempt.
                if sql.starts_with("SELECT 1 FROM users") {
                    self.0.log.borrow_mut().push(sql.to_string());
                    return Ok(one(Value::Int(1)));
                }
                self.0.query(sql, params)
            }
        }
        let sql = DeadlockOnce(ScriptedSql::answering(vec![]), RefCell::new(false));
        MySqlUploads::new(&sql)
            .create(&upload(), NewBytes::Inline(b"abc"), 100)
            .unwrap();
        let statements = sql.0.statements();
        let count = |s: &str| statements.iter().filter(|x| x.as_str() == s).count();
        assert_eq!(count("SET autocommit = 0"), 2);
        assert_eq!(count("ROLLBACK"), 1);
        assert_eq!(count("SET autocommit = 1"), 2);
    }
}

//! Storage of uploads: the repository port, its MySQL implementation, and the
//! in-memory fake the unit tests use.
//!
//! Bytes are content-addressed: `upload_blobs` holds each distinct content
//! once, keyed by its SHA-256 (hex); `uploads` holds one metadata row per
//! upload, pointing at its blob (see `migrations/0003_uploads.sql`). A blob's
//! references are computed (the `uploads` rows with its hash), not counted in
//! a column, so no counter can drift.
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

/// The storage operations the handlers need.
pub trait UploadRepo {
    /// Stores `upload` and, unless the same content is already stored,
    /// `bytes` — or nothing, with 409 `quota_exceeded`, when the owner's
    /// uploads would then add up to more than `quota_bytes`.
    fn create(&self, upload: &Upload, bytes: &[u8], quota_bytes: u64) -> Result<(), ApiError>;
    /// The upload with this id.
    fn find(&self, id: &str) -> Result<Option<Upload>, ApiError>;
    /// One page of `user_id`'s uploads, newest first, and their total count.
    fn list_for_user(
        &self,
        user_id: &str,
        page: Pagination,
    ) -> Result<(Vec<Upload>, u64), ApiError>;
    /// The bytes of the upload with this id, if it still exists.
    fn content(&self, id: &str) -> Result<Option<Vec<u8>>, ApiError>;
    /// Deletes `upload`, and its blob when no other upload references it.
    /// False when it was already gone.
    fn delete(&self, upload: &Upload) -> Result<bool, ApiError>;
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
    /// quota one at a time, and refuses when this one would pass it.
    fn check_quota(&self, upload: &Upload, quota_bytes: u64) -> Result<(), TxError> {
        let owner = Value::from(&upload.user_id);
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
                "SELECT CAST(COALESCE(SUM(size), 0) AS SIGNED) FROM uploads WHERE user_id = ?",
                std::slice::from_ref(&owner),
            )?
            .first()
            .map(|r| r.u64(0))
            .transpose()?
            .unwrap_or(0);
        if stored.saturating_add(upload.size) > quota_bytes {
            return Err(ApiError::QuotaExceeded { quota: quota_bytes }.into());
        }
        Ok(())
    }

    fn insert(
        &self,
        upload: &Upload,
        bytes: &[u8],
        blob_known: bool,
        quota_bytes: u64,
    ) -> Result<(), TxError> {
        // The owner's row first (as the first lock of every create), then the
        // blob, as delete and the purge take it.
        self.check_quota(upload, quota_bytes)?;
        // With the blob already stored, a share lock keeps it alive until the
        // metadata row commits, and the bytes need not cross the wire again.
        let need_blob = !blob_known || !self.blob_exists(&upload.sha256, true)?;
        if need_blob {
            // ON DUPLICATE KEY, not INSERT IGNORE: IGNORE would also turn a
            // truncation or any other error into a silent warning.
            self.sql.execute(
                "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE sha256 = sha256",
                &[
                    Value::from(&upload.sha256),
                    Value::UInt(upload.size),
                    Value::Bytes(bytes.to_vec()),
                    Value::Int(upload.created_at_ms),
                ],
            )?;
        }
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
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| ApiError::Internal(format!("stored visibility {visibility:?}")))?,
        created_at_ms: row.i64(7)?,
    })
}

impl<S: Sql> UploadRepo for MySqlUploads<'_, S> {
    fn create(&self, upload: &Upload, bytes: &[u8], quota_bytes: u64) -> Result<(), ApiError> {
        // Outside the transaction and unlocked: a hint only, re-checked under lock.
        let blob_known = self.blob_exists(&upload.sha256, false)?;
        self.sql.transaction_retrying(DEADLOCK_ATTEMPTS, |_| {
            self.insert(upload, bytes, blob_known, quota_bytes)
        })
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

    fn content(&self, id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        // Joined through the metadata row, so a deleted upload whose bytes live
        // on for another user's upload is not served from stale metadata.
        let rows = self.sql.query(
            "SELECT b.data FROM uploads u JOIN upload_blobs b ON b.sha256 = u.sha256 WHERE u.id = ?",
            &[Value::from(id)],
        )?;
        // Take the bytes out of the row rather than copying megabytes.
        match rows
            .into_iter()
            .next()
            .and_then(|row| row.0.into_iter().next())
        {
            None => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b)),
            Some(Value::Str(s)) => Ok(Some(s.into_bytes())),
            Some(other) => Err(ApiError::Internal(format!("blob column read as {other:?}"))),
        }
    }

    fn delete(&self, upload: &Upload) -> Result<bool, ApiError> {
        let sha = Value::from(&upload.sha256);
        self.sql.transaction(|sql| {
            // Blob first, as create does: one lock order, no deadlock between
            // two deletes of the same content or a delete and a create.
            sql.query(
                "SELECT 1 FROM upload_blobs WHERE sha256 = ? FOR UPDATE",
                std::slice::from_ref(&sha),
            )?;
            sql.execute(
                "DELETE FROM uploads WHERE id = ?",
                &[Value::from(&upload.id)],
            )?;
            if sql.affected_rows()? == 0 {
                return Ok(false);
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
            if remaining == 0 {
                sql.execute(
                    "DELETE FROM upload_blobs WHERE sha256 = ?",
                    std::slice::from_ref(&sha),
                )?;
            }
            Ok(true)
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
    blobs: std::collections::HashMap<String, Vec<u8>>,
    blob_writes: usize,
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

    /// Number of stored blobs.
    pub fn blob_count(&self) -> usize {
        self.state.lock().unwrap().blobs.len()
    }

    /// How many times bytes were written (a duplicate content writes none).
    pub fn blob_writes(&self) -> usize {
        self.state.lock().unwrap().blob_writes
    }
}

#[cfg(test)]
impl UploadRepo for MemoryUploads {
    fn create(&self, upload: &Upload, bytes: &[u8], quota_bytes: u64) -> Result<(), ApiError> {
        let mut s = self.lock()?;
        let stored: u64 = s
            .uploads
            .iter()
            .filter(|u| u.user_id == upload.user_id)
            .map(|u| u.size)
            .sum();
        if stored + upload.size > quota_bytes {
            return Err(ApiError::QuotaExceeded { quota: quota_bytes });
        }
        if !s.blobs.contains_key(&upload.sha256) {
            s.blobs.insert(upload.sha256.clone(), bytes.to_vec());
            s.blob_writes += 1;
        }
        s.uploads.push(upload.clone());
        Ok(())
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

    fn content(&self, id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let s = self.lock()?;
        Ok(s.uploads
            .iter()
            .find(|u| u.id == id)
            .and_then(|u| s.blobs.get(&u.sha256).cloned()))
    }

    fn delete(&self, upload: &Upload) -> Result<bool, ApiError> {
        let mut s = self.lock()?;
        let before = s.uploads.len();
        s.uploads.retain(|u| u.id != upload.id);
        if s.uploads.len() == before {
            return Ok(false);
        }
        if !s.uploads.iter().any(|u| u.sha256 == upload.sha256) {
            s.blobs.remove(&upload.sha256);
        }
        Ok(true)
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
            .create(&upload(), b"abc", 100)
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
            .create(&upload(), b"abc", 100)
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
            .create(&upload(), b"abc", 100)
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
            .create(&upload(), b"abc", 100)
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
        assert!(MySqlUploads::new(&sql).delete(&upload()).unwrap());
        let log = sql.statements();
        let pos = |p: &str| log.iter().position(|s| s.starts_with(p)).unwrap();
        assert!(pos("SELECT 1 FROM upload_blobs") < pos("DELETE FROM uploads"));
        assert!(log[pos("SELECT 1 FROM upload_blobs")].ends_with("FOR UPDATE"));
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
        assert!(MySqlUploads::new(&sql).delete(&upload()).unwrap());
        assert!(!sql
            .statements()
            .iter()
            .any(|s| s.starts_with("DELETE FROM upload_blobs")));
    }

    #[test]
    fn delete_of_an_already_deleted_upload_is_false() {
        let sql = ScriptedSql::answering(vec![one(Value::Int(1)), one(Value::Int(0))]);
        assert!(!MySqlUploads::new(&sql).delete(&upload()).unwrap());
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
            .create(&upload(), b"abc", 100)
            .unwrap();
        let statements = sql.0.statements();
        let count = |s: &str| statements.iter().filter(|x| x.as_str() == s).count();
        assert_eq!(count("SET autocommit = 0"), 2);
        assert_eq!(count("ROLLBACK"), 1);
        assert_eq!(count("SET autocommit = 1"), 2);
    }
}

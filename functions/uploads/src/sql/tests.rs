//! The SQL repository's statement protocol, on a scripted [`Sql`] fake:
//! the order of locks and writes in a create and a delete, content stored
//! once, the quota and the pending cap judged on what MySQL reports, row
//! mapping, and deadlock retries. (Its behaviour on the real MariaDB under
//! concurrency is proven by tests/api/tests/upload_suite.)

use std::cell::RefCell;
use std::collections::BTreeMap;

use shared::db::{DbError, Dialect, Row, Sql, Value};
use shared::ApiError;

use crate::model::{Deleted, NewBytes, Pending, Stored, Upload, Visibility, MAX_PENDING_PER_USER};
use crate::repo::UploadRepo;
use crate::sql::SqlUploads;

type Responder = Box<dyn FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError>>;

/// Records every statement with its parameters and answers it through `respond`.
struct ScriptSql {
    log: RefCell<Vec<(String, Vec<Value>)>>,
    respond: RefCell<Responder>,
    dialect: Dialect,
}

impl ScriptSql {
    fn new(respond: impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> + 'static) -> Self {
        Self {
            log: RefCell::new(Vec::new()),
            respond: RefCell::new(Box::new(respond)),
            dialect: Dialect::MySql,
        }
    }

    /// The same script on a connection that speaks SQLite.
    fn sqlite(self) -> Self {
        Self {
            dialect: Dialect::Sqlite,
            ..self
        }
    }

    /// Answers the queries (every `SELECT`), in order, with `answers`; then
    /// with no rows. Other statements succeed.
    fn answering(answers: Vec<Vec<Row>>) -> Self {
        let mut answers = answers.into_iter();
        Self::new(move |sql, _| {
            Ok(if sql.starts_with("SELECT") {
                answers.next().unwrap_or_default()
            } else {
                Vec::new()
            })
        })
    }

    fn statements(&self) -> Vec<String> {
        self.log.borrow().iter().map(|(s, _)| s.clone()).collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.statements()
            .iter()
            .filter(|s| s.starts_with(prefix))
            .count()
    }
}

impl Sql for ScriptSql {
    fn dialect(&self) -> Dialect {
        self.dialect
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.query(sql, params).map(|_| ())
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.log
            .borrow_mut()
            .push((sql.to_string(), params.to_vec()));
        (self.respond.borrow_mut())(sql, params)
    }
}

const ALICE: &str = "a0000000000000000000000000000001";
const BOB: &str = "b0000000000000000000000000000002";

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

/// `upload()` with another id and owner, same content.
fn upload_by(user_id: &str, id: char) -> Upload {
    Upload {
        id: id.to_string().repeat(32),
        user_id: user_id.into(),
        ..upload()
    }
}

fn pending() -> Pending {
    Pending {
        id: "p".repeat(32),
        user_id: "u".repeat(32),
        filename: "a.png".into(),
        size: 3,
        sha256: "0".repeat(64),
        visibility: Visibility::Private,
        object_key: "incoming/p".into(),
        created_at_ms: 1_000,
        expires_at_ms: 2_000,
    }
}

fn one(v: Value) -> Vec<Row> {
    vec![Row(vec![v])]
}

/// The quota query's answer: the stored and the pending bytes.
fn sums(stored: i64, pending: i64) -> Vec<Row> {
    vec![Row(vec![Value::Int(stored), Value::Int(pending)])]
}

/// The upload tables as far as a create reads them: every owner exists, a
/// blob exists (with the object it names, if any) once inserted, and the
/// quota query adds up the rows inserted.
fn tables() -> impl FnMut(&str, &[Value]) -> Result<Vec<Row>, DbError> {
    let mut blobs: BTreeMap<String, Value> = BTreeMap::new();
    let mut rows: Vec<(Value, u64)> = Vec::new();
    move |sql, params| {
        let first = params.first().cloned().unwrap_or(Value::Null);
        let key = |v: &Value| match v {
            Value::Str(s) => s.clone(),
            other => panic!("expected a string parameter, got {other:?}"),
        };
        if sql.starts_with("SELECT 1 FROM upload_blobs") {
            return Ok(if blobs.contains_key(&key(&first)) {
                one(Value::Int(1))
            } else {
                Vec::new()
            });
        }
        if sql.starts_with("SELECT object_key FROM upload_blobs") {
            return Ok(blobs
                .get(&key(&first))
                .cloned()
                .map(one)
                .unwrap_or_default());
        }
        if sql.starts_with("SELECT 1 FROM users") {
            return Ok(one(Value::Int(1)));
        }
        if sql.starts_with("SELECT CAST(") {
            let stored: u64 = rows
                .iter()
                .filter(|(owner, _)| *owner == first)
                .map(|(_, size)| size)
                .sum();
            return Ok(sums(stored as i64, 0));
        }
        if sql.starts_with("INSERT INTO upload_blobs") {
            // ON DUPLICATE KEY: the first insert's row stays.
            let object = params.get(3).cloned().unwrap_or(Value::Null);
            blobs.entry(key(&first)).or_insert(object);
        }
        if sql.starts_with("INSERT INTO uploads") {
            let Some(Value::UInt(size)) = params.get(4) else {
                panic!("unexpected parameters {params:?}");
            };
            rows.push((params[1].clone(), *size));
        }
        Ok(Vec::new())
    }
}

/// The statements logged since the first `from`.
fn since(sql: &ScriptSql, from: usize) -> Vec<(String, Vec<Value>)> {
    sql.log.borrow()[from..].to_vec()
}

fn position(log: &[(String, Vec<Value>)], wanted: impl Fn(&str) -> bool) -> usize {
    log.iter()
        .position(|(s, _)| wanted(s))
        .unwrap_or_else(|| panic!("statement missing from {log:#?}"))
}

// ------------------------------------------------------------------ create

#[test]
fn same_content_from_two_users_is_stored_once() {
    let sql = ScriptSql::new(tables());
    let repo = SqlUploads::new(&sql);
    assert_eq!(
        repo.create(&upload_by(ALICE, 'a'), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::NewBlob)
    );
    let first = sql.log.borrow().len();
    assert_eq!(
        repo.create(&upload_by(BOB, 'b'), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::Shared)
    );

    let second = since(&sql, first);
    assert_eq!(sql.count("INSERT INTO upload_blobs"), 1, "one blob in all");
    assert!(
        !second
            .iter()
            .any(|(_, p)| p.iter().any(|v| matches!(v, Value::Bytes(_)))),
        "the bytes do not cross the wire again: {second:#?}"
    );
    // Inside one transaction: the existing blob is locked in share mode (so
    // a concurrent delete cannot take it away), then only Bob's row goes in.
    let begin = position(&second, |s| s == "SET autocommit = 0");
    let lock = position(&second, |s| {
        s == "SELECT 1 FROM upload_blobs WHERE sha256 = ? LOCK IN SHARE MODE"
    });
    let row = position(&second, |s| s.starts_with("INSERT INTO uploads"));
    let commit = position(&second, |s| s == "SET autocommit = 1");
    assert!(begin < lock && lock < row && row < commit, "{second:#?}");
    assert_eq!(second[row].1[1], Value::from(BOB));
    assert_eq!(second[row].1[5], Value::from(&upload().sha256));
    assert_eq!(
        second
            .iter()
            .filter(|(s, _)| s.starts_with("INSERT"))
            .count(),
        1
    );
}

#[test]
fn bucket_content_already_stored_is_shared_without_asking_for_bytes() {
    let sql = ScriptSql::new(tables());
    let repo = SqlUploads::new(&sql);
    // A raw upload with S3 storage asks first without bytes.
    assert_eq!(
        repo.create(&upload_by(ALICE, 'a'), NewBytes::Absent, 100),
        Ok(Stored::NeedsBytes)
    );
    assert_eq!(sql.count("INSERT"), 0, "nothing stored without bytes");
    assert_eq!(
        repo.create(&upload_by(ALICE, 'a'), NewBytes::Object("objects/a"), 100),
        Ok(Stored::NewBlob)
    );
    let first = sql.log.borrow().len();
    assert_eq!(
        repo.create(&upload_by(BOB, 'b'), NewBytes::Absent, 100),
        Ok(Stored::Shared)
    );
    let second = since(&sql, first);
    assert!(!second
        .iter()
        .any(|(s, _)| s.starts_with("INSERT INTO upload_blobs")));
    assert_eq!(
        second
            .iter()
            .filter(|(s, _)| s.starts_with("INSERT INTO uploads"))
            .count(),
        1
    );
}

#[test]
fn create_of_known_content_locks_the_blob_and_sends_no_bytes() {
    // blob hint, user lock, stored bytes, blob share lock
    let sql = ScriptSql::answering(vec![
        one(Value::Int(1)),
        one(Value::Int(1)),
        sums(0, 0),
        one(Value::Int(1)),
    ]);
    assert_eq!(
        SqlUploads::new(&sql).create(&upload(), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::Shared)
    );
    let log = sql.statements();
    assert!(log.iter().any(|s| s.contains("LOCK IN SHARE MODE")));
    assert!(!log
        .iter()
        .any(|s| s.starts_with("INSERT INTO upload_blobs")));
    assert!(log.iter().any(|s| s.starts_with("INSERT INTO uploads")));
    assert_eq!(log.last().map(String::as_str), Some("SET autocommit = 1"));
}

#[test]
fn create_of_new_content_inserts_the_blob_then_the_row_in_one_transaction() {
    // no blob, user lock, stored bytes
    let sql = ScriptSql::answering(vec![vec![], one(Value::Int(1)), sums(0, 0)]);
    assert_eq!(
        SqlUploads::new(&sql).create(&upload(), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::NewBlob)
    );
    let log = sql.log.borrow().clone();
    let pos = |p: &str| position(&log, |s| s.starts_with(p));
    assert!(pos("SET autocommit = 0") < pos("SELECT 1 FROM users"));
    assert!(pos("SELECT 1 FROM users") < pos("INSERT INTO upload_blobs"));
    assert!(log[pos("SELECT 1 FROM users")].0.ends_with("FOR UPDATE"));
    assert!(pos("INSERT INTO upload_blobs") < pos("INSERT INTO uploads"));
    assert!(pos("INSERT INTO uploads") < pos("SET autocommit = 1"));
    assert!(log[pos("INSERT INTO upload_blobs")]
        .0
        .contains("ON DUPLICATE KEY"));
    assert_eq!(
        log[pos("INSERT INTO upload_blobs")].1[2],
        Value::Bytes(b"abc".to_vec())
    );
}

#[test]
fn on_sqlite_new_content_is_inserted_once_in_an_immediate_transaction() {
    // no blob, user row, stored bytes
    let sql = ScriptSql::answering(vec![vec![], one(Value::Int(1)), sums(0, 0)]).sqlite();
    assert_eq!(
        SqlUploads::new(&sql).create(&upload(), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::NewBlob)
    );
    let log = sql.statements();
    let begin = log.iter().position(|s| s == "BEGIN IMMEDIATE");
    let owner = log
        .iter()
        .position(|s| s.starts_with("SELECT 1 FROM users"));
    assert!(begin.is_some() && begin < owner, "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
    let blob = &log[position(&sql.log.borrow(), |s| {
        s.starts_with("INSERT INTO upload_blobs")
    })];
    assert!(blob.ends_with("ON CONFLICT (sha256) DO NOTHING"), "{blob}");
    assert!(!log
        .iter()
        .any(|s| s.contains("FOR UPDATE") || s.contains("SHARE MODE")));
}

#[test]
fn on_sqlite_a_deleted_owner_is_recognised_by_the_unnamed_foreign_key() {
    let mut answers = vec![vec![], one(Value::Int(1)), sums(0, 0)].into_iter();
    let sql = ScriptSql::new(move |sql, _| {
        if sql.starts_with("INSERT INTO uploads ") {
            return Err(DbError::classify_sqlite_error(
                "FOREIGN KEY constraint failed",
            ));
        }
        Ok(if sql.starts_with("SELECT") {
            answers.next().unwrap_or_default()
        } else {
            Vec::new()
        })
    })
    .sqlite();
    let err = SqlUploads::new(&sql)
        .create(&upload(), NewBytes::Inline(b"abc"), 100)
        .unwrap_err();
    assert_eq!(err, ApiError::InvalidToken);
    assert_eq!(sql.count("ROLLBACK"), 1);
}

#[test]
fn create_past_the_quota_is_409_and_rolls_back_before_any_insert() {
    // no blob, user lock, 98 bytes stored; 3 more would pass 100
    let sql = ScriptSql::answering(vec![vec![], one(Value::Int(1)), sums(98, 0)]);
    let err = SqlUploads::new(&sql)
        .create(&upload(), NewBytes::Inline(b"abc"), 100)
        .unwrap_err();
    assert_eq!(err, ApiError::QuotaExceeded { quota: 100 });
    assert_eq!(sql.count("INSERT"), 0);
    assert_eq!(sql.count("ROLLBACK"), 1);
}

#[test]
fn pending_announcements_count_against_the_quota_of_a_create() {
    // no blob, user lock, 50 stored and 48 announced; 3 more would pass 100
    let sql = ScriptSql::answering(vec![vec![], one(Value::Int(1)), sums(50, 48)]);
    let err = SqlUploads::new(&sql)
        .create(&upload(), NewBytes::Inline(b"abc"), 100)
        .unwrap_err();
    assert_eq!(err, ApiError::QuotaExceeded { quota: 100 });
    let log = sql.log.borrow().clone();
    let usage = &log[position(&log, |s| s.starts_with("SELECT CAST("))];
    assert!(usage.0.contains("expires_at_ms > ?"), "{}", usage.0);
    assert_eq!(usage.1[2], Value::Int(upload().created_at_ms), "now");
}

#[test]
fn create_for_a_deleted_owner_is_401() {
    let sql = ScriptSql::answering(vec![vec![], vec![]]);
    let err = SqlUploads::new(&sql)
        .create(&upload(), NewBytes::Inline(b"abc"), 100)
        .unwrap_err();
    assert_eq!(err, ApiError::InvalidToken);
    assert_eq!(sql.count("INSERT"), 0);
}

#[test]
fn deadlock_victim_create_is_retried_in_a_fresh_transaction() {
    let mut failed = false;
    let sql = ScriptSql::new(move |sql, _| {
        if sql.starts_with("INSERT INTO uploads") && !failed {
            failed = true;
            return Err(DbError::Deadlock);
        }
        // The owner's row is there on every attempt.
        if sql.starts_with("SELECT 1 FROM users") {
            return Ok(one(Value::Int(1)));
        }
        if sql.starts_with("SELECT CAST(") {
            return Ok(sums(0, 0));
        }
        Ok(Vec::new())
    });
    assert_eq!(
        SqlUploads::new(&sql).create(&upload(), NewBytes::Inline(b"abc"), 100),
        Ok(Stored::NewBlob)
    );
    let statements = sql.statements();
    let count = |s: &str| statements.iter().filter(|x| x.as_str() == s).count();
    assert_eq!(count("SET autocommit = 0"), 2);
    assert_eq!(count("ROLLBACK"), 1);
    assert_eq!(count("SET autocommit = 1"), 2);
}

// ------------------------------------------------------------------ announce

#[test]
fn announce_under_the_cap_inserts_the_pending_row_under_the_owner_lock() {
    // user lock, sums, held announcements
    let sql = ScriptSql::answering(vec![
        one(Value::Int(1)),
        sums(0, 0),
        vec![Row(vec![
            Value::Int(MAX_PENDING_PER_USER as i64 - 1),
            Value::Int(1_500),
        ])],
    ]);
    assert_eq!(SqlUploads::new(&sql).announce(&pending(), 100), Ok(()));
    let log = sql.log.borrow().clone();
    let lock = position(&log, |s| s.starts_with("SELECT 1 FROM users"));
    let insert = position(&log, |s| s.starts_with("INSERT INTO pending_uploads"));
    assert!(lock < insert);
    assert_eq!(log[insert].1[0], Value::from(&pending().id));
}

#[test]
fn announce_past_the_cap_is_429_until_the_oldest_expires_and_inserts_nothing() {
    let sql = ScriptSql::answering(vec![
        one(Value::Int(1)),
        sums(0, 0),
        vec![Row(vec![
            Value::Int(MAX_PENDING_PER_USER as i64),
            Value::Int(pending().created_at_ms + 2_500),
        ])],
    ]);
    assert_eq!(
        SqlUploads::new(&sql).announce(&pending(), 100),
        Err(ApiError::TooManyAttempts {
            retry_after_secs: 3
        })
    );
    assert_eq!(sql.count("INSERT"), 0);
    assert_eq!(sql.count("ROLLBACK"), 1);
}

#[test]
fn announce_past_the_quota_is_409_before_counting_announcements() {
    let sql = ScriptSql::answering(vec![one(Value::Int(1)), sums(90, 8)]);
    assert_eq!(
        SqlUploads::new(&sql).announce(&pending(), 100),
        Err(ApiError::QuotaExceeded { quota: 100 })
    );
    assert_eq!(sql.count("SELECT COUNT(*)"), 0);
    assert_eq!(sql.count("INSERT"), 0);
}

// ------------------------------------------------------------------ delete

#[test]
fn delete_of_last_reference_removes_the_blob_under_its_lock() {
    // blob lock row, ROW_COUNT() = 1, remaining = 0
    let sql = ScriptSql::answering(vec![
        one(Value::from("objects/a")),
        one(Value::Int(1)),
        one(Value::Int(0)),
    ]);
    assert_eq!(
        SqlUploads::new(&sql).delete(&upload()),
        Ok(Deleted::Gone {
            freed_object: Some("objects/a".into())
        })
    );
    let log = sql.log.borrow().clone();
    let pos = |p: &str| position(&log, |s| s.starts_with(p));
    assert!(pos("SELECT object_key FROM upload_blobs") < pos("DELETE FROM uploads"));
    assert!(log[pos("SELECT object_key FROM upload_blobs")]
        .0
        .ends_with("FOR UPDATE"));
    assert!(pos("DELETE FROM uploads") < pos("DELETE FROM upload_blobs"));
    assert!(pos("DELETE FROM upload_blobs") < pos("SET autocommit = 1"));
}

#[test]
fn delete_keeps_a_blob_that_is_still_referenced() {
    let sql = ScriptSql::answering(vec![
        one(Value::from("objects/a")),
        one(Value::Int(1)),
        one(Value::Int(1)),
    ]);
    assert_eq!(
        SqlUploads::new(&sql).delete(&upload()),
        Ok(Deleted::Gone { freed_object: None })
    );
    assert_eq!(sql.count("DELETE FROM upload_blobs"), 0);
}

#[test]
fn delete_of_an_already_deleted_upload_is_missing() {
    let sql = ScriptSql::answering(vec![one(Value::Int(1)), one(Value::Int(0))]);
    assert_eq!(
        SqlUploads::new(&sql).delete(&upload()),
        Ok(Deleted::Missing)
    );
    assert_eq!(sql.count("DELETE FROM upload_blobs"), 0);
}

// ------------------------------------------------------------------ rows

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
    let sql = ScriptSql::answering(vec![vec![row]]);
    assert_eq!(SqlUploads::new(&sql).find(&u.id), Ok(Some(u)));
}

#[test]
fn a_stored_visibility_that_is_neither_name_is_a_500() {
    let u = upload();
    let row = Row(vec![
        Value::from(&u.id),
        Value::from(&u.user_id),
        Value::from(&u.filename),
        Value::from(&u.content_type),
        Value::Int(3),
        Value::from(&u.sha256),
        Value::from("Public"),
        Value::Int(1),
    ]);
    let sql = ScriptSql::answering(vec![vec![row]]);
    assert_eq!(SqlUploads::new(&sql).find(&u.id).unwrap_err().status(), 500);
}

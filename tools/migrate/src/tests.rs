use std::path::PathBuf;

use shared::db::{DbError, Dialect, Row, Sql, Value};

use super::*;

#[test]
fn sqlite_urls_name_a_file_path_taken_literally() {
    for (url, path) in [
        ("sqlite:.spin/sqlite_db.db", ".spin/sqlite_db.db"),
        ("sqlite://.spin/sqlite_db.db", ".spin/sqlite_db.db"),
        ("sqlite:/srv/api.db", "/srv/api.db"),
        ("sqlite:///srv/api.db", "/srv/api.db"),
        ("sqlite:dir with spaces/zoë.db", "dir with spaces/zoë.db"),
        ("sqlite:api.db?mode=ro", "api.db?mode=ro"),
    ] {
        assert_eq!(
            Target::parse(url).unwrap(),
            Target::Sqlite(PathBuf::from(path)),
            "{url}"
        );
    }
}

#[test]
fn mysql_urls_pass_through_and_others_are_refused_without_credentials() {
    let url = "mysql://root:pw@127.0.0.1:3306/spin_api";
    assert_eq!(Target::parse(url).unwrap(), Target::MySql(url.to_string()));
    for url in [
        "sqlite:",
        "sqlite://",
        "",
        "postgres://u:hunter2@db/x",
        "api.db",
    ] {
        let err = Target::parse(url).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}

fn temp_db() -> (tempfile::TempDir, SqliteFile) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteFile::open(&dir.path().join("t.db")).unwrap();
    (dir, db)
}

#[test]
fn values_round_trip_as_spin_returns_them() {
    let (_dir, db) = temp_db();
    assert_eq!(db.dialect(), Dialect::Sqlite);
    let rows = db
        .query(
            "SELECT ?, ?, ?, ?, ?, ?, ?",
            &[
                Value::Null,
                Value::Bool(true),
                Value::Int(-7),
                Value::UInt(7),
                Value::Float(1.5),
                Value::Str("zoë".into()),
                Value::Bytes(vec![0, 255]),
            ],
        )
        .unwrap();
    assert_eq!(
        rows,
        vec![Row(vec![
            Value::Null,
            Value::Int(1),
            Value::Int(-7),
            Value::Int(7),
            Value::Float(1.5),
            Value::Str("zoë".into()),
            Value::Bytes(vec![0, 255]),
        ])]
    );
    assert!(matches!(
        db.query("SELECT ?", &[Value::UInt(u64::MAX)]),
        Err(DbError::Query(_))
    ));
}

#[test]
fn foreign_keys_are_on_and_errors_are_classified() {
    let (_dir, db) = temp_db();
    assert_eq!(
        db.query("PRAGMA foreign_keys", &[]).unwrap()[0].i64(0),
        Ok(1)
    );
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)", &[])
        .unwrap();
    db.execute("INSERT INTO t (k) VALUES (?)", &["a".into()])
        .unwrap();
    assert_eq!(
        db.execute("INSERT INTO t (k) VALUES (?)", &["a".into()]),
        Err(DbError::Duplicate {
            index: "t.k".into()
        })
    );
    assert!(matches!(
        db.execute("SELECT * FROM missing", &[]),
        Err(DbError::Query(m)) if m.contains("no such table")
    ));
    // As on Spin: of two statements in one call only the first runs, and
    // silently (whence the schema runner's own split).
    db.execute("DELETE FROM t; DROP TABLE t", &[]).unwrap();
    assert_eq!(
        db.query("SELECT COUNT(*) FROM t", &[]).unwrap()[0].i64(0),
        Ok(0)
    );
}

#[test]
fn open_existing_never_creates_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    assert!(matches!(
        SqliteFile::open_existing(&path),
        Err(DbError::Unavailable(_))
    ));
    assert!(!path.exists());
}

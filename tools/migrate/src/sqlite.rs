//! [`SqliteFile`]: the app's [`Sql`] port over a SQLite database file, for
//! the native tools.
//!
//! It behaves as Spin's SQLite host does for the app (Spin 4.0.2,
//! `crates/sqlite-inproc`): the same library (rusqlite 0.34, bundled
//! SQLite), every statement prepared and its rows read whole, rusqlite's
//! default busy timeout (5 s), and errors carried as SQLite's own message,
//! which [`DbError::classify_sqlite_error`] reads as it does the app's. So
//! `shared::db::sqlite::migrate` and any repository code run here exactly
//! as they run in a component, and a test of the schema through this
//! adapter sees the errors the app will see. Spin's habit included: of a
//! string holding several statements, only the first runs, and no error
//! says so; callers pass one statement at a time.

use std::path::Path;

use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{Connection, OpenFlags};
use shared::db::{DbError, Dialect, Row, Sql, Value};

/// A connection to a SQLite database file, as [`Sql`].
///
/// Foreign keys are enforced on it (`PRAGMA foreign_keys = ON`, as on every
/// connection the app opens): SQLite leaves them off by default, and without
/// them a deleted user's sessions would stay.
#[derive(Debug)]
pub struct SqliteFile {
    conn: Connection,
}

impl SqliteFile {
    /// Opens the database file at `path`, creating an empty database when
    /// there is none (what a migration wants).
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Self::open_with(path, OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens the database file at `path` only if it exists: for a tool that
    /// works on the app's data (the purge), a mistyped path must be an error,
    /// not a new empty database.
    pub fn open_existing(path: &Path) -> Result<Self, DbError> {
        Self::open_with(path, OpenFlags::empty())
    }

    /// Read-write, one thread per connection (no mutex). Not
    /// `SQLITE_OPEN_URI`, rusqlite's default: the path is taken literally,
    /// as the crate documentation promises, so `file:…?mode=…` is a file name.
    fn open_with(path: &Path, create: OpenFlags) -> Result<Self, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | create;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(&e))?;
        let file = Self { conn };
        file.execute("PRAGMA foreign_keys = ON", &[])?;
        Ok(file)
    }
}

impl Sql for SqliteFile {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        // As Spin does: a statement that returns rows (a `PRAGMA` setting,
        // say) is no error, its rows are read and dropped.
        self.query(sql, params).map(|_| ())
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let params = params
            .iter()
            .map(to_sqlite)
            .collect::<Result<Vec<_>, _>>()?;
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| classify(&e))?;
        let columns = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| classify(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| classify(&e))? {
            let values = (0..columns)
                .map(|i| row.get_ref(i).map(from_sqlite))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| classify(&e))?;
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// rusqlite's error, classified from its text as the app classifies Spin's
/// `Io(<the same text>)`.
fn classify(e: &rusqlite::Error) -> DbError {
    DbError::classify_sqlite_error(&e.to_string())
}

/// A parameter as SQLite stores it, as Spin's adapter in `shared::spin`
/// converts it: booleans as 0 or 1, an unsigned integer only if it fits
/// SQLite's signed 64 bits.
fn to_sqlite(value: &Value) -> Result<SqliteValue, DbError> {
    Ok(match value {
        Value::Null => SqliteValue::Null,
        Value::Bool(b) => SqliteValue::Integer(i64::from(*b)),
        Value::Int(i) => SqliteValue::Integer(*i),
        Value::UInt(u) => SqliteValue::Integer(
            i64::try_from(*u)
                .map_err(|_| DbError::Query(format!("{u} does not fit SQLite's integer")))?,
        ),
        Value::Float(f) => SqliteValue::Real(*f),
        Value::Str(s) => SqliteValue::Text(s.clone()),
        Value::Bytes(b) => SqliteValue::Blob(b.clone()),
    })
}

/// A column as the app reads it from Spin: SQLite's five storage classes.
/// Text that is not UTF-8 (SQLite stores what it is given) comes back as
/// bytes rather than failing the row; `Row::string` then refuses it.
fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bytes(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

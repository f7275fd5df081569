//! The store a test app runs on, and store-neutral access to its rows.
//!
//! The suite runs once per store: `API_TEST_STORE=mysql` (the default) starts
//! every app on the shared MariaDB test database, `API_TEST_STORE=sqlite` on
//! Spin's embedded SQLite database `default`, a file in a state directory of
//! the app's own ([`Database`]). Tests assert rows the same way on both
//! ([`crate::TestApp::query`], [`crate::TestApp::execute`]): SQL both
//! databases accept, positional `?` parameters given as a tuple
//! ([`DbParams`]), rows read as a scalar or a tuple ([`FromDbRow`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_async::prelude::Queryable;

/// Where a test app keeps its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A MySQL server (`db_url = mysql://...`): the shared test database.
    MySql,
    /// Spin's SQLite database `default` (`db_url` empty): a file in the
    /// app's state directory.
    Sqlite,
}

impl Store {
    /// The store of this run: `API_TEST_STORE` (`mysql`, the default, or `sqlite`).
    pub fn from_env() -> Store {
        match std::env::var("API_TEST_STORE").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("mysql") => Store::MySql,
            Ok("sqlite") => Store::Sqlite,
            Ok(other) => panic!("API_TEST_STORE must be mysql or sqlite, not {other:?}"),
        }
    }
}

/// The records an app runs on. Clone it into [`crate::AppOptions::database`]
/// to start another app on the same records, as a second process of one
/// deployment would run.
#[derive(Clone, Debug)]
pub enum Database {
    /// A database on a MySQL server, by its URL (the app's `db_url`).
    MySql(String),
    /// The SQLite database `default` in this state directory (the app's
    /// `db_url` is empty). The directory is removed when the last app on it
    /// is dropped.
    Sqlite(Arc<tempfile::TempDir>),
}

impl Database {
    /// A fresh, empty state directory for an app on SQLite.
    pub fn new_sqlite() -> std::io::Result<Database> {
        let dir = tempfile::Builder::new()
            .prefix("spin-api-test-")
            .tempdir()?;
        Ok(Database::Sqlite(Arc::new(dir)))
    }

    /// The store these records are in.
    pub fn store(&self) -> Store {
        match self {
            Database::MySql(_) => Store::MySql,
            Database::Sqlite(_) => Store::Sqlite,
        }
    }

    /// The app's `db_url`: the MySQL URL, or empty for SQLite.
    pub fn db_url(&self) -> &str {
        match self {
            Database::MySql(url) => url,
            Database::Sqlite(_) => "",
        }
    }

    /// The host's state directory (SQLite only).
    pub fn state_dir(&self) -> Option<&Path> {
        match self {
            Database::MySql(_) => None,
            Database::Sqlite(dir) => Some(dir.path()),
        }
    }

    /// The SQLite file Spin keeps the database `default` in (SQLite only).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.state_dir().map(|dir| dir.join("sqlite_db.db"))
    }
}

/// A value in a row or a parameter, whichever database it comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DbValue {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes: a BLOB, or on MySQL any string or decimal (the wire does not
    /// tell them apart; [`FromDbValue`] reads them as the type asked for).
    Bytes(Vec<u8>),
}

impl From<mysql_async::Value> for DbValue {
    fn from(value: mysql_async::Value) -> DbValue {
        use mysql_async::Value;
        match value {
            Value::NULL => DbValue::Null,
            Value::Int(i) => DbValue::Int(i),
            Value::UInt(u) => DbValue::Int(i64::try_from(u).expect("an unsigned value within i64")),
            Value::Float(f) => DbValue::Real(f.into()),
            Value::Double(f) => DbValue::Real(f),
            Value::Bytes(bytes) => DbValue::Bytes(bytes),
            other => panic!("no test reads a MySQL {other:?}"),
        }
    }
}

impl From<DbValue> for mysql_async::Value {
    fn from(value: DbValue) -> mysql_async::Value {
        match value {
            DbValue::Null => mysql_async::Value::NULL,
            DbValue::Int(i) => mysql_async::Value::Int(i),
            DbValue::Real(f) => mysql_async::Value::Double(f),
            DbValue::Text(s) => mysql_async::Value::Bytes(s.into_bytes()),
            DbValue::Bytes(b) => mysql_async::Value::Bytes(b),
        }
    }
}

impl From<rusqlite::types::Value> for DbValue {
    fn from(value: rusqlite::types::Value) -> DbValue {
        use rusqlite::types::Value;
        match value {
            Value::Null => DbValue::Null,
            Value::Integer(i) => DbValue::Int(i),
            Value::Real(f) => DbValue::Real(f),
            Value::Text(s) => DbValue::Text(s),
            Value::Blob(b) => DbValue::Bytes(b),
        }
    }
}

impl From<DbValue> for rusqlite::types::Value {
    fn from(value: DbValue) -> rusqlite::types::Value {
        use rusqlite::types::Value;
        match value {
            DbValue::Null => Value::Null,
            DbValue::Int(i) => Value::Integer(i),
            DbValue::Real(f) => Value::Real(f),
            DbValue::Text(s) => Value::Text(s),
            DbValue::Bytes(b) => Value::Blob(b),
        }
    }
}

/// A query parameter: strings, byte strings, integers, and `Option`s of
/// them (`None` is NULL), by value or by reference.
pub trait ToDbValue {
    /// The parameter's value.
    fn to_db_value(&self) -> DbValue;
}

impl<T: ToDbValue + ?Sized> ToDbValue for &T {
    fn to_db_value(&self) -> DbValue {
        (**self).to_db_value()
    }
}

impl ToDbValue for str {
    fn to_db_value(&self) -> DbValue {
        DbValue::Text(self.to_owned())
    }
}

impl ToDbValue for String {
    fn to_db_value(&self) -> DbValue {
        DbValue::Text(self.clone())
    }
}

impl ToDbValue for [u8] {
    fn to_db_value(&self) -> DbValue {
        DbValue::Bytes(self.to_vec())
    }
}

impl ToDbValue for Vec<u8> {
    fn to_db_value(&self) -> DbValue {
        DbValue::Bytes(self.clone())
    }
}

impl<T: ToDbValue> ToDbValue for Option<T> {
    fn to_db_value(&self) -> DbValue {
        self.as_ref().map_or(DbValue::Null, ToDbValue::to_db_value)
    }
}

macro_rules! int_params {
    ($($t:ty),*) => {$(
        impl ToDbValue for $t {
            fn to_db_value(&self) -> DbValue {
                DbValue::Int(i64::try_from(*self).expect("an integer parameter within i64"))
            }
        }
    )*};
}
int_params!(i32, i64, u32, u64, usize);

/// The positional parameters of a statement: `()` or a tuple of
/// [`ToDbValue`]s, one per `?`.
pub trait DbParams {
    /// The values, in order.
    fn to_db_values(&self) -> Vec<DbValue>;
}

/// A value of a result column read as a Rust type.
pub trait FromDbValue: Sized {
    /// `value` as `Self`, or why not.
    fn from_db_value(value: DbValue) -> Result<Self, String>;
}

impl FromDbValue for DbValue {
    fn from_db_value(value: DbValue) -> Result<Self, String> {
        Ok(value)
    }
}

impl FromDbValue for String {
    fn from_db_value(value: DbValue) -> Result<Self, String> {
        match value {
            DbValue::Text(s) => Ok(s),
            DbValue::Bytes(b) => String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}")),
            other => Err(format!("{other:?} is not text")),
        }
    }
}

impl FromDbValue for Vec<u8> {
    fn from_db_value(value: DbValue) -> Result<Self, String> {
        match value {
            DbValue::Bytes(b) => Ok(b),
            DbValue::Text(s) => Ok(s.into_bytes()),
            other => Err(format!("{other:?} is not bytes")),
        }
    }
}

impl FromDbValue for f64 {
    fn from_db_value(value: DbValue) -> Result<Self, String> {
        match value {
            DbValue::Real(f) => Ok(f),
            DbValue::Int(i) => Ok(i as f64),
            other => Err(format!("{other:?} is not a number")),
        }
    }
}

impl<T: FromDbValue> FromDbValue for Option<T> {
    fn from_db_value(value: DbValue) -> Result<Self, String> {
        match value {
            DbValue::Null => Ok(None),
            value => T::from_db_value(value).map(Some),
        }
    }
}

/// An integer from an integer value, or from the decimal digits MySQL sends
/// for a DECIMAL (such as `SUM` of integers).
fn integer(value: DbValue) -> Result<i64, String> {
    match value {
        DbValue::Int(i) => Ok(i),
        DbValue::Bytes(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(&b))),
        DbValue::Text(s) => s.parse().map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("{other:?} is not an integer")),
    }
}

macro_rules! int_columns {
    ($($t:ty),*) => {$(
        impl FromDbValue for $t {
            fn from_db_value(value: DbValue) -> Result<Self, String> {
                let i = integer(value)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range of {}", stringify!($t)))
            }
        }
    )*};
}
int_columns!(i32, i64, u32, u64);

/// A result row read as a Rust value: one column as a [`FromDbValue`], or
/// a tuple of them, one per column.
pub trait FromDbRow: Sized {
    /// `row` as `Self`, or why not.
    fn from_db_row(row: Vec<DbValue>) -> Result<Self, String>;
}

impl<T: FromDbValue> FromDbRow for T {
    fn from_db_row(row: Vec<DbValue>) -> Result<Self, String> {
        let [value]: [DbValue; 1] = row
            .try_into()
            .map_err(|row: Vec<DbValue>| format!("one column expected, not {}", row.len()))?;
        T::from_db_value(value)
    }
}

macro_rules! tuples {
    ($(($($t:ident),+))*) => {$(
        #[allow(non_snake_case)]
        impl<$($t: ToDbValue),+> DbParams for ($($t,)+) {
            fn to_db_values(&self) -> Vec<DbValue> {
                let ($($t,)+) = self;
                vec![$($t.to_db_value()),+]
            }
        }

        impl<$($t: FromDbValue),+> FromDbRow for ($($t,)+) {
            fn from_db_row(row: Vec<DbValue>) -> Result<Self, String> {
                const WIDTH: usize = [$(stringify!($t)),+].len();
                if row.len() != WIDTH {
                    return Err(format!("{WIDTH} columns expected, not {}", row.len()));
                }
                let mut values = row.into_iter();
                Ok(($($t::from_db_value(values.next().expect("counted"))?,)+))
            }
        }
    )*};
}
tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
}

impl DbParams for () {
    fn to_db_values(&self) -> Vec<DbValue> {
        Vec::new()
    }
}

/// A connection on a test app's records, for asserting rows.
pub(crate) enum TestDb {
    /// A pool on the app's MySQL database.
    MySql(mysql_async::Pool),
    /// The app's SQLite file, opened per statement beside the host's own
    /// connections: each statement sees every write committed before it,
    /// and waits (busy timeout) while the app holds the write lock.
    Sqlite(PathBuf),
}

impl TestDb {
    /// A handle on `database`.
    pub(crate) fn open(database: &Database) -> anyhow::Result<TestDb> {
        Ok(match database {
            Database::MySql(url) => {
                TestDb::MySql(mysql_async::Pool::new(mysql_async::Opts::from_url(url)?))
            }
            Database::Sqlite(_) => TestDb::Sqlite(
                database
                    .sqlite_file()
                    .expect("a SQLite database has a file"),
            ),
        })
    }

    /// Runs `sql` and returns its rows as raw values.
    pub(crate) async fn rows(
        &self,
        sql: &str,
        params: Vec<DbValue>,
    ) -> anyhow::Result<Vec<Vec<DbValue>>> {
        match self {
            TestDb::MySql(pool) => {
                let mut conn = pool.get_conn().await?;
                let params: Vec<mysql_async::Value> = params.into_iter().map(Into::into).collect();
                let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
                Ok(rows
                    .into_iter()
                    .map(|row| row.unwrap().into_iter().map(DbValue::from).collect())
                    .collect())
            }
            TestDb::Sqlite(file) => {
                let (file, sql) = (file.clone(), sql.to_owned());
                tokio::task::spawn_blocking(move || {
                    let conn = sqlite_connection(&file)?;
                    let mut stmt = conn.prepare(&sql)?;
                    let width = stmt.column_count();
                    let params = params.into_iter().map(rusqlite::types::Value::from);
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(params), |row| {
                            (0..width)
                                .map(|i| row.get::<_, rusqlite::types::Value>(i).map(DbValue::from))
                                .collect::<rusqlite::Result<Vec<_>>>()
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(rows)
                })
                .await?
            }
        }
    }

    /// Runs a statement that returns no rows; returns the rows it changed.
    pub(crate) async fn execute(&self, sql: &str, params: Vec<DbValue>) -> anyhow::Result<u64> {
        match self {
            TestDb::MySql(pool) => {
                let mut conn = pool.get_conn().await?;
                let params: Vec<mysql_async::Value> = params.into_iter().map(Into::into).collect();
                conn.exec_drop(sql, params).await?;
                Ok(conn.affected_rows())
            }
            TestDb::Sqlite(file) => {
                let (file, sql) = (file.clone(), sql.to_owned());
                tokio::task::spawn_blocking(move || {
                    let conn = sqlite_connection(&file)?;
                    let params = params.into_iter().map(rusqlite::types::Value::from);
                    let changed = conn.execute(&sql, rusqlite::params_from_iter(params))?;
                    Ok(changed as u64)
                })
                .await?
            }
        }
    }

    /// Closes the handle.
    pub(crate) async fn close(self) {
        if let TestDb::MySql(pool) = self {
            let _ = pool.disconnect().await;
        }
    }
}

/// A connection to an existing SQLite file as the app opens one: foreign
/// keys enforced, waiting up to 5 s for a writer (rusqlite's default).
fn sqlite_connection(file: &Path) -> anyhow::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| anyhow::anyhow!("opening {}: {e}", file.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    Ok(conn)
}

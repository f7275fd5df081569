//! The SQL port: Spin's MySQL and SQLite interfaces as repositories see them.
//!
//! Spin runs every statement as a prepared statement on one connection per
//! `open`, returns no affected-row count from `execute` (hence
//! [`Sql::affected_rows`]), and reads only integers, floats, strings, binary
//! and NULL — so the schema stores times as epoch milliseconds and money as
//! integer cents. Repositories write SQL both databases accept and ask the
//! connection's [`Dialect`] for the few words that differ.

use std::cell::Cell;

use crate::error::ApiError;

pub mod sqlite;

/// Which SQL a connection speaks: the few places where MySQL and SQLite
/// differ, so a repository writes each statement once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL or MariaDB through Spin's MySQL interface (`db_url = mysql://…`).
    MySql,
    /// Spin's SQLite database `default` (no `db_url`).
    Sqlite,
}

impl Dialect {
    /// The SQL function that counts the rows the previous statement on this
    /// connection changed.
    pub fn row_count(self) -> &'static str {
        match self {
            Dialect::MySql => "ROW_COUNT()",
            Dialect::Sqlite => "changes()",
        }
    }

    /// What a `SELECT` ends with to read the latest committed rows and keep
    /// them from changing until the transaction ends (a shared lock).
    /// Nothing on SQLite, for the same reason as [`Dialect::for_update`].
    pub fn share_lock(self) -> &'static str {
        match self {
            Dialect::MySql => " LOCK IN SHARE MODE",
            Dialect::Sqlite => "",
        }
    }

    /// What a `SELECT` ends with to lock the rows it reads until the
    /// transaction ends. Nothing on SQLite: its transactions start with
    /// `BEGIN IMMEDIATE`, which already holds the database's only write lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::MySql => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// A unique index under both of its names: MySQL names the index in a
/// duplicate-key error, SQLite the columns (`UNIQUE constraint failed:
/// users.email`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueKey {
    /// The index's name (`uq_users_email`, or `PRIMARY`).
    pub index: &'static str,
    /// Its columns as SQLite reports them: `table.column`, joined by `, `.
    pub columns: &'static str,
}

/// A statement parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean (stored as TINYINT).
    Bool(bool),
    /// Any signed integer column.
    Int(i64),
    /// Any unsigned integer column.
    UInt(u64),
    /// FLOAT or DOUBLE.
    Float(f64),
    /// CHAR, VARCHAR, TEXT.
    Str(String),
    /// BINARY, VARBINARY, BLOB.
    Bytes(Vec<u8>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Str(v.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::UInt(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Why a database call failed, classified once, where the driver's error
/// is read ([`DbError::classify_server_error`] in the Spin adapter): callers
/// match on variants, never on message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The server could not be reached, refused the connection, or went away.
    Unavailable(String),
    /// A unique index refused the row (MySQL error 1062, SQLite
    /// `SQLITE_CONSTRAINT_UNIQUE` / `_PRIMARYKEY`).
    Duplicate {
        /// MySQL: the index, without any table prefix (`uq_users_email`,
        /// `PRIMARY`); SQLite: its columns (`users.email`).
        index: String,
    },
    /// A foreign key refused the change (MySQL errors 1451, 1452, SQLite
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`).
    ForeignKey {
        /// The constraint (`fk_uploads_user`), or empty when the server did
        /// not name it (SQLite never does).
        constraint: String,
    },
    /// InnoDB chose this transaction as a deadlock victim and rolled it back (1213).
    Deadlock,
    /// A lock was not granted in time: a MySQL row lock (1205), or SQLite's
    /// database lock still held by another connection after the busy
    /// timeout (`SQLITE_BUSY`, "database is locked").
    LockWaitTimeout,
    /// Any other failure of a statement.
    Query(String),
    /// A column could not be read as the expected type.
    Decode(String),
}

impl DbError {
    /// True when the unique index `key` refused the row.
    pub fn is_duplicate(&self, key: &UniqueKey) -> bool {
        matches!(self, DbError::Duplicate { index } if index == key.index || index == key.columns)
    }

    /// True when the foreign key `constraint` refused the change, or a
    /// foreign key the database did not name (SQLite): callers ask only
    /// where a single foreign key can refuse the statement.
    pub fn is_foreign_key(&self, constraint: &str) -> bool {
        matches!(self, DbError::ForeignKey { constraint: c } if c == constraint || c.is_empty())
    }

    /// True for failures that a fresh transaction may not meet again.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Deadlock | DbError::LockWaitTimeout)
    }

    /// Classifies the text of a failed statement as Spin's MySQL host reports
    /// it (`ServerError { code: 1062, message: "Duplicate entry … for key
    /// 'uq_users_email'" … }`, or a driver I/O error). The one place that reads
    /// database error text.
    pub fn classify_server_error(text: &str) -> DbError {
        let code = text
            .split("code: ")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse::<u16>().ok());
        match code {
            Some(1062) => DbError::Duplicate {
                index: quoted_after(text, "for key '", '\'')
                    .map(|key| key.rsplit('.').next().unwrap_or(key).to_string())
                    .unwrap_or_default(),
            },
            Some(1451 | 1452) => DbError::ForeignKey {
                constraint: quoted_after(text, "CONSTRAINT `", '`')
                    .unwrap_or_default()
                    .to_string(),
            },
            Some(1213) => DbError::Deadlock,
            Some(1205) => DbError::LockWaitTimeout,
            // Server gone away / lost connection, and driver-level I/O errors.
            Some(2006 | 2013) => DbError::Unavailable(text.to_string()),
            _ if ["Io(", "ConnectionClosed", "broken pipe", "Connection reset"]
                .iter()
                .any(|needle| text.contains(needle)) =>
            {
                DbError::Unavailable(text.to_string())
            }
            _ => DbError::Query(text.to_string()),
        }
    }
}

impl DbError {
    /// Classifies the text of a failed statement as Spin's SQLite host
    /// reports it: every failure is `Io(<rusqlite's message>)`, and the
    /// message is SQLite's own (`UNIQUE constraint failed: users.email`,
    /// `FOREIGN KEY constraint failed`, `database is locked`).
    pub fn classify_sqlite_error(text: &str) -> DbError {
        if let Some((_, columns)) = text.split_once("UNIQUE constraint failed: ") {
            return DbError::Duplicate {
                index: columns.trim().to_string(),
            };
        }
        if text.contains("FOREIGN KEY constraint failed") {
            return DbError::ForeignKey {
                constraint: String::new(),
            };
        }
        if text.contains("database is locked") || text.contains("database table is locked") {
            return DbError::LockWaitTimeout;
        }
        if [
            "unable to open database",
            "disk I/O error",
            "database disk image is malformed",
        ]
        .iter()
        .any(|needle| text.contains(needle))
        {
            return DbError::Unavailable(text.to_string());
        }
        DbError::Query(text.to_string())
    }
}

/// The text between `opening` and the next `close` in `text`.
fn quoted_after<'a>(text: &'a str, opening: &str, close: char) -> Option<&'a str> {
    let (_, rest) = text.split_once(opening)?;
    rest.split_once(close).map(|(quoted, _)| quoted)
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => ApiError::Unavailable(format!("database: {m}")),
            // Still contended after every retry (or never retried): logged as
            // a 500 like any statement the server refused.
            DbError::Deadlock
            | DbError::LockWaitTimeout
            | DbError::Duplicate { .. }
            | DbError::ForeignKey { .. } => ApiError::Internal(format!("database: {e:?}")),
            DbError::Query(m) | DbError::Decode(m) => ApiError::Internal(format!("database: {m}")),
        }
    }
}

/// Why the work inside a transaction stopped: a database failure (which
/// [`Sql::transaction_retrying`] retries when it is transient), a decision of
/// the work itself, or a state the work saw that a fresh transaction may cure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxError {
    /// A statement failed.
    Db(DbError),
    /// The work refused (or failed) with an API error; never retried.
    Api(ApiError),
    /// The work found a state that only a concurrent transaction in flight
    /// can explain (e.g. a row it waited on vanished); retried like a deadlock.
    Retry(&'static str),
}

impl TxError {
    fn is_transient(&self) -> bool {
        match self {
            TxError::Db(e) => e.is_transient(),
            TxError::Retry(_) => true,
            TxError::Api(_) => false,
        }
    }
}

impl From<DbError> for TxError {
    fn from(e: DbError) -> Self {
        TxError::Db(e)
    }
}

impl From<ApiError> for TxError {
    fn from(e: ApiError) -> Self {
        TxError::Api(e)
    }
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => e.into(),
            TxError::Api(e) => e,
            TxError::Retry(why) => ApiError::Internal(format!("database: {why} after retries")),
        }
    }
}

/// One result row; columns are read by position, in the SELECT's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Decode(format!("no column {i}")))
    }

    /// Column `i` as a signed integer.
    pub fn i64(&self, i: usize) -> Result<i64, DbError> {
        match self.at(i)? {
            Value::Int(v) => Ok(*v),
            Value::UInt(v) => {
                i64::try_from(*v).map_err(|_| DbError::Decode(format!("column {i} overflows i64")))
            }
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(DbError::Decode(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }

    /// Column `i` as an unsigned integer.
    pub fn u64(&self, i: usize) -> Result<u64, DbError> {
        match self.at(i)? {
            Value::UInt(v) => Ok(*v),
            Value::Int(v) => {
                u64::try_from(*v).map_err(|_| DbError::Decode(format!("column {i} is negative")))
            }
            other => Err(DbError::Decode(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }

    /// Column `i` as a boolean (TINYINT 0/1).
    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        match self.at(i)? {
            Value::Bool(b) => Ok(*b),
            Value::Int(v) => Ok(*v != 0),
            Value::UInt(v) => Ok(*v != 0),
            other => Err(DbError::Decode(format!(
                "column {i}: expected boolean, got {other:?}"
            ))),
        }
    }

    /// Column `i` as text.
    pub fn string(&self, i: usize) -> Result<String, DbError> {
        match self.at(i)? {
            Value::Str(s) => Ok(s.clone()),
            Value::Bytes(b) => String::from_utf8(b.clone())
                .map_err(|_| DbError::Decode(format!("column {i} is not UTF-8"))),
            other => Err(DbError::Decode(format!(
                "column {i}: expected text, got {other:?}"
            ))),
        }
    }

    /// Column `i` as text, or `None` for NULL.
    pub fn opt_string(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.string(i).map(Some),
        }
    }

    /// Column `i` as a signed integer, or `None` for NULL.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }

    /// Column `i` as bytes.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.at(i)? {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Str(s) => Ok(s.clone().into_bytes()),
            other => Err(DbError::Decode(format!(
                "column {i}: expected bytes, got {other:?}"
            ))),
        }
    }
}

/// A connection to the database, opened lazily by the adapter on first use so
/// a request that never touches MySQL never pays for a connection.
pub trait Sql {
    /// The SQL this connection speaks. MySQL unless the adapter says otherwise.
    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    /// Runs a statement that returns no rows.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError>;

    /// Runs a query and returns all its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// A trivial round trip, for the health check.
    fn ping(&self) -> Result<(), DbError> {
        self.query("SELECT 1", &[]).map(|_| ())
    }

    /// Rows changed by the previous statement on this connection. Spin's
    /// `execute` does not report it, but `SELECT ROW_COUNT()` (MySQL; seen
    /// on Spin 4.0.2 with MariaDB 10.11) or `SELECT changes()` (SQLite) on
    /// the same connection does.
    fn affected_rows(&self) -> Result<u64, DbError> {
        let function = self.dialect().row_count();
        let rows = self.query(&format!("SELECT {function}"), &[])?;
        let count = rows
            .first()
            .ok_or_else(|| DbError::Decode(format!("{function} returned no row")))?
            .i64(0)?;
        // ROW_COUNT() is -1 after a statement that changes nothing by nature (e.g. SELECT).
        Ok(count.max(0) as u64)
    }

    /// Runs `work` in one transaction. On MySQL: `SET autocommit = 0` (MySQL
    /// refuses `START TRANSACTION` as a prepared statement; this works on
    /// both MySQL and MariaDB), then, if `work` succeeds, `SET autocommit =
    /// 1`, which commits; if it fails, `ROLLBACK`. On SQLite: `BEGIN
    /// IMMEDIATE` (the write lock at once, so two transactions never both
    /// read and then fail to upgrade), `COMMIT` or `ROLLBACK`.
    /// Should the component die half-way, the connection closes and the
    /// database rolls back, so a transaction is never left half-applied.
    fn transaction<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        Self: Sized,
        F: FnOnce(&Self) -> Result<T, TxError>,
    {
        transaction_once(self, work).map_err(ApiError::from)
    }

    /// Like [`Sql::transaction`], but a transaction that ends transiently —
    /// a deadlock victim, a lock-wait timeout, or [`TxError::Retry`] — is run
    /// again from the start, up to `attempts` times in all. `work` must be
    /// safe to repeat: everything it did was rolled back.
    fn transaction_retrying<T, F>(&self, attempts: u32, mut work: F) -> Result<T, ApiError>
    where
        Self: Sized,
        F: FnMut(&Self) -> Result<T, TxError>,
    {
        let mut attempt = 1;
        loop {
            match transaction_once(self, &mut work) {
                Err(e) if attempt < attempts && e.is_transient() => attempt += 1,
                other => return other.map_err(ApiError::from),
            }
        }
    }
}

/// A read replica of the database (`db_read_url`), or none. A repository
/// holds one beside its primary connection and sends through
/// [`Replica::reads`] only the reads that tolerate replication lag.
pub struct Replica<S> {
    sql: Option<S>,
    /// Set once the replica could not be reached: the rest of the request
    /// reads the primary instead of paying for a second failed connection.
    lost: Cell<bool>,
}

impl<S: Sql> Replica<S> {
    /// A replica reached through `sql`, or none (every read on the primary).
    pub fn new(sql: Option<S>) -> Self {
        Self {
            sql,
            lost: Cell::new(false),
        }
    }

    /// No replica: every read goes to the primary.
    pub fn none() -> Self {
        Self::new(None)
    }

    /// The replica's connection, if there is one.
    pub fn sql(&self) -> Option<&S> {
        self.sql.as_ref()
    }

    /// The connection for reads that tolerate replication lag: the replica
    /// while it answers, `primary` when there is none or it cannot be reached.
    pub fn reads<'r, P: Sql>(&'r self, primary: &'r P) -> ReadSide<'r, P, S> {
        ReadSide {
            primary,
            replica: self,
        }
    }
}

/// [`Sql`] for reads that tolerate replication lag (see [`Replica::reads`]).
/// A query goes to the replica, and to the primary when the replica cannot
/// be reached (any other failure is the query's own and is returned);
/// anything that writes goes to the primary, though no caller should write
/// through a read side.
pub struct ReadSide<'r, P, S> {
    primary: &'r P,
    replica: &'r Replica<S>,
}

impl<P: Sql, S: Sql> Sql for ReadSide<'_, P, S> {
    fn dialect(&self) -> Dialect {
        self.primary.dialect()
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.primary.execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        if let Some(replica) = self
            .replica
            .sql
            .as_ref()
            .filter(|_| !self.replica.lost.get())
        {
            match replica.query(sql, params) {
                Err(DbError::Unavailable(why)) => {
                    crate::log::warn(format!(
                        "database replica unreachable, reading from the primary: {why}"
                    ));
                    self.replica.lost.set(true);
                }
                answered => return answered,
            }
        }
        self.primary.query(sql, params)
    }
}

impl<T: Sql + ?Sized> Sql for &T {
    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        (**self).execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        (**self).query(sql, params)
    }
}

fn transaction_once<S, T, F>(sql: &S, work: F) -> Result<T, TxError>
where
    S: Sql,
    F: FnOnce(&S) -> Result<T, TxError>,
{
    match sql.dialect() {
        Dialect::MySql => mysql_transaction(sql, work),
        Dialect::Sqlite => sqlite_transaction(sql, work),
    }
}

fn sqlite_transaction<S, T, F>(sql: &S, work: F) -> Result<T, TxError>
where
    S: Sql,
    F: FnOnce(&S) -> Result<T, TxError>,
{
    sql.execute("BEGIN IMMEDIATE", &[])?;
    let outcome = work(sql).and_then(|value| {
        sql.execute("COMMIT", &[])?;
        Ok(value)
    });
    if outcome.is_err() {
        // Also after a failed COMMIT (SQLITE_BUSY leaves the transaction
        // open): the connection must not carry it into the next statement.
        // "no transaction is active" after a commit that did end it is harmless.
        let _ = sql.execute("ROLLBACK", &[]);
    }
    outcome
}

fn mysql_transaction<S, T, F>(sql: &S, work: F) -> Result<T, TxError>
where
    S: Sql,
    F: FnOnce(&S) -> Result<T, TxError>,
{
    sql.execute("SET autocommit = 0", &[])?;
    match work(sql) {
        Ok(value) => {
            // Turning autocommit back on commits the open transaction (MySQL
            // and MariaDB both list it among the implicit commits, and report
            // a failed commit as its error): one round trip instead of
            // `COMMIT` and then this.
            sql.execute("SET autocommit = 1", &[])?;
            Ok(value)
        }
        Err(err) => {
            // `ROLLBACK` first: turning autocommit back on would commit.
            if let Err(e) = sql.execute("ROLLBACK", &[]) {
                crate::log::warn(format!("rollback failed: {e:?}"));
            }
            let _ = sql.execute("SET autocommit = 1", &[]);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests;

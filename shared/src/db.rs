//! The SQL port: Spin's MySQL interface as repositories see it.
//!
//! Spin runs every statement as a prepared statement on one connection per
//! `open`, returns no affected-row count from `execute` (hence
//! [`Sql::affected_rows`]), and reads only integers, floats, strings, binary
//! and NULL — so the schema stores times as epoch milliseconds and money as
//! integer cents.

use crate::error::ApiError;

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

/// Why a database call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The server could not be reached or refused the connection.
    Unavailable(String),
    /// A unique index refused the row (MySQL error 1062); holds the server's
    /// message, which names the index.
    Duplicate(String),
    /// Any other failure of a statement.
    Query(String),
    /// A column could not be read as the expected type.
    Decode(String),
}

impl DbError {
    /// True when a unique index named `index` refused the row.
    pub fn is_duplicate_of(&self, index: &str) -> bool {
        matches!(self, DbError::Duplicate(msg) if msg.contains(index))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => ApiError::Unavailable(format!("database: {m}")),
            DbError::Duplicate(m) | DbError::Query(m) | DbError::Decode(m) => {
                ApiError::Internal(format!("database: {m}"))
            }
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
    /// Runs a statement that returns no rows.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError>;

    /// Runs a query and returns all its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;

    /// A trivial round trip, for the health check.
    fn ping(&self) -> Result<(), DbError> {
        self.query("SELECT 1", &[]).map(|_| ())
    }

    /// Rows changed by the previous statement on this connection. Spin's
    /// `execute` does not report it, but `SELECT ROW_COUNT()` on the same
    /// connection does (seen on Spin 4.0.2 with MariaDB 10.11).
    fn affected_rows(&self) -> Result<u64, DbError> {
        let rows = self.query("SELECT ROW_COUNT()", &[])?;
        let count = rows
            .first()
            .ok_or_else(|| DbError::Decode("ROW_COUNT() returned no row".into()))?
            .i64(0)?;
        // ROW_COUNT() is -1 after a statement that changes nothing by nature (e.g. SELECT).
        Ok(count.max(0) as u64)
    }

    /// Runs `work` in a transaction: `SET autocommit = 0` (MySQL refuses
    /// `START TRANSACTION` as a prepared statement; this works on both MySQL
    /// and MariaDB), then `COMMIT` if `work` succeeds or `ROLLBACK` if it fails.
    /// Should the component die half-way, the connection closes and the server
    /// rolls back, so a transaction is never left half-applied.
    fn transaction<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        Self: Sized,
        F: FnOnce(&Self) -> Result<T, ApiError>,
    {
        self.execute("SET autocommit = 0", &[])?;
        match work(self) {
            Ok(value) => {
                self.execute("COMMIT", &[])?;
                self.execute("SET autocommit = 1", &[])?;
                Ok(value)
            }
            Err(err) => {
                if let Err(e) = self.execute("ROLLBACK", &[]) {
                    eprintln!("rollback failed: {e:?}");
                }
                let _ = self.execute("SET autocommit = 1", &[]);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_columns_read_across_signedness() {
        let row = Row(vec![Value::UInt(5), Value::Int(-1), Value::Int(1)]);
        assert_eq!(row.i64(0).unwrap(), 5);
        assert!(row.u64(1).is_err());
        assert!(row.bool(2).unwrap());
    }

    #[test]
    fn duplicate_error_names_its_index() {
        let e = DbError::Duplicate("Duplicate entry 'a' for key 'uq_users_email'".into());
        assert!(e.is_duplicate_of("uq_users_email"));
        assert!(!e.is_duplicate_of("uq_products_sku"));
    }

    #[test]
    fn unreachable_database_maps_to_503() {
        let e: ApiError = DbError::Unavailable("refused".into()).into();
        assert_eq!(e.status(), 503);
    }
}

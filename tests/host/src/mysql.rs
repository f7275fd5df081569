//! `fermyon:spin/mysql@2.0.0` with Spin 4.0.2's behaviour
//! (`crates/factor-outbound-mysql/src/{client,host}.rs`): a new connection
//! per `open`, prepared statements, Spin's parameter and column type mapping
//! and its error variants.

use std::time::{Duration, Instant};

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::{FromValue, Queryable as _};
use mysql_async::{from_value_opt, Conn, Opts, OptsBuilder};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::mysql;
use crate::bindings::fermyon::spin::rdbms_types::{
    Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::state::HostState;

/// How long `open` may take; an unreachable server must fail with
/// `connection-failed`, not hang the request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Spin's cap on a buffered result (`MAX_HOST_BUFFERED_BYTES`).
const MAX_RESULT_BYTES: usize = 128 << 20;

/// An open connection, owned by the guest's `connection` resource. Dropping
/// it closes the socket, so a transaction left open is rolled back by the
/// server, as on Spin.
pub struct MysqlConnection {
    conn: Conn,
}

impl mysql::Host for HostState {}

impl crate::bindings::fermyon::spin::rdbms_types::Host for HostState {}

impl mysql::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<mysql::Connection>, Error>> {
        if !self.component.allowed_hosts.allows_url(&address, "mysql") {
            tracing::warn!(
                component = %self.component.id,
                "mysql address not permitted by allowed_outbound_hosts"
            );
            // Spin quotes the address whole; a guest's error (and so its log
            // line) must not carry the password, so the host leaves it out.
            return Ok(Err(Error::ConnectionFailed(format!(
                "address {} is not permitted",
                without_password(&address)
            ))));
        }
        let started = Instant::now();
        let connected = connect(&address).await;
        self.metrics.mysql_call(
            &self.component.id,
            "open",
            connected.is_ok(),
            started.elapsed(),
        );
        let conn = match connected {
            Ok(c) => c,
            Err(e) => return Ok(Err(Error::ConnectionFailed(e))),
        };
        Ok(Ok(self.table.push(MysqlConnection { conn })?))
    }

    async fn query(
        &mut self,
        connection: Resource<mysql::Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        let started = Instant::now();
        let result = query(conn, &statement, params).await;
        self.metrics.mysql_call(
            &self.component.id,
            "query",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result)
    }

    async fn execute(
        &mut self,
        connection: Resource<mysql::Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let conn = &mut self.table.get_mut(&connection)?.conn;
        let params = mysql_async::Params::Positional(params.into_iter().map(to_sql).collect());
        let started = Instant::now();
        let result = conn.exec_batch(statement.as_str(), [params]).await;
        self.metrics.mysql_call(
            &self.component.id,
            "execute",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result.map_err(|e| Error::QueryFailed(format!("{e:?}"))))
    }

    async fn drop(&mut self, connection: Resource<mysql::Connection>) -> wasmtime::Result<()> {
        // Dropping the `Conn` disconnects (mysql_async spawns the goodbye).
        self.table.delete(connection)?;
        Ok(())
    }
}

/// The address with its password (if any) taken out; an address that is not
/// a URL is not quoted at all.
fn without_password(address: &str) -> String {
    match url::Url::parse(address) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only a URL that cannot have a password refuses this.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

/// Opens one connection the way Spin builds its options: the URL as given,
/// with `ssl-mode`/`sslmode` taken out of the query string.
///
/// Errors are messages with their causes (`{:#}`), never `{:?}` of an
/// `anyhow::Error`: with `RUST_BACKTRACE=1` in the host's environment that
/// carries a backtrace of the host's internals into the guest's error text,
/// and from there into its log line.
async fn connect(address: &str) -> Result<Conn, String> {
    let opts = build_opts(address).map_err(|e| format!("{e:#}"))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("{:#}", anyhow::Error::from(e))),
        Err(_) => Err(format!(
            "timed out after {CONNECT_TIMEOUT:?} connecting to the MySQL server"
        )),
    }
}

fn build_opts(address: &str) -> anyhow::Result<Opts> {
    let url = url::Url::parse(address)?;
    let is_ssl = |k: &str| ["ssl-mode", "sslmode"].contains(&k.to_lowercase().as_str());
    let use_ssl = url
        .query_pairs()
        .any(|(k, v)| is_ssl(&k) && v.to_lowercase() != "disabled");
    if use_ssl {
        anyhow::bail!("ssl-mode requested, but the test host's MySQL client has no TLS support");
    }
    let rest: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_ssl(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut cleaned = url.clone();
    cleaned.set_query(None);
    if !rest.is_empty() {
        cleaned.query_pairs_mut().extend_pairs(rest);
    }
    let opts = Opts::from_url(cleaned.as_str())?;
    Ok(OptsBuilder::from_opts(opts).into())
}

async fn query(
    conn: &mut Conn,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<RowSet, Error> {
    let params = mysql_async::Params::Positional(params.into_iter().map(to_sql).collect());
    let mut result = conn
        .exec_iter(statement, params)
        .await
        .map_err(|e| Error::QueryFailed(format!("{e:?}")))?;
    let columns: Vec<Column> = result
        .columns()
        .map(|cols| cols.iter().map(convert_column).collect())
        .unwrap_or_default();
    let raw_rows: Vec<mysql_async::Row> = result
        .collect()
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    let mut rows = Vec::with_capacity(raw_rows.len());
    let mut bytes = 0usize;
    for row in raw_rows {
        let row = convert_row(row, &columns)?;
        bytes += row.iter().map(value_size).sum::<usize>();
        if bytes > MAX_RESULT_BYTES {
            return Err(Error::Other(format!(
                "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
            )));
        }
        rows.push(row);
    }
    Ok(RowSet { columns, rows })
}

fn value_size(v: &DbValue) -> usize {
    std::mem::size_of::<DbValue>()
        + match v {
            DbValue::Str(s) => s.len(),
            DbValue::Binary(b) => b.len(),
            _ => 0,
        }
}

fn to_sql(value: ParameterValue) -> mysql_async::Value {
    use mysql_async::Value;
    match value {
        ParameterValue::Boolean(v) => Value::from(v),
        ParameterValue::Int8(v) => Value::from(v),
        ParameterValue::Int16(v) => Value::from(v),
        ParameterValue::Int32(v) => Value::from(v),
        ParameterValue::Int64(v) => Value::from(v),
        ParameterValue::Uint8(v) => Value::from(v),
        ParameterValue::Uint16(v) => Value::from(v),
        ParameterValue::Uint32(v) => Value::from(v),
        ParameterValue::Uint64(v) => Value::from(v),
        ParameterValue::Floating32(v) => Value::from(v),
        ParameterValue::Floating64(v) => Value::from(v),
        ParameterValue::Str(v) => Value::from(v),
        ParameterValue::Binary(v) => Value::from(v),
        ParameterValue::DbNull => Value::NULL,
    }
}

fn convert_column(column: &mysql_async::Column) -> Column {
    Column {
        name: column.name_str().into_owned(),
        data_type: convert_data_type(column),
    }
}

/// Spin's mapping: numeric and character column types map by type and the
/// UNSIGNED / BINARY flags; everything else (DATETIME, TIMESTAMP, DATE,
/// DECIMAL, JSON, …) is `other`, which then fails to read.
fn convert_data_type(column: &mysql_async::Column) -> DbDataType {
    use ColumnType::*;
    let ty = column.column_type();
    let flags = column.flags();
    let signed = !flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = flags.contains(ColumnFlags::BINARY_FLAG);
    let numeric = matches!(
        ty,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_DECIMAL
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_YEAR
    );
    let character = matches!(
        ty,
        MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR | MYSQL_TYPE_BLOB
    );
    if numeric {
        match (ty, signed) {
            (MYSQL_TYPE_DOUBLE, _) => DbDataType::Floating64,
            (MYSQL_TYPE_FLOAT, _) => DbDataType::Floating32,
            (MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG, true) => DbDataType::Int32,
            (MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG, false) => DbDataType::Uint32,
            (MYSQL_TYPE_LONGLONG, true) => DbDataType::Int64,
            (MYSQL_TYPE_LONGLONG, false) => DbDataType::Uint64,
            (MYSQL_TYPE_SHORT, true) => DbDataType::Int16,
            (MYSQL_TYPE_SHORT, false) => DbDataType::Uint16,
            (MYSQL_TYPE_TINY, true) => DbDataType::Int8,
            (MYSQL_TYPE_TINY, false) => DbDataType::Uint8,
            _ => DbDataType::Other,
        }
    } else if character {
        match (ty, binary) {
            (MYSQL_TYPE_BLOB, false) => DbDataType::Str, // TEXT
            (MYSQL_TYPE_BLOB, true) => DbDataType::Binary,
            (MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING, true) => DbDataType::Binary,
            (MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING, false) => DbDataType::Str,
            _ => DbDataType::Other,
        }
    } else {
        DbDataType::Other
    }
}

fn convert_row(mut row: mysql_async::Row, columns: &[Column]) -> Result<Vec<DbValue>, Error> {
    let mut out = Vec::with_capacity(row.len());
    for index in 0..row.len() {
        let value = match (row.take::<mysql_async::Value, _>(index), columns.get(index)) {
            (None, _) => DbValue::DbNull,
            (_, None) => return Err(Error::Other(format!("Can't get column at index {index}"))),
            (Some(mysql_async::Value::NULL), _) => DbValue::DbNull,
            (Some(v), Some(c)) => convert_value(v, c)?,
        };
        out.push(value);
    }
    Ok(out)
}

fn convert_value(value: mysql_async::Value, column: &Column) -> Result<DbValue, Error> {
    Ok(match column.data_type {
        DbDataType::Binary => DbValue::Binary(to::<Vec<u8>>(value)?),
        DbDataType::Boolean => DbValue::Boolean(to::<bool>(value)?),
        DbDataType::Floating32 => DbValue::Floating32(to::<f32>(value)?),
        DbDataType::Floating64 => DbValue::Floating64(to::<f64>(value)?),
        DbDataType::Int8 => DbValue::Int8(to::<i8>(value)?),
        DbDataType::Int16 => DbValue::Int16(to::<i16>(value)?),
        DbDataType::Int32 => DbValue::Int32(to::<i32>(value)?),
        DbDataType::Int64 => DbValue::Int64(to::<i64>(value)?),
        DbDataType::Str => DbValue::Str(to::<String>(value)?),
        DbDataType::Uint8 => DbValue::Uint8(to::<u8>(value)?),
        DbDataType::Uint16 => DbValue::Uint16(to::<u16>(value)?),
        DbDataType::Uint32 => DbValue::Uint32(to::<u32>(value)?),
        DbDataType::Uint64 => DbValue::Uint64(to::<u64>(value)?),
        DbDataType::Other => {
            return Err(Error::ValueConversionFailed(format!(
                "Cannot convert value {:?} in column {} data type {:?}",
                value, column.name, column.data_type
            )))
        }
    })
}

fn to<T: FromValue>(value: mysql_async::Value) -> Result<T, Error> {
    from_value_opt::<T>(value).map_err(|e| Error::ValueConversionFailed(e.to_string()))
}

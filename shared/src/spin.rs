//! Spin adapters: the only code that talks to `spin_sdk` (compiled for wasm only).
//!
//! * [`serve`] — the body of every component's `#[http_component]` entry point.
//! * [`SpinKv`] — [`KeyValue`] over a Spin key-value store (`wasi:keyvalue`), opened lazily.
//! * [`SpinDb`] — [`Sql`] over the store `db_url` names: [`SpinSqlite`]
//!   (Spin's SQLite `default`, when it is empty) or [`SpinSql`] (Spin's MySQL
//!   interface), either connected lazily, once per request.
//! * [`optional_variable`] — Spin variables, the lookup behind [`crate::config::Vars`].
//! * [`SpinHttp`] — [`OutboundHttp`] over Spin's outbound HTTP (`wasi:http`).

use std::cell::OnceCell;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Method as SpinMethod};
use spin_sdk::mysql::{self, Connection, ParameterValue};
use spin_sdk::sqlite;
use spin_sdk::wit::wasi::keyvalue::{batch, store};

use crate::config::Store;
use crate::context::RequestContext;
use crate::db::{DbError, Dialect, Row, Sql, Value};
use crate::error::ApiError;
use crate::http::{Method, Request, Response};
use crate::kv::{KeyValue, KvError};
use crate::outbound::{OutboundHttp, Reply};

/// Reads the request (refusing a body over `body_limit` bytes: by its declared
/// `Content-Length` before reading, or as soon as the stream grows past it, so
/// memory stays bounded), runs `app`, and turns its result into Spin's response.
/// `app` never sees a `spin_sdk` type, and no error ever reaches the SDK (which
/// would answer 500 with the error's debug text).
pub async fn serve<F>(
    component: &'static str,
    incoming: IncomingRequest,
    body_limit: usize,
    app: F,
) -> spin_sdk::http::Response
where
    F: FnOnce(&RequestContext, &Request) -> Result<Response, ApiError>,
{
    serve_admitted(
        component,
        incoming,
        body_limit,
        |_, _| Ok(()),
        |ctx, req, ()| app(ctx, req),
    )
    .await
}

/// As [`serve`], with a first step `admit` that sees only the request head
/// (method, path, query, headers; the body still empty) and runs before any
/// of the body is read: an error from it is answered at once and the body is
/// never read (hyper then closes the connection rather than drain it). What
/// `admit` returns (a verified caller, the configuration, an open store) is
/// handed to `app` with the full request. Uploads use it so that a client
/// without a valid token cannot make the component read megabytes.
pub async fn serve_admitted<A, T, F>(
    component: &'static str,
    incoming: IncomingRequest,
    body_limit: usize,
    admit: A,
    app: F,
) -> spin_sdk::http::Response
where
    A: FnOnce(&RequestContext, &Request) -> Result<T, ApiError>,
    F: FnOnce(&RequestContext, &Request, T) -> Result<Response, ApiError>,
{
    let mut request = request_head(&incoming);
    let ctx = RequestContext::new(&request, crate::time::now_ms()).for_component(component);
    let result = match admit(&ctx, &request) {
        Ok(admitted) => match read_body(incoming, &request, body_limit).await {
            Ok(body) => {
                request.body = body;
                app(&ctx, &request, admitted)
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    into_spin_response(ctx.finish(result))
}

fn request_head(incoming: &IncomingRequest) -> Request {
    let method = match incoming.method() {
        SpinMethod::Get => Method::Get,
        SpinMethod::Head => Method::Head,
        SpinMethod::Post => Method::Post,
        SpinMethod::Put => Method::Put,
        SpinMethod::Patch => Method::Patch,
        SpinMethod::Delete => Method::Delete,
        SpinMethod::Options => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let path_and_query = incoming.path_with_query().unwrap_or_else(|| "/".into());
    let mut request = Request::new(method, &path_and_query);
    request.headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    request
}

async fn read_body(
    incoming: IncomingRequest,
    head: &Request,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        limit: limit as u64,
    };
    if let Some(declared) = head.header("content-length") {
        let declared: u64 = declared
            .trim()
            .parse()
            .map_err(|_| ApiError::BadRequest("Content-Length is not a number.".into()))?;
        if declared > limit as u64 {
            return Err(too_large());
        }
    }
    let mut body = Vec::new();
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("Could not read the body: {e:?}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn into_spin_response(response: Response) -> spin_sdk::http::Response {
    let mut builder = spin_sdk::http::Response::builder();
    builder.status(response.status);
    for (name, value) in &response.headers {
        builder.header(name.as_str(), value.as_str());
    }
    builder.body(response.body);
    builder.build()
}

/// The value of a Spin variable that may be unset or empty.
pub fn optional_variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.is_empty())
}

/// A key-value store, opened on first use: requests that never touch the
/// store never pay for opening it.
///
/// It goes through `wasi:keyvalue` (store and batch), which Spin offers over
/// the same stores and grants as `fermyon:spin/key-value`, because only that
/// interface can read several keys in one call: an authenticated read of
/// cached data is then one round trip where the backend batches (the test
/// host's Redis: one `MGET`; Spin's default SQLite store: one query).
///
/// Spin 4.0.2's Redis backend does not: its `get-many` sends `KEYS` with the
/// keys as arguments (`crates/key-value-redis/src/store.rs`), which Redis
/// refuses for two keys or more. A refused batch costs one wasted round trip
/// and then each key is read on its own, so the answer is right either way;
/// [`SpinKv::batching`] turns batches off where that trip is known to be
/// wasted (the `kv_batch_reads` variable; `deploy/kubernetes` sets it).
/// A one-key "batch" is never sent: on that backend it would be `KEYS
/// <key>`, a pattern scan of the whole keyspace.
pub struct SpinKv {
    label: &'static str,
    bucket: OnceCell<Result<store::Bucket, KvError>>,
    batches: bool,
}

impl SpinKv {
    /// The store named `label` in the component's `key_value_stores`,
    /// reading several keys in one batch.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            bucket: OnceCell::new(),
            batches: true,
        }
    }

    /// This store, sending batched reads only when `batches` is true
    /// (otherwise [`KeyValue::get_many`] reads key by key).
    pub fn batching(self, batches: bool) -> Self {
        Self { batches, ..self }
    }

    fn bucket(&self) -> Result<&store::Bucket, KvError> {
        self.bucket
            .get_or_init(|| {
                store::open(self.label).map_err(|e| {
                    KvError(crate::redact::redact(&format!(
                        "open {}: {e:?}",
                        self.label
                    )))
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl KeyValue for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket()?.get(key).map_err(kv_error)
    }
    fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if !self.batches || keys.len() < 2 {
            return keys.iter().map(|key| self.get(key)).collect();
        }
        let asked: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let mut answered = batch::get_many(self.bucket()?, &asked).map_err(kv_error)?;
        // Spin's backends may leave absent keys out and need not keep the
        // order asked (its SQLite store does neither), so values are matched
        // by key. A batch is a handful of keys: a scan beats hashing them.
        Ok(keys
            .iter()
            .map(|key| {
                answered
                    .iter()
                    .position(|(k, _)| k == key)
                    .and_then(|i| answered.swap_remove(i).1)
            })
            .collect())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.bucket()?.set(key, value).map_err(kv_error)
    }
    fn delete(&self, key: &str) -> Result<(), KvError> {
        self.bucket()?.delete(key).map_err(kv_error)
    }
}

/// A store error as text, without any credential a backend message may quote.
fn kv_error(e: store::Error) -> KvError {
    KvError(crate::redact::redact(&format!("{e:?}")))
}

/// A MySQL connection through Spin, opened on first use and reused for the
/// rest of the request (Spin opens a new server connection per `open`, the
/// dominant cost of a database route, so a request opens at most one).
pub struct SpinSql {
    address: String,
    connection: OnceCell<Connection>,
}

impl SpinSql {
    /// A lazy connection to `address` (a `mysql://` URL listed in the
    /// component's `allowed_outbound_hosts`).
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            connection: OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&Connection, DbError> {
        if let Some(c) = self.connection.get() {
            return Ok(c);
        }
        let connection = Connection::open(&self.address).map_err(map_error)?;
        Ok(self.connection.get_or_init(|| connection))
    }
}

/// Spin's error as a [`DbError`]. Every message is redacted first: Spin
/// 4.0.2 answers an address outside `allowed_outbound_hosts` with
/// `address <the whole db_url> is not permitted`, password included, and
/// these messages end up in log lines.
fn map_error(e: mysql::MysqlError) -> DbError {
    use mysql::MysqlError as E;
    let e = match e {
        E::ConnectionFailed(m) => E::ConnectionFailed(crate::redact::redact(&m)),
        E::QueryFailed(m) => E::QueryFailed(crate::redact::redact(&m)),
        E::BadParameter(m) => E::BadParameter(crate::redact::redact(&m)),
        E::Other(m) => E::Other(crate::redact::redact(&m)),
        E::ValueConversionFailed(m) => E::ValueConversionFailed(crate::redact::redact(&m)),
    };
    match e {
        E::ConnectionFailed(m) => DbError::Unavailable(m),
        E::QueryFailed(m) => DbError::classify_server_error(&m),
        E::BadParameter(m) | E::Other(m) => DbError::Query(m),
        E::ValueConversionFailed(m) => DbError::Decode(m),
    }
}

fn to_param(value: &Value) -> ParameterValue {
    match value {
        Value::Null => ParameterValue::DbNull,
        Value::Bool(b) => ParameterValue::Boolean(*b),
        Value::Int(i) => ParameterValue::Int64(*i),
        Value::UInt(u) => ParameterValue::Uint64(*u),
        Value::Float(f) => ParameterValue::Floating64(*f),
        Value::Str(s) => ParameterValue::Str(s.clone()),
        Value::Bytes(b) => ParameterValue::Binary(b.clone()),
    }
}

fn from_db(value: mysql::DbValue) -> Result<Value, DbError> {
    use mysql::DbValue as V;
    Ok(match value {
        V::Boolean(b) => Value::Bool(b),
        V::Int8(i) => Value::Int(i.into()),
        V::Int16(i) => Value::Int(i.into()),
        V::Int32(i) => Value::Int(i.into()),
        V::Int64(i) => Value::Int(i),
        V::Uint8(u) => Value::UInt(u.into()),
        V::Uint16(u) => Value::UInt(u.into()),
        V::Uint32(u) => Value::UInt(u.into()),
        V::Uint64(u) => Value::UInt(u),
        V::Floating32(f) => Value::Float(f.into()),
        V::Floating64(f) => Value::Float(f),
        V::Str(s) => Value::Str(s),
        V::Binary(b) => Value::Bytes(b),
        V::DbNull => Value::Null,
        V::Unsupported => return Err(DbError::Decode("unsupported column type".into())),
    })
}

impl Sql for SpinSql {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        let params: Vec<_> = params.iter().map(to_param).collect();
        self.connection()?.execute(sql, &params).map_err(map_error)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let params: Vec<_> = params.iter().map(to_param).collect();
        let set = self.connection()?.query(sql, &params).map_err(map_error)?;
        set.rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(from_db)
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }
}

/// The database a component's repositories use: the store `db_url` names
/// ([`Store`]). Repositories are written once, over [`Sql`], and ask its
/// [`Dialect`] where the two differ.
pub enum SpinDb {
    /// Spin's SQLite database `default` (no `db_url`).
    Sqlite(SpinSqlite),
    /// A MySQL server (`db_url = mysql://…`).
    MySql(SpinSql),
}

impl SpinDb {
    /// The primary database of `store`, and its read replica when it has one
    /// (MySQL with `db_read_url`). Nothing is opened until first used.
    pub fn open(store: &Store) -> (SpinDb, Option<SpinDb>) {
        match store {
            Store::Sqlite => (SpinDb::Sqlite(SpinSqlite::new("default")), None),
            Store::MySql { url, read_url } => (
                SpinDb::MySql(SpinSql::new(url.clone())),
                read_url.clone().map(|url| SpinDb::MySql(SpinSql::new(url))),
            ),
        }
    }

    fn sql(&self) -> &dyn Sql {
        match self {
            SpinDb::Sqlite(db) => db,
            SpinDb::MySql(db) => db,
        }
    }
}

impl Sql for SpinDb {
    fn dialect(&self) -> Dialect {
        self.sql().dialect()
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.sql().execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.sql().query(sql, params)
    }
}

/// A SQLite database through Spin, opened on first use and kept for the
/// rest of the request (each `open` is a connection of its own on Spin, so
/// a transaction never mixes with another request's statements).
///
/// Opening costs two in-process statements before the request's own:
/// `PRAGMA foreign_keys = ON` (SQLite forgets it per connection, and the
/// schema's cascades need it) and `PRAGMA user_version`, which applies the
/// schema on a fresh database ([`crate::db::sqlite::migrate`]).
pub struct SpinSqlite {
    label: &'static str,
    connection: OnceCell<SqliteConnection>,
}

impl SpinSqlite {
    /// A lazy connection to the database `label` (listed in the component's
    /// `sqlite_databases`).
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            connection: OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&SqliteConnection, DbError> {
        if let Some(c) = self.connection.get() {
            return Ok(c);
        }
        let connection =
            SqliteConnection(sqlite::Connection::open(self.label).map_err(map_sqlite_error)?);
        connection.execute("PRAGMA foreign_keys = ON", &[])?;
        let applied = crate::db::sqlite::migrate(&connection)?;
        if !applied.is_empty() {
            crate::log::warn(format!(
                "sqlite: applied the schema migrations {}",
                applied.join(", ")
            ));
        }
        Ok(self.connection.get_or_init(|| connection))
    }
}

impl Sql for SpinSqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.connection()?.execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.connection()?.query(sql, params)
    }
}

/// An open SQLite connection, as [`Sql`].
struct SqliteConnection(sqlite::Connection);

impl Sql for SqliteConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), DbError> {
        self.query(sql, params).map(|_| ())
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let params = params
            .iter()
            .map(to_sqlite)
            .collect::<Result<Vec<_>, _>>()?;
        let result = self.0.execute(sql, &params).map_err(map_sqlite_error)?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| Row(row.values.into_iter().map(from_sqlite).collect()))
            .collect())
    }
}

/// Spin's SQLite error as a [`DbError`]. A database the component may not
/// open, or one that is full, is an outage of the store (503) that the
/// log line names; every statement failure is `Io(<SQLite's message>)`.
fn map_sqlite_error(e: sqlite::Error) -> DbError {
    use sqlite::Error as E;
    match e {
        E::NoSuchDatabase => {
            DbError::Unavailable("sqlite: no such database (the label needs runtime config)".into())
        }
        E::AccessDenied => DbError::Unavailable(
            "sqlite: access denied (the component's sqlite_databases lacks the label)".into(),
        ),
        E::InvalidConnection => DbError::Unavailable("sqlite: invalid connection".into()),
        E::DatabaseFull => DbError::Unavailable("sqlite: database full".into()),
        E::Io(message) => DbError::classify_sqlite_error(&message),
    }
}

fn to_sqlite(value: &Value) -> Result<sqlite::Value, DbError> {
    Ok(match value {
        Value::Null => sqlite::Value::Null,
        Value::Bool(b) => sqlite::Value::Integer(i64::from(*b)),
        Value::Int(i) => sqlite::Value::Integer(*i),
        Value::UInt(u) => sqlite::Value::Integer(
            i64::try_from(*u)
                .map_err(|_| DbError::Query(format!("{u} does not fit SQLite's integer")))?,
        ),
        Value::Float(f) => sqlite::Value::Real(*f),
        Value::Str(s) => sqlite::Value::Text(s.clone()),
        Value::Bytes(b) => sqlite::Value::Blob(b.clone()),
    })
}

fn from_sqlite(value: sqlite::Value) -> Value {
    match value {
        sqlite::Value::Integer(i) => Value::Int(i),
        sqlite::Value::Real(f) => Value::Float(f),
        sqlite::Value::Text(s) => Value::Str(s),
        sqlite::Value::Blob(b) => Value::Bytes(b),
        sqlite::Value::Null => Value::Null,
    }
}

/// [`OutboundHttp`] over Spin's outbound HTTP (`allowed_outbound_hosts` must
/// name each origin). Handlers are synchronous and nothing else is in flight
/// in an instance, so each send is driven to completion where it is made.
pub struct SpinHttp;

impl SpinHttp {
    fn request(
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> spin_sdk::http::Request {
        let mut request = spin_sdk::http::Request::builder();
        request
            // Every method as itself: a method this list lacks must never
            // turn into another (a DELETE sent as a GET would "succeed").
            .method(match method {
                Method::Get => SpinMethod::Get,
                Method::Head => SpinMethod::Head,
                Method::Post => SpinMethod::Post,
                Method::Put => SpinMethod::Put,
                Method::Patch => SpinMethod::Patch,
                Method::Delete => SpinMethod::Delete,
                Method::Options => SpinMethod::Options,
                Method::Other(name) => SpinMethod::Other(name),
            })
            .uri(url)
            .body(body.to_vec());
        for (name, value) in headers {
            request.header(*name, value.as_str());
        }
        request.build()
    }
}

impl OutboundHttp for SpinHttp {
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let response: spin_sdk::http::Response = spin_sdk::http::run(spin_sdk::http::send(
            Self::request(method, url, headers, body),
        ))
        .map_err(|e| format!("{e}"))?;
        Ok(Reply {
            status: *response.status(),
            headers: response
                .headers()
                .filter_map(|(n, v)| Some((n.to_ascii_lowercase(), v.as_str()?.to_string())))
                .collect(),
            body: response.into_body(),
        })
    }

    fn get_streamed(
        &self,
        url: &str,
        chunk: &mut dyn FnMut(&[u8]),
    ) -> Result<Result<(), u16>, String> {
        spin_sdk::http::run(async {
            let response: spin_sdk::http::IncomingResponse =
                spin_sdk::http::send(Self::request(Method::Get, url, &[], &[]))
                    .await
                    .map_err(|e| format!("{e}"))?;
            if response.status() != 200 {
                return Ok(Err(response.status()));
            }
            let mut body = response.take_body_stream();
            while let Some(piece) = body.next().await {
                chunk(&piece.map_err(|e| format!("{e:?}"))?);
            }
            Ok(Ok(()))
        })
    }
}

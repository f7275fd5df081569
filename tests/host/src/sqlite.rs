//! `fermyon:spin/sqlite@2.0.0` with Spin 4.0.2's behaviour
//! (`crates/factor-sqlite/src/host.rs`, `crates/sqlite-inproc/src/lib.rs`,
//! `crates/sqlite/src/lib.rs`), and `spin up --sqlite`
//! (`crates/trigger/src/cli/sqlite_statements.rs`).
//!
//! Only the label `default` exists, as on Spin without a runtime config: the
//! file `<state dir>/sqlite_db.db`. Every `open` gets its own connection,
//! opened lazily by its first statement, so each request (each instance) has
//! its own transactions; concurrent writers wait for the database's lock
//! (rusqlite's busy timeout, 5 s) rather than failing at once. Errors are
//! `io(<the rusqlite error's text>)`, the texts Spin hands a guest, because
//! the same rusqlite and bundled SQLite produce them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use rusqlite::types::ValueRef;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::sqlite as wit;
use crate::bindings::fermyon::spin::sqlite::{Error, QueryResult, RowResult, Value};
use crate::state::HostState;

/// The label that always exists (Spin adds it when no runtime config
/// defines it).
pub const DEFAULT_LABEL: &str = "default";

/// The default database's file name in the state directory.
const DEFAULT_DB_FILE: &str = "sqlite_db.db";

/// Spin's cap on a buffered result (`MAX_HOST_BUFFERED_BYTES`).
const MAX_RESULT_BYTES: usize = 128 << 20;

/// Spin's connection table holds this many per instance
/// (`spin_resource_table::Table::new(256)`).
const MAX_CONNECTIONS: usize = 256;

/// What a guest sees when Spin's blocking task panicked (its `JoinError`
/// under the context "internal runtime error"). Spin panics on a TEXT value
/// that is not UTF-8; its connection's mutex is then poisoned, and every
/// later statement on that connection fails the same way.
const INTERNAL_ERROR: &str = "internal runtime error";

/// The app's databases by label: Spin's connection creators.
#[derive(Debug, Clone)]
pub struct Databases {
    default_file: Arc<Path>,
}

impl Databases {
    /// The databases of an app whose state directory is `state_dir` (an
    /// absolute path, as Spin makes it).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            default_file: Arc::from(state_dir.join(DEFAULT_DB_FILE)),
        }
    }

    /// `<state dir>/sqlite_db.db`.
    pub fn default_file(&self) -> &Path {
        &self.default_file
    }

    /// Whether a database has this label (Spin's runtime config defines
    /// none but `default` here).
    pub fn exists(&self, label: &str) -> bool {
        label == DEFAULT_LABEL
    }

    /// A new connection to `label`, not yet opened; `None` for an unknown
    /// label. As Spin's creator does, it creates the file's directory every
    /// time, and a failure there is `invalid-connection`.
    pub async fn connect(&self, label: &str) -> Option<Result<SqliteConnection, Error>> {
        if !self.exists(label) {
            return None;
        }
        let file = self.default_file.clone();
        if let Some(parent) = file.parent() {
            if let Err(e) = tokio::fs::create_dir_all(parent).await {
                tracing::warn!(
                    "failed to create sqlite database directory '{}': {e}",
                    parent.display()
                );
                return Some(Err(Error::InvalidConnection));
            }
        }
        Some(Ok(SqliteConnection {
            inner: Arc::new(Mutex::new(Lazy {
                file,
                conn: None,
                failed: false,
            })),
        }))
    }
}

/// A guest's open connection (the `connection` resource). The rusqlite
/// connection behind it is opened by the first statement; dropping the
/// resource closes it, and SQLite rolls back a transaction left open.
/// Clones share the connection (one is held while a statement runs).
#[derive(Clone)]
pub struct SqliteConnection {
    inner: Arc<Mutex<Lazy>>,
}

struct Lazy {
    file: Arc<Path>,
    conn: Option<rusqlite::Connection>,
    /// Spin would have panicked on this connection (see [`INTERNAL_ERROR`]).
    failed: bool,
}

impl Lazy {
    /// The rusqlite connection, opened on first use as Spin's
    /// `InProcConnection::db_connection` does: rusqlite's defaults (5 s busy
    /// timeout) and an authorizer that refuses `ATTACH` of a file.
    fn connection(&mut self) -> Result<&rusqlite::Connection, Error> {
        match &mut self.conn {
            Some(conn) => Ok(conn),
            slot @ None => {
                let conn = rusqlite::Connection::open(&self.file).map_err(io)?;
                conn.authorizer(Some(|ctx: rusqlite::hooks::AuthContext<'_>| {
                    use rusqlite::hooks::{AuthAction, Authorization};
                    match ctx.action {
                        // A temporary ("") or in-memory database may still be
                        // attached; any file may not.
                        AuthAction::Attach { filename } if !matches!(filename, "" | ":memory:") => {
                            Authorization::Deny
                        }
                        _ => Authorization::Allow,
                    }
                }));
                Ok(slot.insert(conn))
            }
        }
    }
}

impl SqliteConnection {
    /// Runs one statement and buffers its rows, on a blocking thread (SQLite
    /// blocks, also while it waits for another connection's write lock).
    pub async fn execute(
        &self,
        statement: String,
        params: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(mut lazy) = inner.lock() else {
                return Err(Error::Io(INTERNAL_ERROR.to_owned()));
            };
            if lazy.failed {
                return Err(Error::Io(INTERNAL_ERROR.to_owned()));
            }
            let result = query(lazy.connection()?, &statement, params, MAX_RESULT_BYTES);
            match result {
                Ok(rows) => Ok(rows),
                Err(Failure::Error(e)) => Err(e),
                Err(Failure::NotUtf8) => {
                    tracing::warn!(
                        "sqlite: a TEXT value is not UTF-8; Spin 4.0.2 panics here, \
                         and this connection fails from now on"
                    );
                    lazy.failed = true;
                    Err(Error::Io(INTERNAL_ERROR.to_owned()))
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(Error::Io(INTERNAL_ERROR.to_owned())))
    }

    /// Runs a script of statements (`spin up --sqlite @file`), with Spin's
    /// contexts on a failure.
    pub async fn execute_batch(&self, sql: String) -> anyhow::Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut lazy = inner
                .lock()
                .map_err(|_| anyhow::anyhow!("the connection's lock is poisoned"))?;
            let conn = lazy.connection()?;
            conn.execute_batch(&sql)
                .context("failed to execute batch statements")
        })
        .await?
        .context("failed to spawn blocking task")
    }
}

/// Why a statement failed.
enum Failure {
    /// What Spin hands the guest.
    Error(Error),
    /// Where Spin panics: a TEXT value that is not UTF-8.
    NotUtf8,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

fn io(e: rusqlite::Error) -> Error {
    Error::Io(e.to_string())
}

/// Spin's `execute_query`: a cached prepared statement, every row buffered,
/// failing once the values pass `max_bytes` (counted as Spin counts them).
fn query(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
    max_bytes: usize,
) -> Result<QueryResult, Failure> {
    let mut prepared = conn.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut bytes = std::mem::size_of::<QueryResult>();
    let mut rows = prepared
        .query(rusqlite::params_from_iter(params.into_iter().map(to_sql)))
        .map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let count = row.as_ref().column_count();
        let mut values = Vec::with_capacity(count);
        for index in 0..count {
            values.push(from_sql(row.get_ref(index).map_err(io)?)?);
        }
        bytes += values.iter().map(value_size).sum::<usize>();
        if bytes > max_bytes {
            return Err(Failure::Error(Error::Io(format!(
                "query result exceeds limit of {max_bytes} bytes"
            ))));
        }
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

/// Spin's `memory_size` of a value.
fn value_size(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            Value::Integer(_) | Value::Real(_) | Value::Null => 0,
        }
}

fn to_sql(value: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match value {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(i),
        Value::Real(r) => V::Real(r),
        Value::Text(t) => V::Text(t),
        Value::Blob(b) => V::Blob(b),
    }
}

fn from_sql(value: ValueRef<'_>) -> Result<Value, Failure> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => {
            Value::Text(String::from_utf8(t.to_vec()).map_err(|_| Failure::NotUtf8)?)
        }
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

/// A request's SQLite state: the app's databases and how many connections
/// the instance holds.
pub struct InstanceState {
    databases: Databases,
    open: usize,
}

impl InstanceState {
    /// No connection open yet.
    pub fn new(databases: Databases) -> Self {
        Self { databases, open: 0 }
    }
}

impl wit::Host for HostState {}

impl wit::HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<wit::Connection>, Error>> {
        // Spin checks the grant first: an ungranted label is access-denied
        // whether or not such a database exists.
        if !self.component.sqlite_databases.contains(&database) {
            tracing::warn!(
                component = %self.component.id,
                "sqlite database {database:?} is not in the component's sqlite_databases"
            );
            return Ok(Err(Error::AccessDenied));
        }
        let started = Instant::now();
        let opened = match self.sqlite.databases.connect(&database).await {
            None => Err(Error::NoSuchDatabase),
            Some(Err(e)) => Err(e),
            Some(Ok(_)) if self.sqlite.open >= MAX_CONNECTIONS => {
                Err(Error::Io("too many connections opened".to_owned()))
            }
            Some(Ok(conn)) => Ok(conn),
        };
        self.metrics.sqlite_call(
            &self.component.id,
            "open",
            opened.is_ok(),
            started.elapsed(),
        );
        match opened {
            Ok(conn) => {
                let resource = self.table.push(conn)?;
                self.sqlite.open += 1;
                Ok(Ok(resource))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    async fn execute(
        &mut self,
        connection: Resource<wit::Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let conn = self.table.get(&connection)?.clone();
        let started = Instant::now();
        let result = conn.execute(statement, parameters).await;
        self.metrics.sqlite_call(
            &self.component.id,
            "execute",
            result.is_ok(),
            started.elapsed(),
        );
        Ok(result)
    }

    async fn drop(&mut self, connection: Resource<wit::Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        self.sqlite.open = self.sqlite.open.saturating_sub(1);
        Ok(())
    }
}

/// Spin's check at load: every label a component lists must be a defined
/// database, with Spin's message naming each that is not.
pub fn check_grants<'a>(
    databases: &Databases,
    grants: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> anyhow::Result<()> {
    let errors: Vec<String> = grants
        .into_iter()
        .flat_map(|(component, labels)| {
            labels
                .iter()
                .filter(|label| !databases.exists(label))
                .map(move |label| format!("- Component {component} uses database '{label}'"))
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let prologue = [
        "One or more components use SQLite databases which are not defined.",
        "Check the spelling, or pass a runtime configuration file that defines these stores.",
        "See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration",
        "Details:",
    ];
    let lines: Vec<String> = prologue
        .into_iter()
        .map(str::to_owned)
        .chain(errors)
        .collect();
    anyhow::bail!(lines.join("\n"))
}

/// `spin up --sqlite`: each entry in order, at start, before serving. An
/// entry `@file[:label]` runs the file as a batch on `label` (`default`
/// without one; the path is relative to the working directory); any other
/// entry is one statement on `default`. Every entry gets a new connection.
/// The first failure stops the start, with Spin's messages.
pub async fn run_statements(databases: &Databases, statements: &[String]) -> anyhow::Result<()> {
    let get_database = |label: &str| {
        let label = label.to_owned();
        async move {
            databases
                .connect(&label)
                .await
                .transpose()
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed connect to database with label '{label}'"))
        }
    };
    for statement in statements {
        if let Some(config) = statement.strip_prefix('@') {
            let (file, label) = parse_file_and_label(config)?;
            let database = get_database(label).await?.with_context(|| {
                format!(
                    "based on the '@{config}' a registered database named '{label}' was expected but not found."
                )
            })?;
            let sql = std::fs::read_to_string(file).with_context(|| {
                format!("could not read file '{file}' containing sql statements")
            })?;
            database.execute_batch(sql).await.with_context(|| {
                format!("failed to execute sql against database '{label}' from file '{file}'")
            })?;
        } else {
            let Some(default) = get_database(DEFAULT_LABEL).await? else {
                return Ok(());
            };
            default
                .execute(statement.clone(), Vec::new())
                .await
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "failed to execute following sql statement against default database: '{statement}'"
                    )
                })?;
        }
    }
    Ok(())
}

/// Spin's `parse_file_and_label` for `@file[:label]` (the text after `@`).
fn parse_file_and_label(config: &str) -> anyhow::Result<(&str, &str)> {
    let config = config.trim();
    if config.is_empty() {
        anyhow::bail!("database configuration is empty in the '@{config}' sqlite statement");
    }
    let (file, label) = match config.split_once(':') {
        Some((_, label)) if label.trim().is_empty() => {
            anyhow::bail!("database label is empty in the '@{config}' sqlite statement")
        }
        Some((file, _)) if file.trim().is_empty() => {
            anyhow::bail!("file path is empty in the '@{config}' sqlite statement")
        }
        Some((file, label)) => (file.trim(), label.trim()),
        None => (config, DEFAULT_LABEL),
    };
    Ok((file, label))
}

/// The state directory as Spin resolves it: the one given, made absolute
/// against the working directory, else `.spin` beside the manifest.
pub fn state_dir(given: Option<&Path>, manifest: &Path) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => manifest
            .parent()
            .map(|p| p.join(".spin"))
            .unwrap_or_else(|| PathBuf::from(".spin")),
    };
    std::path::absolute(&dir)
        .with_context(|| format!("cannot resolve the state directory {}", dir.display()))
}

#[cfg(test)]
mod tests;

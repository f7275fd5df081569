//! Versioned schema migrations, for either database the app runs on.
//!
//! **MySQL or MariaDB** (`mysql://user:password@host:port/database`): each
//! file `migrations/NNNN_name.sql` is applied once, in order of its number,
//! and recorded in `schema_migrations`. A named lock serialises concurrent
//! runs (several test processes may start at once), and the target database
//! is created when absent.
//!
//! **SQLite** (`sqlite:PATH`, e.g. `sqlite:.spin/sqlite_db.db`, the file in
//! which `spin up` keeps the database `default`): the files of
//! `migrations/sqlite/`, applied by [`shared::db::sqlite::migrate`], the very
//! function the app runs on its first request, through [`SqliteFile`]. So a
//! file this tool migrated and one the app migrated cannot differ, and
//! either may go first: the schema version is the file's `PRAGMA
//! user_version`, and the work is one `BEGIN IMMEDIATE` transaction. The file
//! (and its directory) is created when absent.
//!
//! The SQLite URL grammar: `sqlite:` followed by the file's path, taken
//! literally (no query parameters, no percent-decoding, no `file:` URIs).
//! `sqlite://PATH` is accepted too and means the same, as in sqlx:
//! `sqlite:///srv/api.db` is the absolute `/srv/api.db`, `sqlite://api.db`
//! and `sqlite:api.db` the relative `api.db`.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

mod sqlite;

pub use sqlite::SqliteFile;

/// The migrations directory of this repository (the MySQL files; the SQLite
/// twins under `sqlite/` are embedded in `shared`).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// The database a URL names: the one place the tools read a URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A MySQL or MariaDB database, by its `mysql://` URL.
    MySql(String),
    /// A SQLite database file, by its path (`sqlite:PATH`).
    Sqlite(PathBuf),
}

impl Target {
    /// Reads `url`: `mysql://…`, or `sqlite:PATH` / `sqlite://PATH` (see the
    /// crate documentation). Anything else is refused, with the URL's
    /// credentials redacted from the message.
    pub fn parse(url: &str) -> Result<Target> {
        // `sqlite://` first: `sqlite:` alone would leave `//` in the path.
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("a sqlite: URL needs the database file's path (sqlite:PATH)");
            }
            return Ok(Target::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("mysql://") {
            return Ok(Target::MySql(url.to_string()));
        }
        bail!(
            "unsupported database URL {}: expected mysql://user:password@host:port/database or sqlite:PATH",
            shared::redact::redact(url)
        )
    }
}

/// Applies every pending migration to the database named in `url`
/// (see [`Target::parse`]) and returns the versions applied.
///
/// `dir` holds the MySQL files; a SQLite database always gets the files
/// embedded in `shared` (`migrations/sqlite/`), the ones the app applies
/// itself, so the tool can never give a file a schema the app does not expect.
pub async fn apply(url: &str, dir: &Path) -> Result<Vec<String>> {
    match Target::parse(url)? {
        Target::MySql(url) => apply_mysql(&url, dir).await,
        // Waiting for the file's write lock (up to the busy timeout) must
        // not hold a runtime thread the caller's other tasks need.
        Target::Sqlite(path) => tokio::task::spawn_blocking(move || apply_sqlite(&path))
            .await
            .context("the SQLite migration stopped")?,
    }
}

/// Applies the pending SQLite migrations to the database file at `path`,
/// creating the file and its directory when absent (before the first `spin
/// up`, `.spin/` does not exist yet). Returns the versions applied.
pub fn apply_sqlite(path: &Path) -> Result<Vec<String>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the directory {}", parent.display()))?;
    }
    let file = SqliteFile::open(path)
        .map_err(db_error)
        .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
    let applied = shared::db::sqlite::migrate(&file)
        .map_err(db_error)
        .with_context(|| format!("migrating the SQLite database {}", path.display()))?;
    Ok(applied.into_iter().map(String::from).collect())
}

/// A [`shared::db::DbError`] as an error this crate returns (it is not a
/// `std::error::Error` itself; its variants are for the app to match on).
pub fn db_error(e: shared::db::DbError) -> anyhow::Error {
    anyhow!("{e:?}")
}

async fn apply_mysql(url: &str, dir: &Path) -> Result<Vec<String>> {
    let opts = Opts::from_url(url).context("invalid database URL")?;
    let database = opts
        .db_name()
        .context("the database URL must name a database")?
        .to_string();
    if !database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("database name {database:?} must be [A-Za-z0-9_]");
    }

    let server = OptsBuilder::from_opts(opts.clone()).db_name(None::<String>);
    let mut conn = Conn::new(server)
        .await
        .context("cannot connect to the database server")?;
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .await?;
    conn.query_drop(format!("USE `{database}`")).await?;

    let locked: Option<i64> = conn
        .query_first("SELECT GET_LOCK('schema_migrations', 60)")
        .await?;
    if locked != Some(1) {
        bail!("could not take the migration lock within 60 s");
    }
    let result = apply_locked(&mut conn, dir).await;
    conn.query_drop("DO RELEASE_LOCK('schema_migrations')")
        .await?;
    conn.disconnect().await?;
    result
}

async fn apply_locked(conn: &mut Conn, dir: &Path) -> Result<Vec<String>> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version VARCHAR(255) NOT NULL PRIMARY KEY,
            applied_at_ms BIGINT NOT NULL
        )",
    )
    .await?;
    let done: Vec<String> = conn.query("SELECT version FROM schema_migrations").await?;

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();

    let mut applied = Vec::new();
    for file in files {
        let version = file
            .file_stem()
            .and_then(|s| s.to_str())
            .context("migration file name is not UTF-8")?
            .to_string();
        if done.contains(&version) {
            continue;
        }
        let sql = std::fs::read_to_string(&file)?;
        // DDL commits implicitly in MySQL, so a migration is not atomic; each
        // file is written to be re-runnable (IF NOT EXISTS) should one fail half-way.
        conn.query_drop(&sql)
            .await
            .with_context(|| format!("migration {version} failed"))?;
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000))",
            (version.as_str(),),
        )
        .await?;
        applied.push(version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;

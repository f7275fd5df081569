//! Versioned schema migrations.
//!
//! Each file `migrations/NNNN_name.sql` is applied once, in order of its
//! number, and recorded in `schema_migrations`. A named lock serialises
//! concurrent runs (several test processes may start at once), and the target
//! database is created when absent.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

/// The migrations directory of this repository.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// Applies every pending migration in `dir` to the database named in `url`
/// (`mysql://user:password@host:port/database`). Returns the versions applied.
pub async fn apply(url: &str, dir: &Path) -> Result<Vec<String>> {
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

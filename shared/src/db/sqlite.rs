//! The SQLite schema, applied by the app itself.
//!
//! A Spin user's first `spin up --build` has an empty `.spin/sqlite_db.db`
//! and nobody to run a migration tool, so the first request that opens the
//! database brings its schema up to date: [`migrate`] reads `PRAGMA
//! user_version` (migration N is applied when it is at least N) and applies
//! the embedded files of `migrations/sqlite/` that are still pending, in one
//! `BEGIN IMMEDIATE` transaction, so concurrent first requests apply them
//! once. `tools/migrate` runs the same function on a database file.

use super::{DbError, Sql};

/// The SQLite migrations, `(version, statements)`, in order: the twins of
/// the MySQL files in `migrations/`, creating a fresh schema step by step.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_users",
        include_str!("../../../migrations/sqlite/0001_users.sql"),
    ),
    (
        "0002_orders",
        include_str!("../../../migrations/sqlite/0002_orders.sql"),
    ),
    (
        "0003_uploads",
        include_str!("../../../migrations/sqlite/0003_uploads.sql"),
    ),
    (
        "0004_auth_attempts",
        include_str!("../../../migrations/sqlite/0004_auth_attempts.sql"),
    ),
    (
        "0005_purge",
        include_str!("../../../migrations/sqlite/0005_purge.sql"),
    ),
    (
        "0006_order_events",
        include_str!("../../../migrations/sqlite/0006_order_events.sql"),
    ),
    (
        "0007_upload_objects",
        include_str!("../../../migrations/sqlite/0007_upload_objects.sql"),
    ),
];

/// The `user_version` of a database with every migration applied.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// The statements of a migration file, in order: split at each `;` that
/// ends a line, `--` comments and blank lines dropped. The files hold plain
/// DDL (no triggers, no `;` inside a string or a comment), which is what
/// makes this split exact; [`tests`](self) check every embedded file.
pub fn statements(file: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in file.lines() {
        let code = match line.split_once("--") {
            Some((code, _comment)) => code,
            None => line,
        };
        let code = code.trim_end();
        if code.trim().is_empty() {
            continue;
        }
        match code.strip_suffix(';') {
            Some(last) => {
                current.push_str(last);
                let statement = current.trim();
                if !statement.is_empty() {
                    out.push(statement.to_string());
                }
                current.clear();
            }
            None => {
                current.push_str(code);
                current.push('\n');
            }
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// The database's schema version (`PRAGMA user_version`).
pub fn version(sql: &impl Sql) -> Result<i64, DbError> {
    sql.query("PRAGMA user_version", &[])?
        .first()
        .ok_or_else(|| DbError::Decode("PRAGMA user_version returned no row".into()))?
        .i64(0)
}

/// Brings the schema up to date and returns the versions it applied (none
/// when it already was). One round trip when there is nothing to do.
///
/// Also turns on write-ahead logging when it applies anything (a setting
/// the file keeps): readers then never wait for the writer, which matters
/// once several requests share the file.
pub fn migrate(sql: &impl Sql) -> Result<Vec<&'static str>, DbError> {
    let target = schema_version();
    if version(sql)? >= target {
        return Ok(Vec::new());
    }
    // Outside the transaction: SQLite refuses to change the journal mode
    // inside one. Another connection holding the file may make it fail;
    // the schema does not depend on it, so that is only logged.
    if let Err(e) = sql.query("PRAGMA journal_mode = WAL", &[]) {
        crate::log::warn(format!("sqlite: journal_mode WAL not set: {e:?}"));
    }
    sql.execute("BEGIN IMMEDIATE", &[])?;
    let applied = apply_pending(sql, target).and_then(|applied| {
        sql.execute("COMMIT", &[])?;
        Ok(applied)
    });
    if applied.is_err() {
        let _ = sql.execute("ROLLBACK", &[]);
    }
    applied
}

/// Inside the write lock: another first request may have applied them
/// while this one waited for it, so the version is read again.
fn apply_pending(sql: &impl Sql, target: i64) -> Result<Vec<&'static str>, DbError> {
    let current = version(sql)?;
    let mut applied = Vec::new();
    for (number, (name, file)) in (1..).zip(MIGRATIONS) {
        if number <= current {
            continue;
        }
        for statement in statements(file) {
            sql.execute(&statement, &[])?;
        }
        applied.push(*name);
    }
    if current < target {
        // PRAGMA takes no parameters; the version is our own integer.
        sql.execute(&format!("PRAGMA user_version = {target}"), &[])?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;

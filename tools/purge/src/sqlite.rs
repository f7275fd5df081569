//! The purge of a SQLite database file (`sqlite:PATH`): the rules and
//! batches of the crate documentation, in SQLite's words, through the
//! app's own [`Sql`] port ([`migrate::SqliteFile`], foreign keys on, so a
//! deleted session takes its refresh-token records as on MySQL).
//!
//! SQLite (as Spin and rusqlite build it) has no `DELETE … LIMIT`, so a
//! batch names its rows by rowid: `DELETE FROM t WHERE rowid IN (SELECT
//! rowid FROM t WHERE … LIMIT 1000)`. Each batch is one statement, its own
//! transaction, and holds the file's write lock only while it runs: the
//! app's requests wait for one batch at most, never for the whole purge.
//!
//! Blobs and concurrent uploads: SQLite has no row locks. An orphan is
//! deleted in a `BEGIN IMMEDIATE` transaction, which holds the database's
//! one write lock from its first statement, and which reads the blob and
//! counts its references again before deleting it. Every transaction of
//! the uploads component on SQLite is immediate too, so an upload of the
//! same content either committed before (and the count sees its reference)
//! or starts after (and finds the blob gone, so stores the bytes again):
//! the bytes of an upload are never deleted under it. The foreign key
//! `fk_uploads_blob` would refuse the delete anyway.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use migrate::{db_error, SqliteFile};
use shared::db::{Sql, Value};

use crate::{
    Report, BATCH, DELIVERED_EVENT_RETENTION_MS, IDEMPOTENCY_WINDOW_MS, PENDING_UPLOAD_GRACE_MS,
    REVOKED_SESSION_GRACE_MS,
};

const EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE rowid IN \
    (SELECT rowid FROM sessions WHERE expires_at_ms < ? LIMIT 1000)";
const REVOKED_SESSIONS: &str = "DELETE FROM sessions WHERE rowid IN \
    (SELECT rowid FROM sessions WHERE revoked_at_ms < ? LIMIT 1000)";
const OLD_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE rowid IN \
    (SELECT rowid FROM idempotency_keys WHERE created_at_ms < ? LIMIT 1000)";
const ENDED_AUTH_WINDOWS: &str = "DELETE FROM auth_attempts WHERE rowid IN \
    (SELECT rowid FROM auth_attempts WHERE window_ends_ms < ? LIMIT 1000)";
const OLD_DELIVERED_EVENTS: &str = "DELETE FROM order_events WHERE rowid IN \
    (SELECT rowid FROM order_events WHERE state = 'delivered' AND delivered_at_ms < ? LIMIT 1000)";
const EXPIRED_PENDING_UPLOADS: &str = "DELETE FROM pending_uploads WHERE rowid IN \
    (SELECT rowid FROM pending_uploads WHERE expires_at_ms < ? LIMIT 1000)";

/// Blobs no upload refers to whose bytes are in the file (`object_key` is
/// NULL: see the crate documentation), after a given sha256, in order.
/// Candidates only: each is checked again inside its own transaction.
const ORPHAN_BLOBS_AFTER: &str = "SELECT b.sha256 FROM upload_blobs b \
    LEFT JOIN uploads u ON u.sha256 = b.sha256 \
    WHERE u.id IS NULL AND b.object_key IS NULL AND b.sha256 > ? \
    ORDER BY b.sha256 LIMIT 1000";

/// Every batch statement, for the test that they all take [`BATCH`] rows.
#[cfg(test)]
pub(crate) const BATCHES: &[&str] = &[
    EXPIRED_SESSIONS,
    REVOKED_SESSIONS,
    OLD_IDEMPOTENCY_KEYS,
    ENDED_AUTH_WINDOWS,
    OLD_DELIVERED_EVENTS,
    EXPIRED_PENDING_UPLOADS,
    ORPHAN_BLOBS_AFTER,
];

/// Purges the SQLite database file at `path` as of `now_ms`.
///
/// The file must exist and carry the whole schema (`PRAGMA user_version`):
/// the purge never creates a database or a table, and a file the app never
/// opened has nothing to purge but is more likely a mistyped path.
pub fn purge_file(path: &Path, now_ms: i64) -> Result<Report> {
    let db = SqliteFile::open_existing(path)
        .map_err(db_error)
        .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
    let version = shared::db::sqlite::version(&db).map_err(db_error)?;
    let wanted = shared::db::sqlite::schema_version();
    if version < wanted {
        bail!(
            "the SQLite database {} is at schema version {version}, the purge needs {wanted}: \
             migrate it first (cargo run -p migrate -- sqlite:{0}) or let the app open it once",
            path.display()
        );
    }
    Ok(Report {
        sessions: delete_in_batches(&db, EXPIRED_SESSIONS, now_ms)?
            + delete_in_batches(&db, REVOKED_SESSIONS, now_ms - REVOKED_SESSION_GRACE_MS)?,
        idempotency_keys: delete_in_batches(
            &db,
            OLD_IDEMPOTENCY_KEYS,
            now_ms - IDEMPOTENCY_WINDOW_MS,
        )?,
        auth_attempts: delete_in_batches(&db, ENDED_AUTH_WINDOWS, now_ms)?,
        order_events: delete_in_batches(
            &db,
            OLD_DELIVERED_EVENTS,
            now_ms - DELIVERED_EVENT_RETENTION_MS,
        )?,
        pending_uploads: delete_in_batches(
            &db,
            EXPIRED_PENDING_UPLOADS,
            now_ms - PENDING_UPLOAD_GRACE_MS,
        )?,
        blobs: purge_blobs(&db)?,
        key_value_entries: 0,
    })
}

/// Runs `statement` (one batch, `?` = `before_ms`) until a batch deletes
/// fewer than [`BATCH`] rows. `changes()` counts the rows the statement
/// itself deleted, not those its cascades took (as MySQL's affected rows).
fn delete_in_batches(db: &SqliteFile, statement: &str, before_ms: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        db.execute(statement, &[Value::Int(before_ms)])
            .map_err(db_error)
            .with_context(|| format!("purge statement failed: {statement}"))?;
        let deleted = db.affected_rows().map_err(db_error)?;
        total += deleted;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

/// Deletes every blob (bytes in the file) no upload refers to, one at a
/// time under the protocol of the module documentation.
fn purge_blobs(db: &SqliteFile) -> Result<u64> {
    let mut deleted = 0;
    let mut after = String::new();
    loop {
        let candidates = db
            .query(ORPHAN_BLOBS_AFTER, &[after.as_str().into()])
            .and_then(|rows| {
                rows.iter()
                    .map(|r| r.string(0))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db_error)?;
        let Some(last) = candidates.last() else {
            return Ok(deleted);
        };
        after = last.clone();
        for sha256 in &candidates {
            if delete_blob_if_unreferenced(db, sha256)? {
                deleted += 1;
            }
        }
    }
}

fn delete_blob_if_unreferenced(db: &SqliteFile, sha256: &str) -> Result<bool> {
    let key = [Value::from(sha256)];
    db.transaction(|tx| {
        // Gone already, or its bytes moved to a bucket: not ours to delete.
        let held = tx.query(
            "SELECT 1 FROM upload_blobs WHERE sha256 = ? AND object_key IS NULL",
            &key,
        )?;
        if held.is_empty() {
            return Ok(false);
        }
        let references = tx
            .query("SELECT COUNT(*) FROM uploads WHERE sha256 = ?", &key)?
            .first()
            .map_or(Ok(0), |row| row.i64(0))?;
        if references > 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM upload_blobs WHERE sha256 = ?", &key)?;
        Ok(true)
    })
    .map_err(|e| anyhow!(e))
    .with_context(|| format!("deleting the unreferenced blob {sha256}"))
}

#[cfg(test)]
mod tests;

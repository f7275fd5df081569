//! The purge: deletes what the API keeps only for a while, from its MySQL
//! database (`mysql://…`) or its SQLite file (`sqlite:PATH`, the URL grammar
//! of [`migrate::Target`]; the SQLite side is in [`sqlite`]).
//!
//! | what | when it is dead | why it is kept until then |
//! |---|---|---|
//! | `sessions` (their `refresh_tokens` go by `ON DELETE CASCADE`) | `expires_at_ms` has passed, or it was revoked more than [`REVOKED_SESSION_GRACE_MS`] ago | a replayed refresh token of a recently revoked session is recognised (and reported as reuse) through its rows |
//! | `idempotency_keys` | older than [`IDEMPOTENCY_WINDOW_MS`] (docs/API.md: 24 hours) | a retry within 24 h gets the first answer |
//! | `auth_attempts` (when the table exists) | `window_ends_ms` has passed | the window's count limits logins |
//! | `order_events` (when the table exists) | delivered more than [`DELIVERED_EVENT_RETENTION_MS`] ago | the admin list shows recent deliveries; a receiver may ask for one again |
//! | `pending_uploads` (when the table exists) | expired more than [`PENDING_UPLOAD_GRACE_MS`] ago | a late `complete` still finds it, and deletes its object |
//! | `upload_blobs` whose bytes are in the database | no `uploads` row refers to it | — (deleting an account cascades to its uploads, not to their bytes) |
//! | key-value entries in a Redis store | the deadline the app wrote in front of the value has passed | — (Spin's store has no expiry; the app deletes a stale entry when it reads one, this removes those nobody reads again) |
//!
//! Blobs in the bucket (`object_key` set, `upload_storage = s3`) are not
//! purged: this tool holds no bucket credentials, and deleting the row would
//! orphan the object. An unreferenced one is re-used by the next upload of
//! the same content; objects of expired pending uploads stay in the bucket
//! (README "Uploads on object storage": a lifecycle rule is the remedy).
//!
//! "When the table exists" is for MySQL databases migrated before the table
//! came; a SQLite file must carry the whole schema (see [`sqlite`]).
//!
//! Rows go in batches of [`BATCH`], each its own short statement, so a purge
//! never holds many locks for long and can run while the API serves.
//!
//! Blobs and concurrent uploads (MySQL; SQLite's version of the same
//! protocol is in [`sqlite`]): an orphan is deleted under the same protocol
//! the uploads component uses to delete a blob — lock the blob row `FOR
//! UPDATE`, count its references with a locking read, delete only when there
//! are none, commit. An upload of the same content locks the blob row in share
//! mode before inserting its reference (or inserts the blob itself when it is
//! gone), so either the purge runs wholly before it (the upload then stores
//! the bytes again) or wholly after it (and sees the reference): the bytes of
//! an upload are never deleted under it.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use anyhow::{Context, Result};
use migrate::Target;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

pub mod sqlite;

/// How long a revoked session's rows are kept: one day.
pub const REVOKED_SESSION_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// How long an expired direct-upload announcement is kept: one day.
pub const PENDING_UPLOAD_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a delivered order event stays in the outbox: 30 days. Pending
/// and failed events are never purged: they are not delivered yet.
pub const DELIVERED_EVENT_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How long an idempotency key answers (docs/API.md): 24 hours.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Rows deleted per statement.
pub const BATCH: u64 = 1000;

/// Deadlines before this (2000-01-01) or after [`LATEST_PLAUSIBLE_MS`] are not
/// the app's: such a key is left alone.
const EARLIEST_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// 2200-01-01.
const LATEST_PLAUSIBLE_MS: i64 = 7_258_118_400_000;

/// What one purge deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Sessions deleted (with their refresh-token records).
    pub sessions: u64,
    /// Idempotency keys deleted.
    pub idempotency_keys: u64,
    /// Expired login-attempt windows deleted.
    pub auth_attempts: u64,
    /// Order events delivered long ago, deleted.
    pub order_events: u64,
    /// Expired direct-upload announcements deleted.
    pub pending_uploads: u64,
    /// Unreferenced blobs deleted.
    pub blobs: u64,
    /// Expired key-value entries deleted.
    pub key_value_entries: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deleted {} sessions, {} idempotency keys, {} login-attempt windows, {} delivered order events, {} pending uploads, {} blobs, {} key-value entries",
            self.sessions,
            self.idempotency_keys,
            self.auth_attempts,
            self.order_events,
            self.pending_uploads,
            self.blobs,
            self.key_value_entries
        )
    }
}

/// Purges the database at `url` (`mysql://…` or `sqlite:PATH`) as of
/// `now_ms` (epoch milliseconds).
pub async fn purge_database(url: &str, now_ms: i64) -> Result<Report> {
    match Target::parse(url)? {
        Target::MySql(url) => purge_mysql(&url, now_ms).await,
        // Each batch may wait for the file's write lock (up to the busy
        // timeout): not on a runtime thread the caller's other tasks need.
        Target::Sqlite(path) => {
            tokio::task::spawn_blocking(move || sqlite::purge_file(&path, now_ms))
                .await
                .context("the SQLite purge stopped")?
        }
    }
}

async fn purge_mysql(url: &str, now_ms: i64) -> Result<Report> {
    let opts = Opts::from_url(url)
        .map_err(|_| anyhow::anyhow!("invalid database URL {}", shared::redact::redact(url)))?;
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| anyhow::anyhow!(shared::redact::redact(&e.to_string())))
        .context("cannot connect to the database")?;
    let mut report = Report {
        sessions: delete_in_batches(
            &mut conn,
            "DELETE FROM sessions WHERE expires_at_ms < ? LIMIT 1000",
            now_ms,
        )
        .await?
            + delete_in_batches(
                &mut conn,
                "DELETE FROM sessions WHERE revoked_at_ms < ? LIMIT 1000",
                now_ms - REVOKED_SESSION_GRACE_MS,
            )
            .await?,
        idempotency_keys: delete_in_batches(
            &mut conn,
            "DELETE FROM idempotency_keys WHERE created_at_ms < ? LIMIT 1000",
            now_ms - IDEMPOTENCY_WINDOW_MS,
        )
        .await?,
        ..Report::default()
    };
    if table_exists(&mut conn, "auth_attempts").await? {
        report.auth_attempts = delete_in_batches(
            &mut conn,
            "DELETE FROM auth_attempts WHERE window_ends_ms < ? LIMIT 1000",
            now_ms,
        )
        .await?;
    }
    if table_exists(&mut conn, "order_events").await? {
        report.order_events = delete_in_batches(
            &mut conn,
            "DELETE FROM order_events WHERE state = 'delivered' AND delivered_at_ms < ? LIMIT 1000",
            now_ms - DELIVERED_EVENT_RETENTION_MS,
        )
        .await?;
    }
    let in_buckets = table_exists(&mut conn, "pending_uploads").await?;
    if in_buckets {
        report.pending_uploads = delete_in_batches(
            &mut conn,
            "DELETE FROM pending_uploads WHERE expires_at_ms < ? LIMIT 1000",
            now_ms - PENDING_UPLOAD_GRACE_MS,
        )
        .await?;
    }
    report.blobs = purge_blobs(&mut conn, in_buckets).await?;
    conn.disconnect().await.ok();
    Ok(report)
}

async fn delete_in_batches(conn: &mut Conn, statement: &str, before_ms: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        conn.exec_drop(statement, (before_ms,))
            .await
            .with_context(|| format!("purge statement failed: {statement}"))?;
        let deleted = conn.affected_rows();
        total += deleted;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

async fn table_exists(conn: &mut Conn, table: &str) -> Result<bool> {
    let found: Option<i64> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            (table,),
        )
        .await?;
    Ok(found.is_some())
}

/// Deletes every blob no upload refers to, one at a time under the blob
/// protocol described in the module documentation.
async fn purge_blobs(conn: &mut Conn, in_buckets: bool) -> Result<u64> {
    let mut deleted = 0;
    let mut after = String::new();
    // Only blobs whose bytes are in MySQL (see the module documentation).
    let in_mysql = if in_buckets {
        "AND b.object_key IS NULL"
    } else {
        ""
    };
    let candidates_after = format!(
        "SELECT b.sha256 FROM upload_blobs b LEFT JOIN uploads u ON u.sha256 = b.sha256 \
         WHERE u.id IS NULL {in_mysql} AND b.sha256 > ? ORDER BY b.sha256 LIMIT 1000"
    );
    loop {
        // Candidates only (no locks); each is re-checked under its lock.
        let candidates: Vec<String> = conn.exec(&candidates_after, (after.as_str(),)).await?;
        let Some(last) = candidates.last() else {
            return Ok(deleted);
        };
        after = last.clone();
        for sha256 in &candidates {
            if delete_blob_if_unreferenced(conn, sha256).await? {
                deleted += 1;
            }
        }
    }
}

async fn delete_blob_if_unreferenced(conn: &mut Conn, sha256: &str) -> Result<bool> {
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await?;
    let locked: Option<i64> = tx
        .exec_first(
            "SELECT 1 FROM upload_blobs WHERE sha256 = ? FOR UPDATE",
            (sha256,),
        )
        .await?;
    if locked.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    let references: Option<i64> = tx
        .exec_first(
            "SELECT COUNT(*) FROM uploads WHERE sha256 = ? LOCK IN SHARE MODE",
            (sha256,),
        )
        .await?;
    if references.unwrap_or(0) > 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.exec_drop("DELETE FROM upload_blobs WHERE sha256 = ?", (sha256,))
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Compare-and-delete: removes the key only if it still holds the value
/// that was judged expired, so an entry rewritten meanwhile survives.
const DELETE_IF_UNCHANGED: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Deletes the expired entries of a Redis-backed key-value store: every key
/// under `prefix` whose value carries a deadline (as written by
/// `shared::kv::put_expiring`) before `now_ms`.
///
/// On Spin with `[key_value_store.default] type = "redis"`, keys are stored
/// as the app names them, so `prefix` is empty and the store's Redis database
/// must hold nothing else. The project's test host stores them under
/// `{--key-value-prefix}{store}:`. Values whose first 8 bytes are not a
/// plausible deadline (2000–2200) are never touched.
pub async fn sweep_key_value(redis_url: &str, prefix: &str, now_ms: i64) -> Result<u64> {
    let client = redis::Client::open(redis_url)
        .map_err(|_| anyhow::anyhow!("invalid Redis URL {}", shared::redact::redact(redis_url)))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| anyhow::anyhow!(shared::redact::redact(&e.to_string())))
        .context("cannot connect to Redis")?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        // No MATCH: the prefix is compared here, byte for byte, so no glob
        // escaping is needed; SCAN visits every key either way.
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        for key in keys.iter().filter(|k| k.starts_with(prefix.as_bytes())) {
            // Only string values can be the app's; a key of another type errors.
            let value: Option<Vec<u8>> =
                match redis::cmd("GET").arg(key).query_async(&mut conn).await {
                    Ok(v) => v,
                    Err(_) => continue,
                };
            let Some(value) = value else { continue };
            let Some(deadline) = shared::kv::stored_deadline(&value) else {
                continue;
            };
            let plausible = (EARLIEST_PLAUSIBLE_MS..LATEST_PLAUSIBLE_MS).contains(&deadline);
            if plausible && deadline <= now_ms {
                let removed: i64 = redis::cmd("EVAL")
                    .arg(DELETE_IF_UNCHANGED)
                    .arg(1)
                    .arg(key)
                    .arg(&value)
                    .query_async(&mut conn)
                    .await?;
                deleted += removed as u64;
            }
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

pub use shared::time::now_ms;

#[cfg(test)]
mod tests;

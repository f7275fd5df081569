use std::path::{Path, PathBuf};

use migrate::SqliteFile;
use shared::db::{Sql, Value};

use super::*;

const HOUR: i64 = 60 * 60 * 1000;
const DAY: i64 = 24 * HOUR;
/// 2025-01-01, any fixed "now" will do.
const NOW: i64 = 1_735_689_600_000;

fn migrated() -> (tempfile::TempDir, PathBuf, SqliteFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    migrate::apply_sqlite(&path).unwrap();
    let db = SqliteFile::open(&path).unwrap();
    (dir, path, db)
}

fn run(db: &SqliteFile, sql: &str, params: &[Value]) {
    db.execute(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

fn ids(db: &SqliteFile, sql: &str) -> Vec<String> {
    db.query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.string(0).unwrap())
        .collect()
}

fn user(db: &SqliteFile, id: &str) {
    run(
        db,
        "INSERT INTO users (id, email, name, password_hash, created_at_ms, updated_at_ms) \
         VALUES (?, ?, 'n', 'h', 1, 1)",
        &[id.into(), format!("{id}@example.com").into()],
    );
}

fn session(db: &SqliteFile, id: &str, expires_at_ms: i64, revoked_at_ms: Option<i64>) {
    run(
        db,
        "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms, \
         revoked_at_ms) VALUES (?, 'u', ?, 1, ?, ?)",
        &[
            id.into(),
            format!("hash-{id}").into(),
            expires_at_ms.into(),
            revoked_at_ms.into(),
        ],
    );
}

fn blob(db: &SqliteFile, sha256: &str, in_bucket: bool) {
    let (data, object_key) = if in_bucket {
        (Value::Null, Value::from(format!("blobs/{sha256}")))
    } else {
        (Value::Bytes(sha256.as_bytes().to_vec()), Value::Null)
    };
    run(
        db,
        "INSERT INTO upload_blobs (sha256, size, data, object_key, created_at_ms) \
         VALUES (?, 1, ?, ?, 1)",
        &[sha256.into(), data, object_key],
    );
}

fn upload(db: &SqliteFile, id: &str, sha256: &str) {
    run(
        db,
        "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, visibility, \
         created_at_ms) VALUES (?, 'u', 'f.png', 'image/png', 1, ?, 'private', 1)",
        &[id.into(), sha256.into()],
    );
}

#[test]
fn every_batch_takes_batch_rows() {
    for statement in BATCHES {
        assert!(
            statement.ends_with(&format!("LIMIT {BATCH})"))
                || statement.ends_with(&format!("LIMIT {BATCH}")),
            "{statement}"
        );
    }
}

#[test]
fn the_purge_deletes_what_is_dead_and_keeps_what_is_live() {
    let (_dir, path, db) = migrated();
    user(&db, "u");

    session(&db, "expired", NOW - 1, None);
    session(&db, "live", NOW + HOUR, None);
    session(&db, "revoked-long-ago", NOW + HOUR, Some(NOW - DAY - 1));
    session(&db, "revoked-recently", NOW + HOUR, Some(NOW - HOUR));
    for (token, session) in [("t-expired", "expired"), ("t-live", "live")] {
        run(
            &db,
            "INSERT INTO refresh_tokens (token_hash, session_id, superseded_at_ms) VALUES (?, ?, 1)",
            &[token.into(), session.into()],
        );
    }

    for (key, created) in [("old", NOW - DAY - 1), ("fresh", NOW - DAY + HOUR)] {
        run(
            &db,
            "INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, response_status, \
             response_body, created_at_ms) VALUES ('u', ?, 'f', 201, '{}', ?)",
            &[key.into(), created.into()],
        );
    }

    for (bucket, ends) in [("ended", NOW - 1), ("running", NOW + 1)] {
        run(
            &db,
            "INSERT INTO auth_attempts (bucket, attempts, window_ends_ms) VALUES (?, 3, ?)",
            &[bucket.into(), ends.into()],
        );
    }

    for (id, state, delivered) in [
        ("delivered-long-ago", "delivered", Some(NOW - 31 * DAY)),
        ("delivered-recently", "delivered", Some(NOW - 29 * DAY)),
        ("failed-long-ago", "failed", None),
        ("pending-long-ago", "pending", None),
    ] {
        run(
            &db,
            "INSERT INTO order_events (id, type, order_id, payload, created_at_ms, state, \
             next_attempt_at_ms, delivered_at_ms) VALUES (?, 'order.created', 'o', '{}', ?, ?, 1, ?)",
            &[id.into(), (NOW - 40 * DAY).into(), state.into(), delivered.into()],
        );
    }

    for (id, expires) in [
        ("expired-long-ago", NOW - DAY - 1),
        ("expired-recently", NOW - HOUR),
        ("open", NOW + HOUR),
    ] {
        run(
            &db,
            "INSERT INTO pending_uploads (id, user_id, filename, size, sha256, visibility, \
             object_key, created_at_ms, expires_at_ms) VALUES (?, 'u', 'f', 1, 's', 'private', ?, 1, ?)",
            &[id.into(), format!("incoming/{id}").into(), expires.into()],
        );
    }

    blob(&db, "referenced", false);
    upload(&db, "up", "referenced");
    blob(&db, "orphan", false);
    blob(&db, "orphan-in-bucket", true);

    let report = purge_file(&path, NOW).unwrap();
    assert_eq!(
        report,
        Report {
            sessions: 2,
            idempotency_keys: 1,
            auth_attempts: 1,
            order_events: 1,
            pending_uploads: 1,
            blobs: 1,
            key_value_entries: 0,
        }
    );
    assert_eq!(
        ids(&db, "SELECT id FROM sessions ORDER BY id"),
        ["live", "revoked-recently"]
    );
    // The expired session's superseded token went with it (ON DELETE CASCADE).
    assert_eq!(
        ids(&db, "SELECT token_hash FROM refresh_tokens"),
        ["t-live"]
    );
    assert_eq!(ids(&db, "SELECT idem_key FROM idempotency_keys"), ["fresh"]);
    assert_eq!(ids(&db, "SELECT bucket FROM auth_attempts"), ["running"]);
    assert_eq!(
        ids(&db, "SELECT id FROM order_events ORDER BY id"),
        ["delivered-recently", "failed-long-ago", "pending-long-ago"]
    );
    assert_eq!(
        ids(&db, "SELECT id FROM pending_uploads ORDER BY id"),
        ["expired-recently", "open"]
    );
    assert_eq!(
        ids(&db, "SELECT sha256 FROM upload_blobs ORDER BY sha256"),
        ["orphan-in-bucket", "referenced"]
    );
    assert_eq!(ids(&db, "SELECT id FROM users"), ["u"]);

    assert_eq!(purge_file(&path, NOW).unwrap(), Report::default());
}

#[test]
fn more_than_a_batch_goes_in_several() {
    let (_dir, path, db) = migrated();
    user(&db, "u");
    let sessions = 2 * BATCH + 7;
    // Candidates come a batch at a time too; each blob is its own
    // transaction (a commit each), so one page and a bit.
    let blobs = BATCH + 3;
    db.transaction(|tx| {
        for i in 0..sessions {
            tx.execute(
                "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms) \
                 VALUES (?, 'u', ?, 1, ?)",
                &[format!("s{i}").into(), format!("h{i}").into(), (NOW - 1).into()],
            )?;
        }
        for i in 0..blobs {
            tx.execute(
                "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (?, 1, x'00', 1)",
                &[format!("{i:064}").into()],
            )?;
        }
        Ok(())
    })
    .unwrap();
    session(&db, "live", NOW + 1, None);

    let report = purge_file(&path, NOW).unwrap();
    assert_eq!(report.sessions, sessions);
    assert_eq!(report.blobs, blobs);
    assert_eq!(ids(&db, "SELECT id FROM sessions"), ["live"]);
    assert!(ids(&db, "SELECT sha256 FROM upload_blobs").is_empty());
}

#[tokio::test]
async fn purge_database_takes_a_sqlite_url() {
    let (_dir, path, db) = migrated();
    user(&db, "u");
    session(&db, "expired", NOW - 1, None);
    let url = format!("sqlite:{}", path.display());
    let report = crate::purge_database(&url, NOW).await.unwrap();
    assert_eq!(report.sessions, 1);
    // `sqlite:///abs` names the same file: nothing left to delete.
    let url = format!("sqlite://{}", path.display());
    assert!(url.starts_with("sqlite:///"));
    let report = crate::purge_database(&url, NOW).await.unwrap();
    assert_eq!(report, Report::default());
}

#[tokio::test]
async fn a_missing_or_unmigrated_file_is_an_error_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let err = crate::purge_database(&format!("sqlite:{}", missing.display()), NOW)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("cannot open"), "{err:#}");
    assert!(!missing.exists());

    let empty = dir.path().join("empty.db");
    drop(SqliteFile::open(&empty).unwrap());
    let err = purge_file(&empty, NOW).unwrap_err().to_string();
    assert!(err.contains("schema version 0"), "{err}");
    let db = SqliteFile::open_existing(&empty).unwrap();
    assert!(ids(&db, "SELECT name FROM sqlite_master").is_empty());
}

/// What the uploads component does on SQLite to store content (one
/// immediate transaction): re-use the blob when it is there, store the bytes
/// again when it is not, and add the reference.
fn upload_content(db: &SqliteFile, id: &str, sha256: &str) {
    db.transaction_retrying(5, |tx| {
        let present = !tx
            .query("SELECT 1 FROM upload_blobs WHERE sha256 = ?", &[sha256.into()])?
            .is_empty();
        if !present {
            tx.execute(
                "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (?, 1, x'00', 1)",
                &[sha256.into()],
            )?;
        }
        tx.execute(
            "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, visibility, \
             created_at_ms) VALUES (?, 'u', 'f', 'image/png', 1, ?, 'private', 1)",
            &[id.into(), sha256.into()],
        )?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_blob_uploaded_again_while_the_purge_runs_is_never_lost() {
    let (_dir, path, db) = migrated();
    user(&db, "u");
    const FILES: usize = 30;
    for round in 0..5 {
        let contents: Vec<String> = (0..FILES).map(|i| format!("c{round}-{i:03}")).collect();
        for sha256 in &contents {
            blob(&db, sha256, false);
        }
        std::thread::scope(|s| {
            let purge = s.spawn(|| purge_file(&path, NOW).unwrap());
            let uploads = s.spawn(|| {
                let db = SqliteFile::open_existing(&path).unwrap();
                for (i, sha256) in contents.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                    upload_content(&db, &format!("up{round}-{i}"), sha256);
                }
            });
            uploads.join().unwrap();
            purge.join().unwrap();
        });
        // Every upload's bytes are there.
        let lost = ids(
            &db,
            "SELECT u.id FROM uploads u LEFT JOIN upload_blobs b ON b.sha256 = u.sha256 \
             WHERE b.sha256 IS NULL",
        );
        assert!(lost.is_empty(), "round {round}: {lost:?}");
    }
    // What nobody uploaded again goes on the next run.
    purge_file(&path, NOW).unwrap();
    let orphans = ids(
        &db,
        "SELECT b.sha256 FROM upload_blobs b LEFT JOIN uploads u ON u.sha256 = b.sha256 \
         WHERE u.id IS NULL",
    );
    assert!(orphans.is_empty(), "{orphans:?}");
}

#[test]
fn paths_in_messages_are_shown_as_given() {
    let err = purge_file(Path::new("no/such/dir/api.db"), NOW).unwrap_err();
    assert!(format!("{err:#}").contains("no/such/dir/api.db"), "{err:#}");
}

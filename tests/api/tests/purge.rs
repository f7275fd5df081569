//! The purge (`tools/purge`, README "Purging"): it deletes exactly what has
//! expired — sessions with their refresh-token records, idempotency keys past
//! 24 hours, login-attempt windows, unreferenced blobs, expired key-value
//! entries — keeps everything live, and never deletes the bytes of an upload,
//! even one made while it runs.
//!
//! MySQL only: the purge works on a MySQL database, so the app here runs on
//! MySQL whatever `API_TEST_STORE` says (scripts/test skips this binary in
//! the SQLite run).

use api_tests::{database_url, redis_url, unique, AppOptions, Store, TestApp};
use mysql_async::prelude::*;

const HOUR: i64 = 60 * 60 * 1000;

fn hex_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("random");
    hex::encode(b)
}

/// A database of its own (same server as the tests), with the schema, so
/// row counts over whole tables are exact whatever other tests do meanwhile.
struct ScratchDb {
    url: String,
    name: String,
    pool: mysql_async::Pool,
}

impl ScratchDb {
    async fn create() -> ScratchDb {
        let base = database_url();
        let (server, _) = base
            .rsplit_once('/')
            .expect("database URL names a database");
        let name = unique("spin_api_purge_");
        let url = format!("{server}/{name}");
        migrate::apply(&url, &migrate::default_dir())
            .await
            .expect("schema in the scratch database");
        let pool = mysql_async::Pool::new(mysql_async::Opts::from_url(&url).expect("url"));
        ScratchDb { url, name, pool }
    }

    async fn exec(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        let mut conn = self.pool.get_conn().await.expect("connection");
        conn.exec_drop(sql, params).await.expect("statement");
    }

    async fn count(&self, sql: &str) -> i64 {
        let mut conn = self.pool.get_conn().await.expect("connection");
        conn.query_first::<i64, _>(sql)
            .await
            .expect("count")
            .expect("a row")
    }

    async fn drop_database(self) {
        let mut conn = self.pool.get_conn().await.expect("connection");
        conn.query_drop(format!("DROP DATABASE `{}`", self.name))
            .await
            .expect("drop scratch database");
        drop(conn);
        let _ = self.pool.disconnect().await;
    }
}

#[tokio::test]
async fn purge_removes_exactly_the_expired_rows_and_keeps_live_ones() {
    let db = ScratchDb::create().await;
    // The login component's login-attempt table (migration 0004), created
    // here as it is there when that migration is not in this tree yet.
    db.exec(
        "CREATE TABLE IF NOT EXISTS auth_attempts (bucket CHAR(64) PRIMARY KEY, \
         attempts INT UNSIGNED NOT NULL, window_ends_ms BIGINT NOT NULL)",
        (),
    )
    .await;
    let now = purge::now_ms();
    let user = hex_id(16);
    db.exec(
        "INSERT INTO users (id, email, name, role, password_hash, created_at_ms, updated_at_ms) \
         VALUES (?, ?, 'P', 'user', 'x', ?, ?)",
        (&user, format!("{user}@example.test"), now, now),
    )
    .await;

    // (name, expires_at_ms, revoked_at_ms, kept)
    let sessions = [
        ("live", now + HOUR, None, true),
        ("expired", now - 1, None, false),
        (
            "revoked two days ago",
            now + HOUR,
            Some(now - 48 * HOUR),
            false,
        ),
        ("revoked an hour ago", now + HOUR, Some(now - HOUR), true),
    ];
    let mut kept_sessions = Vec::new();
    for (name, expires, revoked, kept) in sessions {
        let id = hex_id(16);
        db.exec(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at_ms, expires_at_ms, revoked_at_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (&id, &user, hex_id(32), now - 72 * HOUR, expires, revoked),
        )
        .await;
        // Three rotated refresh tokens each.
        for _ in 0..3 {
            db.exec(
                "INSERT INTO refresh_tokens (token_hash, session_id, superseded_at_ms) VALUES (?, ?, ?)",
                (hex_id(32), &id, now - HOUR),
            )
            .await;
        }
        if kept {
            kept_sessions.push((name, id));
        }
    }

    for (key, age) in [("old", 24 * HOUR + 1), ("fresh", 23 * HOUR)] {
        db.exec(
            "INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, response_status, response_body, created_at_ms) \
             VALUES (?, ?, ?, 201, '{}', ?)",
            (&user, key, hex_id(32), now - age),
        )
        .await;
    }
    for (bucket, ends) in [(hex_id(32), now - 1), (hex_id(32), now + HOUR)] {
        db.exec(
            "INSERT INTO auth_attempts (bucket, attempts, window_ends_ms) VALUES (?, 3, ?)",
            (bucket, ends),
        )
        .await;
    }

    // Two blobs: one an upload refers to, one nobody does.
    let referenced = hex_id(32);
    let orphan = hex_id(32);
    for sha in [&referenced, &orphan] {
        db.exec(
            "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (?, 3, 'abc', ?)",
            (sha, now - HOUR),
        )
        .await;
    }
    db.exec(
        "INSERT INTO uploads (id, user_id, filename, content_type, size, sha256, visibility, created_at_ms) \
         VALUES (?, ?, 'a.txt', 'text/plain; charset=utf-8', 3, ?, 'private', ?)",
        (hex_id(16), &user, &referenced, now),
    )
    .await;

    let report = purge::purge_database(&db.url, now).await.expect("purge");
    assert_eq!(report.sessions, 2, "{report}");
    assert_eq!(report.idempotency_keys, 1, "{report}");
    assert_eq!(report.auth_attempts, 1, "{report}");
    assert_eq!(report.blobs, 1, "{report}");

    assert_eq!(db.count("SELECT COUNT(*) FROM sessions").await, 2);
    for (name, id) in &kept_sessions {
        let n = db
            .count(&format!("SELECT COUNT(*) FROM sessions WHERE id = '{id}'"))
            .await;
        assert_eq!(n, 1, "session {name} kept");
    }
    // Refresh-token records went with their sessions, and only those.
    assert_eq!(db.count("SELECT COUNT(*) FROM refresh_tokens").await, 6);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM refresh_tokens r LEFT JOIN sessions s ON s.id = r.session_id WHERE s.id IS NULL")
            .await,
        0
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM idempotency_keys").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = 'fresh'")
            .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM auth_attempts").await, 1);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM auth_attempts WHERE window_ends_ms > {now}"
        ))
        .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM upload_blobs").await, 1);
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM upload_blobs WHERE sha256 = '{referenced}'"
        ))
        .await,
        1
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(db.count("SELECT COUNT(*) FROM uploads").await, 1);

    // A second run finds nothing more to delete.
    let again = purge::purge_database(&db.url, now).await.expect("purge");
    assert_eq!(again, purge::Report::default());
    db.drop_database().await;
}

#[tokio::test]
async fn purge_deletes_only_order_events_delivered_over_thirty_days_ago() {
    let db = ScratchDb::create().await;
    let now = purge::now_ms();
    let day = 24 * HOUR;
    // (state, delivered how long ago, kept)
    let events = [
        ("delivered", Some(31 * day), false),
        ("delivered", Some(29 * day), true),
        ("pending", None, true),
        ("failed", None, true),
    ];
    let mut kept = Vec::new();
    for (state, age, stays) in events {
        let id = hex_id(16);
        db.exec(
            "INSERT INTO order_events (id, type, order_id, payload, created_at_ms, state, \
             next_attempt_at_ms, delivered_at_ms) VALUES (?, 'order.created', ?, '{}', ?, ?, ?, ?)",
            (
                &id,
                hex_id(16),
                now - 40 * day,
                state,
                now - 40 * day,
                age.map(|a: i64| now - a),
            ),
        )
        .await;
        if stays {
            kept.push(id);
        }
    }
    let report = purge::purge_database(&db.url, now).await.expect("purge");
    assert_eq!(report.order_events, 1);
    let mut conn = db.pool.get_conn().await.expect("connection");
    let mut left: Vec<String> = conn
        .query("SELECT id FROM order_events")
        .await
        .expect("ids");
    drop(conn);
    left.sort();
    kept.sort();
    assert_eq!(left, kept);
    db.drop_database().await;
}

#[tokio::test]
async fn purge_without_the_login_attempts_table_still_purges_the_rest() {
    let db = ScratchDb::create().await;
    db.exec("DROP TABLE IF EXISTS auth_attempts", ()).await;
    let now = purge::now_ms();
    db.exec(
        "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (?, 1, 'a', ?)",
        (hex_id(32), now),
    )
    .await;
    let report = purge::purge_database(&db.url, now).await.expect("purge");
    assert_eq!(report.blobs, 1);
    assert_eq!(report.auth_attempts, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn purge_keeps_bucket_blobs_and_drops_long_expired_announcements() {
    let db = ScratchDb::create().await;
    let now = purge::now_ms();
    let user = hex_id(16);
    db.exec(
        "INSERT INTO users (id, email, name, role, password_hash, created_at_ms, updated_at_ms) \
         VALUES (?, ?, 'U', 'user', 'x', ?, ?)",
        (&user, format!("{user}@example.test"), now, now),
    )
    .await;
    // An unreferenced blob in the bucket: the purge cannot delete its object,
    // so it keeps the row (the next upload of that content re-uses it).
    let in_bucket = hex_id(32);
    db.exec(
        "INSERT INTO upload_blobs (sha256, size, object_key, created_at_ms) VALUES (?, 1, ?, ?)",
        (&in_bucket, format!("objects/{}", hex_id(16)), now - HOUR),
    )
    .await;
    let day = 24 * HOUR;
    for (name, expires) in [
        ("long-expired", now - day - HOUR),
        ("just-expired", now - HOUR),
        ("live", now + HOUR),
    ] {
        db.exec(
            "INSERT INTO pending_uploads (id, user_id, filename, size, sha256, visibility, object_key, created_at_ms, expires_at_ms) \
             VALUES (?, ?, ?, 1, ?, 'private', ?, ?, ?)",
            (hex_id(16), &user, name, hex_id(32), format!("objects/{name}"), expires - HOUR, expires),
        )
        .await;
    }
    let report = purge::purge_database(&db.url, now).await.expect("purge");
    assert_eq!(report.blobs, 0, "{report}");
    assert_eq!(report.pending_uploads, 1, "{report}");
    assert_eq!(db.count("SELECT COUNT(*) FROM upload_blobs").await, 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM pending_uploads WHERE filename = 'long-expired'")
            .await,
        0
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM pending_uploads").await, 2);
    db.drop_database().await;
}

/// Bytes of one distinct file.
fn content(i: usize) -> Vec<u8> {
    let mut v = unique(&format!("file {i} ")).into_bytes();
    v.resize(4096, b'.');
    v
}

#[tokio::test]
async fn a_blob_uploaded_again_while_the_purge_runs_is_never_lost() {
    let app = TestApp::start_with(AppOptions {
        store: Some(Store::MySql),
        ..Default::default()
    })
    .await;
    let (_, token) = app.new_user().await;
    const FILES: usize = 20;
    // An old creation time marks the orphan rows this test inserts, so the
    // end can tell which uploads found the orphan and which stored it anew.
    const MARK: i64 = 1;
    let mut reused = 0;
    let mut restored = 0;
    for round in 0..5 {
        let reuploaded: Vec<Vec<u8>> = (0..FILES).map(|i| content(round * 100 + i)).collect();
        let abandoned: Vec<Vec<u8>> = (0..FILES).map(|i| content(round * 100 + 50 + i)).collect();
        for bytes in reuploaded.iter().chain(&abandoned) {
            app.execute(
                "INSERT INTO upload_blobs (sha256, size, data, created_at_ms) VALUES (SHA2(?, 256), ?, ?, ?)",
                (bytes.clone(), bytes.len() as i64, bytes.clone(), MARK),
            )
            .await;
        }

        let url = database_url();
        let purging =
            tokio::spawn(async move { purge::purge_database(&url, purge::now_ms()).await });
        let mut uploads = Vec::new();
        for bytes in &reuploaded {
            let req = app
                .http
                .post(app.url("/api/v1/uploads?filename=f.txt"))
                .bearer_auth(&token)
                .body(bytes.clone());
            uploads.push(tokio::spawn(async move {
                let resp = req.send().await.unwrap();
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap();
                (status, body)
            }));
        }
        let mut ids = Vec::new();
        for u in uploads {
            let (status, body) = u.await.unwrap();
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().unwrap().to_string());
        }
        purging.await.unwrap().expect("purge");

        for (id, bytes) in ids.iter().zip(&reuploaded) {
            let resp = app
                .http
                .get(app.url(&format!("/api/v1/uploads/{id}/content")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert!(resp.bytes().await.unwrap().as_ref() == bytes.as_slice());
            let rows: Vec<i64> = app
                .query(
                    "SELECT created_at_ms FROM upload_blobs WHERE sha256 = SHA2(?, 256)",
                    (bytes.clone(),),
                )
                .await;
            assert_eq!(rows.len(), 1);
            if rows[0] == MARK {
                reused += 1;
            } else {
                restored += 1;
            }
        }
        for bytes in &abandoned {
            let rows: Vec<i64> = app
                .query(
                    "SELECT COUNT(*) FROM upload_blobs WHERE sha256 = SHA2(?, 256)",
                    (bytes.clone(),),
                )
                .await;
            assert_eq!(rows, vec![0], "an orphan nobody uploaded again is purged");
        }
    }
    eprintln!(
        "re-uploads during the purge: {reused} found the orphan blob and kept it, \
         {restored} found it purged and stored the bytes again"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_key_value_sweep_deletes_expired_entries_and_nothing_else() {
    let prefix = unique("sweep") + ":default:";
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let now = purge::now_ms();
    let entry = |deadline: i64, payload: &[u8]| {
        let mut v = deadline.to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    };
    let values: Vec<(&str, Vec<u8>)> = vec![
        ("p:expired", entry(now - 1, b"+{}")),
        ("rv:j:expired", entry(now - HOUR, b"1")),
        ("p:live", entry(now + HOUR, b"+{}")),
        ("foreign", b"not one of the app's values".to_vec()),
        ("tiny", b"x".to_vec()),
    ];
    for (key, value) in &values {
        redis::cmd("SET")
            .arg(format!("{prefix}{key}"))
            .arg(value.as_slice())
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    let deleted = purge::sweep_key_value(&redis_url(), &prefix, now)
        .await
        .expect("sweep");
    assert_eq!(deleted, 2);
    let mut left = Vec::new();
    for (key, _) in &values {
        let exists: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if exists {
            left.push(*key);
        }
        let _: () = redis::cmd("DEL")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(left, vec!["p:live", "foreign", "tiny"]);
}

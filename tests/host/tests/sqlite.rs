//! `fermyon:spin/sqlite@2.0.0` as Spin 4.0.2 serves it: the database
//! `default` in `<state dir>/sqlite_db.db`, a connection per `open`, grants,
//! Spin's limits and error texts, `--sqlite` at start, and writers waiting
//! for each other.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use spin_test_host::{HostConfig, RunningHost};

/// The fixture on a fresh state directory, with `statements` run at start.
async fn start(state_dir: &Path, statements: &[&str]) -> RunningHost {
    let mut config = fixture_config();
    config.state_dir = Some(state_dir.to_path_buf());
    config.sqlite_statements = statements.iter().map(|s| (*s).to_owned()).collect();
    RunningHost::start(config).await.unwrap()
}

/// A script of statements on one `default` connection.
fn steps(sql: &[&str]) -> Value {
    let steps: Vec<Value> = sql.iter().map(|s| json!({ "sql": s })).collect();
    json!({ "steps": steps })
}

/// The rows of a successful step.
fn rows(step: &Value) -> &Value {
    let rows = &step["ok"]["rows"];
    assert!(rows.is_array(), "not a result set: {step}");
    rows
}

/// The error of step `index`, which must have failed.
fn step_err(out: &Value, index: usize) -> String {
    out["ok"][index]["err"]
        .as_str()
        .unwrap_or_else(|| panic!("step {index} did not fail: {out}"))
        .to_owned()
}

/// Every step of the answer, which must all have succeeded.
fn all_ok(out: &Value) -> &Vec<Value> {
    let results = out["ok"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert!(results.iter().all(|r| r.get("ok").is_some()), "{out}");
    results
}

/// `SELECT n FROM counter` on a fresh connection.
async fn counter(host: &RunningHost) -> i64 {
    let out = sqlite_script(host, steps(&["SELECT n FROM counter"])).await;
    rows(&all_ok(&out)[0])[0][0]["integer"]
        .as_i64()
        .unwrap_or_else(|| panic!("{out}"))
}

#[tokio::test]
async fn the_default_database_is_a_file_in_the_state_dir_that_outlives_the_host() {
    // A directory that does not exist yet: it is created, parents included.
    let state = temp_dir("state").join("nested/dir");
    let host = start(&state, &[]).await;
    let out = sqlite_script(
        &host,
        steps(&[
            "CREATE TABLE kept (id INTEGER PRIMARY KEY, v TEXT)",
            "INSERT INTO kept (v) VALUES ('first')",
        ]),
    )
    .await;
    all_ok(&out);
    let file = state.join("sqlite_db.db");
    assert!(file.is_file(), "{} is missing", file.display());
    host.stop().await;

    // The file is an ordinary SQLite database.
    let conn = rusqlite::Connection::open(&file).unwrap();
    let v: String = conn
        .query_row("SELECT v FROM kept WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "first");
    drop(conn);

    // A second host on the same state directory sees the row.
    let host = start(&state, &[]).await;
    let out = sqlite_script(&host, steps(&["SELECT id, v FROM kept"])).await;
    assert_eq!(
        all_ok(&out)[0]["ok"],
        json!({"columns": ["id", "v"], "rows": [[{"integer": 1}, {"text": "first"}]]})
    );
    host.stop().await;
}

#[tokio::test]
async fn without_a_state_dir_the_database_is_in_dot_spin_beside_the_manifest() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "beside"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
sqlite_databases = ["default"]
"#,
    );
    let host = RunningHost::start(HostConfig::new(&manifest))
        .await
        .unwrap();
    let out = sqlite_script(&host, steps(&["CREATE TABLE here (x)"])).await;
    all_ok(&out);
    host.stop().await;
    let file = manifest.parent().unwrap().join(".spin/sqlite_db.db");
    assert!(file.is_file(), "{} is missing", file.display());
}

#[tokio::test]
async fn every_value_type_round_trips_exactly() {
    let host = start(&temp_dir("state"), &[]).await;
    let text = "héllo ☃ 𝄞 \u{0} nul inside, 'quote' \"dq\" \\";
    let all_bytes: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
    let script = json!({"steps": [
        // No declared types: every value is stored as given.
        {"sql": "CREATE TABLE vals (id INTEGER PRIMARY KEY, a, b, c, d, e)"},
        {"sql": "INSERT INTO vals (a, b, c, d, e) VALUES (?, ?, ?, ?, ?)", "params": [
            {"integer": i64::MIN}, {"real": 1.5}, {"text": text}, {"blob": all_bytes}, {"null": null}
        ]},
        {"sql": "INSERT INTO vals (a, b, c, d, e) VALUES (?, ?, ?, ?, ?)", "params": [
            {"integer": i64::MAX}, {"real": -2.5e300}, {"text": ""}, {"blob": ""}, {"integer": 0}
        ]},
        {"sql": "SELECT a, b, c, d, e, typeof(c), length(c), length(d) FROM vals ORDER BY id"},
    ]});
    let out = sqlite_script(&host, script).await;
    let results = all_ok(&out);
    assert_eq!(results[1]["ok"], json!({"columns": [], "rows": []}));
    assert_eq!(
        results[3]["ok"]["columns"],
        json!([
            "a",
            "b",
            "c",
            "d",
            "e",
            "typeof(c)",
            "length(c)",
            "length(d)"
        ])
    );
    assert_eq!(
        rows(&results[3]),
        &json!([
            [
                {"integer": i64::MIN}, {"real": 1.5}, {"text": text}, {"blob": all_bytes},
                {"null": null}, {"text": "text"},
                // SQLite's length() of text stops at the first NUL.
                {"integer": 10}, {"integer": 256}
            ],
            [
                {"integer": i64::MAX}, {"real": -2.5e300}, {"text": ""}, {"blob": ""},
                {"integer": 0}, {"text": "text"}, {"integer": 0}, {"integer": 0}
            ],
        ])
    );
    // Column affinity applies, as SQLite decides: the guest gets the stored type.
    let out = sqlite_script(
        &host,
        json!({"steps": [
            {"sql": "CREATE TABLE typed (i INTEGER, r REAL, t TEXT)"},
            {"sql": "INSERT INTO typed VALUES (?, ?, ?)", "params": [
                {"text": "42"}, {"integer": 2}, {"integer": 7}
            ]},
            {"sql": "SELECT i, r, t FROM typed"},
        ]}),
    )
    .await;
    assert_eq!(
        rows(&all_ok(&out)[2]),
        &json!([[{"integer": 42}, {"real": 2.0}, {"text": "7"}]])
    );
    host.stop().await;
}

#[tokio::test]
async fn changes_counts_the_last_statement_of_the_same_connection() {
    let host = start(
        &temp_dir("state"),
        &["CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT)"],
    )
    .await;
    let out = sqlite_script(
        &host,
        json!({"open": ["default", "default"], "steps": [
            {"sql": "INSERT INTO items (kind) VALUES ('a'), ('b'), ('b'), ('b')"},
            {"sql": "SELECT changes(), last_insert_rowid()"},
            {"sql": "UPDATE items SET kind = 'c' WHERE kind = 'b'"},
            {"sql": "SELECT changes()"},
            // Another connection has changed nothing.
            {"conn": 1, "sql": "SELECT changes()"},
            {"sql": "UPDATE items SET kind = 'z' WHERE kind = 'none'"},
            {"sql": "SELECT changes()"},
        ]}),
    )
    .await;
    let results = all_ok(&out);
    assert_eq!(
        rows(&results[1]),
        &json!([[{"integer": 4}, {"integer": 4}]])
    );
    assert_eq!(rows(&results[3]), &json!([[{"integer": 3}]]));
    assert_eq!(rows(&results[4]), &json!([[{"integer": 0}]]));
    assert_eq!(rows(&results[6]), &json!([[{"integer": 0}]]));
    host.stop().await;
}

#[tokio::test]
async fn errors_are_io_with_sqlites_text() {
    let host = start(
        &temp_dir("state"),
        &[
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)",
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id))",
            "CREATE TABLE pair (a, b, UNIQUE (a, b))",
        ],
    )
    .await;
    let out = sqlite_script(
        &host,
        json!({"keep_going": true, "steps": [
            {"sql": "INSERT INTO users (email) VALUES ('a@example.com')"},
            {"sql": "INSERT INTO users (email) VALUES ('a@example.com')"},
            {"sql": "INSERT INTO pair VALUES (1, 2)"},
            {"sql": "INSERT INTO pair VALUES (1, 2)"},
            {"sql": "PRAGMA foreign_keys = ON"},
            {"sql": "INSERT INTO orders (user_id) VALUES (99)"},
            {"sql": "INSERT INTO users (email) VALUES (NULL)"},
            {"sql": "SELEC 1"},
            {"sql": "SELECT * FROM missing"},
            {"sql": "SELECT ?", "params": []},
            // Only the first statement of a string runs; the rest is
            // ignored without an error (rusqlite's prepare, as on Spin).
            {"sql": "INSERT INTO pair VALUES (5, 5); INSERT INTO pair VALUES (6, 6)"},
            {"sql": "SELECT a FROM pair WHERE a > 1 ORDER BY a"},
        ]}),
    )
    .await;
    assert_eq!(
        step_err(&out, 1),
        r#"Error::Io("UNIQUE constraint failed: users.email")"#
    );
    assert_eq!(
        step_err(&out, 3),
        r#"Error::Io("UNIQUE constraint failed: pair.a, pair.b")"#
    );
    assert_eq!(
        step_err(&out, 5),
        r#"Error::Io("FOREIGN KEY constraint failed")"#
    );
    assert_eq!(
        step_err(&out, 6),
        r#"Error::Io("NOT NULL constraint failed: users.email")"#
    );
    assert_eq!(
        step_err(&out, 7),
        r#"Error::Io("near \"SELEC\": syntax error in SELEC 1 at offset 0")"#
    );
    assert_eq!(step_err(&out, 8), r#"Error::Io("no such table: missing")"#);
    assert_eq!(
        step_err(&out, 9),
        r#"Error::Io("Wrong number of parameters passed to query. Got 0, needed 1")"#
    );
    assert!(out["ok"][10].get("ok").is_some(), "{out}");
    assert_eq!(rows(&out["ok"][11]), &json!([[{"integer": 5}]]));
    host.stop().await;
}

#[tokio::test]
async fn an_ungranted_database_is_access_denied() {
    let host = start(&temp_dir("state"), &[]).await;
    // "fixture" is granted only "default".
    let out = sqlite_script(&host, json!({"open": ["other"], "steps": []})).await;
    assert_eq!(out, json!({"err": "open 0: Error::AccessDenied"}));
    host.stop().await;

    // A component without sqlite_databases may open nothing, not even "default".
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "no-grants"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
"#,
    );
    let host = RunningHost::start(HostConfig::new(&manifest))
        .await
        .unwrap();
    let out = sqlite_script(&host, json!({"steps": []})).await;
    assert_eq!(out, json!({"err": "open 0: Error::AccessDenied"}));
    host.stop().await;
    // Nothing was created for it.
    assert!(!manifest.parent().unwrap().join(".spin").exists());
}

#[tokio::test]
async fn a_label_other_than_default_stops_the_start_as_spin_does() {
    // Spin defines only "default" without a runtime config, and refuses at
    // load a component that lists another (so no-such-database cannot reach
    // a guest).
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "undefined-db"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
sqlite_databases = ["default", "analytics"]
"#,
    );
    let err = RunningHost::start(HostConfig::new(&manifest))
        .await
        .err()
        .expect("the start must fail");
    assert_eq!(
        format!("{err:#}"),
        "One or more components use SQLite databases which are not defined.\n\
         Check the spelling, or pass a runtime configuration file that defines these stores.\n\
         See https://spinframework.dev/dynamic-configuration#sqlite-storage-runtime-configuration\n\
         Details:\n\
         - Component c uses database 'analytics'"
    );
}

#[tokio::test]
async fn sqlite_statements_and_files_run_in_order_at_start() {
    let dir = temp_dir("sql");
    let schema = dir.join("schema.sql");
    std::fs::write(
        &schema,
        "-- a comment\nCREATE TABLE log (id INTEGER PRIMARY KEY, line TEXT);\n\
         INSERT INTO log (line) VALUES ('from the file');\n",
    )
    .unwrap();
    let more = dir.join("more.sql");
    std::fs::write(&more, "INSERT INTO log (line) VALUES ('labelled file')").unwrap();
    let schema_arg = format!("@{}", schema.display());
    let more_arg = format!("@{}:default", more.display());
    let host = start(
        &temp_dir("state"),
        &[
            &schema_arg,
            "INSERT INTO log (line) VALUES ('raw statement')",
            &more_arg,
        ],
    )
    .await;
    let out = sqlite_script(&host, steps(&["SELECT line FROM log ORDER BY id"])).await;
    assert_eq!(
        rows(&all_ok(&out)[0]),
        &json!([
            [{"text": "from the file"}],
            [{"text": "raw statement"}],
            [{"text": "labelled file"}]
        ])
    );
    host.stop().await;
}

/// The start error (with its causes) for these `--sqlite` entries.
async fn start_error(state: &Path, statements: &[&str]) -> String {
    let mut config = fixture_config();
    config.state_dir = Some(state.to_path_buf());
    config.sqlite_statements = statements.iter().map(|s| (*s).to_owned()).collect();
    match RunningHost::start(config).await {
        Ok(_) => panic!("the start must fail for {statements:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_failing_sqlite_entry_stops_the_start_with_spins_message() {
    let state = temp_dir("state");
    assert_eq!(
        start_error(&state, &["CREATE TABLE t (x)", "BOGUS"]).await,
        "failed to execute following sql statement against default database: 'BOGUS': \
         Error::Io(\"near \\\"BOGUS\\\": syntax error in BOGUS at offset 0\")"
    );
    // Entries before the failing one have run.
    let conn = rusqlite::Connection::open(state.join("sqlite_db.db")).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 't'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
    drop(conn);

    let dir = temp_dir("sql");
    let missing = dir.join("missing.sql");
    assert_eq!(
        start_error(&state, &[&format!("@{}", missing.display())]).await,
        format!(
            "could not read file '{}' containing sql statements: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let bad = dir.join("bad.sql");
    std::fs::write(&bad, "CREATE TABLE u (x);\nINSERT INTO nowhere VALUES (1);").unwrap();
    assert_eq!(
        start_error(&state, &[&format!("@{}", bad.display())]).await,
        format!(
            "failed to execute sql against database 'default' from file '{}': \
             failed to spawn blocking task: failed to execute batch statements: \
             no such table: nowhere: Error code 1: SQL error or missing database",
            bad.display()
        )
    );
    assert_eq!(
        start_error(&state, &[&format!("@{}:analytics", bad.display())]).await,
        format!(
            "based on the '@{}:analytics' a registered database named 'analytics' was expected but not found.",
            bad.display()
        )
    );
    assert_eq!(
        start_error(&state, &["@"]).await,
        "database configuration is empty in the '@' sqlite statement"
    );
}

#[tokio::test]
async fn the_binary_takes_state_dir_and_repeated_sqlite_flags() {
    let state = temp_dir("state");
    let state_arg = state.display().to_string();
    let manifest = fixture_manifest();
    let manifest_arg = manifest.display().to_string();
    let token = format!("api_token={API_TOKEN}");
    let host = spawn_host(
        &[
            "--from",
            &manifest_arg,
            "--variable",
            &token,
            "--state-dir",
            &state_arg,
            "--sqlite",
            "CREATE TABLE flags (v TEXT)",
            "--sqlite",
            "INSERT INTO flags VALUES ('set at start')",
        ],
        &[],
    );
    let res = client()
        .post(format!("{}/api/sqlite", host.base_url))
        .json(&steps(&["SELECT v FROM flags"]))
        .send()
        .await
        .unwrap();
    let out: Value = res.json().await.unwrap();
    assert_eq!(rows(&all_ok(&out)[0]), &json!([[{"text": "set at start"}]]));
    assert!(state.join("sqlite_db.db").is_file());
    let log = host.log.lock().unwrap().join("\n");
    assert!(
        log.contains(&format!(
            "Storing default SQLite data to \"{}\".",
            state.join("sqlite_db.db").display()
        )),
        "{log}"
    );
    drop(host);

    let (code, stderr) = run_host_to_exit(&[
        "--from",
        &manifest_arg,
        "--variable",
        &token,
        "--state-dir",
        &state_arg,
        "--sqlite",
        "INSERT INTO nowhere VALUES (1)",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Error: failed to execute following sql statement against default database: \
             'INSERT INTO nowhere VALUES (1)': Error::Io(\"no such table: nowhere"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn each_open_is_its_own_connection() {
    let host = start(&temp_dir("state"), &[]).await;
    let out = sqlite_script(
        &host,
        json!({"open": ["default", "default"], "keep_going": true, "steps": [
            {"conn": 0, "sql": "CREATE TEMP TABLE mine (x)"},
            {"conn": 0, "sql": "INSERT INTO mine VALUES (1)"},
            {"conn": 1, "sql": "SELECT x FROM mine"},
        ]}),
    )
    .await;
    assert_eq!(step_err(&out, 2), r#"Error::Io("no such table: mine")"#);
    host.stop().await;
}

#[tokio::test]
async fn an_unfinished_transaction_is_rolled_back_when_its_connection_goes() {
    let host = start(
        &temp_dir("state"),
        &["CREATE TABLE t (x)", "INSERT INTO t VALUES ('kept')"],
    )
    .await;
    // Dropping the connection mid-transaction rolls it back and frees the lock.
    let out = sqlite_script(
        &host,
        json!({"open": ["default", "default"], "steps": [
            {"conn": 0, "sql": "BEGIN IMMEDIATE"},
            {"conn": 0, "sql": "INSERT INTO t VALUES ('dropped')"},
            {"drop": 0},
            {"conn": 1, "sql": "BEGIN IMMEDIATE"},
            {"conn": 1, "sql": "SELECT x FROM t"},
            {"conn": 1, "sql": "COMMIT"},
        ]}),
    )
    .await;
    assert_eq!(rows(&all_ok(&out)[4]), &json!([[{"text": "kept"}]]));

    // A request that ends inside a transaction leaves nothing behind, and
    // the next writer does not wait for it.
    let out = sqlite_script(
        &host,
        steps(&["BEGIN IMMEDIATE", "INSERT INTO t VALUES ('abandoned')"]),
    )
    .await;
    all_ok(&out);
    let started = Instant::now();
    let out = sqlite_script(
        &host,
        steps(&["BEGIN IMMEDIATE", "SELECT x FROM t", "COMMIT"]),
    )
    .await;
    assert_eq!(rows(&all_ok(&out)[1]), &json!([[{"text": "kept"}]]));
    assert!(started.elapsed() < Duration::from_secs(2));
    host.stop().await;
}

#[tokio::test]
async fn a_writer_waits_for_another_requests_transaction() {
    let host = start(
        &temp_dir("state"),
        &[
            "CREATE TABLE counter (n INTEGER)",
            "INSERT INTO counter VALUES (0)",
        ],
    )
    .await;
    // Warm up, so the first request's timing is the transaction's.
    assert_eq!(counter(&host).await, 0);
    let holder = sqlite_script(
        &host,
        json!({"steps": [
            {"sql": "BEGIN IMMEDIATE"},
            {"sql": "UPDATE counter SET n = n + 1"},
            {"sleep_ms": 1500},
            {"sql": "COMMIT"},
        ]}),
    );
    let waiter = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let out = sqlite_script(
            &host,
            json!({"steps": [
                {"sql": "BEGIN IMMEDIATE"},
                {"sql": "SELECT n FROM counter"},
                {"sql": "UPDATE counter SET n = n + 1"},
                {"sql": "COMMIT"},
            ]}),
        )
        .await;
        (out, started.elapsed())
    };
    let (held, (waited, elapsed)) = tokio::join!(holder, waiter);
    all_ok(&held);
    // It waited for the holder's COMMIT, then saw its update.
    assert_eq!(rows(&all_ok(&waited)[1]), &json!([[{"integer": 1}]]));
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    assert_eq!(counter(&host).await, 2);
    host.stop().await;
}

#[tokio::test]
async fn concurrent_read_modify_write_transactions_lose_no_update() {
    let host = start(
        &temp_dir("state"),
        &[
            "CREATE TABLE counter (n INTEGER)",
            "INSERT INTO counter VALUES (0)",
        ],
    )
    .await;
    let script = json!({"steps": [
        {"sql": "BEGIN IMMEDIATE"},
        {"sql": "SELECT n FROM counter"},
        {"sleep_ms": 10},
        {"sql": "UPDATE counter SET n = n + 1"},
        {"sql": "COMMIT"},
    ]});
    let requests = (0..20).map(|_| sqlite_script(&host, script.clone()));
    for out in futures::future::join_all(requests).await {
        all_ok(&out);
    }
    assert_eq!(counter(&host).await, 20);
    host.stop().await;
}

#[tokio::test]
async fn a_writer_gives_up_after_rusqlites_five_second_busy_timeout() {
    let host = start(&temp_dir("state"), &["CREATE TABLE t (x)"]).await;
    let holder = sqlite_script(
        &host,
        json!({"steps": [
            {"sql": "BEGIN IMMEDIATE"},
            {"sleep_ms": 7000},
            {"sql": "COMMIT"},
        ]}),
    );
    let waiter = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let out = sqlite_script(&host, steps(&["INSERT INTO t VALUES (1)"])).await;
        (out, started.elapsed())
    };
    let (held, (waited, elapsed)) = tokio::join!(holder, waiter);
    all_ok(&held);
    assert_eq!(step_err(&waited, 0), r#"Error::Io("database is locked")"#);
    assert!(elapsed >= Duration::from_millis(4900), "{elapsed:?}");
    host.stop().await;
}

#[tokio::test]
async fn a_result_over_128_mib_is_refused_with_spins_message() {
    let host = start(&temp_dir("state"), &[]).await;
    let out = sqlite_script(
        &host,
        json!({"keep_going": true, "steps": [
            {"sql": "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200) \
                     SELECT zeroblob(1048576) FROM c"},
            // Only the rows count: large values computed on the way are fine.
            {"sql": "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3) \
                     SELECT length(zeroblob(1048576)) FROM c"},
        ]}),
    )
    .await;
    assert_eq!(
        step_err(&out, 0),
        r#"Error::Io("query result exceeds limit of 134217728 bytes")"#
    );
    assert_eq!(rows(&out["ok"][1]).as_array().unwrap().len(), 3);
    host.stop().await;
}

#[tokio::test]
async fn attaching_a_file_is_not_authorized_but_memory_and_temp_are() {
    let host = start(&temp_dir("state"), &[]).await;
    let other = temp_dir("attach").join("other.db");
    let attach_file = format!("ATTACH DATABASE '{}' AS other", other.display());
    let out = sqlite_script(
        &host,
        json!({"keep_going": true, "steps": [
            {"sql": attach_file},
            {"sql": "ATTACH DATABASE ':memory:' AS mem"},
            {"sql": "ATTACH DATABASE '' AS tmp"},
            {"sql": "CREATE TABLE mem.t (x)"},
        ]}),
    )
    .await;
    assert_eq!(step_err(&out, 0), r#"Error::Io("not authorized")"#);
    for i in 1..4 {
        assert!(out["ok"][i].get("ok").is_some(), "{out}");
    }
    assert!(!other.exists());
    host.stop().await;
}

#[tokio::test]
async fn an_instance_may_hold_256_connections() {
    let host = start(&temp_dir("state"), &[]).await;
    let labels = |n: usize| vec!["default"; n];
    let out = sqlite_script(
        &host,
        json!({"open": labels(256), "steps": [{"conn": 255, "sql": "SELECT 1"}]}),
    )
    .await;
    all_ok(&out);
    let out = sqlite_script(&host, json!({"open": labels(257), "steps": []})).await;
    assert_eq!(
        out,
        json!({"err": "open 256: Error::Io(\"too many connections opened\")"})
    );
    host.stop().await;
}

#[tokio::test]
async fn text_that_is_not_utf8_fails_the_connection_as_spins_panic_does() {
    let host = start(&temp_dir("state"), &[]).await;
    let out = sqlite_script(
        &host,
        json!({"open": ["default", "default"], "keep_going": true, "steps": [
            {"sql": "SELECT CAST(x'ff' AS TEXT)"},
            {"sql": "SELECT 1"},
            {"conn": 1, "sql": "SELECT 1"},
            // As a blob it reads fine.
            {"conn": 1, "sql": "SELECT x'ff'"},
        ]}),
    )
    .await;
    assert_eq!(step_err(&out, 0), r#"Error::Io("internal runtime error")"#);
    assert_eq!(step_err(&out, 1), r#"Error::Io("internal runtime error")"#);
    assert_eq!(rows(&out["ok"][2]), &json!([[{"integer": 1}]]));
    assert_eq!(rows(&out["ok"][3]), &json!([[{"blob": "ff"}]]));
    host.stop().await;
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn sqlite_calls_are_counted_by_component_operation_and_outcome() {
    let mut config = fixture_config();
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    let host = RunningHost::start(config).await.unwrap();
    let out = sqlite_script(
        &host,
        json!({"keep_going": true, "steps": [
            {"sql": "SELECT 1"},
            {"sql": "SELECT 2"},
            {"sql": "BOGUS"},
        ]}),
    )
    .await;
    assert_eq!(out["ok"].as_array().map(Vec::len), Some(3), "{out}");
    let out = sqlite_script(&host, json!({"open": ["other"], "steps": []})).await;
    assert!(out["err"].is_string(), "{out}");
    let addr = host.metrics_addr().unwrap();
    let page = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let calls = |op: &str, outcome: &str| {
        sample(
            &page,
            &format!(
                "spin_host_sqlite_calls_total{{component=\"fixture\",op=\"{op}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    // An ungranted open is refused before it is a call, as for MySQL.
    assert_eq!(calls("open", "ok"), Some(1.0), "{page}");
    assert_eq!(calls("open", "error"), None, "{page}");
    assert_eq!(calls("execute", "ok"), Some(2.0), "{page}");
    assert_eq!(calls("execute", "error"), Some(1.0), "{page}");
    assert_eq!(
        sample(
            &page,
            "spin_host_sqlite_call_duration_seconds_count{component=\"fixture\",op=\"execute\"}"
        ),
        Some(3.0),
        "{page}"
    );
    host.stop().await;
}

//! `fermyon:spin/mysql@2.0.0` against the real MariaDB, with Spin's type
//! mapping and errors.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::Queryable as _;
use serde_json::{json, Value};

/// A table with every column type the project uses, plus DATETIME and DECIMAL.
async fn create_table(conn: &mut mysql_async::Conn) -> String {
    let table = unique("t");
    conn.query_drop(format!(
        "CREATE TABLE {table} (
            id INT NOT NULL PRIMARY KEY,
            big_signed BIGINT NULL,
            big_unsigned BIGINT UNSIGNED NULL,
            name VARCHAR(255) NULL,
            body TEXT NULL,
            data BLOB NULL,
            flag TINYINT(1) NULL,
            at DATETIME NULL,
            price DECIMAL(10,2) NULL
        ) DEFAULT CHARSET = utf8mb4"
    ))
    .await
    .unwrap();
    table
}

async fn drop_table(conn: &mut mysql_async::Conn, table: &str) {
    conn.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
}

fn all_bytes_hex() -> String {
    (0..=255u8).map(|b| format!("{b:02x}")).collect()
}

const UNICODE: &str = "héllo ☃ 𝄞 \u{0} 'quote' \"dq\" \\";

fn insert_steps(table: &str) -> Value {
    let sql = format!(
        "INSERT INTO {table} (id, big_signed, big_unsigned, name, body, data, flag) VALUES (?, ?, ?, ?, ?, ?, ?)"
    );
    let long_text = "long text ".repeat(1000);
    json!([
        {"op": "execute", "sql": sql, "params": [
            {"int32": 1}, {"int64": i64::MIN}, {"uint64": u64::MAX}, {"str": UNICODE},
            {"str": long_text}, {"binary": all_bytes_hex()}, {"boolean": true}
        ]},
        {"op": "execute", "sql": sql, "params": [
            {"int32": 2}, {"int64": i64::MAX}, {"uint64": 0}, {"str": ""},
            {"str": ""}, {"binary": ""}, {"boolean": false}
        ]},
        {"op": "execute", "sql": sql, "params": [
            {"int32": 3}, {"null": null}, {"null": null}, {"null": null},
            {"null": null}, {"null": null}, {"null": null}
        ]},
    ])
}

#[tokio::test]
async fn every_project_type_round_trips_exactly() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    let host = start_fixture().await;
    let mut steps = insert_steps(&table).as_array().unwrap().clone();
    steps.push(json!({"op": "query", "sql": format!(
        "SELECT id, big_signed, big_unsigned, name, body, data, flag FROM {table} ORDER BY id"
    ), "params": []}));
    let out = mysql_script(&host, json!({"steps": steps})).await;
    let results = out["ok"].as_array().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(results.len(), 4, "{out}");
    let rs = &results[3]["ok"];
    assert_eq!(
        rs["columns"],
        json!([
            {"name": "id", "type": "DbDataType::Int32"},
            {"name": "big_signed", "type": "DbDataType::Int64"},
            {"name": "big_unsigned", "type": "DbDataType::Uint64"},
            {"name": "name", "type": "DbDataType::Str"},
            {"name": "body", "type": "DbDataType::Str"},
            {"name": "data", "type": "DbDataType::Binary"},
            {"name": "flag", "type": "DbDataType::Int8"},
        ])
    );
    assert_eq!(
        rs["rows"],
        json!([
            [{"int32": 1}, {"int64": i64::MIN}, {"uint64": u64::MAX}, {"str": UNICODE},
             {"str": "long text ".repeat(1000)}, {"binary": all_bytes_hex()}, {"int8": 1}],
            [{"int32": 2}, {"int64": i64::MAX}, {"uint64": 0}, {"str": ""},
             {"str": ""}, {"binary": ""}, {"int8": 0}],
            [{"int32": 3}, {"null": null}, {"null": null}, {"null": null},
             {"null": null}, {"null": null}, {"null": null}],
        ])
    );
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn guest_writes_are_stored_exactly() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    let host = start_fixture().await;
    let out = mysql_script(&host, json!({"steps": insert_steps(&table)})).await;
    assert_eq!(out["ok"].as_array().map(Vec::len), Some(3), "{out}");
    type Row = (
        i32,
        Option<i64>,
        Option<u64>,
        Option<String>,
        Option<Vec<u8>>,
        Option<i8>,
    );
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT id, big_signed, big_unsigned, name, data, flag FROM {table} ORDER BY id"
        ))
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                1,
                Some(i64::MIN),
                Some(u64::MAX),
                Some(UNICODE.to_owned()),
                Some((0..=255u8).collect()),
                Some(1)
            ),
            (
                2,
                Some(i64::MAX),
                Some(0),
                Some(String::new()),
                Some(Vec::new()),
                Some(0)
            ),
            (3, None, None, None, None, None),
        ]
    );
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

async fn read_column_error(column: &str) -> String {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    conn.query_drop(format!(
        "INSERT INTO {table} (id, at, price) VALUES (1, '2024-05-06 07:08:09', 12.34)"
    ))
    .await
    .unwrap();
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [{"op": "query", "sql": format!("SELECT {column} FROM {table}"), "params": []}]}),
    )
    .await;
    drop_table(&mut conn, &table).await;
    host.stop().await;
    out["ok"][0]["err"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a failed read: {out}"))
        .to_owned()
}

#[tokio::test]
async fn datetime_column_fails_to_read_as_on_spin() {
    let err = read_column_error("at").await;
    assert!(
        err.starts_with("Error::ValueConversionFailed(\"Cannot convert value"),
        "{err}"
    );
    assert!(
        err.contains("in column at data type DbDataType::Other"),
        "{err}"
    );
}

#[tokio::test]
async fn decimal_column_fails_to_read_as_on_spin() {
    let err = read_column_error("price").await;
    assert!(
        err.starts_with("Error::ValueConversionFailed(\"Cannot convert value"),
        "{err}"
    );
    assert!(
        err.contains("in column price data type DbDataType::Other"),
        "{err}"
    );
}

#[tokio::test]
async fn now_fails_to_read_as_on_spin() {
    let _ = mysql_conn().await;
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [{"op": "query", "sql": "SELECT NOW()", "params": []}]}),
    )
    .await;
    let err = out["ok"][0]["err"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"));
    assert!(err.starts_with("Error::ValueConversionFailed("), "{err}");
    host.stop().await;
}

#[tokio::test]
async fn other_column_types_map_like_spin() {
    let mut conn = mysql_conn().await;
    let table = unique("types");
    conn.query_drop(format!(
        "CREATE TABLE {table} (
            a TINYINT UNSIGNED, b SMALLINT, c SMALLINT UNSIGNED, d MEDIUMINT, e INT,
            f INT UNSIGNED, g FLOAT, h DOUBLE, i CHAR(3), j VARBINARY(4), k BINARY(2)
        ) DEFAULT CHARSET = utf8mb4"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO {table} VALUES (255, -32768, 65535, -8388608, -2147483648, 4294967295, 1.5, 2.25, 'abc', x'00ff', 'xy')"
    ))
    .await
    .unwrap();
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [{"op": "query", "sql": format!("SELECT * FROM {table}"), "params": []}]}),
    )
    .await;
    let rs = &out["ok"][0]["ok"];
    let types: Vec<&str> = rs["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "DbDataType::Uint8",
            "DbDataType::Int16",
            "DbDataType::Uint16",
            "DbDataType::Int32",
            "DbDataType::Int32",
            "DbDataType::Uint32",
            "DbDataType::Floating32",
            "DbDataType::Floating64",
            "DbDataType::Str",
            "DbDataType::Binary",
            "DbDataType::Binary",
        ]
    );
    assert_eq!(
        rs["rows"][0],
        json!([
            {"uint8": 255}, {"int16": -32768}, {"uint16": 65535}, {"int32": -8388608},
            {"int32": -2147483648i64}, {"uint32": 4294967295u64}, {"floating32": 1.5},
            {"floating64": 2.25}, {"str": "abc"}, {"binary": "00ff"}, {"binary": "7879"},
        ])
    );
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn address_outside_allowed_outbound_hosts_is_refused() {
    let host = start_fixture().await;
    for address in [
        "mysql://root@10.1.2.3:3306/spin_host_test",
        "mysql://root@127.0.0.1:3307/spin_host_test",
        "mysql://root@localhost:3306/spin_host_test",
    ] {
        let out = mysql_script(&host, json!({"address": address, "steps": []})).await;
        assert_eq!(
            out,
            json!({"err": format!("open: Error::ConnectionFailed(\"address {address} is not permitted\")")})
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn component_without_allowed_hosts_cannot_open_mysql() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "no-hosts"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
"#,
    );
    let bare = spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest))
        .await
        .unwrap();
    let out = mysql_script(
        &bare,
        json!({"address": "mysql://root@127.0.0.1:3306/spin_host_test", "steps": []}),
    )
    .await;
    assert_eq!(
        out,
        json!({"err": "open: Error::ConnectionFailed(\"address mysql://root@127.0.0.1:3306/spin_host_test is not permitted\")"})
    );
    bare.stop().await;
}

#[tokio::test]
async fn unreachable_server_fails_with_connection_failed_without_hanging() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "unreachable"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
allowed_outbound_hosts = ["mysql://127.0.0.1:1", "mysql://10.255.255.1"]
"#,
    );
    let host = spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest))
        .await
        .unwrap();
    for address in ["mysql://root@127.0.0.1:1/x", "mysql://root@10.255.255.1/x"] {
        let started = Instant::now();
        let out = mysql_script(&host, json!({"address": address, "steps": []})).await;
        let err = out["err"].as_str().unwrap_or_else(|| panic!("{out}"));
        assert!(err.starts_with("open: Error::ConnectionFailed("), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{address} took {:?}",
            started.elapsed()
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn query_failed_carries_the_server_message() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    let host = start_fixture().await;
    let sql = format!("INSERT INTO {table} (id) VALUES (?)");
    let out = mysql_script(
        &host,
        json!({"steps": [
            {"op": "execute", "sql": sql, "params": [{"int32": 1}]},
            {"op": "execute", "sql": sql, "params": [{"int32": 1}]},
        ]}),
    )
    .await;
    let err = out["ok"][1]["err"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        err.starts_with("Error::QueryFailed(\"Server(ServerError { code: 1062"),
        "{err}"
    );
    assert!(err.contains("Duplicate entry"), "{err}");
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn row_count_after_execute_on_the_same_connection() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    conn.query_drop(format!(
        "INSERT INTO {table} (id, flag) VALUES (1, 0), (2, 0), (3, 1)"
    ))
    .await
    .unwrap();
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [
            {"op": "execute", "sql": format!("UPDATE {table} SET flag = 1 WHERE flag = ?"), "params": [{"int8": 0}]},
            {"op": "query", "sql": "SELECT ROW_COUNT()", "params": []},
        ]}),
    )
    .await;
    assert_eq!(
        out["ok"][0],
        json!({"ok": null}),
        "execute returns nothing: {out}"
    );
    assert_eq!(out["ok"][1]["ok"]["rows"], json!([[{"int64": 2}]]), "{out}");
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn connection_dropped_without_commit_rolls_back() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [
            {"op": "execute", "sql": "SET autocommit = 0", "params": []},
            {"op": "execute", "sql": format!("INSERT INTO {table} (id) VALUES (1)"), "params": []},
        ]}),
    )
    .await;
    assert_eq!(out["ok"].as_array().map(Vec::len), Some(2), "{out}");
    // The disconnect is asynchronous; give the server a moment.
    let mut count = 1;
    for _ in 0..50 {
        count = conn
            .query_first::<i64, _>(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap()
            .unwrap();
        if count == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count, 0,
        "uncommitted insert survived the dropped connection"
    );
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn committed_transaction_persists() {
    let mut conn = mysql_conn().await;
    let table = create_table(&mut conn).await;
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"steps": [
            {"op": "execute", "sql": "SET autocommit = 0", "params": []},
            {"op": "execute", "sql": format!("INSERT INTO {table} (id) VALUES (1)"), "params": []},
            {"op": "execute", "sql": "COMMIT", "params": []},
        ]}),
    )
    .await;
    assert_eq!(out["ok"].as_array().map(Vec::len), Some(3), "{out}");
    let count: i64 = conn
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count, 1);
    drop_table(&mut conn, &table).await;
    host.stop().await;
}

#[tokio::test]
async fn a_refused_address_is_quoted_without_its_password() {
    let host = start_fixture().await;
    let out = mysql_script(
        &host,
        json!({"address": "mysql://root:hunter2-sécret@10.1.2.3:3306/db", "steps": []}),
    )
    .await;
    let err = out["err"].as_str().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        err,
        "open: Error::ConnectionFailed(\"address mysql://root:***@10.1.2.3:3306/db is not permitted\")"
    );
    host.stop().await;
}

/// With `RUST_BACKTRACE=1` (common on Rust developers' machines) an
/// `anyhow::Error`'s debug text carries a backtrace of the host: the guest
/// gets the message and its causes only.
#[tokio::test]
async fn connection_errors_reach_the_guest_without_a_backtrace() {
    let _ = mysql_conn().await;
    let manifest = fixture_manifest();
    let host = spawn_host(
        &[
            "--from",
            manifest.to_str().unwrap(),
            "--variable",
            "api_token=t",
        ],
        &[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")],
    );
    let res = client()
        .post(format!("{}/api/mysql", host.base_url))
        .json(&json!({
            "address": "mysql://nobody:wrong-pässword@127.0.0.1:3306/spin_host_test",
            "steps": []
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let err = out["err"].as_str().unwrap_or_else(|| panic!("{out}"));
    assert!(err.starts_with("open: Error::ConnectionFailed("), "{err}");
    assert!(err.contains("Access denied"), "{err}");
    for trace in [
        "backtrace",
        "Backtrace",
        " at /",
        "tokio::",
        "mysql_async::conn",
    ] {
        assert!(!err.contains(trace), "{trace:?} in {err}");
    }
    assert!(!err.contains("wrong-pässword"), "{err}");
}

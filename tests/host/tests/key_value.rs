//! `fermyon:spin/key-value@2.0.0`: grants, operations, and both backends.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

async fn put(base: &str, store: &str, key: &str, value: &str) -> Value {
    client()
        .put(format!("{base}/api/kv/{store}/{key}"))
        .body(value.to_owned())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn delete(base: &str, store: &str, key: &str) -> Value {
    client()
        .delete(format!("{base}/api/kv/{store}/{key}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn get_set_delete_exists_and_keys_work_in_memory() {
    let host = start_fixture().await;
    let base = host.base_url();
    assert_eq!(
        get_json(&format!("{base}/api/kv/default/a")).await.1,
        json!({"ok": null})
    );
    assert_eq!(put(&base, "default", "a", "one").await, json!({"ok": null}));
    assert_eq!(put(&base, "default", "b", "two").await, json!({"ok": null}));
    assert_eq!(
        get_json(&format!("{base}/api/kv/default/a")).await.1,
        json!({"ok": "one"})
    );
    assert_eq!(
        get_json(&format!("{base}/api/kv-exists/default/a")).await.1,
        json!({"ok": true})
    );
    assert_eq!(
        get_json(&format!("{base}/api/kv-keys/default")).await.1,
        json!({"ok": ["a", "b"]})
    );
    assert_eq!(delete(&base, "default", "a").await, json!({"ok": null}));
    // Deleting a missing key is no error.
    assert_eq!(delete(&base, "default", "a").await, json!({"ok": null}));
    assert_eq!(
        get_json(&format!("{base}/api/kv-exists/default/a")).await.1,
        json!({"ok": false})
    );
    assert_eq!(
        get_json(&format!("{base}/api/kv-keys/default")).await.1,
        json!({"ok": ["b"]})
    );
    host.stop().await;
}

#[tokio::test]
async fn ungranted_store_is_access_denied() {
    let host = start_fixture().await;
    let base = host.base_url();
    // "fixture" is granted only "default".
    let (_, body) = get_json(&format!("{base}/api/kv/other/k")).await;
    assert_eq!(body, json!({"err": "open: Error::AccessDenied"}));
    let (_, body) = get_json(&format!("{base}/api/kv-keys/other")).await;
    assert_eq!(body, json!({"err": "open: Error::AccessDenied"}));
    host.stop().await;
}

#[tokio::test]
async fn component_without_any_grant_is_denied_every_store() {
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
    let host = spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest))
        .await
        .unwrap();
    let (_, body) = get_json(&format!("{}/api/kv/default/k", host.base_url())).await;
    assert_eq!(body, json!({"err": "open: Error::AccessDenied"}));
    host.stop().await;
}

#[tokio::test]
async fn two_hosts_on_one_redis_see_each_others_writes() {
    let prefix = format!("{}:", unique("kvtest"));
    let a = start_fixture_redis(&prefix).await;
    let b = start_fixture_redis(&prefix).await;
    assert_eq!(
        put(&a.base_url(), "default", "greeting", "from-a").await,
        json!({"ok": null})
    );
    assert_eq!(
        get_json(&format!("{}/api/kv/default/greeting", b.base_url()))
            .await
            .1,
        json!({"ok": "from-a"})
    );
    assert_eq!(
        delete(&b.base_url(), "default", "greeting").await,
        json!({"ok": null})
    );
    assert_eq!(
        get_json(&format!("{}/api/kv-exists/default/greeting", a.base_url()))
            .await
            .1,
        json!({"ok": false})
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn two_host_processes_on_one_redis_see_each_others_writes() {
    let prefix = format!("{}:", unique("kvproc"));
    let manifest = fixture_manifest();
    let manifest = manifest.to_str().unwrap();
    let token = format!("api_token={API_TOKEN}");
    let args = [
        "--from",
        manifest,
        "--variable",
        &token,
        "--key-value",
        REDIS_URL,
        "--key-value-prefix",
        &prefix,
    ];
    let a = spawn_host(&args, &[]);
    let b = spawn_host(&args, &[]);
    assert_eq!(
        put(&a.base_url, "default", "k", "written-by-a").await,
        json!({"ok": null})
    );
    assert_eq!(
        get_json(&format!("{}/api/kv/default/k", b.base_url))
            .await
            .1,
        json!({"ok": "written-by-a"})
    );
    assert_eq!(
        put(&b.base_url, "default", "k", "then-b").await,
        json!({"ok": null})
    );
    assert_eq!(
        get_json(&format!("{}/api/kv/default/k", a.base_url))
            .await
            .1,
        json!({"ok": "then-b"})
    );
}

#[tokio::test]
async fn redis_keys_are_prefixed_and_get_keys_lists_only_its_store() {
    use redis::AsyncCommands as _;
    let prefix = format!("{}:", unique("kvlayout"));
    let host = start_fixture_redis(&prefix).await;
    let base = host.base_url();
    put(&base, "default", "x", "1").await;
    put(&base, "default", "y", "2").await;
    let mut redis = redis_conn().await;
    let raw: Option<String> = redis.get(format!("{prefix}default:x")).await.unwrap();
    assert_eq!(raw.as_deref(), Some("1"));
    // A key written straight into Redis under another prefix stays invisible.
    let _: () = redis
        .set(format!("other-{prefix}default:w"), "0")
        .await
        .unwrap();
    assert_eq!(
        get_json(&format!("{base}/api/kv-keys/default")).await.1,
        json!({"ok": ["x", "y"]})
    );
    let _: () = redis.del(format!("other-{prefix}default:w")).await.unwrap();
    host.stop().await;
}

#[tokio::test]
async fn redis_down_gives_the_guest_an_error_quickly() {
    let mut config = fixture_config();
    // Nothing listens on port 1.
    config.key_value = spin_test_host::KeyValueBackend::Redis {
        url: "redis://127.0.0.1:1".to_owned(),
        prefix: "down:".to_owned(),
    };
    let host = spin_test_host::RunningHost::start(config).await.unwrap();
    let started = Instant::now();
    let (status, body) = get_json(&format!("{}/api/kv/default/k", host.base_url())).await;
    assert_eq!(status, 200, "an error, not a trap");
    let err = body["err"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {body}"));
    assert!(err.starts_with("Error::Other("), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    host.stop().await;
}

#[tokio::test]
async fn store_label_other_than_default_fails_start_like_spin() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "labels"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
key_value_stores = ["default", "cache"]
"#,
    );
    let err =
        match spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest)).await {
            Ok(_) => panic!("must fail"),
            Err(e) => format!("{e:#}"),
        };
    assert!(
        err.contains("unknown key_value_stores label \"cache\" for component \"c\""),
        "{err}"
    );
}

/// `wasi:keyvalue` batch calls through the fixture: `keys` as its query.
async fn wasi_kv(
    base: &str,
    method: reqwest::Method,
    store: &str,
    keys: &str,
    body: Value,
) -> Value {
    client()
        .request(method, format!("{base}/api/wasi-kv/{store}?{keys}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Set-many, get-many (every key answered in order, absent ones as null, the
/// Spin interface seeing the same store) and delete-many on one host.
async fn check_wasi_batches(host: &spin_test_host::RunningHost) {
    let base = host.base_url();
    let put = wasi_kv(
        &base,
        reqwest::Method::PUT,
        "default",
        "",
        json!({"a": "1", "c": "3"}),
    )
    .await;
    assert_eq!(put, json!({"ok": null}));
    assert_eq!(
        wasi_kv(&base, reqwest::Method::GET, "default", "c&b&a", Value::Null).await,
        json!({"ok": [["c", "3"], ["b", null], ["a", "1"]]})
    );
    assert_eq!(
        get_json(&format!("{base}/api/kv/default/a")).await.1,
        json!({"ok": "1"})
    );
    assert_eq!(
        wasi_kv(
            &base,
            reqwest::Method::DELETE,
            "default",
            "a&b",
            Value::Null
        )
        .await,
        json!({"ok": null})
    );
    assert_eq!(
        wasi_kv(&base, reqwest::Method::GET, "default", "a&c", Value::Null).await,
        json!({"ok": [["a", null], ["c", "3"]]})
    );
}

#[tokio::test]
async fn wasi_keyvalue_batches_work_in_memory() {
    let host = start_fixture().await;
    check_wasi_batches(&host).await;
    host.stop().await;
}

#[tokio::test]
async fn wasi_keyvalue_batches_work_on_redis_in_one_command_each() {
    use redis::AsyncCommands as _;
    let prefix = format!("{}:", unique("kvwasi"));
    let host = start_fixture_redis(&prefix).await;
    check_wasi_batches(&host).await;
    // The batch wrote where the Spin interface's keys live.
    let mut redis = redis_conn().await;
    let raw: Option<String> = redis.get(format!("{prefix}default:c")).await.unwrap();
    assert_eq!(raw.as_deref(), Some("3"));
    let _: () = redis.del(format!("{prefix}default:c")).await.unwrap();
    host.stop().await;
}

#[tokio::test]
async fn wasi_keyvalue_open_of_an_ungranted_store_is_access_denied() {
    let host = start_fixture().await;
    let body = wasi_kv(
        &host.base_url(),
        reqwest::Method::GET,
        "other",
        "k",
        Value::Null,
    )
    .await;
    assert_eq!(body, json!({"err": "open: Error::AccessDenied"}));
    host.stop().await;
}

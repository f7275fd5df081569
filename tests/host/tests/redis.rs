//! The Redis trigger and outbound Redis (`fermyon:spin/redis@2.0.0`), as
//! Spin 4.0.2 runs them, against the local Redis server. The fixture, when
//! triggered, records each message as the key-value key `redis:<message>`.

mod common;

use std::time::Duration;

use common::*;
use spin_test_host::{HostConfig, RunningHost};

/// A host whose `fixture` component is triggered on `channel` and may
/// reach Redis.
async fn start(channel: &str) -> RunningHost {
    start_granting(channel, r#"["redis://127.0.0.1:6379"]"#).await
}

async fn start_granting(channel: &str, allowed_outbound_hosts: &str) -> RunningHost {
    let manifest = trigger_manifest(REDIS_URL, channel, allowed_outbound_hosts);
    RunningHost::start(HostConfig::new(manifest)).await.unwrap()
}

/// A manifest whose `fixture` component is triggered on `channel` of the
/// Redis at `address`, and serves `/api/...`.
fn trigger_manifest(
    address: &str,
    channel: &str,
    allowed_outbound_hosts: &str,
) -> std::path::PathBuf {
    temp_manifest(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "redis-host-test"
[application.trigger.redis]
address = "{address}"
[variables]
chan = {{ default = "{channel}" }}
[[trigger.redis]]
channel = "{{{{ chan }}}}"
component = "fixture"
[[trigger.http]]
route = "/api/..."
component = "fixture"
[component.fixture]
source = "{{wasm}}"
key_value_stores = ["default"]
allowed_outbound_hosts = {allowed_outbound_hosts}
"#
    ))
}

async fn publish(channel: &str, message: &str) -> i64 {
    let mut conn = redis_conn().await;
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn seen(host: &RunningHost, message: &str) -> bool {
    let url = format!("{}/api/kv/default/redis:{message}", host.base_url());
    let (_, body) = get_json(&url).await;
    body["ok"] == "seen"
}

async fn wait_seen(host: &RunningHost, message: &str) -> bool {
    for _ in 0..100 {
        if seen(host, message).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Publishes until someone is subscribed (the host subscribes in the background).
async fn publish_when_subscribed(channel: &str, message: &str) {
    for _ in 0..100 {
        if publish(channel, message).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nobody subscribed to {channel}");
}

#[tokio::test]
async fn a_message_on_the_channel_runs_the_component_with_its_payload() {
    let channel = unique("chan");
    let host = start(&channel).await;
    publish_when_subscribed(&channel, "hello").await;
    assert!(wait_seen(&host, "hello").await);
    host.stop().await;
}

#[tokio::test]
async fn a_failing_or_trapping_handler_does_not_end_the_subscription() {
    let channel = unique("chan");
    let host = start(&channel).await;
    publish_when_subscribed(&channel, "fail").await;
    publish(&channel, "trap").await;
    publish(&channel, "after").await;
    assert!(wait_seen(&host, "after").await);
    assert!(!seen(&host, "fail").await);
    host.stop().await;
}

#[tokio::test]
async fn outbound_publish_reaches_a_subscriber() {
    let channel = unique("out");
    let host = start(&unique("unused")).await;
    let subscriber = redis::Client::open(REDIS_URL).unwrap();
    let mut pubsub = subscriber.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();
    let res = client()
        .post(format!(
            "{}/api/redis/publish/{channel}?redis://127.0.0.1:6379",
            host.base_url()
        ))
        .body("from-the-guest")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["ok"],
        serde_json::Value::Null
    );
    use futures::StreamExt as _;
    let message = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .expect("a message")
        .unwrap();
    assert_eq!(message.get_payload_bytes(), b"from-the-guest");
    host.stop().await;
}

#[tokio::test]
async fn outbound_set_get_and_incr_work_on_the_server() {
    let host = start(&unique("unused")).await;
    let key = unique("key");
    let base = format!("{}/api/redis", host.base_url());
    let call = |op: &str, body: &'static str| {
        client()
            .post(format!("{base}/{op}/{key}?redis://127.0.0.1:6379"))
            .body(body)
            .send()
    };
    let set: serde_json::Value = call("set", "41").await.unwrap().json().await.unwrap();
    assert_eq!(set["ok"], serde_json::Value::Null, "{set}");
    let incr: serde_json::Value = call("incr", "").await.unwrap().json().await.unwrap();
    assert_eq!(incr["ok"], 42, "{incr}");
    let got: serde_json::Value = call("get", "").await.unwrap().json().await.unwrap();
    assert_eq!(got["ok"], "42");
    let mut conn = redis_conn().await;
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    host.stop().await;
}

#[tokio::test]
async fn outbound_redis_to_an_address_not_allowed_is_invalid_address() {
    let host = start_granting(&unique("unused"), r#"["mysql://127.0.0.1:3306"]"#).await;
    let res = client()
        .post(format!(
            "{}/api/redis/publish/x?redis://127.0.0.1:6379",
            host.base_url()
        ))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["err"]
            .as_str()
            .unwrap_or("")
            .contains("InvalidAddress"),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_redis_trigger_without_an_address_refuses_to_start() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "no-address"
[[trigger.redis]]
channel = "c"
component = "fixture"
[component.fixture]
source = "{wasm}"
"#,
    );
    let err = RunningHost::start(HostConfig::new(manifest))
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("no address"), "{err:#}");
}

/// A manifest whose Redis trigger points at `address`, beside an HTTP route.
fn manifest_with_trigger_at(address: &str) -> std::path::PathBuf {
    trigger_manifest(address, "c", "[]")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn answers(base_url: &str) -> bool {
    client()
        .get(format!("{base_url}/api/kv/default/k"))
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn an_unreachable_trigger_server_ends_the_whole_app_as_on_spin() {
    let manifest = manifest_with_trigger_at(&format!("redis://127.0.0.1:{}", free_port()));
    let host = RunningHost::start(HostConfig::new(manifest)).await.unwrap();
    let base = host.base_url();
    tokio::time::timeout(Duration::from_secs(10), host.ended())
        .await
        .expect("the app ends");
    assert!(host.has_ended());
    assert!(!answers(&base).await, "its HTTP routes are gone too");
}

#[tokio::test]
async fn a_lost_trigger_connection_ends_the_whole_app_as_on_spin() {
    let port = free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/setup.sh)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let manifest = manifest_with_trigger_at(&format!("redis://127.0.0.1:{port}"));
    let host = RunningHost::start(HostConfig::new(manifest)).await.unwrap();
    let base = host.base_url();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(answers(&base).await);
    assert!(!host.has_ended());
    let _ = redis.kill();
    let _ = redis.wait();
    tokio::time::timeout(Duration::from_secs(10), host.ended())
        .await
        .expect("the app ends");
    assert!(!answers(&base).await, "its HTTP routes are gone too");
}

#[tokio::test]
async fn keep_serving_leaves_the_http_routes_up_when_the_trigger_is_lost() {
    let manifest = manifest_with_trigger_at(&format!("redis://127.0.0.1:{}", free_port()));
    let mut config = HostConfig::new(manifest);
    config.trigger_loss = spin_test_host::TriggerLoss::KeepServing;
    let host = RunningHost::start(config).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!host.has_ended());
    assert!(answers(&host.base_url()).await);
    host.stop().await;
}

#[test]
fn the_binary_exits_with_an_error_when_its_trigger_is_lost() {
    let manifest = manifest_with_trigger_at(&format!("redis://127.0.0.1:{}", free_port()));
    let token = format!("api_token={API_TOKEN}");
    let (code, stderr) =
        run_host_to_exit(&["--from", manifest.to_str().unwrap(), "--variable", &token]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("A trigger exited unexpectedly. Terminating."),
        "{stderr}"
    );
}

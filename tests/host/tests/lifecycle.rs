//! Serving: per-request instances, traps, concurrency, memory, shutdown.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;

#[tokio::test]
async fn noop_route_answers_ok() {
    let host = start_fixture().await;
    let res = client()
        .get(format!("{}/noop", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    host.stop().await;
}

#[tokio::test]
async fn trap_is_500_with_empty_body_and_next_request_succeeds() {
    let host = start_fixture().await;
    let c = client();
    let res = c
        .get(format!("{}/api/trap", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(res.text().await.unwrap(), "");
    // Same client (keep-alive) and a fresh instance: the host keeps serving.
    let res = c
        .get(format!("{}/noop", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = get_json(&format!("{}/api/var/token", host.base_url())).await;
    assert_eq!((status, body), (200, json!({"ok": API_TOKEN})));
    host.stop().await;
}

#[tokio::test]
async fn every_request_gets_a_fresh_instance() {
    let host = start_fixture().await;
    let c = client();
    for _ in 0..3 {
        let res = c
            .get(format!("{}/api/counter", host.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.text().await.unwrap(),
            "1",
            "instance state leaked between requests"
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn instance_memory_can_grow_to_64_mib() {
    let host = start_fixture().await;
    let res = client()
        .get(format!("{}/api/alloc/64", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), (64 * 256).to_string());
    host.stop().await;
}

#[tokio::test]
async fn two_hundred_requests_with_32_in_flight_are_all_answered() {
    let host = start_fixture().await;
    let base = Arc::new(host.base_url());
    let client = client();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (base, client, limit) = (base.clone(), client.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let key = format!("k{i}");
            let value = format!("value-{i}");
            let res: serde_json::Value = client
                .put(format!("{base}/api/kv/default/{key}"))
                .body(value.clone())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(res, json!({"ok": null}));
            let res: serde_json::Value = client
                .get(format!("{base}/api/kv/default/{key}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(res, json!({"ok": value}));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, keys) = get_json(&format!("{base}/api/kv-keys/default")).await;
    assert_eq!(keys["ok"].as_array().unwrap().len(), 200);
    host.stop().await;
}

#[tokio::test]
async fn stop_frees_the_port() {
    let host = start_fixture().await;
    let addr = host.addr();
    host.stop().await;
    std::net::TcpListener::bind(addr).expect("port still in use after stop");
}

#[tokio::test]
async fn start_fails_clearly_when_a_component_source_is_missing() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "missing"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "does-not-exist.wasm"
"#,
    );
    let err =
        match spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest)).await {
            Ok(_) => panic!("must fail"),
            Err(e) => format!("{e:#}"),
        };
    assert!(err.contains("does-not-exist.wasm"), "{err}");
}

#[tokio::test]
async fn guest_output_goes_to_the_log_tagged_with_the_component() {
    let manifest = fixture_manifest();
    let token = format!("api_token={API_TOKEN}");
    let host = spawn_host(
        &["--from", manifest.to_str().unwrap(), "--variable", &token],
        &[],
    );
    let res = client()
        .get(format!("{}/api/print", host.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "printed");
    let mut found = (false, false);
    for _ in 0..50 {
        let log = host.log.lock().unwrap().clone();
        let tagged = |text: &str, stream: &str| {
            log.iter().any(|l| {
                l.contains(text)
                    && l.contains("component=fixture")
                    && l.contains(&format!("stream=\"{stream}\""))
            })
        };
        found = (
            tagged("line to stdout", "stdout"),
            tagged("line to stderr", "stderr"),
        );
        if found == (true, true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found, (true, true), "log: {:#?}", host.log.lock().unwrap());
}

#[tokio::test]
async fn outbound_http_is_limited_to_allowed_outbound_hosts() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "outbound"
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "{wasm}"
allowed_outbound_hosts = ["http://127.0.0.1:*"]
"#,
    );
    let host = spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest))
        .await
        .unwrap();
    let base = host.base_url();
    let (_, allowed) = get_json(&format!("{base}/api/outbound?{base}/noop")).await;
    assert_eq!(allowed, json!({"ok": {"status": 200, "body": "ok"}}));
    let port = host.addr().port();
    let (_, denied) = get_json(&format!("{base}/api/outbound?http://localhost:{port}/noop")).await;
    let err = denied["err"].as_str().unwrap_or_else(|| panic!("{denied}"));
    assert!(err.contains("HttpRequestDenied"), "{err}");
    host.stop().await;
}

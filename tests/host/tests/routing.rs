//! Routing and request headers, as Spin 4.0.2 does them.

mod common;

use common::*;
use serde_json::Value;

fn header<'a>(body: &'a Value, name: &str) -> &'a str {
    body["ok"]["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("header {name} missing in {body}"))
}

#[tokio::test]
async fn exact_route_beats_wildcard() {
    let host = start_fixture().await;
    let (status, body) = get_json(&format!("{}/api/exact", host.base_url())).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"]["component"], "exact");
    // A longer path under the same prefix goes to the /api/... wildcard.
    let (_, body) = get_json(&format!("{}/api/exact/more", host.base_url())).await;
    assert_eq!(body["ok"]["component"], "fixture");
    host.stop().await;
}

#[tokio::test]
async fn longest_wildcard_prefix_wins() {
    let host = start_fixture().await;
    let base = host.base_url();
    let (_, deeper) = get_json(&format!("{base}/api/deeper/x/y")).await;
    assert_eq!(deeper["ok"]["component"], "deeper");
    let (_, api) = get_json(&format!("{base}/api/other")).await;
    assert_eq!(api["ok"]["component"], "fixture");
    let (_, root) = get_json(&format!("{base}/elsewhere")).await;
    assert_eq!(root["ok"]["component"], "catchall");
    host.stop().await;
}

#[tokio::test]
async fn unmatched_path_is_404_with_empty_body() {
    let manifest = temp_manifest(
        r#"
spin_manifest_version = 2
[application]
name = "no-catchall"
[[trigger.http]]
route = "/only"
component = "c"
[component.c]
source = "{wasm}"
"#,
    );
    let host = spin_test_host::RunningHost::start(spin_test_host::HostConfig::new(manifest))
        .await
        .unwrap();
    let res = client()
        .get(format!("{}/elsewhere", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), "");
    host.stop().await;
}

#[tokio::test]
async fn spin_headers_are_set_as_spin_sets_them() {
    let host = start_fixture().await;
    let addr = host.addr();
    let url = format!("{}/api/deeper/a/b/?x=1&y=2", host.base_url());
    let (_, body) = get_json(&url).await;
    assert_eq!(
        header(&body, "spin-full-url"),
        format!("http://{addr}/api/deeper/a/b/?x=1&y=2")
    );
    assert_eq!(header(&body, "spin-path-info"), "/a/b/");
    assert_eq!(header(&body, "spin-matched-route"), "/api/deeper/...");
    assert_eq!(header(&body, "spin-base-path"), "/");
    assert_eq!(header(&body, "spin-raw-component-route"), "/api/deeper/...");
    assert_eq!(header(&body, "spin-component-route"), "/api/deeper");
    let client_addr = header(&body, "spin-client-addr");
    assert!(client_addr.starts_with("127.0.0.1:"), "{client_addr}");
    assert_ne!(
        client_addr,
        addr.to_string(),
        "must be the peer, not the server"
    );
    host.stop().await;
}

#[tokio::test]
async fn exact_route_has_empty_path_info() {
    let host = start_fixture().await;
    let (_, body) = get_json(&format!("{}/api/exact", host.base_url())).await;
    assert_eq!(header(&body, "spin-path-info"), "");
    assert_eq!(header(&body, "spin-matched-route"), "/api/exact");
    assert_eq!(header(&body, "spin-component-route"), "/api/exact");
    host.stop().await;
}

#[tokio::test]
async fn named_wildcards_become_path_match_headers() {
    let host = start_fixture().await;
    let (_, body) = get_json(&format!("{}/items/42/parts/wheel/x", host.base_url())).await;
    assert_eq!(body["ok"]["component"], "items");
    assert_eq!(header(&body, "spin-path-match-id"), "42");
    assert_eq!(header(&body, "spin-path-match-part"), "wheel");
    assert_eq!(header(&body, "spin-path-info"), "/x");
    assert_eq!(
        header(&body, "spin-component-route"),
        "/items/:id/parts/:part"
    );
    host.stop().await;
}

#[tokio::test]
async fn client_sent_spin_headers_are_replaced() {
    let host = start_fixture().await;
    let res = client()
        .get(format!("{}/api/exact", host.base_url()))
        .header("spin-client-addr", "6.6.6.6:666")
        .header("spin-full-url", "http://evil/")
        .header("spin-path-match-id", "forged")
        .header("x-ordinary", "kept")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(header(&body, "spin-client-addr").starts_with("127.0.0.1:"));
    assert!(header(&body, "spin-full-url").ends_with("/api/exact"));
    assert!(body["ok"]["headers"].get("spin-path-match-id").is_none());
    assert_eq!(header(&body, "x-ordinary"), "kept");
    host.stop().await;
}

#[tokio::test]
async fn health_endpoint_answers_ok() {
    let host = start_fixture().await;
    let res = client()
        .get(format!("{}/.well-known/spin/health", host.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "OK");
    host.stop().await;
}

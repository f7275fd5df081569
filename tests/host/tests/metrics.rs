//! `--metrics-listen`: the host's Prometheus page counts requests by
//! component, route and status, key-value calls, traps and deadline kills,
//! on its own listener only.

mod common;

use std::time::Duration;

use common::*;
use spin_test_host::RunningHost;

async fn start_with_metrics() -> RunningHost {
    let mut config = fixture_config();
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    config.limits.request_timeout = Duration::from_secs(1);
    RunningHost::start(config).await.unwrap()
}

async fn metrics_page(host: &RunningHost) -> String {
    let addr = host.metrics_addr().expect("metrics listener");
    let res = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    res.text().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

async fn get(host: &RunningHost, path: &str) -> u16 {
    client()
        .get(format!("{}{path}", host.base_url()))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn requests_are_counted_by_component_route_method_and_status() {
    let host = start_with_metrics().await;
    for _ in 0..3 {
        assert_eq!(get(&host, "/noop").await, 200);
    }
    assert_eq!(get(&host, "/api/echo/id-4242").await, 200);
    let page = metrics_page(&host).await;
    assert_eq!(
        sample(
            &page,
            r#"spin_host_http_requests_total{component="noop",method="GET",route="/noop",status="200"}"#
        ),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            r#"spin_host_http_request_duration_seconds_count{component="noop",method="GET",route="/noop"}"#
        ),
        Some(3.0),
        "{page}"
    );
    // The route label is the spin.toml route, never the raw path.
    assert!(!page.contains("id-4242"), "{page}");
    assert_eq!(
        sample(
            &page,
            r#"spin_host_http_requests_total{component="fixture",method="GET",route="/api/...",status="200"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "spin_host_instances_max"),
        Some(f64::from(spin_test_host::Limits::default().max_instances))
    );
    assert_eq!(
        sample(&page, "spin_host_http_requests_in_flight"),
        Some(0.0)
    );
    host.stop().await;
}

#[tokio::test]
async fn key_value_calls_are_counted_with_their_outcome() {
    let host = start_with_metrics().await;
    let res = client()
        .put(format!("{}/api/kv/default/metrics-key", host.base_url()))
        .body("v")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = metrics_page(&host).await;
    assert_eq!(
        sample(
            &page,
            r#"spin_host_key_value_calls_total{component="fixture",op="set",outcome="ok"}"#
        ),
        Some(1.0),
        "{page}"
    );
    host.stop().await;
}

#[tokio::test]
async fn traps_and_deadline_kills_are_counted_apart() {
    let host = start_with_metrics().await;
    assert_eq!(get(&host, "/api/trap").await, 500);
    assert_eq!(get(&host, "/api/spin").await, 500);
    let page = metrics_page(&host).await;
    assert_eq!(
        sample(
            &page,
            r#"spin_host_guest_failures_total{component="fixture",reason="trap"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            r#"spin_host_guest_failures_total{component="fixture",reason="deadline"}"#
        ),
        Some(1.0),
        "{page}"
    );
    host.stop().await;
}

#[tokio::test]
async fn the_metrics_page_is_not_served_on_the_app_port() {
    let host = start_with_metrics().await;
    let res = client()
        .get(format!("{}/metrics", host.base_url()))
        .send()
        .await
        .unwrap();
    // The catch-all component answers it, as any other path.
    assert!(!res.text().await.unwrap().contains("spin_host_"));
    host.stop().await;
}

#[tokio::test]
async fn no_metrics_listener_unless_asked() {
    let host = start_fixture().await;
    assert_eq!(host.metrics_addr(), None);
    host.stop().await;
}

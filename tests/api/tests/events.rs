//! Order events end to end (README "Order events"): the outbox row committed
//! with each order change, the announcement on Redis, the events app
//! (`spin-events.toml`, a host of its own beside the API's) posting signed
//! webhooks to a receiver this test starts, and delivery on request after an
//! outage. Each test has a database and a channel of its own, so only its
//! own events are delivered to it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use api_tests::receiver::{verify_with_reference_library, Receiver};
use api_tests::{unique, AppOptions, TestApp};
use serde_json::{json, Value};

/// A signing key as Standard Webhooks writes them (base64 behind `whsec_`).
const SECRET: &str = "whsec_dGVzdC1zZWNyZXQtb2YtdHdlbnR5LWZvdXIh";

/// An app on a fresh database and channel, delivering to `receiver`.
async fn start(receiver: &Receiver, extra: Vec<(String, String)>) -> TestApp {
    let mut variables = vec![
        ("events_channel".to_string(), unique("events-")),
        ("webhook_url".to_string(), receiver.url()),
        ("webhook_origin".to_string(), receiver.origin()),
        ("webhook_secret".to_string(), SECRET.to_string()),
    ];
    variables.extend(extra);
    TestApp::start_with(AppOptions {
        variables,
        own_database: true,
        events_app: true,
        ..Default::default()
    })
    .await
}

async fn product(app: &TestApp, admin: &str, stock: i64) -> String {
    let resp = app
        .http
        .post(app.url("/api/v1/products"))
        .bearer_auth(admin)
        .json(&json!({"sku": unique("EV-"), "name": "Evented", "price_cents": 250, "stock": stock}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn order(app: &TestApp, token: &str, product: &str) -> Value {
    let resp = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// `POST /api/v1/events/deliver` as the admin: the run's 200 answer.
async fn deliver_now(app: &TestApp, admin: &str) -> Value {
    let resp = app
        .http
        .post(app.url("/api/v1/events/deliver"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `(id, type, state, attempts)` of every outbox row, oldest first.
async fn outbox(app: &TestApp) -> Vec<(String, String, String, i64)> {
    app.query(
        "SELECT id, type, state, attempts FROM order_events ORDER BY seq",
        (),
    )
    .await
}

/// The outbox once no row is `pending` (or after 10 s): the events component
/// records a delivery after the receiver answered it, so right after the
/// receiver accepted an event its row may still say `pending`.
async fn settled_outbox(app: &TestApp) -> Vec<(String, String, String, i64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = outbox(app).await;
        if rows.iter().all(|(_, _, state, _)| state != "pending")
            || tokio::time::Instant::now() >= deadline
        {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn an_order_and_its_cancellation_arrive_once_in_order_and_signed() {
    let receiver = Receiver::start(&[]).await;
    let app = start(&receiver, vec![]).await;
    let admin = app.admin_token().await;
    let product = product(&app, &admin, 10).await;
    let (_, token) = app.new_user().await;
    let placed = order(&app, &token, &product).await;
    let order_id = placed["id"].as_str().unwrap();
    let cancel = app
        .http
        .post(app.url(&format!("/api/v1/orders/{order_id}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);

    let accepted = receiver.wait_for_accepted(2, Duration::from_secs(20)).await;
    let rows = settled_outbox(&app).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        accepted,
        [rows[0].0.clone(), rows[1].0.clone()],
        "once each, in order"
    );
    let deliveries = receiver.deliveries();
    let bodies: Vec<Value> = deliveries
        .iter()
        .map(|d| serde_json::from_slice(&d.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["type"], "order.created");
    assert_eq!(bodies[1]["type"], "order.cancelled");
    assert_eq!(bodies[0]["data"]["order"], placed);
    assert_eq!(bodies[1]["data"]["order"]["id"], order_id);
    assert_eq!(bodies[1]["data"]["order"]["status"], "cancelled");
    for (delivery, body) in deliveries.iter().zip(&bodies) {
        assert_eq!(body["id"], delivery.id.as_str());
        let signed_at: i64 = delivery.timestamp.parse().expect("webhook-timestamp");
        assert!((now_secs() - signed_at).abs() < 60, "{signed_at}");
    }
    // The specification's reference library (PyPI's standardwebhooks), not
    // our code, accepts every delivery...
    assert_eq!(
        verify_with_reference_library(SECRET, &deliveries),
        vec![Ok(()); deliveries.len()]
    );
    // ...and refuses an altered body, another id, or another secret.
    let first = &deliveries[0];
    let mut altered = first.clone();
    altered.body.extend_from_slice(b" ");
    let mut renamed = first.clone();
    renamed.id = rows[1].0.clone();
    for refused in verify_with_reference_library(SECRET, &[altered, renamed]) {
        assert!(refused.is_err(), "{refused:?}");
    }
    let other = "whsec_YW5vdGhlci1zZWNyZXQtZW50aXJlbHktMTIz";
    assert!(verify_with_reference_library(other, &deliveries[..1])[0].is_err());
    assert!(rows
        .iter()
        .all(|(_, _, state, attempts)| state == "delivered" && *attempts == 1));

    // The admin list shows them delivered.
    let list: Value = app
        .http
        .get(app.url("/api/v1/events?state=delivered"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["type"], "order.cancelled");
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_down_for_the_first_attempts_gets_the_event_once_it_is_back() {
    let receiver = Receiver::start(&[503, 503]).await;
    let app = start(&receiver, vec![]).await;
    let admin = app.admin_token().await;
    let product = product(&app, &admin, 10).await;
    let (_, token) = app.new_user().await;
    order(&app, &token, &product).await;

    let accepted = receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    let rows = settled_outbox(&app).await;
    assert_eq!(accepted, [rows[0].0.clone()]);
    let tries: Vec<u16> = receiver.deliveries().iter().map(|d| d.answered).collect();
    assert_eq!(
        tries,
        [503, 503, 200],
        "retried with backoff until accepted"
    );
    assert_eq!((rows[0].2.as_str(), rows[0].3), ("delivered", 3));
    // Nothing is sent again once delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = deliver_now(&app, &admin).await;
    assert_eq!(
        (body["delivered"].as_u64(), body["pending"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(receiver.accepted_ids().len(), 1, "no duplicate delivery");
    app.stop().await;
}

/// A Redis server of this test's own, so stopping it touches no other test.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The Done-when of "the API never depends on Redis": the Redis the test
/// started is killed for 10 s while orders are placed. The events app ends
/// with it, as Spin's would; the API does not notice: every order is 201 and
/// `/health` stays 200. Once Redis is back (and the events app restarted, as
/// SpinKube would), every event reaches the receiver.
#[tokio::test]
async fn orders_placed_while_redis_is_down_for_10_s_all_succeed_and_are_delivered_after() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port);
    let receiver = Receiver::start(&[]).await;
    let mut app = start(
        &receiver,
        vec![
            ("redis_url".into(), format!("redis://127.0.0.1:{port}")),
            ("redis_host".into(), format!("127.0.0.1:{port}")),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let product = product(&app, &admin, 1_000).await;
    let (_, token) = app.new_user().await;
    // Announced and delivered while Redis is up.
    let timed = |app: &TestApp| {
        let (http, url, token, product) = (
            app.http.clone(),
            app.url("/api/v1/orders"),
            token.clone(),
            product.clone(),
        );
        async move {
            let started = std::time::Instant::now();
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), started.elapsed())
        }
    };
    let mut up = Vec::new();
    for _ in 0..5 {
        let (status, took) = timed(&app).await;
        assert_eq!(status, 201);
        up.push(took);
    }
    assert_eq!(
        receiver
            .wait_for_accepted(5, Duration::from_secs(20))
            .await
            .len(),
        5
    );

    redis.stop();
    let outage = std::time::Instant::now();
    let mut down = Vec::new();
    while outage.elapsed() < Duration::from_secs(10) {
        let (status, took) = timed(&app).await;
        assert_eq!(status, 201, "an order while Redis is down");
        down.push(took);
        let health = app
            .http
            .get(app.url("/api/v1/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "health while Redis is down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = app.events.as_ref().unwrap();
    assert!(
        events.has_ended(),
        "the events app ended with its Redis, as on Spin"
    );
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "orders: median {:?} with Redis up ({} orders), {:?} with Redis down ({} orders)",
        median(up),
        5,
        median(down.clone()),
        down.len()
    );

    let _redis = OwnRedis::start(port);
    app.restart_events_app().await;
    // What waited in the outbox goes out on the next run: the schedule's
    // (or any later announcement's).
    let body = deliver_now(&app, &admin).await;
    assert_eq!(body["pending"], 0, "{body}");
    let rows = outbox(&app).await;
    assert_eq!(rows.len(), 5 + down.len());
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(receiver.accepted_ids(), ids, "every event, once, in order");
    // The restarted events app delivers new announcements again.
    let (status, _) = timed(&app).await;
    assert_eq!(status, 201);
    let accepted = receiver
        .wait_for_accepted(rows.len() + 1, Duration::from_secs(20))
        .await;
    assert_eq!(accepted.len(), rows.len() + 1);
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_orders_make_a_hundred_events_all_delivered() {
    let receiver = Receiver::start(&[]).await;
    let app = start(&receiver, vec![]).await;
    let admin = app.admin_token().await;
    let product = product(&app, &admin, 1000).await;
    let (_, token) = app.new_user().await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let req = app
            .http
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&token)
            .json(&json!({"items": [{"product_id": product, "quantity": 1}]}));
        set.spawn(async move { req.send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), 201);
    }
    let accepted = receiver
        .wait_for_accepted(100, Duration::from_secs(60))
        .await;
    let rows = settled_outbox(&app).await;
    assert_eq!(rows.len(), 100);
    assert!(rows.iter().all(|r| r.1 == "order.created"));
    let mut distinct = accepted.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 100, "every event accepted");
    assert_eq!(accepted.len(), 100, "none accepted twice");
    assert!(rows.iter().all(|r| r.2 == "delivered"));
    app.stop().await;
}

#[tokio::test]
async fn the_events_routes_are_for_admins_only() {
    let receiver = Receiver::start(&[]).await;
    let app = start(&receiver, vec![]).await;
    let (_, token) = app.new_user().await;
    let resp = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    api_tests::assert_problem(resp, 403, "forbidden").await;
    let resp = app
        .http
        .post(app.url("/api/v1/events/deliver"))
        .send()
        .await
        .unwrap();
    api_tests::assert_problem(resp, 401, "invalid_token").await;
    app.stop().await;
}

//! Black-box tests of the orders component (products and orders) through the
//! test host, on the store of the run (the real MariaDB or Spin's SQLite)
//! and the Redis-backed key-value store.

use std::time::Duration;

use api_tests::{unique, AppOptions, TestApp};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// Creates a product as `admin` and returns its id.
async fn create_product(app: &TestApp, admin: &str, price_cents: i64, stock: i64) -> String {
    let resp = app
        .http
        .post(app.url("/api/v1/products"))
        .bearer_auth(admin)
        .json(&json!({"sku": unique("SKU-"), "name": "Test product", "price_cents": price_cents, "stock": stock}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn stock_of(app: &TestApp, product_id: &str) -> i64 {
    let rows: Vec<(i64,)> = app
        .query("SELECT stock FROM products WHERE id = ?", (product_id,))
        .await;
    rows[0].0
}

async fn orders_with_product(app: &TestApp, product_id: &str) -> i64 {
    let rows: Vec<(i64,)> = app
        .query(
            "SELECT COUNT(DISTINCT order_id) FROM order_lines WHERE product_id = ?",
            (product_id,),
        )
        .await;
    rows[0].0
}

fn order_request(
    app: &TestApp,
    token: &str,
    items: Value,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .json(&json!({ "items": items }));
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req
}

async fn problem(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    (status, resp.json().await.unwrap())
}

async fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn hundred_concurrent_orders_never_oversell() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 30).await;
    let (_, token) = app.new_user().await;

    let mut set = JoinSet::new();
    for _ in 0..100 {
        let req = order_request(
            &app,
            &token,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        );
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body)
        });
    }
    let mut created = 0;
    let mut short = 0;
    while let Some(result) = set.join_next().await {
        let (status, body) = result.unwrap();
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["code"], "insufficient_stock");
                assert_eq!(body["product_id"], product.as_str());
                short += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, short), (30, 70));
    assert_eq!(stock_of(&app, &product).await, 0);
    assert_eq!(orders_with_product(&app, &product).await, 30);
    app.stop().await;
}

#[tokio::test]
async fn order_with_a_short_second_product_changes_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let plenty = create_product(&app, &admin, 100, 10).await;
    let scarce = create_product(&app, &admin, 100, 1).await;
    let (_, token) = app.new_user().await;

    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": plenty, "quantity": 3}, {"product_id": scarce, "quantity": 2}]),
        None,
    )
    .send()
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "insufficient_stock");
    assert_eq!(body["product_id"], scarce.as_str());
    assert_eq!(stock_of(&app, &plenty).await, 10);
    assert_eq!(stock_of(&app, &scarce).await, 1);
    assert_eq!(orders_with_product(&app, &plenty).await, 0);

    // An unknown product is named, and nothing changes either.
    let ghost = "0".repeat(32);
    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": plenty, "quantity": 1}, {"product_id": ghost, "quantity": 1}]),
        None,
    )
    .send()
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "product_not_found");
    assert_eq!(body["product_id"], ghost.as_str());
    assert_eq!(stock_of(&app, &plenty).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn placed_order_copies_prices_and_is_located() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let a = create_product(&app, &admin, 250, 5).await;
    let b = create_product(&app, &admin, 1_000, 5).await;
    let (user, token) = app.new_user().await;

    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1}]),
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let order: Value = resp.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["status"], "created");
    assert_eq!(order["user_id"], user["id"]);
    assert_eq!(order["total_cents"], 1_500);
    assert_eq!(order["items"][0]["unit_price_cents"], 250);
    assert_eq!(order["items"][0]["line_total_cents"], 500);
    assert_eq!(order["items"][1]["product_id"], b.as_str());
    assert!(order["created_at"].as_str().unwrap().ends_with('Z'));

    // A later price change does not touch the placed order.
    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/products/{a}")))
        .bearer_auth(&admin)
        .json(&json!({"price_cents": 999}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, again) = json_of(
        app.http
            .get(app.url(&location))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again, order);
    app.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_make_one_order() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 1_000).await;
    let (_, token) = app.new_user().await;
    let key = unique("key-");

    let mut set = JoinSet::new();
    for _ in 0..20 {
        let req = order_request(
            &app,
            &token,
            json!([{"product_id": product, "quantity": 2}]),
            Some(&key),
        );
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            (status, location, resp.bytes().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(result) = set.join_next().await {
        answers.push(result.unwrap());
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 201, "{}", String::from_utf8_lossy(&first.2));
    assert!(answers.iter().all(|a| *a == first), "answers differ");
    assert_eq!(orders_with_product(&app, &product).await, 1);
    assert_eq!(stock_of(&app, &product).await, 998);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refused_requests_with_one_key_get_the_first_refusal() {
    // The first refusal is recorded under the key (nothing else changes), so
    // the duplicates waiting on the key replay it rather than race again.
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 1).await;
    let (_, token) = app.new_user().await;
    let key = unique("key-");

    let mut set = JoinSet::new();
    for _ in 0..20 {
        let req = order_request(
            &app,
            &token,
            json!([{"product_id": product, "quantity": 2}]),
            Some(&key),
        );
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(result) = set.join_next().await {
        answers.push(result.unwrap());
    }
    let first = answers[0].clone();
    let body: Value = serde_json::from_slice(&first.1).unwrap();
    assert_eq!(
        (first.0, body["code"].as_str()),
        (409, Some("insufficient_stock"))
    );
    assert!(answers.iter().all(|a| *a == first), "answers differ");
    assert_eq!(stock_of(&app, &product).await, 1);
    let keys: Vec<(i64,)> = app
        .query(
            "SELECT response_status FROM idempotency_keys WHERE idem_key = ?",
            (key.as_str(),),
        )
        .await;
    assert_eq!(keys, vec![(409,)]);
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_rules() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 100).await;
    let (user, token) = app.new_user().await;
    let key = unique("key-");
    let items = json!([{"product_id": product, "quantity": 1}]);

    let first = order_request(&app, &token, items.clone(), Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first_body = first.bytes().await.unwrap();

    // Same key, another body: 422, nothing placed.
    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": product, "quantity": 2}]),
        Some(&key),
    )
    .send()
    .await
    .unwrap();
    let (status, body) = problem(resp).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(stock_of(&app, &product).await, 99);

    // Another user may use the same key for their own order.
    let (_, other) = app.new_user().await;
    let resp = order_request(&app, &other, items.clone(), Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(stock_of(&app, &product).await, 98);

    // Older than 24 hours: treated as new.
    app.execute(
        "UPDATE idempotency_keys SET created_at_ms = created_at_ms - 90000000 WHERE user_id = ? AND idem_key = ?",
        (user["id"].as_str().unwrap(), key.as_str()),
    )
    .await;
    let resp = order_request(&app, &token, items.clone(), Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_ne!(resp.bytes().await.unwrap(), first_body);
    assert_eq!(stock_of(&app, &product).await, 97);

    // Empty and over-long keys are 400.
    for bad in [String::new(), "k".repeat(256)] {
        let resp = order_request(&app, &token, items.clone(), Some(&bad))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "key of {} chars", bad.len());
    }
    app.stop().await;
}

#[tokio::test]
async fn ten_concurrent_cancels_give_stock_back_once() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (_, token) = app.new_user().await;
    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": product, "quantity": 4}]),
        None,
    )
    .send()
    .await
    .unwrap();
    let order: Value = resp.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_string();
    assert_eq!(stock_of(&app, &product).await, 6);

    let mut set = JoinSet::new();
    for _ in 0..10 {
        let req = app
            .http
            .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
            .bearer_auth(&token);
        set.spawn(async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap())
        });
    }
    let mut answers = Vec::new();
    while let Some(result) = set.join_next().await {
        answers.push(result.unwrap());
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 200, "{}", String::from_utf8_lossy(&first.1));
    assert!(answers.iter().all(|a| *a == first), "answers differ");
    let body: Value = serde_json::from_slice(&first.1).unwrap();
    assert_eq!(body["status"], "cancelled");
    assert_eq!(stock_of(&app, &product).await, 10);

    // Still the same answer afterwards.
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), first.1);
    assert_eq!(stock_of(&app, &product).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn cancel_permissions_and_state() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (_, owner) = app.new_user().await;
    let (_, stranger) = app.new_user().await;
    let place = || async {
        let resp = order_request(
            &app,
            &owner,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        )
        .send()
        .await
        .unwrap();
        let order: Value = resp.json().await.unwrap();
        order["id"].as_str().unwrap().to_string()
    };
    let cancel = |id: String, token: String| {
        app.http
            .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
            .bearer_auth(token)
            .send()
    };

    let id = place().await;
    let (status, body) = problem(cancel(id.clone(), stranger.clone()).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );
    assert_eq!(stock_of(&app, &product).await, 9);
    let resp = cancel(id.clone(), admin.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(stock_of(&app, &product).await, 10);

    // A state this API cannot cancel from (set by an operator): 409.
    let id = place().await;
    app.execute(
        "UPDATE orders SET status = 'fulfilled' WHERE id = ?",
        (id.as_str(),),
    )
    .await;
    let (status, body) = problem(cancel(id.clone(), owner.clone()).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("invalid_state"))
    );
    assert_eq!(stock_of(&app, &product).await, 9);

    let ghost = "e".repeat(32);
    assert_eq!(cancel(ghost, owner.clone()).await.unwrap().status(), 404);
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn order_reads_and_permissions() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (alice, alice_token) = app.new_user().await;
    let (bob, bob_token) = app.new_user().await;
    let alice_id = alice["id"].as_str().unwrap();
    let bob_id = bob["id"].as_str().unwrap();
    let mut alice_orders = Vec::new();
    for _ in 0..3 {
        let resp = order_request(
            &app,
            &alice_token,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        )
        .send()
        .await
        .unwrap();
        let order: Value = resp.json().await.unwrap();
        alice_orders.push(order["id"].as_str().unwrap().to_string());
    }
    let get = |path: String, token: Option<String>| {
        let mut req = app.http.get(app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };

    // Own list, newest first, paginated.
    let (status, page) = json_of(
        get("/api/v1/orders?limit=2".into(), Some(alice_token.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            page["total"].as_i64(),
            page["page"].as_i64(),
            page["limit"].as_i64()
        ),
        (Some(3), Some(1), Some(2))
    );
    assert_eq!(page["items"][0]["id"], alice_orders[2].as_str());
    let (_, page) = json_of(
        get("/api/v1/orders".into(), Some(bob_token.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["total"], 0);

    // Admin: all, or one user's.
    let (_, page) = json_of(
        get(
            format!("/api/v1/orders?user_id={alice_id}"),
            Some(admin.clone()),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(page["total"], 3);
    let (_, page) = json_of(
        get("/api/v1/orders?limit=100".into(), Some(admin.clone()))
            .await
            .unwrap(),
    )
    .await;
    assert!(page["total"].as_i64().unwrap() >= 3);

    // A user may not look at someone else's list.
    let (status, _) = problem(
        get(
            format!("/api/v1/orders?user_id={alice_id}"),
            Some(bob_token.clone()),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = json_of(
        get(
            format!("/api/v1/orders?user_id={bob_id}"),
            Some(bob_token.clone()),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // One order: owner and admin see it; anyone else gets 404.
    let path = format!("/api/v1/orders/{}", alice_orders[0]);
    assert_eq!(
        get(path.clone(), Some(alice_token.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(path.clone(), Some(admin.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, body) = problem(get(path.clone(), Some(bob_token.clone())).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = problem(get(path.clone(), None).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        get("/api/v1/orders/nope".into(), Some(alice_token.clone()))
            .await
            .unwrap()
            .status(),
        404
    );

    // Bad pagination and wrong methods.
    assert_eq!(
        get("/api/v1/orders?page=0".into(), Some(alice_token.clone()))
            .await
            .unwrap()
            .status(),
        400
    );
    let resp = app
        .http
        .delete(app.url(&path))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET");
    app.stop().await;
}

#[tokio::test]
async fn order_input_errors() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (_, token) = app.new_user().await;

    let cases = [
        json!([]),
        json!([{"product_id": product, "quantity": 0}]),
        json!([{"product_id": product, "quantity": 1001}]),
        json!([{"product_id": product, "quantity": 1}, {"product_id": product, "quantity": 1}]),
        Value::Array(
            (0..51)
                .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1}))
                .collect(),
        ),
    ];
    for items in cases {
        let resp = order_request(&app, &token, items.clone(), None)
            .send()
            .await
            .unwrap();
        let (status, body) = problem(resp).await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (400, Some("validation_failed")),
            "{items}"
        );
    }
    let resp = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .json(&json!({"items": [{"product_id": product, "quantity": 1}], "coupon": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .http
        .post(app.url("/api/v1/orders"))
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(stock_of(&app, &product).await, 10);
    app.stop().await;
}

#[tokio::test]
async fn product_routes_and_permissions() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let (_, user) = app.new_user().await;
    let sku = unique("SKU-");
    let body = json!({"sku": sku, "name": "Mug", "price_cents": 1250, "stock": 3});

    let post = |token: Option<&str>, body: &Value| {
        let mut req = app.http.post(app.url("/api/v1/products")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(post(None, &body).await.unwrap().status(), 401);
    let (status, b) = problem(post(Some(&user), &body).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), b["code"].as_str()),
        (403, Some("forbidden"))
    );

    let resp = post(Some(&admin), &body).await.unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let product: Value = resp.json().await.unwrap();
    let id = product["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/products/{id}"));
    assert_eq!(
        (product["sku"].as_str(), product["stock"].as_i64()),
        (Some(sku.as_str()), Some(3))
    );

    let (status, b) = problem(post(Some(&admin), &body).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), b["code"].as_str()),
        (409, Some("sku_taken"))
    );

    let bad = json!({"sku": "has space", "name": "", "price_cents": 1.5, "stock": -1});
    let (status, b) = problem(post(Some(&admin), &bad).await.unwrap()).await;
    assert_eq!(
        (status.as_u16(), b["code"].as_str()),
        (400, Some("validation_failed"))
    );
    assert_eq!(b["errors"].as_array().unwrap().len(), 4);

    // Public reads.
    let (status, got) = json_of(app.http.get(app.url(&location)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(got, product);
    let (status, page) = json_of(
        app.http
            .get(app.url("/api/v1/products?page=1&limit=5"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (page["page"].as_i64(), page["limit"].as_i64()),
        (Some(1), Some(5))
    );
    assert!(page["total"].as_i64().unwrap() >= 1);
    assert!(page["items"].as_array().unwrap().len() <= 5);
    assert_eq!(
        app.http
            .get(app.url("/api/v1/products?limit=101"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let (status, b) = problem(
        app.http
            .get(app.url(&format!("/api/v1/products/{}", "0".repeat(32))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), b["code"].as_str()),
        (404, Some("not_found"))
    );

    // Updates: admin only, unknown id 404, empty patch 400.
    let patch = |token: &str, path: &str, body: Value| {
        app.http
            .patch(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(&user, &location, json!({"stock": 1}))
            .await
            .unwrap()
            .status(),
        403
    );
    let ghost = format!("/api/v1/products/{}", "1".repeat(32));
    assert_eq!(
        patch(&admin, &ghost, json!({"stock": 1}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        patch(&admin, &location, json!({})).await.unwrap().status(),
        400
    );
    assert_eq!(
        patch(&admin, &location, json!({"sku": "X"}))
            .await
            .unwrap()
            .status(),
        400
    );
    let (status, updated) = json_of(
        patch(&admin, &location, json!({"name": "Big mug", "stock": 7}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["stock"].as_i64(),
            updated["price_cents"].as_i64()
        ),
        (Some("Big mug"), Some(7), Some(1250))
    );
    let (_, got) = json_of(app.http.get(app.url(&location)).send().await.unwrap()).await;
    assert_eq!(got, updated, "the update invalidated the cached product");

    let resp = app.http.delete(app.url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, PATCH");
    assert_eq!(
        app.http
            .get(app.url("/api/v1/products/a/b"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn product_reads_are_served_from_the_cache() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let id = create_product(&app, &admin, 100, 10).await;
    let path = format!("/api/v1/products/{id}");
    let (_, first) = json_of(app.http.get(app.url(&path)).send().await.unwrap()).await;
    assert!(app.kv_has(&format!("p:{id}")).await);

    // Changed behind the API's back: the cached copy still answers.
    app.execute(
        "UPDATE products SET name = 'changed' WHERE id = ?",
        (id.as_str(),),
    )
    .await;
    let (_, second) = json_of(app.http.get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(second, first);

    // An order changes the stock and drops the cached copy.
    let (_, token) = app.new_user().await;
    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": id, "quantity": 1}]),
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(!app.kv_has(&format!("p:{id}")).await);
    let (_, third) = json_of(app.http.get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(
        (third["stock"].as_i64(), third["name"].as_str()),
        (Some(9), Some("changed"))
    );
    app.stop().await;
}

#[tokio::test]
async fn unreachable_database_is_503_not_500_nor_a_hang() {
    let good = TestApp::start().await;
    let admin = good.admin_token().await;
    let product = create_product(&good, &admin, 100, 10).await;
    // Same key-value store (so the token is not revoked) but no database.
    let bad = TestApp::start_with(AppOptions {
        variables: vec![
            ("db_url".into(), "mysql://root@127.0.0.1:1/x".into()),
            ("db_host".into(), "127.0.0.1:1".into()),
        ],
        kv_prefix: Some(good.kv_prefix.clone()),
        ..Default::default()
    })
    .await;

    let requests = [
        bad.http.get(bad.url("/api/v1/products")),
        bad.http
            .get(bad.url(&format!("/api/v1/products/{}", "2".repeat(32)))),
        bad.http
            .post(bad.url("/api/v1/products"))
            .bearer_auth(&admin)
            .json(&json!({"sku": unique("S"), "name": "n", "price_cents": 1, "stock": 1})),
        order_request(
            &bad,
            &admin,
            json!([{"product_id": product, "quantity": 1}]),
            None,
        ),
        bad.http.get(bad.url("/api/v1/orders")).bearer_auth(&admin),
    ];
    for req in requests {
        let resp = tokio::time::timeout(Duration::from_secs(15), req.send())
            .await
            .expect("answers within 15 s")
            .unwrap();
        assert!(resp.headers().contains_key("retry-after"));
        let (status, body) = problem(resp).await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (503, Some("unavailable"))
        );
    }
    assert_eq!(stock_of(&good, &product).await, 10);
    bad.stop().await;
    good.stop().await;
}

#[tokio::test]
async fn deleted_users_orders_stay_visible_to_admins() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (user, token) = app.new_user().await;
    let user_id = user["id"].as_str().unwrap().to_string();
    let resp = order_request(
        &app,
        &token,
        json!([{"product_id": product, "quantity": 1}]),
        None,
    )
    .send()
    .await
    .unwrap();
    let order: Value = resp.json().await.unwrap();
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/users/{user_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    let (status, got) = json_of(
        app.http
            .get(app.url(&path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got, order);
    let (_, page) = json_of(
        app.http
            .get(app.url(&format!("/api/v1/orders?user_id={user_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["total"], 1);
    app.stop().await;
}

#[tokio::test]
async fn every_response_holding_an_order_is_no_store() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, 100, 10).await;
    let (_, token) = app.new_user().await;
    let items = json!([{"product_id": product, "quantity": 1}]);
    let key = unique("ns-");

    let placed = order_request(&app, &token, items.clone(), Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    assert_eq!(placed.headers()["cache-control"], "no-store");
    let id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let replayed = order_request(&app, &token, items, Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["cache-control"], "no-store");

    for resp in [
        app.http
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        app.http
            .get(app.url("/api/v1/orders"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        app.http
            .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(resp.status(), 200, "{}", resp.url());
        assert_eq!(
            resp.headers()["cache-control"],
            "no-store",
            "{}",
            resp.url()
        );
    }
    app.stop().await;
}

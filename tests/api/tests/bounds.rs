//! docs/API.md, "What anonymous traffic cannot make the API keep":
//! requests for ids that do not exist, however many, add nothing lasting to
//! the key-value store — so the store's key cap (1,024 on Fermyon's cloud)
//! cannot be filled by probing, and revocation keeps working.

use std::sync::Arc;

use api_tests::TestApp;
use tokio::sync::Semaphore;

/// How many unknown ids each kind of probe tries.
const PROBES: usize = 2_000;

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random");
    hex::encode(bytes)
}

/// GETs every path (16 at a time) and asserts each answered 404.
async fn all_404(app: &TestApp, paths: Vec<String>, token: Option<&str>) {
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::new();
    for path in paths {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let mut req = app.http.get(app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        tasks.push(tokio::spawn(async move {
            let status = req.send().await.expect("probe").status();
            drop(permit);
            (path, status)
        }));
    }
    for task in tasks {
        let (path, status) = task.await.expect("probe task");
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn thousands_of_unknown_ids_leave_the_key_count_unchanged_and_logout_still_works() {
    let app = TestApp::start().await;
    // The test's own setup: a user with a session (whatever keys that makes).
    let (_, token) = app.new_user().await;
    let before = app.kv_keys().await;

    let products = (0..PROBES)
        .map(|_| format!("/api/v1/products/{}", random_id()))
        .collect();
    all_404(&app, products, None).await;
    let content = (0..PROBES)
        .map(|_| format!("/api/v1/uploads/{}/content", random_id()))
        .collect();
    all_404(&app, content, None).await;
    let metadata = (0..PROBES)
        .map(|_| format!("/api/v1/uploads/{}", random_id()))
        .collect();
    all_404(&app, metadata, Some(&token)).await;

    let after = app.kv_keys().await;
    assert_eq!(
        after,
        before,
        "{} keys before, {} after {} probes",
        before.len(),
        after.len(),
        3 * PROBES
    );

    // Revocation writes still succeed: logout answers 204 and the token dies.
    let resp = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 204);
    let resp = app
        .http
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(resp.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn an_existing_product_is_still_cached_once() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let resp = app
        .http
        .post(app.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({
            "sku": api_tests::unique("B-"), "name": "Cached", "price_cents": 1, "stock": 1
        }))
        .send()
        .await
        .expect("create product");
    assert_eq!(resp.status(), 201);
    let id = resp.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    for _ in 0..3 {
        let resp = app
            .http
            .get(app.url(&format!("/api/v1/products/{id}")))
            .send()
            .await
            .expect("get product");
        assert_eq!(resp.status(), 200);
    }
    assert!(app.kv_has(&format!("p:{id}")).await);
    app.stop().await;
}

//! Read replicas and a database in trouble (README "Read replicas, and a
//! database in trouble"), against a MariaDB primary and replica of each
//! test's own ([`api_tests::mariadb`]): lag-tolerant reads on the replica
//! (seen by stopping the replica's SQL thread, so it lags), every other read
//! on the primary, a replica that cannot be reached falling back to the
//! primary, and products answered stale (and marked so) while the database
//! is down.
//!
//! MySQL only by nature: every app here runs on MySQL whatever
//! `API_TEST_STORE` says (scripts/test skips this binary in the SQLite run).

use std::time::{Duration, Instant};

use api_tests::mariadb::{MariaDb, Replicated, Role};
use api_tests::{AppOptions, Store, TestApp};
use mysql_async::prelude::*;
use reqwest::Response;
use serde_json::{json, Value};

/// Starts a primary and a replica, and the app on them.
async fn start() -> (Replicated, TestApp) {
    let db = Replicated::start()
        .await
        .expect("primary and replica start");
    let app = TestApp::start_with(db.app_options()).await;
    (db, app)
}

/// Creates a product named `name` as `admin` and returns its JSON.
async fn create_product(app: &TestApp, admin: &str, name: &str) -> Value {
    let resp = app
        .http
        .post(app.url("/api/v1/products"))
        .bearer_auth(admin)
        .json(&json!({"sku": api_tests::unique("REP-"), "name": name, "price_cents": 500, "stock": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// Places an order of one `product` as `token` and returns its JSON.
async fn place_order(app: &TestApp, token: &str, product: &str) -> Value {
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

/// `GET path` (as `token`, if any), answered within 10 s.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Response {
    let mut req = app.http.get(app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    tokio::time::timeout(Duration::from_secs(10), req.send())
        .await
        .unwrap_or_else(|_| panic!("GET {path} answers within 10 s"))
        .unwrap()
}

/// `GET path` that must answer 200: its JSON.
async fn get_ok(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let resp = get(app, path, token).await;
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The `field` of every item of a page.
fn items(page: &Value, field: &str) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("a page has items")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The name of product `id` on `role`, straight from the server.
async fn name_on(db: &Replicated, role: Role, id: &str) -> Option<String> {
    db.query::<String>(role, "SELECT name FROM products WHERE id = ?", (id,))
        .await
        .unwrap()
        .into_iter()
        .next()
}

/// How many rows of `table` have `id` on `role`.
async fn count_on(db: &Replicated, role: Role, table: &str, id: &str) -> i64 {
    db.query::<i64>(
        role,
        &format!("SELECT COUNT(*) FROM {table} WHERE id = ?"),
        (id,),
    )
    .await
    .unwrap()[0]
}

/// How many MySQL connections `component` failed to open, from the test
/// host's metrics (`spin_host_mysql_calls_total`).
async fn failed_opens(app: &TestApp, component: &str) -> f64 {
    let addr = app
        .host
        .metrics_addr()
        .expect("the test host serves metrics");
    let text = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let component = format!("component=\"{component}\"");
    text.lines()
        .filter(|l| l.starts_with("spin_host_mysql_calls_total{"))
        .filter(|l| {
            l.contains(&component) && l.contains("op=\"open\"") && l.contains("outcome=\"error\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Asserts a 503 `unavailable` problem with `Retry-After`.
async fn assert_unavailable(resp: Response, what: &str) {
    assert!(
        resp.headers().contains_key("retry-after"),
        "{what}: Retry-After"
    );
    assert!(
        !resp.headers().contains_key("cache-status"),
        "{what}: never answered stale"
    );
    api_tests::assert_problem(resp, 503, "unavailable").await;
}

// ------------------------------------------------------------ the harness

#[tokio::test]
async fn the_harness_replicates_the_primary() {
    let db = Replicated::start()
        .await
        .expect("primary and replica start");

    // The schema was replayed on the replica.
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()";
    let on_primary = db.query::<i64>(Role::Primary, tables, ()).await.unwrap()[0];
    let on_replica = db.query::<i64>(Role::Replica, tables, ()).await.unwrap()[0];
    assert!(on_primary >= 8, "migrated: {on_primary} tables");
    assert_eq!(on_replica, on_primary);

    // A write on the primary reaches the replica.
    db.exec(
        Role::Primary,
        "CREATE TABLE probe (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        (),
    )
    .await
    .unwrap();
    db.exec(Role::Primary, "INSERT INTO probe VALUES (1, 'one')", ())
        .await
        .unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    let probe = "SELECT id, v FROM probe ORDER BY id";
    assert_eq!(
        db.query::<(i32, String)>(Role::Replica, probe, ())
            .await
            .unwrap(),
        [(1, "one".to_string())]
    );

    // With the SQL thread stopped, nothing more is applied…
    db.stop_replica_sql_thread().await.unwrap();
    db.exec(Role::Primary, "UPDATE probe SET v = 'uno' WHERE id = 1", ())
        .await
        .unwrap();
    db.exec(Role::Primary, "INSERT INTO probe VALUES (2, 'two')", ())
        .await
        .unwrap();
    assert!(db
        .wait_until_replica_caught_up_within(Duration::from_millis(500))
        .await
        .is_err());
    assert_eq!(
        db.query::<(i32, String)>(Role::Replica, probe, ())
            .await
            .unwrap(),
        [(1, "one".to_string())]
    );
    // …until it runs again.
    db.start_replica_sql_thread().await.unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    assert_eq!(
        db.query::<(i32, String)>(Role::Replica, probe, ())
            .await
            .unwrap(),
        [(1, "uno".to_string()), (2, "two".to_string())]
    );

    // The reader account may read the replica, not write it.
    let reader = mysql_async::Pool::new(mysql_async::Opts::from_url(&db.reader_url()).unwrap());
    let mut conn = reader.get_conn().await.unwrap();
    let read: Vec<(i32, String)> = conn.query(probe).await.unwrap();
    assert_eq!(read.len(), 2);
    assert!(conn
        .query_drop("INSERT INTO probe VALUES (3, 'three')")
        .await
        .is_err());
    drop(conn);
    reader.disconnect().await.unwrap();
}

#[tokio::test]
async fn the_harness_kills_its_servers_and_removes_their_data() {
    let mut db = Replicated::start()
        .await
        .expect("primary and replica start");
    let replica_pid = db.replica.pid();
    let primary_pid = db.primary.pid();
    let dirs = [
        db.primary.dir().to_path_buf(),
        db.replica.dir().to_path_buf(),
    ];
    assert!(db.replica.is_running());
    assert!(std::path::Path::new(&format!("/proc/{replica_pid}")).exists());

    db.kill(Role::Replica);
    assert!(!db.replica.is_running());
    assert!(!std::path::Path::new(&format!("/proc/{replica_pid}")).exists());
    assert!(db.replica.conn().await.is_err(), "a killed server refuses");
    assert!(db.primary.conn().await.is_ok(), "the primary still answers");

    drop(db);
    assert!(!std::path::Path::new(&format!("/proc/{primary_pid}")).exists());
    for dir in dirs {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
}

// ------------------------------------------------------------ replicas

#[tokio::test]
async fn replica_eligible_reads_are_served_by_the_replica() {
    let (db, app) = start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, "Old name").await;
    let id = product["id"].as_str().unwrap();
    db.wait_until_replica_caught_up().await.unwrap();

    // Renamed on the primary only (the replica lags), behind the API's back:
    // nothing was cached, as the product was never read by id.
    db.stop_replica_sql_thread().await.unwrap();
    db.exec(
        Role::Primary,
        "UPDATE products SET name = 'New name' WHERE id = ?",
        (id,),
    )
    .await
    .unwrap();
    assert!(!app.kv_has(&format!("p:{id}")).await);
    assert_eq!(
        name_on(&db, Role::Primary, id).await.as_deref(),
        Some("New name")
    );
    assert_eq!(
        name_on(&db, Role::Replica, id).await.as_deref(),
        Some("Old name")
    );

    // The list and a product read on a cache miss come from the replica.
    let page = get_ok(&app, "/api/v1/products", None).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0], product);
    let got = get_ok(&app, &format!("/api/v1/products/{id}"), None).await;
    assert_eq!(got, product);

    // An update reads its product back from the primary.
    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/products/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"stock": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["stock"].as_i64()),
        (Some("New name"), Some(7))
    );
    // The list still lags, until the replica catches up.
    let page = get_ok(&app, "/api/v1/products", None).await;
    assert_eq!(items(&page, "name"), ["Old name"]);
    db.start_replica_sql_thread().await.unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    let page = get_ok(&app, "/api/v1/products", None).await;
    assert_eq!(page["items"][0], updated);
    app.stop().await;
}

#[tokio::test]
async fn reads_after_own_writes_and_single_records_go_to_the_primary() {
    let (db, app) = start().await;
    let admin = app.admin_token().await;
    let product = create_product(&app, &admin, "Lagging").await;
    let product = product["id"].as_str().unwrap();
    let (_, token) = app.new_user().await;
    db.wait_until_replica_caught_up().await.unwrap();
    db.stop_replica_sql_thread().await.unwrap();

    let order = place_order(&app, &token, product).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(count_on(&db, Role::Primary, "orders", id).await, 1);
    assert_eq!(count_on(&db, Role::Replica, "orders", id).await, 0);

    // The order itself is read on the primary…
    let got = get_ok(&app, &format!("/api/v1/orders/{id}"), Some(&token)).await;
    assert_eq!(got, order);
    // …the lists on the replica, which has not got it yet.
    let mine = get_ok(&app, "/api/v1/orders", Some(&token)).await;
    assert_eq!(
        (mine["total"].as_i64(), items(&mine, "id")),
        (Some(0), vec![])
    );
    let all = get_ok(&app, "/api/v1/orders", Some(&admin)).await;
    assert_eq!(all["total"], 0);
    let events = get_ok(&app, "/api/v1/events", Some(&admin)).await;
    assert_eq!(events["total"], 0);

    db.start_replica_sql_thread().await.unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    let mine = get_ok(&app, "/api/v1/orders", Some(&token)).await;
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0], order);
    let all = get_ok(&app, "/api/v1/orders", Some(&admin)).await;
    assert_eq!(items(&all, "id"), [id]);
    let events = get_ok(&app, "/api/v1/events", Some(&admin)).await;
    assert_eq!(
        (
            events["items"][0]["type"].as_str(),
            events["items"][0]["order_id"].as_str()
        ),
        (Some("order.created"), Some(id))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_user_registered_while_the_replica_lags_is_read_from_the_primary_and_listed_later() {
    let (db, app) = start().await;
    let admin = app.admin_token().await;
    db.wait_until_replica_caught_up().await.unwrap();
    db.stop_replica_sql_thread().await.unwrap();

    // Registration, login and the user's own reads are on the primary.
    let (user, token) = app.new_user().await;
    let id = user["id"].as_str().unwrap();
    assert_eq!(count_on(&db, Role::Replica, "users", id).await, 0);
    let me = get_ok(&app, "/api/v1/users/me", Some(&token)).await;
    assert_eq!(me["id"], id);
    let by_id = get_ok(&app, &format!("/api/v1/users/{id}"), Some(&admin)).await;
    assert_eq!(by_id["email"], user["email"]);

    // The admin's list is read on the replica.
    let list = get_ok(&app, "/api/v1/users?limit=100", Some(&admin)).await;
    assert!(!items(&list, "id").contains(&id.to_string()), "{list}");
    db.start_replica_sql_thread().await.unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    let list = get_ok(&app, "/api/v1/users?limit=100", Some(&admin)).await;
    assert!(items(&list, "id").contains(&id.to_string()), "{list}");
    app.stop().await;
}

#[tokio::test]
async fn an_upload_made_while_the_replica_lags_is_read_from_the_primary_and_listed_later() {
    let (db, app) = start().await;
    let (_, token) = app.new_user().await;
    db.wait_until_replica_caught_up().await.unwrap();
    db.stop_replica_sql_thread().await.unwrap();

    let resp = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .body("a note while the replica lags")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    let id = upload["id"].as_str().unwrap();
    assert_eq!(count_on(&db, Role::Replica, "uploads", id).await, 0);

    let got = get_ok(&app, &format!("/api/v1/uploads/{id}"), Some(&token)).await;
    assert_eq!(got["id"], id);
    let list = get_ok(&app, "/api/v1/uploads", Some(&token)).await;
    assert_eq!(list["total"], 0);

    db.start_replica_sql_thread().await.unwrap();
    db.wait_until_replica_caught_up().await.unwrap();
    let list = get_ok(&app, "/api/v1/uploads", Some(&token)).await;
    assert_eq!(items(&list, "id"), [id]);
    app.stop().await;
}

#[tokio::test]
async fn a_replica_that_cannot_be_reached_falls_back_to_the_primary() {
    let (mut db, app) = start().await;
    let admin = app.admin_token().await;
    let before = create_product(&app, &admin, "Before").await;
    let (user, token) = app.new_user().await;
    db.wait_until_replica_caught_up().await.unwrap();

    db.kill(Role::Replica);
    assert!(!db.replica.is_running());
    // Written after the replica died: only the primary has these. Writes
    // never try the replica.
    let after = create_product(&app, &admin, "After").await;
    let after_id = after["id"].as_str().unwrap();
    let order = place_order(&app, &token, after_id).await;
    let resp = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .body("written with the replica gone")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    for component in ["orders", "uploads"] {
        assert_eq!(failed_opens(&app, component).await, 0.0, "{component}");
    }

    // Each list tries the replica (a refused connection), then answers
    // from the primary: current data.
    let read = |component: &'static str, path: &'static str, token: Option<String>| {
        let app = &app;
        async move {
            let tried = failed_opens(app, component).await;
            let page = get_ok(app, path, token.as_deref()).await;
            assert!(
                failed_opens(app, component).await > tried,
                "{path} tried the replica first"
            );
            page
        }
    };
    let products = read("orders", "/api/v1/products", None).await;
    assert_eq!(products["total"], 2);
    let mut ids = items(&products, "id");
    ids.sort();
    let mut expected = vec![
        before["id"].as_str().unwrap().to_string(),
        after_id.to_string(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    let mine = read("orders", "/api/v1/orders", Some(token.clone())).await;
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0], order);
    let all = read("orders", "/api/v1/orders", Some(admin.clone())).await;
    assert_eq!(items(&all, "id"), [order["id"].as_str().unwrap()]);
    let uploads = read("uploads", "/api/v1/uploads", Some(token.clone())).await;
    assert_eq!(items(&uploads, "id"), [upload["id"].as_str().unwrap()]);
    let users = read("users", "/api/v1/users?limit=100", Some(admin.clone())).await;
    assert!(items(&users, "id").contains(&user["id"].as_str().unwrap().to_string()));
    let events = read("events", "/api/v1/events", Some(admin.clone())).await;
    assert_eq!(events["items"][0]["order_id"], order["id"]);
    // A product read on a cache miss too: with the stock the order left.
    let got = get_ok(&app, &format!("/api/v1/products/{after_id}"), None).await;
    assert_eq!(
        (got["name"].as_str(), got["stock"].as_i64()),
        (Some("After"), Some(9))
    );

    // The health check reads the primary only.
    let tried = failed_opens(&app, "users").await;
    assert_eq!(get(&app, "/api/v1/health", None).await.status(), 200);
    assert_eq!(failed_opens(&app, "users").await, tried);
    app.stop().await;
}

// ------------------------------------------------------------ stale-if-error

#[tokio::test]
async fn with_the_database_down_an_expired_product_is_served_stale_and_marked() {
    let mut primary = MariaDb::start(Role::Primary)
        .await
        .expect("a database starts");
    primary.migrate().await.unwrap();
    let app = TestApp::start_with(AppOptions {
        store: Some(Store::MySql),
        database_url: Some(primary.url()),
        variables: vec![("cache_ttl_secs".into(), "1".into())],
        ..AppOptions::default()
    })
    .await;
    let admin = app.admin_token().await;
    let (_, token) = app.new_user().await;
    let cached = create_product(&app, &admin, "Cached").await;
    let cached_id = cached["id"].as_str().unwrap();
    let never_read = create_product(&app, &admin, "Never read").await;
    let order = place_order(&app, &token, never_read["id"].as_str().unwrap()).await;

    let before_caching = Instant::now();
    let first = get_ok(&app, &format!("/api/v1/products/{cached_id}"), None).await;
    assert!(app.kv_has(&format!("p:{cached_id}")).await);
    get_ok(&app, "/api/v1/users/me", Some(&token)).await;
    // Past the 1 s TTL (±10 %): the copy has expired.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    primary.kill();

    let resp = get(&app, &format!("/api/v1/products/{cached_id}"), None).await;
    assert_eq!(resp.status(), 200);
    let age: u64 = resp.headers()["age"].to_str().unwrap().parse().unwrap();
    let elapsed = before_caching.elapsed().as_secs_f64();
    assert!(
        age >= 1 && age as f64 <= elapsed,
        "Age {age} within 1..={elapsed}"
    );
    let status = resp.headers()["cache-status"].to_str().unwrap().to_string();
    let stale_for: u64 = status
        .strip_prefix("spin-api; hit; ttl=-")
        .and_then(|rest| rest.strip_suffix("; detail=stale-if-error"))
        .unwrap_or_else(|| panic!("Cache-Status {status:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("Cache-Status {status:?}"));
    // Fresh for 0.9 s at least (the TTL's jitter), stale since.
    assert!(
        stale_for >= 1 && stale_for as f64 <= (elapsed - 0.9).ceil(),
        "stale for {stale_for} s, cached {elapsed} s ago"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, first);

    // Nothing else is answered stale.
    let never = format!("/api/v1/products/{}", never_read["id"].as_str().unwrap());
    assert_unavailable(get(&app, &never, None).await, "a product never cached").await;
    assert_unavailable(get(&app, "/api/v1/products", None).await, "products").await;
    assert_unavailable(
        get(&app, "/api/v1/orders", Some(&token)).await,
        "the order list",
    )
    .await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    assert_unavailable(get(&app, &path, Some(&token)).await, "an order").await;
    assert_unavailable(
        get(&app, "/api/v1/users/me", Some(&token)).await,
        "a user cached before",
    )
    .await;
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": api_tests::ADMIN_EMAIL, "password": api_tests::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_unavailable(login, "a login").await;
    app.stop().await;
}

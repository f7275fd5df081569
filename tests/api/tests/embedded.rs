//! The embedded default, as `spin up --build` and `scripts/serve` run it on a
//! machine without MySQL or Redis: only `jwt_secret` (and a bootstrap admin)
//! set, Spin's SQLite database `default` under the state directory, the
//! host's own key-value store. Every route of the contract answers, and the
//! host's metrics show that no component opened MySQL or Redis.

use api_tests::{unique, workspace_root, ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};
use spin_test_host::{HostConfig, KeyValueBackend, RunningHost};

struct Embedded {
    host: RunningHost,
    http: reqwest::Client,
    state: tempfile::TempDir,
}

impl Embedded {
    async fn start(state: Option<tempfile::TempDir>) -> Embedded {
        Self::start_with(state, Vec::new()).await
    }

    async fn start_with(
        state: Option<tempfile::TempDir>,
        extra: Vec<(String, String)>,
    ) -> Embedded {
        let state = state.unwrap_or_else(|| tempfile::tempdir().expect("state dir"));
        let mut config = HostConfig::new(workspace_root().join("spin.toml"));
        config.state_dir = Some(state.path().to_path_buf());
        config.key_value = KeyValueBackend::Memory;
        config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
        // Nothing but what README's first command needs; db_url, redis_url
        // and the rest keep spin.toml's defaults.
        config.variables = vec![
            ("jwt_secret".into(), JWT_SECRET.into()),
            ("admin_email".into(), ADMIN_EMAIL.into()),
            ("admin_password".into(), ADMIN_PASSWORD.into()),
        ];
        config.variables.extend(extra);
        let host = RunningHost::start(config).await.expect("host starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("client");
        Embedded { host, http, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.host.base_url())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answer");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login {email}: {body}");
        body
    }

    /// The sum of a host metric's samples whose labels contain `filter`.
    async fn metric(&self, name: &str, filter: &str) -> f64 {
        let addr = self.host.metrics_addr().expect("metrics");
        let text = self
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn id(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn every_route_answers_with_only_jwt_secret_set_and_no_server_is_touched() {
    use reqwest::Method as M;
    let app = Embedded::start(None).await;

    let (status, health) = app.send(M::GET, "/health", None, None).await;
    assert_eq!(
        (status.as_u16(), &health["checks"]["database"]),
        (200, &json!("ok"))
    );

    // Accounts and sessions.
    let email = format!("{}@example.test", unique("embedded"));
    let (status, user) = app
        .send(
            M::POST,
            "/users",
            None,
            Some(json!({"email": email, "password": "password-123", "name": "Zoë"})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let tokens = app.login(&email, "password-123").await;
    let token = tokens["access_token"].as_str().expect("token").to_string();
    let (status, me) = app.send(M::GET, "/users/me", Some(&token), None).await;
    assert_eq!((status.as_u16(), &me["id"]), (200, &user["id"]));
    let user_id = id(&user);
    let (status, _) = app
        .send(
            M::PATCH,
            &format!("/users/{user_id}"),
            Some(&token),
            Some(json!({"name": "Zoë Ü"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, read) = app
        .send(M::GET, &format!("/users/{user_id}"), Some(&token), None)
        .await;
    assert_eq!((status.as_u16(), &read["name"]), (200, &json!("Zoë Ü")));
    let (status, refreshed) = app
        .send(
            M::POST,
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let token = refreshed["access_token"]
        .as_str()
        .expect("token")
        .to_string();

    // Products and orders, as the admin and the user.
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .expect("admin token")
        .to_string();
    let (status, users) = app.send(M::GET, "/users", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert!(users["total"].as_u64() >= Some(2), "{users}");
    let (status, product) = app
        .send(
            M::POST,
            "/products",
            Some(&admin),
            Some(json!({"sku": unique("SKU"), "name": "Tea", "price_cents": 1250, "stock": 3})),
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let product_id = id(&product);
    assert_eq!(app.send(M::GET, "/products", None, None).await.0, 200);
    let (status, read) = app
        .send(M::GET, &format!("/products/{product_id}"), None, None)
        .await;
    assert_eq!((status.as_u16(), &read["stock"]), (200, &json!(3)));
    let (status, _) = app
        .send(
            M::PATCH,
            &format!("/products/{product_id}"),
            Some(&admin),
            Some(json!({"price_cents": 1300})),
        )
        .await;
    assert_eq!(status, 200);
    let order = json!({"items": [{"product_id": product_id, "quantity": 2}]});
    let (status, placed) = app
        .send(M::POST, "/orders", Some(&token), Some(order.clone()))
        .await;
    assert_eq!(status, 201, "{placed}");
    let (status, short) = app
        .send(M::POST, "/orders", Some(&token), Some(order))
        .await;
    assert_eq!(
        (status.as_u16(), &short["code"]),
        (409, &json!("insufficient_stock"))
    );
    let order_id = id(&placed);
    assert_eq!(app.send(M::GET, "/orders", Some(&token), None).await.0, 200);
    assert_eq!(
        app.send(M::GET, &format!("/orders/{order_id}"), Some(&token), None)
            .await
            .0,
        200
    );
    let (status, cancelled) = app
        .send(
            M::POST,
            &format!("/orders/{order_id}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), &cancelled["status"]),
        (200, &json!("cancelled"))
    );

    // Uploads, their bytes in the database.
    let uploaded = app
        .http
        .post(app.url("/uploads?filename=notes.txt"))
        .bearer_auth(&token)
        .body("hello, embedded")
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), 201);
    let upload: Value = uploaded.json().await.expect("upload JSON");
    let upload_id = id(&upload);
    assert_eq!(
        app.send(M::GET, "/uploads", Some(&token), None).await.0,
        200
    );
    let content = app
        .http
        .get(app.url(&format!("/uploads/{upload_id}/content")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("content");
    assert_eq!(content.status(), 200);
    assert_eq!(content.bytes().await.expect("bytes"), "hello, embedded");
    assert_eq!(
        app.send(
            M::DELETE,
            &format!("/uploads/{upload_id}"),
            Some(&token),
            None
        )
        .await
        .0,
        204
    );

    // The outbox, delivered on request (no Redis announces it).
    let (status, events) = app.send(M::GET, "/events", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert_eq!(events["total"], 2, "created and cancelled: {events}");
    // Without webhook_url the outbox waits (docs/API.md: 409 invalid_state).
    let (status, refused) = app
        .send(M::POST, "/events/deliver", Some(&admin), None)
        .await;
    assert_eq!(
        (status.as_u16(), &refused["code"]),
        (409, &json!("invalid_state"))
    );
    let event_id = events["items"][0]["id"]
        .as_str()
        .expect("event id")
        .to_string();
    let (status, refused) = app
        .send(
            M::POST,
            &format!("/events/{event_id}/redeliver"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), &refused["code"]),
        (409, &json!("invalid_state"))
    );

    // The contract and its page.
    let spec = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("spec");
    assert_eq!(spec.status(), 200);
    let page = app.http.get(app.url("/docs")).send().await.expect("page");
    assert_eq!(page.status(), 200);

    assert_eq!(
        app.send(M::POST, "/auth/logout", Some(&token), None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.send(M::DELETE, &format!("/users/{user_id}"), Some(&admin), None)
            .await
            .0,
        204
    );
    // The cascade reached the user's sessions in SQLite: logging in fails.
    let (status, _) = app
        .send(
            M::POST,
            "/auth/login",
            None,
            Some(json!({"email": email, "password": "password-123"})),
        )
        .await;
    assert_eq!(status, 401);

    // No component opened MySQL: every record went to SQLite. (Redis: the
    // key-value store is the host's own, and with spin.toml's empty
    // redis_url the orders announce nothing; the outbox above waited.)
    assert_eq!(app.metric("spin_host_mysql_calls_total", "").await, 0.0);
    assert!(
        app.metric("spin_host_sqlite_calls_total", "outcome=\"ok\"")
            .await
            > 0.0
    );
    assert!(app.state.path().join("sqlite_db.db").exists());
    app.host.stop().await;

    // The same check sees MySQL as soon as db_url names it, so the 0 above
    // is a count, not a metric that does not exist.
    let url = api_tests::database_url();
    let host = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:3306");
    let control = Embedded::start_with(
        None,
        vec![
            ("db_url".into(), url.clone()),
            ("db_host".into(), host.into()),
        ],
    )
    .await;
    assert_eq!(control.send(M::GET, "/health", None, None).await.0, 200);
    assert!(
        control
            .metric("spin_host_mysql_calls_total", "outcome=\"ok\"")
            .await
            > 0.0
    );
    assert_eq!(
        control.metric("spin_host_sqlite_calls_total", "").await,
        0.0
    );
    control.host.stop().await;
}

#[tokio::test]
async fn records_outlive_a_restart_in_the_state_directory() {
    let app = Embedded::start(None).await;
    let email = format!("{}@example.test", unique("restart"));
    let (status, _) = app
        .send(
            reqwest::Method::POST,
            "/users",
            None,
            Some(json!({"email": email, "password": "password-123", "name": "Ada"})),
        )
        .await;
    assert_eq!(status, 201);
    let Embedded { host, state, .. } = app;
    host.stop().await;

    let again = Embedded::start(Some(state)).await;
    again.login(&email, "password-123").await;
    again.host.stop().await;
}

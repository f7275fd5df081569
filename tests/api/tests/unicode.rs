//! Non-ASCII text in every string field of every route, sent the way a
//! hostile client would: multi-byte characters, combining marks, right-to-left
//! text and overrides, NUL. Each answer is the one docs/API.md gives (never a 500),
//! and what is stored is exactly what was accepted.

use api_tests::{assert_problem as problem, unique, TestApp};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

/// Text that exercises every width of UTF-8, a combining mark, right-to-left
/// letters and an emoji: all allowed in names.
const WORLD: &str = "Zoë Łódź 李雷 مرحبا e\u{301} 🦀";

/// A password of many scripts, with a NUL: docs/API.md allows any characters.
const PASSWORD: &str = "pässwörd-密码-\u{0}-🔑";

fn email(local: &str) -> String {
    format!("{local}-{}@exämple.test", unique(""))
}

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/users"))
        .json(&body)
        .send()
        .await
        .expect("register")
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

fn fields(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect()
}

#[tokio::test]
async fn registering_a_non_ascii_email_twice_is_409_email_taken() {
    let app = TestApp::start().await;
    let email = email("zoë");
    let body = json!({"email": email, "password": "password-123", "name": "Zoë"});
    assert_eq!(register(&app, body.clone()).await.status(), 201);
    let second = problem(register(&app, body).await, 409, "email_taken").await;
    assert!(
        !second.to_string().contains("zoë"),
        "the detail echoes no submitted value: {second}"
    );
    let rows: Vec<String> = app
        .query("SELECT email FROM users WHERE email = ?", (&email,))
        .await;
    assert_eq!(rows, vec![email]);
    app.stop().await;
}

#[tokio::test]
async fn a_non_ascii_email_name_and_password_register_and_log_in() {
    let app = TestApp::start().await;
    let email = email("ÅSA.Ñandú");
    let resp = register(
        &app,
        json!({"email": email, "password": PASSWORD, "name": format!("  {WORLD}  ")}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let user: Value = resp.json().await.unwrap();
    // Lower-cased (Unicode-aware) and trimmed; kept byte for byte otherwise.
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(user["name"], WORLD);
    let stored: Vec<(String, String)> = app
        .query(
            "SELECT email, name FROM users WHERE id = ?",
            (user["id"].as_str().unwrap(),),
        )
        .await;
    assert_eq!(stored, vec![(email.to_lowercase(), WORLD.to_string())]);

    let resp = login(&app, &email.to_uppercase(), PASSWORD).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    let me: Value = send(
        &app,
        Method::GET,
        "/api/v1/users/me",
        tokens["access_token"].as_str().unwrap(),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(me["name"], WORLD);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_non_ascii_password_is_401_invalid_credentials() {
    let app = TestApp::start().await;
    let email = email("ünïcode");
    app.register(&email, PASSWORD, "Ünïcode").await;
    problem(
        login(&app, &email, "pässwörd-密码-\u{0}-🔒").await,
        401,
        "invalid_credentials",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn hidden_characters_in_names_and_bad_non_ascii_emails_are_400_all_at_once() {
    let app = TestApp::start().await;
    for name in ["invoice\u{202E}fdp.exe", "a\u{200B}b", "nul\u{0}byte"] {
        let body = problem(
            register(
                &app,
                json!({"email": "ä@ö@example.test", "password": "short", "name": name}),
            )
            .await,
            400,
            "validation_failed",
        )
        .await;
        assert_eq!(fields(&body), ["email", "password", "name"], "{body}");
        assert!(!body.to_string().contains("ä@ö"), "no echo: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn patching_with_non_ascii_name_password_and_role() {
    let app = TestApp::start().await;
    let email = email("patch");
    let user = app.register(&email, PASSWORD, "Before").await;
    let id = user["id"].as_str().unwrap();
    let tokens: Value = login(&app, &email, PASSWORD).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let path = format!("/api/v1/users/{id}");

    let renamed: Value = send(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(json!({"name": WORLD})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(renamed["name"], WORLD);

    let wrong = json!({"password": "nëw-pässwörd", "current_password": "wrông-pässwörd"});
    problem(
        send(&app, Method::PATCH, &path, token, Some(wrong)).await,
        401,
        "invalid_credentials",
    )
    .await;
    let right = json!({"password": "nëw-pässwörd", "current_password": PASSWORD});
    assert_eq!(
        send(&app, Method::PATCH, &path, token, Some(right))
            .await
            .status(),
        200
    );
    assert_eq!(login(&app, &email, "nëw-pässwörd").await.status(), 200);

    let admin = app.admin_token().await;
    let body = problem(
        send(
            &app,
            Method::PATCH,
            &path,
            &admin,
            Some(json!({"role": "ädmin"})),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["role"]);
    app.stop().await;
}

#[tokio::test]
async fn non_ascii_tokens_are_401_invalid_token_on_every_component() {
    let app = TestApp::start().await;
    problem(
        app.http
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": "jéton-🔑"}))
            .send()
            .await
            .unwrap(),
        401,
        "invalid_token",
    )
    .await;
    let bearer = HeaderValue::from_bytes("Bearer jéton.李.🔑".as_bytes()).unwrap();
    for path in [
        "/api/v1/users/me",
        "/api/v1/orders",
        "/api/v1/uploads",
        "/api/v1/events",
        "/api/v1/auth/logout",
    ] {
        let method = if path.ends_with("logout") {
            Method::POST
        } else {
            Method::GET
        };
        let resp = app
            .http
            .request(method, app.url(path))
            .header("authorization", bearer.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\"",
            "{path}"
        );
        problem(resp, 401, "invalid_token").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn non_ascii_ids_in_paths_are_404_not_found() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let id = "%C3%A4%E6%9D%8E%F0%9F%A6%80"; // "ä李🦀", percent-encoded
    for (method, path) in [
        (Method::GET, format!("/api/v1/users/{id}")),
        (Method::DELETE, format!("/api/v1/users/{id}")),
        (Method::GET, format!("/api/v1/products/{id}")),
        (Method::GET, format!("/api/v1/orders/{id}")),
        (Method::POST, format!("/api/v1/orders/{id}/cancel")),
        (Method::GET, format!("/api/v1/uploads/{id}")),
        (Method::GET, format!("/api/v1/uploads/{id}/content")),
        (Method::DELETE, format!("/api/v1/uploads/{id}")),
        (Method::POST, format!("/api/v1/events/{id}/redeliver")),
    ] {
        let resp = send(&app, method.clone(), &path, &admin, None).await;
        assert_eq!(resp.status(), 404, "{method} {path}");
        problem(resp, 404, "not_found").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn non_ascii_query_parameters_are_400() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    for (path, field) in [
        ("/api/v1/users?page=%C3%BC", "page"),
        ("/api/v1/products?limit=%D9%A3", "limit"), // ARABIC-INDIC DIGIT THREE
        ("/api/v1/orders?page=%EF%BC%92", "page"),  // FULLWIDTH DIGIT TWO
        ("/api/v1/uploads?limit=1%CC%81", "limit"),
        ("/api/v1/events?state=p%C3%A9nding", "state"),
    ] {
        let resp = send(&app, Method::GET, path, &admin, None).await;
        assert_eq!(resp.status(), 400, "{path}");
        let body = problem(resp, 400, "validation_failed").await;
        assert_eq!(fields(&body), [field], "{path}: {body}");
        assert!(!body.to_string().contains('é'), "no echo: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_non_ascii_product_name_is_stored_as_sent_and_a_non_ascii_sku_is_400() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let body = problem(
        send(
            &app,
            Method::POST,
            "/api/v1/products",
            &admin,
            Some(json!({"sku": "CAFÉ-1", "name": "x", "price_cents": 1, "stock": 1})),
        )
        .await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["sku"]);

    let sku = unique("CAFE-");
    let resp = send(
        &app,
        Method::POST,
        "/api/v1/products",
        &admin,
        Some(json!({"sku": sku, "name": "Café crème ☕", "price_cents": 350, "stock": 5})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let product: Value = resp.json().await.unwrap();
    let id = product["id"].as_str().unwrap();
    let patched: Value = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/products/{id}"),
        &admin,
        Some(json!({"name": WORLD})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(patched["name"], WORLD);
    let stored: Vec<String> = app
        .query("SELECT name FROM products WHERE id = ?", (id,))
        .await;
    assert_eq!(stored, vec![WORLD.to_string()]);
    app.stop().await;
}

#[tokio::test]
async fn orders_refuse_non_ascii_product_ids_and_idempotency_keys_and_store_nothing() {
    let app = TestApp::start().await;
    let (user, token) = app.new_user().await;
    let user_id = user["id"].as_str().unwrap();
    let resp = send(
        &app,
        Method::POST,
        "/api/v1/orders",
        &token,
        Some(json!({"items": [{"product_id": "ä李🦀", "quantity": 1}]})),
    )
    .await;
    problem(resp, 404, "product_not_found").await;

    let resp = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header(
            "idempotency-key",
            HeaderValue::from_bytes("clé-🔑".as_bytes()).unwrap(),
        )
        .json(&json!({"items": [{"product_id": "0".repeat(32), "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    problem(resp, 400, "bad_request").await;
    let orders: Vec<i64> = app
        .query("SELECT COUNT(*) FROM orders WHERE user_id = ?", (user_id,))
        .await;
    assert_eq!(orders, vec![0]);
    app.stop().await;
}

#[tokio::test]
async fn a_non_ascii_filename_and_text_round_trip_with_an_rfc_5987_disposition() {
    let app = TestApp::start().await;
    let (_, token) = app.new_user().await;
    let text = format!("héllo wörld ☃ {WORLD}\n");
    let resp = app
        .http
        .post(
            app.url("/api/v1/uploads?filename=r%C3%A9sum%C3%A9%20%E6%9D%8E.txt&visibility=public"),
        )
        .bearer_auth(&token)
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    assert_eq!(upload["filename"], "résumé 李.txt");
    assert_eq!(upload["content_type"], "text/plain; charset=utf-8");
    let content = app
        .http
        .get(app.url(&format!(
            "/api/v1/uploads/{}/content",
            upload["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(
        content.headers()["content-disposition"],
        "attachment; filename=\"r_sum_ _.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%9D%8E.txt"
    );
    assert_eq!(content.text().await.unwrap(), text);
    app.stop().await;
}

#[tokio::test]
async fn filenames_lose_overrides_and_paths_in_raw_and_multipart_uploads() {
    let app = TestApp::start().await;
    let (_, token) = app.new_user().await;
    // "report" RLO "fdp.txt": shown as "reporttxt.pdf" if the override stayed.
    let resp = app
        .http
        .post(app.url("/api/v1/uploads?filename=..%2F..%2Freport%E2%80%AEfdp.txt"))
        .bearer_auth(&token)
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    assert_eq!(upload["filename"], "reportfdp.txt");

    let boundary = "bøündary-李";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\Üsers\\\\zoë\\\\n\u{200B}otes 李.md\"\r\n\r\n# Tïtle\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let resp = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header(
            "content-type",
            HeaderValue::from_bytes(
                format!("multipart/form-data; boundary=\"{boundary}\"").as_bytes(),
            )
            .unwrap(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let upload: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{upload}");
    assert_eq!(upload["filename"], "notes 李.md");
    app.stop().await;
}

#[tokio::test]
async fn non_ascii_request_ids_and_if_none_match_values_are_ignored() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/health"))
        .header(
            "x-request-id",
            HeaderValue::from_bytes("réq-李".as_bytes()).unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "a fresh id: {id}"
    );

    let (_, token) = app.new_user().await;
    let upload: Value = app
        .http
        .post(app.url("/api/v1/uploads?filename=a.txt&visibility=public"))
        .bearer_auth(&token)
        .body("etag me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let weird = HeaderValue::from_bytes("W/\"ä\", \"李".as_bytes()).unwrap();
    for path in [
        format!("/api/v1/uploads/{}/content", upload["id"].as_str().unwrap()),
        "/api/v1/docs".to_string(),
        "/api/v1/openapi.json".to_string(),
    ] {
        let resp = app
            .http
            .get(app.url(&path))
            .header("if-none-match", weird.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_non_ascii_json_field_is_400_without_echo() {
    let app = TestApp::start().await;
    let resp = register(
        &app,
        json!({"email": email("x"), "password": "password-123", "name": "x", "ñame": "李"}),
    )
    .await;
    let body = problem(resp, 400, "invalid_body").await;
    assert!(!body.to_string().contains('李'), "{body}");
    app.stop().await;
}

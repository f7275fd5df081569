//! Black-box tests of the users component (`/api/v1/users...`, `/api/v1/health`)
//! through the test host, on the store of the run (MariaDB or Spin's SQLite)
//! and a Redis-backed key-value store;
//! plus the access-token checks every component shares (forged, expired,
//! wrongly addressed JWTs), exercised on `GET /api/v1/users/me`.

use std::time::{SystemTime, UNIX_EPOCH};

use api_tests::{
    assert_problem as problem, attempt_bucket, unique, unique_client, AppOptions, TestApp,
    JWT_SECRET,
};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "password-123";

fn email() -> String {
    format!("{}@example.test", unique("users"))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The `sid` claim of an access token, decoded without verification.
fn sid(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims JSON");
    claims["sid"].as_str().expect("sid").to_string()
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

/// Registers and logs in a fresh user: `(id, email, token response)`.
async fn login_user(app: &TestApp) -> (String, String, Value) {
    let email = email();
    let user = app.register(&email, PASSWORD, "Users Test").await;
    let tokens = app.login(&email, PASSWORD).await;
    (user["id"].as_str().unwrap().to_string(), email, tokens)
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, id: &str, token: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, id: &str, token: &str) -> reqwest::Response {
    app.http
        .delete(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn user_row(app: &TestApp, id: &str) -> Option<(String, String, String, String)> {
    app.query::<(String, String, String, String)>(
        "SELECT email, name, role, password_hash FROM users WHERE id = ?",
        (id,),
    )
    .await
    .into_iter()
    .next()
}

// ------------------------------------------------------------------ register

#[tokio::test]
async fn register_is_201_with_location_and_stores_an_argon2_hash() {
    let app = TestApp::start().await;
    let email = email();
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": format!("  {}", email.to_uppercase()), "password": PASSWORD, "name": "  Ann  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/users/{id}"));
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["created_at", "email", "id", "name", "role", "updated_at"]
    );
    assert_eq!(body["email"], email.as_str());
    assert_eq!(body["name"], "Ann");
    assert_eq!(body["role"], "user");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    let (db_email, name, role, hash) = user_row(&app, id).await.unwrap();
    assert_eq!(
        (db_email.as_str(), name.as_str(), role.as_str()),
        (email.as_str(), "Ann", "user")
    );
    assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
    app.stop().await;
}

#[tokio::test]
async fn register_reports_every_bad_field_at_once() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": "not-an-email", "password": "short", "name": "\u{7}"}))
        .send()
        .await
        .unwrap();
    let body = problem(resp, 400, "validation_failed").await;
    assert_eq!(fields(&body), ["email", "password", "name"]);
    app.stop().await;
}

#[tokio::test]
async fn register_with_a_taken_email_is_409() {
    let app = TestApp::start().await;
    let email = email();
    app.register(&email, PASSWORD, "First").await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": email.to_uppercase(), "password": PASSWORD, "name": "Second"}))
        .send()
        .await
        .unwrap();
    problem(resp, 409, "email_taken").await;
    let rows = app
        .query::<(String,)>("SELECT id FROM users WHERE email = ?", (email,))
        .await;
    assert_eq!(rows.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn register_with_an_unknown_field_is_400() {
    let app = TestApp::start().await;
    let email = email();
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "A", "role": "admin"}))
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    assert!(app
        .query::<(String,)>("SELECT id FROM users WHERE email = ?", (email,))
        .await
        .is_empty());
    app.stop().await;
}

#[tokio::test]
async fn register_with_wrong_content_type_is_415_and_oversized_body_413() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40b.cd&password=password-123&name=A")
        .send()
        .await
        .unwrap();
    problem(resp, 415, "unsupported_media_type").await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"{}"}}"#, "n".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    problem(resp, 413, "payload_too_large").await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body(
            b"{\"email\":\"a@b.cd\",\"password\":\"password-123\",\"name\":\"\xc3\x28\"}".to_vec(),
        )
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    app.stop().await;
}

// ------------------------------------------------------------------ me / get

#[tokio::test]
async fn me_returns_the_caller_and_fills_the_cache() {
    let app = TestApp::start().await;
    let (id, email, tokens) = login_user(&app).await;
    let resp = get(&app, "/api/v1/users/me", access(&tokens)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["email"], email.as_str());
    let cached = app.kv_get(&format!("u:{id}")).await.expect("cache entry");
    assert!(
        !String::from_utf8_lossy(&cached).contains("argon2"),
        "no hash in the cache"
    );
    app.stop().await;
}

#[tokio::test]
async fn warm_cache_is_served_without_reading_mysql() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    get(&app, "/api/v1/users/me", access(&tokens)).await;
    // Changed behind the API's back: a cache hit does not see it.
    app.execute(
        "UPDATE users SET name = 'Changed In SQL' WHERE id = ?",
        (&id,),
    )
    .await;
    let body: Value = get(&app, "/api/v1/users/me", access(&tokens))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], "Users Test");
    app.stop().await;
}

/// Key-value calls of the users component as (single reads, batched reads).
async fn users_reads(app: &TestApp) -> (f64, f64) {
    (
        app.key_value_calls("users", "get").await,
        app.key_value_calls("users", "get_many").await,
    )
}

/// The (single, batched) reads of one warm `GET /users/me`, after checking
/// that it answers the caller.
async fn warm_me_reads(app: &TestApp) -> (f64, f64) {
    let (id, _, tokens) = login_user(app).await;
    get(app, "/api/v1/users/me", access(&tokens)).await;
    let before = users_reads(app).await;
    let resp = get(app, "/api/v1/users/me", access(&tokens)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], id.as_str());
    let after = users_reads(app).await;
    (after.0 - before.0, after.1 - before.1)
}

#[tokio::test]
async fn warm_me_is_one_batched_key_value_read() {
    let app = TestApp::start().await;
    // The revocation mark and the cached user, in one get-many.
    assert_eq!(warm_me_reads(&app).await, (0.0, 1.0));
    app.stop().await;
}

#[tokio::test]
async fn with_batches_off_warm_me_reads_key_by_key_and_still_answers() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("kv_batch_reads".into(), "false".into())],
        ..AppOptions::default()
    })
    .await;
    assert_eq!(warm_me_reads(&app).await, (2.0, 0.0));
    app.stop().await;
}

#[tokio::test]
async fn a_batched_read_still_refuses_a_logged_out_sessions_token() {
    let app = TestApp::start().await;
    let (_, _, tokens) = login_user(&app).await;
    // Cached user present: the batch returns it beside the revocation mark.
    get(&app, "/api/v1/users/me", access(&tokens)).await;
    let logout = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access(&tokens))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let resp = get(&app, "/api/v1/users/me", access(&tokens)).await;
    problem(resp, 401, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn me_without_a_token_is_401_with_www_authenticate() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    problem(resp, 401, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn reading_another_user_is_403_for_a_user_and_200_for_an_admin() {
    let app = TestApp::start().await;
    let (ann, _, _) = login_user(&app).await;
    let (_, _, bob) = login_user(&app).await;
    let path = format!("/api/v1/users/{ann}");
    problem(get(&app, &path, access(&bob)).await, 403, "forbidden").await;
    let admin = app.admin_token().await;
    let resp = get(&app, &path, &admin).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], ann.as_str());
    assert!(app.kv_has(&format!("u:{ann}")).await);
    app.stop().await;
}

#[tokio::test]
async fn unknown_user_is_404_and_cached_as_missing() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let ghost = "0".repeat(32);
    problem(
        get(&app, &format!("/api/v1/users/{ghost}"), &admin).await,
        404,
        "not_found",
    )
    .await;
    assert!(app.kv_has(&format!("u:{ghost}")).await, "negative entry");
    problem(
        get(&app, "/api/v1/users/not-an-id", &admin).await,
        404,
        "not_found",
    )
    .await;
    app.stop().await;
}

// ------------------------------------------------------------------ list

#[tokio::test]
async fn admin_lists_users_in_pages() {
    let app = TestApp::start().await;
    login_user(&app).await;
    let admin = app.admin_token().await;
    let resp = get(&app, "/api/v1/users?page=1&limit=2", &admin).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["page"], 1);
    assert_eq!(body["limit"], 2);
    assert!(body["total"].as_u64().unwrap() >= 2);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|u| u.as_object().unwrap().len() == 6));
    assert!(items[0]["created_at"].as_str() <= items[1]["created_at"].as_str());
    let defaults: Value = get(&app, "/api/v1/users", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (defaults["page"].as_u64(), defaults["limit"].as_u64()),
        (Some(1), Some(20))
    );
    app.stop().await;
}

#[tokio::test]
async fn listing_users_is_403_for_a_user() {
    let app = TestApp::start().await;
    let (_, _, tokens) = login_user(&app).await;
    problem(
        get(&app, "/api/v1/users", access(&tokens)).await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn listing_with_bad_paging_is_400() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let body = problem(
        get(&app, "/api/v1/users?page=0&limit=101", &admin).await,
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["page", "limit"]);
    app.stop().await;
}

// ------------------------------------------------------------------ patch

#[tokio::test]
async fn renaming_updates_the_row_and_invalidates_the_cache() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    get(&app, "/api/v1/users/me", access(&tokens)).await;
    assert!(app.kv_has(&format!("u:{id}")).await);
    let resp = patch(&app, &id, access(&tokens), json!({"name": "  Renamed "})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "Renamed");
    assert_eq!(user_row(&app, &id).await.unwrap().1, "Renamed");
    assert!(!app.kv_has(&format!("u:{id}")).await);
    let me: Value = get(&app, "/api/v1/users/me", access(&tokens))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Renamed");
    app.stop().await;
}

#[tokio::test]
async fn user_sending_role_is_403() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    problem(
        patch(&app, &id, access(&tokens), json!({"role": "admin"})).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(user_row(&app, &id).await.unwrap().2, "user");
    app.stop().await;
}

#[tokio::test]
async fn user_patching_someone_else_is_403() {
    let app = TestApp::start().await;
    let (ann, _, _) = login_user(&app).await;
    let (_, _, bob) = login_user(&app).await;
    problem(
        patch(&app, &ann, access(&bob), json!({"name": "Hacked"})).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(user_row(&app, &ann).await.unwrap().1, "Users Test");
    app.stop().await;
}

#[tokio::test]
async fn admin_changes_a_users_role() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    let admin = app.admin_token().await;
    let resp = patch(
        &app,
        &id,
        &admin,
        json!({"role": "admin", "name": "Promoted"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (body["role"].as_str(), body["name"].as_str()),
        (Some("admin"), Some("Promoted"))
    );
    assert_eq!(user_row(&app, &id).await.unwrap().2, "admin");
    // The old token claimed role `user`: it is void; a refresh gives the new role.
    problem(
        get(&app, "/api/v1/users/me", access(&tokens)).await,
        401,
        "invalid_token",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn patch_reports_every_bad_field() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    let resp = patch(
        &app,
        &id,
        access(&tokens),
        json!({"name": "", "password": "short"}),
    )
    .await;
    let body = problem(resp, 400, "validation_failed").await;
    assert_eq!(fields(&body), ["name", "password", "current_password"]);
    app.stop().await;
}

#[tokio::test]
async fn patch_with_an_unknown_field_is_400() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    problem(
        patch(
            &app,
            &id,
            access(&tokens),
            json!({"email": "new@example.test"}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_current_password_is_401_invalid_credentials() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    let body = json!({"password": "a-new-password", "current_password": "not-the-password"});
    problem(
        patch(&app, &id, access(&tokens), body).await,
        401,
        "invalid_credentials",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn password_change_voids_tokens_and_other_sessions_but_not_the_callers_session() {
    let app = TestApp::start().await;
    let (id, email, mine) = login_user(&app).await;
    let other = app.login(&email, PASSWORD).await;
    let body = json!({"password": "a-new-password", "current_password": PASSWORD});
    assert_eq!(
        patch(&app, &id, access(&mine), body).await.status(),
        StatusCode::OK
    );
    for session in [&mine, &other] {
        assert!(app.kv_has(&format!("rv:s:{}", sid(access(session)))).await);
    }

    // Every access token issued so far is void, in every component.
    problem(
        get(&app, "/api/v1/users/me", access(&mine)).await,
        401,
        "invalid_token",
    )
    .await;
    problem(
        get(&app, "/api/v1/users/me", access(&other)).await,
        401,
        "invalid_token",
    )
    .await;
    // The other session's refresh token is dead; the caller's still works.
    problem(
        refresh(&app, other["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    )
    .await;
    let revoked = app
        .query::<(Option<i64>,)>(
            "SELECT revoked_at_ms FROM sessions WHERE user_id = ? ORDER BY created_at_ms",
            (&id,),
        )
        .await;
    assert_eq!(revoked.iter().filter(|(r,)| r.is_some()).count(), 1);
    // Tokens carry whole-second `iat`; one issued in the revocation's second counts as revoked.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let renewed: Value = refresh(&app, mine["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        get(&app, "/api/v1/users/me", access(&renewed))
            .await
            .status(),
        StatusCode::OK
    );

    let old = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    problem(old, 401, "invalid_credentials").await;
    app.login(&email, "a-new-password").await;
    app.stop().await;
}

/// Logouts of one user's sessions, all at once, each from another request.
/// Every session has its own revocation mark, which its logout writes without
/// reading anything shared with the others, so no revocation can overwrite
/// another: every ended session's tokens die, and the session left alone lives.
#[tokio::test]
async fn concurrent_revocations_of_one_users_sessions_all_hold() {
    let app = TestApp::start().await;
    let (_, email, kept) = login_user(&app).await;
    let mut ended = Vec::new();
    for _ in 0..8 {
        ended.push(app.login(&email, PASSWORD).await);
    }
    let mut logouts = tokio::task::JoinSet::new();
    for session in &ended {
        let req = app
            .http
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(access(session));
        logouts.spawn(async move { req.send().await.unwrap().status() });
    }
    while let Some(status) = logouts.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::NO_CONTENT);
    }

    for session in &ended {
        let mark = app.kv_get(&format!("rv:s:{}", sid(access(session)))).await;
        assert!(mark.is_some(), "every logout left its mark");
        problem(
            get(&app, "/api/v1/users/me", access(session)).await,
            401,
            "invalid_token",
        )
        .await;
        problem(
            refresh(&app, session["refresh_token"].as_str().unwrap()).await,
            401,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(
        get(&app, "/api/v1/users/me", access(&kept)).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn sixth_current_password_guess_is_429_even_when_right() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    let wrong = json!({"password": "a-new-password", "current_password": "not-the-password"});
    for _ in 0..5 {
        problem(
            patch(&app, &id, access(&tokens), wrong.clone()).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let right = json!({"password": "a-new-password", "current_password": PASSWORD});
    let resp = patch(&app, &id, access(&tokens), right).await;
    assert!(resp.headers().contains_key("retry-after"));
    problem(resp, 429, "too_many_attempts").await;
    assert_eq!(
        app.attempts(&attempt_bucket("current-password", &[&id]))
            .await,
        6
    );
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_current_password_guesses_gets_at_most_5_checks() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    let wrong = json!({"password": "a-new-password", "current_password": "not-the-password"});
    let burst = (0..20).map(|_| patch(&app, &id, access(&tokens), wrong.clone()));
    let statuses: Vec<u16> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("burst of 20: {checked} answered 401 (password checked), {refused} answered 429");
    assert!(checked <= 5, "{checked} password checks: {statuses:?}");
    assert_eq!(checked + refused, 20, "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn registrations_past_the_address_limit_are_429_and_store_nothing() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("register_max_per_address".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let client = unique_client();
    let mut statuses = Vec::new();
    let mut emails = Vec::new();
    for _ in 0..3 {
        let email = email();
        let resp = app
            .http
            .post(app.url("/api/v1/users"))
            .header("x-forwarded-for", &client)
            .json(&json!({"email": email, "password": PASSWORD, "name": "N"}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key("retry-after"));
            problem(resp, 429, "too_many_attempts").await;
        }
        emails.push(email);
    }
    assert_eq!(statuses, [201, 201, 429]);
    let stored = app
        .query::<(String,)>("SELECT id FROM users WHERE email = ?", (&emails[2],))
        .await;
    assert!(stored.is_empty());
    // Another client registers as usual.
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .header("x-forwarded-for", unique_client())
        .json(&json!({"email": email(), "password": PASSWORD, "name": "N"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_token_from_before_a_password_change_is_refused() {
    let app = TestApp::start().await;
    let (id, email, mine) = login_user(&app).await;
    let stolen = app.login(&email, PASSWORD).await;
    let body = json!({"password": "a-new-password", "current_password": PASSWORD});
    assert_eq!(
        patch(&app, &id, access(&mine), body).await.status(),
        StatusCode::OK
    );
    problem(
        refresh(&app, stolen["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn logins_racing_a_password_change_keep_no_session_with_the_old_password() {
    let app = TestApp::start().await;
    let (id, email, mine) = login_user(&app).await;
    let body = json!({"password": "a-new-password", "current_password": PASSWORD});
    // Logins with the old password in flight while the change runs.
    let logins = (0..4).map(|_| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    });
    let (change, logins) = tokio::join!(
        patch(&app, &id, access(&mine), body),
        futures::future::join_all(logins)
    );
    assert_eq!(change.status(), StatusCode::OK);
    for resp in logins {
        let resp = resp.unwrap();
        if resp.status() != StatusCode::OK {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            continue;
        }
        // A login that won the race got a session that the change then ended.
        let tokens: Value = resp.json().await.unwrap();
        problem(
            get(&app, "/api/v1/users/me", access(&tokens)).await,
            401,
            "invalid_token",
        )
        .await;
        problem(
            refresh(&app, tokens["refresh_token"].as_str().unwrap()).await,
            401,
            "invalid_token",
        )
        .await;
    }
    // Only the caller's own session is still open.
    let open = app
        .query::<(String,)>(
            "SELECT id FROM sessions WHERE user_id = ? AND revoked_at_ms IS NULL",
            (&id,),
        )
        .await;
    assert_eq!(open, [(sid(access(&mine)),)]);
    app.stop().await;
}

// ------------------------------------------------------------------ delete

#[tokio::test]
async fn deleting_oneself_removes_row_sessions_cache_and_tokens() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    get(&app, "/api/v1/users/me", access(&tokens)).await;
    let resp = delete(&app, &id, access(&tokens)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(user_row(&app, &id).await.is_none());
    let sessions = app
        .query::<(String,)>("SELECT id FROM sessions WHERE user_id = ?", (&id,))
        .await;
    assert!(sessions.is_empty());
    assert!(!app.kv_has(&format!("u:{id}")).await);
    problem(
        get(&app, "/api/v1/users/me", access(&tokens)).await,
        401,
        "invalid_token",
    )
    .await;
    problem(
        refresh(&app, tokens["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn deleting_someone_else_is_403_for_a_user_and_204_then_404_for_an_admin() {
    let app = TestApp::start().await;
    let (ann, _, _) = login_user(&app).await;
    let (_, _, bob) = login_user(&app).await;
    problem(delete(&app, &ann, access(&bob)).await, 403, "forbidden").await;
    assert!(user_row(&app, &ann).await.is_some());
    let admin = app.admin_token().await;
    assert_eq!(
        delete(&app, &ann, &admin).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(user_row(&app, &ann).await.is_none());
    problem(delete(&app, &ann, &admin).await, 404, "not_found").await;
    app.stop().await;
}

// ------------------------------------------------------------------ routing, health

#[tokio::test]
async fn wrong_method_is_405_with_allow_and_unknown_path_404() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .put(app.url("/api/v1/users/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "GET, PATCH, DELETE");
    problem(resp, 405, "method_not_allowed").await;
    problem(
        app.http
            .get(app.url("/api/v1/users/a/b"))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn health_is_200_with_both_checks_ok() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ok", "checks": {"database": "ok", "cache": "ok"}})
    );
    assert!(app.kv_has("hc:probe").await);
    app.stop().await;
}

#[tokio::test]
async fn health_is_503_naming_an_unreachable_database() {
    // Port 9 (discard) on loopback: nothing listens, the connect is refused.
    let app = TestApp::start_with(AppOptions {
        variables: vec![
            (
                "db_url".into(),
                "mysql://root@127.0.0.1:9/spin_api_test".into(),
            ),
            ("db_host".into(), "127.0.0.1:9".into()),
        ],
        ..Default::default()
    })
    .await;
    let resp = app
        .http
        .get(app.url("/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "unavailable", "checks": {"database": "unavailable", "cache": "ok"}})
    );
    // A route needing the database says 503 `unavailable`, not 500.
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": email(), "password": PASSWORD, "name": "A"}))
        .send()
        .await
        .unwrap();
    problem(resp, 503, "unavailable").await;
    app.stop().await;
}

// ------------------------------------------------------------------ JWT checks

fn claims(sub: &str) -> Value {
    let now = now_secs();
    json!({
        "sub": sub,
        "role": "admin",
        "jti": unique("jti"),
        "sid": "forged-session",
        "iat": now,
        "exp": now + 600,
        "iss": "spin-api",
        "aud": "spin-api-clients",
    })
}

fn sign(alg: Algorithm, secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn assert_refused(app: &TestApp, token: &str) {
    let resp = get(app, "/api/v1/users/me", token).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\"",
        "{token}"
    );
    problem(resp, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_correctly_signed_crafted_token_is_accepted() {
    // The control for the refusals below: the crafting itself is right.
    let app = TestApp::start().await;
    let (id, _, _) = login_user(&app).await;
    let token = sign(Algorithm::HS256, JWT_SECRET, &claims(&id));
    assert_eq!(
        get(&app, "/api/v1/users/me", &token).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn token_with_alg_none_is_refused() {
    let app = TestApp::start().await;
    let (id, _, _) = login_user(&app).await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(&claims(&id)).unwrap());
    assert_refused(&app, &format!("{header}.{payload}.")).await;
    app.stop().await;
}

#[tokio::test]
async fn token_with_another_algorithm_and_the_same_secret_is_refused() {
    let app = TestApp::start().await;
    let (id, _, _) = login_user(&app).await;
    assert_refused(&app, &sign(Algorithm::HS512, JWT_SECRET, &claims(&id))).await;
    assert_refused(&app, &sign(Algorithm::HS384, JWT_SECRET, &claims(&id))).await;
    app.stop().await;
}

#[tokio::test]
async fn token_with_a_wrong_signature_is_refused() {
    let app = TestApp::start().await;
    let (id, _, tokens) = login_user(&app).await;
    assert_refused(
        &app,
        &sign(
            Algorithm::HS256,
            "another-secret-of-at-least-32-bytes!!",
            &claims(&id),
        ),
    )
    .await;
    // A genuine token whose payload was edited (role escalation) no longer matches its signature.
    let genuine = access(&tokens);
    let parts: Vec<&str> = genuine.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    let edited = b64.encode(serde_json::to_vec(&payload).unwrap());
    assert_refused(&app, &format!("{}.{}.{}", parts[0], edited, parts[2])).await;
    app.stop().await;
}

#[tokio::test]
async fn token_with_a_wrong_issuer_or_audience_is_refused() {
    let app = TestApp::start().await;
    let (id, _, _) = login_user(&app).await;
    let mut wrong_iss = claims(&id);
    wrong_iss["iss"] = json!("someone-else");
    assert_refused(&app, &sign(Algorithm::HS256, JWT_SECRET, &wrong_iss)).await;
    let mut wrong_aud = claims(&id);
    wrong_aud["aud"] = json!("another-api");
    assert_refused(&app, &sign(Algorithm::HS256, JWT_SECRET, &wrong_aud)).await;
    app.stop().await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let app = TestApp::start().await;
    let (id, _, _) = login_user(&app).await;
    let mut expired = claims(&id);
    expired["iat"] = json!(now_secs() - 3600);
    expired["exp"] = json!(now_secs() - 120);
    assert_refused(&app, &sign(Algorithm::HS256, JWT_SECRET, &expired)).await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_or_non_bearer_authorization_is_refused() {
    let app = TestApp::start().await;
    assert_refused(&app, "not.a.jwt").await;
    let resp = app
        .http
        .get(app.url("/api/v1/users/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    problem(resp, 401, "invalid_token").await;
    app.stop().await;
}

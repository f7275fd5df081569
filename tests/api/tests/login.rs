//! Black-box tests of the login component (`/api/v1/auth/...`) through the
//! test host, on the store of the run (MariaDB or Spin's SQLite) and a
//! Redis-backed key-value store.

use api_tests::{
    assert_problem as problem, attempt_bucket, unique, unique_client, AppOptions, TestApp,
    ADMIN_EMAIL, ADMIN_PASSWORD,
};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "password-123";

fn email() -> String {
    format!("{}@example.test", unique("login"))
}

/// The claims of a JWT, decoded without verification (to read `jti`, `sid`).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The attempt bucket of the email + address pair (the client address the
/// components see is 127.0.0.1 unless a test forwards its own).
fn pair_bucket(email: &str, client: &str) -> String {
    attempt_bucket("login-pair", &[email, client])
}

/// A login sent through the trusted test peer on behalf of `client`.
async fn post_login_from(
    app: &TestApp,
    client: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn post_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn post_refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn get_me(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Registers a fresh user: `(id, email)`.
async fn user(app: &TestApp) -> (String, String) {
    let email = email();
    let u = app.register(&email, PASSWORD, "Login Test").await;
    (u["id"].as_str().unwrap().to_string(), email)
}

async fn session_row(app: &TestApp, sid: &str) -> Option<(String, String, Option<i64>)> {
    app.query::<(String, String, Option<i64>)>(
        "SELECT user_id, refresh_hash, revoked_at_ms FROM sessions WHERE id = ?",
        (sid,),
    )
    .await
    .into_iter()
    .next()
}

// ------------------------------------------------------------------ login

#[tokio::test]
async fn login_answers_the_token_pair_user_and_records_a_hashed_session() {
    let app = TestApp::start().await;
    let (id, email) = user(&app).await;
    let resp = post_login(&app, &email.to_uppercase(), PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "refresh_expires_in",
            "refresh_token",
            "token_type",
            "user"
        ]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 1_209_600);
    assert_eq!(body["user"]["id"], id.as_str());
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"].as_object().unwrap().len(), 6);

    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["role"], "user");
    assert_eq!(c["iss"], "spin-api");
    assert_eq!(c["aud"], "spin-api-clients");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    let refresh = body["refresh_token"].as_str().unwrap();
    let (user_id, refresh_hash, revoked) =
        session_row(&app, c["sid"].as_str().unwrap()).await.unwrap();
    assert_eq!(user_id, id);
    assert_eq!(refresh_hash, sha256_hex(refresh), "only the hash is stored");
    assert_eq!(revoked, None);
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_is_401_and_counts_a_failure() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let resp = post_login(&app, &email, "wrong-password").await;
    let body = problem(resp, 401, "invalid_credentials").await;
    assert!(body["request_id"].is_string());
    assert_eq!(app.attempts(&pair_bucket(&email, "127.0.0.1")).await, 1);
    assert!(
        app.attempts(&attempt_bucket("login-address", &["127.0.0.1"]))
            .await
            >= 1
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_email_gets_the_same_401_body_as_a_wrong_password() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let mut wrong = problem(
        post_login(&app, &email, "wrong-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let mut unknown = problem(
        post_login(&app, &self::email(), PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    wrong.as_object_mut().unwrap().remove("request_id");
    unknown.as_object_mut().unwrap().remove("request_id");
    assert_eq!(wrong, unknown);
    app.stop().await;
}

#[tokio::test]
async fn sixth_failed_login_is_429_even_with_the_right_password() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    for _ in 0..5 {
        problem(
            post_login(&app, &email, "wrong-password").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let resp = post_login(&app, &email, PASSWORD).await;
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry_after), "{retry_after}");
    problem(resp, 429, "too_many_attempts").await;
    app.stop().await;
}

#[tokio::test]
async fn address_limit_locks_every_email_from_that_address() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("login_max_failures_per_address".into(), "3".into())],
        ..Default::default()
    })
    .await;
    let (_, email) = user(&app).await;
    let client = unique_client();
    for _ in 0..3 {
        problem(
            post_login_from(&app, &client, &self::email(), PASSWORD).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    let resp = post_login_from(&app, &client, &email, PASSWORD).await;
    assert!(resp.headers().contains_key("retry-after"));
    problem(resp, 429, "too_many_attempts").await;
    // Another client (and the same one's /64 neighbour is the same client) is unaffected.
    let elsewhere = post_login_from(&app, &unique_client(), &email, PASSWORD).await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn successful_login_resets_the_pair_counter() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    for _ in 0..4 {
        post_login(&app, &email, "wrong-password").await;
    }
    assert_eq!(app.attempts(&pair_bucket(&email, "127.0.0.1")).await, 4);
    assert_eq!(
        post_login(&app, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.attempts(&pair_bucket(&email, "127.0.0.1")).await, 0);
    // Four more failures would have locked the pair without the reset.
    for _ in 0..4 {
        post_login(&app, &email, "wrong-password").await;
    }
    assert_eq!(
        post_login(&app, &email, PASSWORD).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_email_and_empty_password_are_400_listing_both() {
    let app = TestApp::start().await;
    let body = problem(
        post_login(&app, "not-an-email", "").await,
        400,
        "validation_failed",
    )
    .await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("email"), json!("password")]);
    app.stop().await;
}

#[tokio::test]
async fn bootstrap_admin_logs_in_as_admin_and_has_a_row() {
    let app = TestApp::start().await;
    let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(tokens["user"]["role"], "admin");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["role"],
        "admin"
    );
    let rows = app
        .query::<(String, String)>(
            "SELECT role, password_hash FROM users WHERE email = ?",
            (ADMIN_EMAIL,),
        )
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "admin");
    assert!(rows[0].1.starts_with("$argon2id$"));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_logins_of_the_bootstrap_admin_all_succeed_with_one_row() {
    let admin_email = email();
    let app = TestApp::start_with(AppOptions {
        variables: vec![("admin_email".into(), admin_email.clone())],
        ..Default::default()
    })
    .await;
    let (a, b, c) = tokio::join!(
        post_login(&app, &admin_email, ADMIN_PASSWORD),
        post_login(&app, &admin_email, ADMIN_PASSWORD),
        post_login(&app, &admin_email, ADMIN_PASSWORD),
    );
    for resp in [a, b, c] {
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap()["user"]["role"], "admin");
    }
    let rows = app
        .query::<(String,)>("SELECT role FROM users WHERE email = ?", (&admin_email,))
        .await;
    assert_eq!(rows, [("admin".to_string(),)]);
    app.stop().await;
}

#[tokio::test]
async fn a_pre_registered_bootstrap_email_is_taken_over_with_its_sessions_ended() {
    // Mallory registers the address before the operator sets admin_email and
    // logs in first, keeping a session.
    let app = TestApp::start().await;
    let (id, email) = user(&app).await;
    let squatter = app.login(&email, PASSWORD).await;
    let squatter_access = squatter["access_token"].as_str().unwrap().to_string();
    let squatter_refresh = squatter["refresh_token"].as_str().unwrap().to_string();

    let admin_app = TestApp::start_with(AppOptions {
        variables: vec![("admin_email".into(), email.clone())],
        kv_prefix: Some(app.kv_prefix.clone()),
        database: Some(app.database.clone()),
        ..Default::default()
    })
    .await;
    // Her own password does not make her admin: it no longer works at all
    // once the bootstrap credentials were used.
    let tokens = admin_app.login(&email, ADMIN_PASSWORD).await;
    assert_eq!(tokens["user"]["id"], id.as_str());
    assert_eq!(tokens["user"]["role"], "admin");
    problem(
        post_login(&admin_app, &email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    problem(
        get_me(&admin_app, &squatter_access).await,
        401,
        "invalid_token",
    )
    .await;
    problem(
        post_refresh(&admin_app, &squatter_refresh).await,
        401,
        "invalid_token",
    )
    .await;
    let rows = app
        .query::<(String, Option<i64>)>(
            "SELECT u.role, s.revoked_at_ms FROM users u JOIN sessions s ON s.user_id = u.id \
             WHERE s.id = ?",
            (claims(&squatter_access)["sid"].as_str().unwrap(),),
        )
        .await;
    assert_eq!(rows[0].0, "admin");
    assert!(rows[0].1.is_some(), "the squatter's session is ended");
    admin_app.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn registering_the_bootstrap_admin_email_is_409_email_taken() {
    let admin_email = email();
    let app = TestApp::start_with(AppOptions {
        variables: vec![("admin_email".into(), admin_email.clone())],
        ..Default::default()
    })
    .await;
    let resp = app
        .http
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": admin_email.to_uppercase(), "password": PASSWORD, "name": "M"}))
        .send()
        .await
        .unwrap();
    problem(resp, 409, "email_taken").await;
    let rows = app
        .query::<(String,)>("SELECT id FROM users WHERE email = ?", (&admin_email,))
        .await;
    assert!(rows.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn bootstrap_admin_with_a_wrong_password_is_401() {
    let app = TestApp::start().await;
    problem(
        post_login(&app, ADMIN_EMAIL, "not-the-admin-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    app.stop().await;
}

// ------------------------------------------------------------------ body conventions

#[tokio::test]
async fn unknown_json_field_is_400_invalid_body() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "a@b.cd", "password": PASSWORD, "remember": true}))
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@b.cd","password":"x"}"#)
        .send()
        .await
        .unwrap();
    problem(resp, 415, "unsupported_media_type").await;
    app.stop().await;
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let app = TestApp::start().await;
    let big = format!(
        r#"{{"email":"a@b.cd","password":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(resp, 413, "payload_too_large").await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_400() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(b"{\"email\":\"a@b.cd\",\"password\":\"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_and_unknown_path_404() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    problem(resp, 405, "method_not_allowed").await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/nothing-here"))
        .send()
        .await
        .unwrap();
    problem(resp, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn request_id_is_echoed_when_acceptable() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("x-request-id", "trace-123.abc")
        .json(&json!({"email": "x@y.zz", "password": "nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-123.abc");
    let body = problem(resp, 401, "invalid_credentials").await;
    assert_eq!(body["request_id"], "trace-123.abc");
    app.stop().await;
}

// ------------------------------------------------------------------ refresh

#[tokio::test]
async fn refresh_answers_a_new_pair_and_rotates_the_stored_hash() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let first = app.login(&email, PASSWORD).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let resp = post_refresh(&app, r1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let second: Value = resp.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 900);
    assert_eq!(second["refresh_expires_in"], 1_209_600);
    let sid = claims(second["access_token"].as_str().unwrap())["sid"].clone();
    assert_eq!(sid, claims(first["access_token"].as_str().unwrap())["sid"]);
    let (_, hash, _) = session_row(&app, sid.as_str().unwrap()).await.unwrap();
    assert_eq!(hash, sha256_hex(r2));
    let kept = app
        .query::<(String,)>(
            "SELECT session_id FROM refresh_tokens WHERE token_hash = ?",
            (sha256_hex(r1),),
        )
        .await;
    assert_eq!(
        kept.len(),
        1,
        "the superseded hash is kept for reuse detection"
    );
    assert_eq!(
        get_me(&app, second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn refresh_token_used_twice_is_reuse_and_revokes_the_session() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let first = app.login(&email, PASSWORD).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let second: Value = post_refresh(&app, r1).await.json().await.unwrap();
    let resp = post_refresh(&app, r1).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    problem(resp, 401, "refresh_token_reused").await;
    let (_, _, revoked) = session_row(&app, &sid).await.unwrap();
    assert!(revoked.is_some(), "the whole session is revoked");
    // The legitimate holder's newer token dies with the session.
    problem(
        post_refresh(&app, second["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    )
    .await;
    // So do the access tokens issued in it, through the session's revocation mark.
    assert!(app.kv_has(&format!("rv:s:{sid}")).await);
    for access in [&first["access_token"], &second["access_token"]] {
        problem(
            get_me(&app, access.as_str().unwrap()).await,
            401,
            "invalid_token",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_cannot_both_succeed() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let tokens = app.login(&email, PASSWORD).await;
    let r1 = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(post_refresh(&app, r1), post_refresh(&app, r1));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
    app.stop().await;
}

#[tokio::test]
async fn unknown_refresh_token_is_401_invalid_token() {
    let app = TestApp::start().await;
    problem(
        post_refresh(&app, &"ab".repeat(32)).await,
        401,
        "invalid_token",
    )
    .await;
    problem(post_refresh(&app, "garbage").await, 401, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn refresh_without_its_field_is_400() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    problem(resp, 400, "invalid_body").await;
    app.stop().await;
}

// ------------------------------------------------------------------ logout

#[tokio::test]
async fn logout_is_204_and_the_token_is_refused_by_another_host_process() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let tokens = app.login(&email, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let c = claims(access);

    let resp = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        app.kv_has(&format!("rv:s:{}", c["sid"].as_str().unwrap()))
            .await
    );
    let (_, _, revoked) = session_row(&app, c["sid"].as_str().unwrap()).await.unwrap();
    assert!(revoked.is_some());

    // A second host process sharing the key-value store and the database.
    let other = TestApp::start_with(AppOptions {
        kv_prefix: Some(app.kv_prefix.clone()),
        database: Some(app.database.clone()),
        ..Default::default()
    })
    .await;
    let resp = get_me(&other, access).await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    problem(resp, 401, "invalid_token").await;
    problem(post_refresh(&other, refresh).await, 401, "invalid_token").await;
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    problem(resp, 401, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn logout_also_ends_the_sessions_older_access_token() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let first = app.login(&email, PASSWORD).await;
    let older = first["access_token"].as_str().unwrap();
    let second: Value = post_refresh(&app, first["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let newer = second["access_token"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(newer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    problem(get_me(&app, older).await, 401, "invalid_token").await;
    problem(get_me(&app, newer).await, 401, "invalid_token").await;
    app.stop().await;
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_working() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let phone = app.login(&email, PASSWORD).await;
    let laptop = app.login(&email, PASSWORD).await;
    app.http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(laptop["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let resp = get_me(&app, phone["access_token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    app.stop().await;
}

// ------------------------------------------------------------------ limits under attack

#[tokio::test]
async fn a_burst_of_40_wrong_passwords_gets_at_most_5_checks_and_429_for_the_rest() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let client = unique_client();
    let burst = (0..40).map(|_| post_login_from(&app, &client, &email, "wrong-password"));
    let statuses: Vec<u16> = futures::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("burst of 40: {checked} answered 401 (password checked), {refused} answered 429");
    assert!(checked <= 5, "{checked} password checks: {statuses:?}");
    assert_eq!(checked + refused, 40, "{statuses:?}");
    // The pair stays locked: even the right password is refused.
    problem(
        post_login_from(&app, &client, &email, PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    let bucket = attempt_bucket("login-pair", &[&email, &client_network(&client)]);
    assert_eq!(app.attempts(&bucket).await, 41);
    app.stop().await;
}

/// The /64 the components count an IPv6 client under.
fn client_network(client: &str) -> String {
    let ip: std::net::Ipv6Addr = client.parse().unwrap();
    let s = ip.segments();
    format!(
        "{}/64",
        std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)
    )
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_whatever_the_address() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("login_max_failures_per_address".into(), "3".into())],
        ..Default::default()
    })
    .await;
    let (_, email) = user(&app).await;
    let client = unique_client();
    let network = client_network(&client);
    let prefix = network.trim_end_matches("::/64");
    for host in 1..=3 {
        let neighbour = format!("{prefix}::{host:x}:beef");
        post_login_from(&app, &neighbour, &self::email(), PASSWORD).await;
    }
    let fresh_address_same_64 = format!("{prefix}:1234:5678:9abc:def0");
    problem(
        post_login_from(&app, &fresh_address_same_64, &email, PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    // No trusted proxies: 127.0.0.1 is the client, whatever it forwards.
    let app = TestApp::start_with(AppOptions {
        variables: vec![
            ("trusted_proxies".into(), String::new()),
            ("login_max_failures_per_account".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let (_, email) = user(&app).await;
    // A client rotating forged X-Forwarded-For values still counts as one pair.
    for _ in 0..2 {
        post_login_from(&app, &unique_client(), &email, "wrong-password").await;
    }
    problem(
        post_login_from(&app, &unique_client(), &email, PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    assert_eq!(app.attempts(&pair_bucket(&email, "127.0.0.1")).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_for_names_the_client_behind_a_trusted_proxy() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("login_max_failures_per_account".into(), "2".into())],
        ..Default::default()
    })
    .await;
    let (_, email) = user(&app).await;
    let attacker = unique_client();
    for _ in 0..3 {
        post_login_from(&app, &attacker, &email, "wrong-password").await;
    }
    // The attacker's pair is locked; the real owner behind the same proxy is not.
    problem(
        post_login_from(&app, &attacker, &email, PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    let owner = unique_client();
    assert_eq!(
        post_login_from(&app, &owner, &email, PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    // Only the right-most untrusted entry counts: a forged left-hand entry is ignored.
    let forged = format!("{}, {attacker}", unique_client());
    problem(
        post_login_from(&app, &forged, &email, PASSWORD).await,
        429,
        "too_many_attempts",
    )
    .await;
    app.stop().await;
}

// ------------------------------------------------------------------ sessions that end

#[tokio::test]
async fn a_session_past_its_absolute_lifetime_cannot_refresh() {
    let app = TestApp::start().await;
    let (_, email) = user(&app).await;
    let tokens = app.login(&email, PASSWORD).await;
    let sid = claims(tokens["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    // Kept alive by refreshes, the session was opened 30 days and a minute ago.
    let month_ms: i64 = 30 * 86_400_000 + 60_000;
    app.execute(
        "UPDATE sessions SET created_at_ms = created_at_ms - ? WHERE id = ?",
        (month_ms, &sid),
    )
    .await;
    problem(
        post_refresh(&app, tokens["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_token",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn refresh_is_capped_by_the_session_lifetime() {
    let app = TestApp::start_with(AppOptions {
        variables: vec![("session_max_lifetime_secs".into(), "600".into())],
        ..Default::default()
    })
    .await;
    let (_, email) = user(&app).await;
    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(tokens["refresh_expires_in"], 600);
    let refreshed: Value = post_refresh(&app, tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let left = refreshed["refresh_expires_in"].as_i64().unwrap();
    assert!((595..=600).contains(&left), "{left}");
    // The access token ends with the session too, clock-skew leeway included.
    let access_left = refreshed["expires_in"].as_i64().unwrap();
    assert!(
        (left - 31..=left - 29).contains(&access_left),
        "{access_left}"
    );
    app.stop().await;
}

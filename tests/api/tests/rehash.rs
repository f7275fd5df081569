//! Black-box test of re-hashing on login (issue 32): a password hash stored
//! with older argon2id parameters still logs in, and the login stores a hash
//! with today's parameters in its place.

use api_tests::{unique, TestApp};
use serde_json::json;

const PASSWORD: &str = "password-123";

/// `PASSWORD` hashed with the parameters the app used before (argon2id,
/// m = 19456 KiB, t = 2, p = 1), by another implementation (libargon2
/// through Python's argon2-cffi), so the component's verifier is checked
/// against an independent one.
const OLD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$y2sQiOzgqGouc8HGAPDMCw$Utl15T35v6jGX/rYSmt7RmlDkX0MfyaggtQOXI9Rjek";

/// What hashes made today start with (`shared::password::CURRENT`).
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=7168,t=5,p=1$";

async fn stored_hash(app: &TestApp, email: &str) -> String {
    app.query::<String>("SELECT password_hash FROM users WHERE email = ?", (email,))
        .await
        .into_iter()
        .next()
        .expect("the user's row")
}

#[tokio::test]
async fn an_old_parameter_hash_logs_in_and_is_stored_rehashed() {
    let app = TestApp::start().await;
    let email = format!("{}@example.test", unique("rehash"));
    app.register(&email, PASSWORD, "Old Hash").await;
    assert!(stored_hash(&app, &email).await.starts_with(CURRENT_PREFIX));
    let changed = app
        .execute(
            "UPDATE users SET password_hash = ? WHERE email = ?",
            (OLD_HASH, &email),
        )
        .await;
    assert_eq!(changed, 1);
    let updated_before = app
        .query::<i64>("SELECT updated_at_ms FROM users WHERE email = ?", (&email,))
        .await;

    let tokens = app.login(&email, PASSWORD).await;
    assert!(tokens["access_token"].is_string());

    let new = stored_hash(&app, &email).await;
    assert_ne!(new, OLD_HASH);
    assert!(new.starts_with(CURRENT_PREFIX), "{new}");
    // The same password: the account's other columns are untouched.
    let updated_after = app
        .query::<i64>("SELECT updated_at_ms FROM users WHERE email = ?", (&email,))
        .await;
    assert_eq!(updated_after, updated_before);

    // The new hash holds the same password, and only it; it is kept.
    app.login(&email, PASSWORD).await;
    assert_eq!(stored_hash(&app, &email).await, new);
    let wrong = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "not-the-password"}))
        .send()
        .await
        .expect("login request");
    assert_eq!(wrong.status(), 401);
    assert_eq!(stored_hash(&app, &email).await, new);
    app.stop().await;
}

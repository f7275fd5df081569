//! No secret in any log line (docs/API.md: no answer carries "SQL, a stack
//! trace or a secret"; README "Logs and secrets": secrets are never logged). Hosts are started with a
//! password in `db_url` and in the Redis URL, driven through every error path
//! the tests can reach — the database not permitted, refusing the password,
//! the key-value store unreachable or refusing its password — and through the
//! working paths, while every line the host and the components log is
//! captured. None may hold a password, the JWT secret, or a token.
//!
//! On SQLite (`API_TEST_STORE=sqlite`) the database has no password and no
//! address: the hosts run on Spin's SQLite, through the working paths and
//! the key-value store's errors.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use api_tests::{database_url, redis_url, unique, workspace_root, Database, Store, JWT_SECRET};
use mysql_async::prelude::*;
use serde_json::{json, Value};
use spin_test_host::{HostConfig, KeyValueBackend, RunningHost};

/// Every log line of this process, as the host's subscriber formats it.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,cranelift_codegen=info,wasmtime=info,wasmtime_internal_cranelift=info,\
                 cranelift_frontend=info,wasmtime_environ=info,wasmtime_cranelift=info",
            ))
            .with_writer(move || Sink(sink.clone()))
            .init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// A password of letters and digits only, so it appears verbatim in a URL.
fn password(prefix: &str) -> String {
    unique(prefix).replace(['-', '_'], "")
}

/// `mysql://root@host:port/db` of the tests → `(host:port, db)`.
fn server_and_database() -> (String, String) {
    let url = database_url();
    let rest = url.split("://").nth(1).expect("scheme");
    let rest = rest.rsplit('@').next().expect("host");
    let (server, db) = rest.split_once('/').expect("database");
    (server.to_string(), db.to_string())
}

async fn root_exec(sql: &str) {
    let pool = mysql_async::Pool::new(mysql_async::Opts::from_url(&database_url()).unwrap());
    let mut conn = pool.get_conn().await.expect("root connection");
    conn.query_drop(sql).await.expect(sql);
    drop(conn);
    let _ = pool.disconnect().await;
}

async fn redis_cmd(args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await
}

/// A host on `db_url` (empty: Spin's SQLite, in `state_dir`) and the Redis
/// at `kv_url`.
async fn start(db_url: &str, db_host: &str, kv_url: &str, state_dir: Option<&Path>) -> RunningHost {
    let mut config = HostConfig::new(workspace_root().join("spin.toml"));
    config.state_dir = state_dir.map(Path::to_path_buf);
    config.variables = vec![
        ("jwt_secret".into(), JWT_SECRET.into()),
        ("db_url".into(), db_url.into()),
        ("db_host".into(), db_host.into()),
        ("admin_email".into(), api_tests::ADMIN_EMAIL.into()),
        ("admin_password".into(), api_tests::ADMIN_PASSWORD.into()),
    ];
    config.variables.extend(api_tests::shared_address_limits());
    config.key_value = KeyValueBackend::Redis {
        url: kv_url.into(),
        prefix: unique("logs") + ":",
    };
    RunningHost::start(config).await.expect("host starts")
}

/// Drives every route with good and bad input; returns the tokens it saw
/// (which must not be logged either).
async fn drive(base: &str, user_password: &str) -> Vec<String> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |p: &str| format!("{base}{p}");
    let mut secrets = Vec::new();
    let email = format!("{}@example.test", unique("log"));
    let _ = http
        .post(url("/api/v1/users"))
        .json(&json!({"email": email, "password": user_password, "name": "Log Test"}))
        .send()
        .await;
    // A type error on the password field, and bad JSON.
    let _ = http
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": 12345678}))
        .send()
        .await;
    let _ = http
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": format!("{user_password}-wrong")}))
        .send()
        .await;
    let login = http
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": user_password}))
        .send()
        .await;
    let mut token = "eyJhbGciOiJIUzI1NiJ9.e30.not-a-real-signature".to_string();
    if let Ok(resp) = login {
        if let Ok(body) = resp.json::<Value>().await {
            if let Some(t) = body["access_token"].as_str() {
                token = t.to_string();
                secrets.push(t.to_string());
            }
            if let Some(r) = body["refresh_token"].as_str() {
                secrets.push(r.to_string());
                let _ = http
                    .post(url("/api/v1/auth/refresh"))
                    .json(&json!({ "refresh_token": r }))
                    .send()
                    .await;
            }
        }
    }
    let admin = http
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": api_tests::ADMIN_EMAIL, "password": api_tests::ADMIN_PASSWORD}))
        .send()
        .await;
    let mut admin_token = token.clone();
    if let Ok(resp) = admin {
        if let Ok(body) = resp.json::<Value>().await {
            if let Some(t) = body["access_token"].as_str() {
                admin_token = t.to_string();
                secrets.push(t.to_string());
            }
        }
    }
    let id = "0123456789abcdef0123456789abcdef";
    let gets = [
        "/api/v1/health".to_string(),
        "/api/v1/users/me".to_string(),
        format!("/api/v1/users/{id}"),
        "/api/v1/users?page=1&limit=5".to_string(),
        "/api/v1/products?page=1".to_string(),
        format!("/api/v1/products/{id}"),
        "/api/v1/orders".to_string(),
        format!("/api/v1/orders/{id}"),
        "/api/v1/uploads".to_string(),
        format!("/api/v1/uploads/{id}"),
        format!("/api/v1/uploads/{id}/content"),
    ];
    for path in &gets {
        for bearer in [&token, &admin_token, &"junk".to_string()] {
            let _ = http.get(url(path)).bearer_auth(bearer).send().await;
        }
        let _ = http.get(url(path)).send().await;
    }
    let _ = http
        .post(url("/api/v1/products"))
        .bearer_auth(&admin_token)
        .json(&json!({"sku": unique("L-"), "name": "Log", "price_cents": 5, "stock": 5}))
        .send()
        .await;
    let _ = http
        .post(url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("idempotency-key", "k")
        .json(&json!({"items": [{"product_id": id, "quantity": 1}]}))
        .send()
        .await;
    let _ = http
        .post(url("/api/v1/uploads?filename=a.txt"))
        .bearer_auth(&token)
        .body(unique("log upload"))
        .send()
        .await;
    let _ = http
        .patch(url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .json(
            &json!({"password": format!("{user_password}-new"), "current_password": user_password}),
        )
        .send()
        .await;
    let _ = http
        .post(url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await;
    secrets
}

#[tokio::test]
async fn no_password_or_token_reaches_a_log_line_on_any_path() {
    captured();
    let (server, database) = server_and_database();
    let (db_server_host, _) = server.split_once(':').unwrap_or((server.as_str(), "3306"));
    let db_password = password("Dbpw");
    let wrong_db_password = password("Wrongdb");
    let kv_password = password("Kvpw");
    let wrong_kv_password = password("Wrongkv");
    let user_password = password("Userpw");
    let store = Store::from_env();

    // A MySQL account with a password, and a Redis ACL user with one.
    for host in ["%", "localhost"]
        .into_iter()
        .filter(|_| store == Store::MySql)
    {
        root_exec(&format!(
            "CREATE USER IF NOT EXISTS 'spin_api_logs'@'{host}' IDENTIFIED BY '{db_password}'"
        ))
        .await;
        root_exec(&format!(
            "ALTER USER 'spin_api_logs'@'{host}' IDENTIFIED BY '{db_password}'"
        ))
        .await;
        root_exec(&format!(
            "GRANT ALL PRIVILEGES ON `{database}`.* TO 'spin_api_logs'@'{host}'"
        ))
        .await;
    }
    let kv_user = unique("logs");
    redis_cmd(&[
        "ACL",
        "SETUSER",
        &kv_user,
        "on",
        &format!(">{kv_password}"),
        "~*",
        "+@all",
    ])
    .await
    .expect("redis ACL user");
    let redis_host = redis_url()
        .split("://")
        .nth(1)
        .unwrap_or("127.0.0.1:6379/")
        .trim_end_matches('/')
        .rsplit('@')
        .next()
        .unwrap()
        .to_string();

    let good_db = format!("mysql://spin_api_logs:{db_password}@{server}/{database}");
    let wrong_db = format!("mysql://spin_api_logs:{wrong_db_password}@{server}/{database}");
    let good_kv = format!("redis://{kv_user}:{kv_password}@{redis_host}/");
    let wrong_kv = format!("redis://{kv_user}:{wrong_kv_password}@{redis_host}/");
    let dead_kv = format!("redis://{kv_user}:{kv_password}@127.0.0.1:1/");
    let other_port = format!("{db_server_host}:1");

    let scenarios = match store {
        Store::MySql => vec![
            // Everything works.
            (good_db.clone(), server.clone(), good_kv.clone()),
            // The database address is not in allowed_outbound_hosts: Spin's
            // error quotes the whole URL.
            (good_db.clone(), other_port, good_kv.clone()),
            // The database refuses the password.
            (wrong_db, server.clone(), good_kv.clone()),
            // The key-value store refuses its password, or cannot be reached.
            (good_db.clone(), server.clone(), wrong_kv),
            (good_db.clone(), server.clone(), dead_kv),
        ],
        // The same on SQLite, where the database has no password.
        Store::Sqlite => vec![
            (String::new(), server.clone(), good_kv.clone()),
            (String::new(), server.clone(), wrong_kv),
            (String::new(), server.clone(), dead_kv),
        ],
    };
    let mut secrets = vec![
        db_password.clone(),
        wrong_db_password.clone(),
        kv_password.clone(),
        wrong_kv_password.clone(),
        user_password.clone(),
        JWT_SECRET.to_string(),
        api_tests::ADMIN_PASSWORD.to_string(),
    ];
    for (db_url, db_host, kv_url) in scenarios {
        // Removed at the end of the iteration, after the host stopped.
        let sqlite =
            (store == Store::Sqlite).then(|| Database::new_sqlite().expect("a state directory"));
        let state_dir = sqlite.as_ref().and_then(Database::state_dir);
        let host = start(&db_url, &db_host, &kv_url, state_dir).await;
        secrets.extend(drive(&host.base_url(), &user_password).await);
        host.stop().await;
    }
    let _ = redis_cmd(&["ACL", "DELUSER", &kv_user]).await;

    let log = log_text();
    // The scenarios did reach their error paths (the check is not vacuous).
    if store == Store::MySql {
        assert!(
            log.contains("not permitted"),
            "no disallowed-address error was logged"
        );
        // Spin's message quoted db_url with its password; the component logged it redacted.
        assert!(
            log.contains("mysql://***@"),
            "the disallowed-address error did not reach the component's log"
        );
    }
    assert!(log.contains(r#""status":503"#), "no 503 was logged");
    assert!(
        log.contains(r#""status":201"#),
        "the working host served nothing"
    );
    for secret in &secrets {
        let leaked: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            leaked.is_empty(),
            "a secret of {} characters is in {} log line(s), e.g.: {}",
            secret.len(),
            leaked.len(),
            leaked[0].replace(secret.as_str(), "<SECRET>")
        );
    }
}

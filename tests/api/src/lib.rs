//! Harness for the black-box API tests in `tests/api/tests/`.
//!
//! Each test starts the real `spin.toml` on the test host (the release `.wasm`
//! files, as Spin would run them) on the store of the run ([`Store`]: the
//! real MariaDB, or Spin's SQLite database in a state directory of the app's
//! own) and a Redis-backed key-value store under a key prefix of its own,
//! then talks to it over HTTP only. Side effects are asserted directly in the
//! database ([`TestApp::query`]) and Redis ([`TestApp::kv_get`]).
//!
//! Environment: `API_TEST_STORE` (`mysql`, the default, or `sqlite`),
//! `TEST_DATABASE_URL` (default `mysql://root@127.0.0.1:3306/spin_api_test`),
//! `TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`).

use std::path::PathBuf;

pub mod db;
pub mod mariadb;
pub mod receiver;
pub mod s3;

pub use db::{Database, DbParams, DbValue, FromDbRow, FromDbValue, Store, ToDbValue};

use anyhow::{Context, Result};
use db::TestDb;
use mysql_async::prelude::*;
use serde_json::{json, Value};
use spin_test_host::{HostConfig, KeyValueBackend, RunningHost};

/// The JWT secret every test app is started with.
pub const JWT_SECRET: &str = "test-secret-of-at-least-32-bytes-long!!";
/// The bootstrap admin's credentials every test app is started with.
pub const ADMIN_EMAIL: &str = "admin@example.test";
/// See [`ADMIN_EMAIL`].
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The database the tests use.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/spin_api_test".to_string())
}

/// The Redis server the tests use.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string())
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `host:port` of a URL like `redis://user:pw@host:port/0`, or `default`.
pub fn host_port(url: &str, default: &str) -> String {
    url.split("://")
        .nth(1)
        .map(|rest| rest.rsplit('@').next().unwrap_or(rest))
        .and_then(|rest| rest.split('/').next())
        .filter(|hp| !hp.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| default.to_owned())
}

/// A fresh random suffix, to keep emails, SKUs and key prefixes unique per test.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    format!("{prefix}{}", hex::encode(bytes))
}

/// Variables every test host needs because on MySQL the attempt counters
/// live in the shared test database, where every test's requests come from 127.0.0.1:
/// per-address limits are lifted, and the tests of those limits send their
/// own client address through `X-Forwarded-For` from this trusted peer.
pub fn shared_address_limits() -> Vec<(String, String)> {
    vec![
        ("trusted_proxies".into(), "127.0.0.1/32, ::1/128".into()),
        ("login_max_failures_per_address".into(), "1000000".into()),
        ("register_max_per_address".into(), "1000000".into()),
    ]
}

/// A fresh client address for `X-Forwarded-For`: an IPv6 address in its own
/// random /64 of the documentation prefix, so no other test (or earlier run)
/// shares its attempt counters.
pub fn unique_client() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    format!(
        "2001:db8:{:x}:{:x}::{:x}",
        u16::from_be_bytes([bytes[0], bytes[1]]) | 1,
        u16::from_be_bytes([bytes[2], bytes[3]]) | 1,
        u16::from_be_bytes([bytes[4], bytes[5]]) | 1
    )
}

/// The attempt-counter bucket (`auth_attempts.bucket`) of `kind` over `parts`,
/// computed as the identity crate does: SHA-256 of the kind and the parts,
/// each after a NUL byte.
pub fn attempt_bucket(kind: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(kind.as_bytes());
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Asserts that `resp` is an RFC 9457 problem as docs/API.md shapes it — `status`,
/// `application/problem+json`, the stable `code`, and the response's
/// `X-Request-Id` echoed as `request_id` — and returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let request_id = resp.headers()["x-request-id"]
        .to_str()
        .expect("X-Request-Id is ASCII")
        .to_string();
    let body: Value = resp.json().await.expect("problem JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    body
}

/// A running app plus handles on its database and key-value store.
pub struct TestApp {
    /// The host serving the app.
    pub host: RunningHost,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client (no redirects followed, no proxy).
    pub http: reqwest::Client,
    /// The records the app runs on: pass it as [`AppOptions::database`] to
    /// start another app on them.
    pub database: Database,
    /// A MySQL database created for this app alone
    /// ([`AppOptions::own_database`]), dropped by [`TestApp::stop`].
    own_mysql_database: Option<String>,
    /// The handle [`TestApp::query`] and [`TestApp::execute`] use.
    db: TestDb,
    /// The Redis key prefix of this test's key-value store.
    pub kv_prefix: String,
    /// The bucket, when the app stores uploads in S3 ([`AppOptions::storage`]).
    pub s3: Option<s3::S3Server>,
    /// The events app (`spin-events.toml`) beside the API, when
    /// [`AppOptions::events_app`] asked for it: a host of its own that ends
    /// when its Redis trigger is lost, as on Spin.
    pub events: Option<RunningHost>,
    /// How the events app is started, to start it again
    /// ([`TestApp::restart_events_app`]) as SpinKube restarts its pod.
    events_config: Option<HostConfig>,
}

/// Options for [`TestApp::start_with`].
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Extra or overriding Spin variables.
    pub variables: Vec<(String, String)>,
    /// Share the key-value store of an earlier app (same Redis prefix).
    pub kv_prefix: Option<String>,
    /// Write the components' stdout and stderr under this directory.
    pub log_dir: Option<PathBuf>,
    /// The store, whatever `API_TEST_STORE` says: for tests that only make
    /// sense on one (a MySQL replica, the MySQL purge).
    pub store: Option<Store>,
    /// Run on the records of an earlier app ([`TestApp::database`]), as a
    /// second process of the same deployment would: the same MySQL database,
    /// or the same SQLite state directory. Takes precedence over the other
    /// database options.
    pub database: Option<Database>,
    /// See only the app's own rows (the order events outbox): on MySQL a
    /// fresh database on the test server, created and migrated here and
    /// dropped by [`TestApp::stop`]; on SQLite every app has its own anyway.
    pub own_database: bool,
    /// Use the MySQL database at this URL (on a server the test owns, such
    /// as a [`mariadb::Replicated`] primary; migrated like the others)
    /// instead of the test server: for tests that stop or kill their
    /// database. Needs the MySQL store ([`AppOptions::store`]).
    pub database_url: Option<String>,
    /// Where uploads are stored.
    pub storage: Storage,
    /// Also start the events app (`spin-events.toml`: the Redis-triggered
    /// webhook delivery) with the same variables and key-value store.
    pub events_app: bool,
}

/// Where a test app stores uploads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In the app's database (the default `upload_storage`).
    #[default]
    Database,
    /// In a bucket of an `s3s-fs` the app starts ([`s3::S3Server`]), with
    /// public content redirected to `cdn` when given.
    S3 {
        /// `cdn_base_url`.
        cdn: Option<String>,
    },
}

/// The test database URL with its database name replaced by `name`.
pub fn database_url_named(name: &str) -> String {
    let url = database_url();
    match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => url,
    }
}

impl TestApp {
    /// Starts the app with the test defaults.
    pub async fn start() -> TestApp {
        Self::start_with(AppOptions::default()).await
    }

    /// Starts the app with extra variables or a shared key-value prefix.
    pub async fn start_with(options: AppOptions) -> TestApp {
        Self::try_start(options).await.expect("test app starts")
    }

    async fn try_start(options: AppOptions) -> Result<TestApp> {
        let root = workspace_root();
        let wasm = root.join("target/wasm32-wasip2/release");
        for component in ["login", "users", "orders", "uploads", "docs", "events"] {
            let path = wasm.join(format!("{component}.wasm"));
            anyhow::ensure!(
                path.exists(),
                "{} is missing: build the components first with \
                 `cargo build --target wasm32-wasip2 --release -p login -p users -p orders -p uploads -p docs -p events` \
                 (or run scripts/test)",
                path.display()
            );
        }
        let mut own_mysql_database = None;
        let database = match &options.database {
            Some(shared) => shared.clone(),
            None => match options.store.unwrap_or_else(Store::from_env) {
                Store::MySql => match &options.database_url {
                    Some(url) => Database::MySql(url.clone()),
                    None if options.own_database => {
                        let name = unique("spin_api_test_");
                        create_mysql_database(&name).await?;
                        own_mysql_database = Some(name.clone());
                        Database::MySql(database_url_named(&name))
                    }
                    None => Database::MySql(database_url()),
                },
                Store::Sqlite => {
                    anyhow::ensure!(
                        options.database_url.is_none(),
                        "database_url names a MySQL server: start the app with store: Some(Store::MySql)"
                    );
                    Database::new_sqlite()?
                }
            },
        };
        create_schema(&database).await?;

        let kv_prefix = options
            .kv_prefix
            .clone()
            .unwrap_or_else(|| unique("t") + ":");
        let mut config = HostConfig::new(root.join("spin.toml"));
        // On SQLite db_host names no server; any value fills the manifest's
        // allowed_outbound_hosts.
        let db_host = host_port(database.db_url(), "127.0.0.1:3306");
        config.state_dir = database.state_dir().map(PathBuf::from);
        config.variables = vec![
            ("jwt_secret".into(), JWT_SECRET.into()),
            ("db_url".into(), database.db_url().into()),
            ("db_host".into(), db_host),
            ("admin_email".into(), ADMIN_EMAIL.into()),
            ("admin_password".into(), ADMIN_PASSWORD.into()),
            ("redis_url".into(), redis_url()),
            (
                "redis_host".into(),
                host_port(&redis_url(), "127.0.0.1:6379"),
            ),
            // A channel of its own: another test's orders never wake this
            // app's events component.
            ("events_channel".into(), unique("order-events-")),
        ];
        config.variables.extend(shared_address_limits());
        let s3 = match &options.storage {
            Storage::Database => None,
            Storage::S3 { cdn } => {
                let server = s3::S3Server::start()?;
                config.variables.extend(server.variables());
                if let Some(cdn) = cdn {
                    config.variables.push(("cdn_base_url".into(), cdn.clone()));
                }
                Some(server)
            }
        };
        config.variables.extend(options.variables.iter().cloned());
        config.key_value = KeyValueBackend::Redis {
            url: redis_url(),
            prefix: kv_prefix.clone(),
        };
        // A client that sends a head and no body reaches the guest after the
        // body idle timeout (the guest may answer without the body, as on
        // Spin); tests that do so need not wait the 10 s default.
        config.limits.body_idle_timeout = std::time::Duration::from_secs(2);
        config.log_dir = options.log_dir.clone();
        // The host's metrics count each component's key-value calls, which
        // is how tests see how many round trips a route makes.
        config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
        let events_config = options.events_app.then(|| {
            let mut events = config.clone();
            events.manifest = root.join("spin-events.toml");
            events.metrics_listen = None;
            events
        });
        let host = RunningHost::start(config).await?;
        let events = match &events_config {
            Some(config) => Some(RunningHost::start(config.clone()).await?),
            None => None,
        };
        let base = host.base_url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let db = TestDb::open(&database)?;
        Ok(TestApp {
            host,
            base,
            http,
            database,
            own_mysql_database,
            db,
            kv_prefix,
            s3,
            events,
            events_config,
        })
    }

    /// Starts the events app again (after a lost Redis ended it), as
    /// SpinKube restarts a pod whose app exited.
    pub async fn restart_events_app(&mut self) {
        let config = self.events_config.clone().expect("started with events_app");
        if let Some(old) = self.events.take() {
            old.stop().await;
        }
        self.events = Some(RunningHost::start(config).await.expect("events app starts"));
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// How many key-value calls `component` has made with operation `op`
    /// (`get`, `get_many`, `set`, …), successful or not, read from the
    /// host's Prometheus metrics.
    pub async fn key_value_calls(&self, component: &str, op: &str) -> f64 {
        let addr = self
            .host
            .metrics_addr()
            .expect("the test host serves metrics");
        let text = self
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        let component = format!("component=\"{component}\"");
        let op = format!("op=\"{op}\"");
        text.lines()
            .filter(|l| l.starts_with("spin_host_key_value_calls_total{"))
            .filter(|l| l.contains(&component) && l.contains(&op))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The raw value of a key of the `default` key-value store, straight from Redis.
    pub async fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        redis::cmd("GET")
            .arg(format!("{}default:{key}", self.kv_prefix))
            .query_async(&mut conn)
            .await
            .expect("redis GET")
    }

    /// Every key of the `default` store (without this app's prefix), sorted,
    /// straight from Redis (SCAN, so a busy shared server is not blocked).
    pub async fn kv_keys(&self) -> Vec<String> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        let namespace = format!("{}default:", self.kv_prefix);
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{namespace}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("redis SCAN");
            keys.extend(
                batch
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&namespace).map(str::to_string)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// True when the `default` store holds `key`.
    pub async fn kv_has(&self, key: &str) -> bool {
        self.kv_get(key).await.is_some()
    }

    /// The attempts counted in `bucket` (0 when it has no row).
    pub async fn attempts(&self, bucket: &str) -> u32 {
        self.query::<u32>(
            "SELECT attempts FROM auth_attempts WHERE bucket = ?",
            (bucket,),
        )
        .await
        .into_iter()
        .next()
        .unwrap_or(0)
    }

    /// The store the app runs on.
    pub fn store(&self) -> Store {
        self.database.store()
    }

    /// Runs one query on the app's database and returns its rows, each as a
    /// scalar (one column) or a tuple ([`FromDbRow`]). The SQL must suit both
    /// stores; parameters are positional `?`s given as a tuple ([`DbParams`]).
    pub async fn query<T: FromDbRow>(&self, sql: &str, params: impl DbParams) -> Vec<T> {
        self.db
            .rows(sql, params.to_db_values())
            .await
            .unwrap_or_else(|e| panic!("query {sql:?}: {e:#}"))
            .into_iter()
            .map(|row| T::from_db_row(row).unwrap_or_else(|e| panic!("a row of {sql:?}: {e}")))
            .collect()
    }

    /// Runs one statement that returns no rows (an UPDATE behind the app's
    /// back) on the app's database; returns how many rows it changed.
    pub async fn execute(&self, sql: &str, params: impl DbParams) -> u64 {
        self.db
            .execute(sql, params.to_db_values())
            .await
            .unwrap_or_else(|e| panic!("statement {sql:?}: {e:#}"))
    }

    /// Registers a user and returns its JSON.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/api/v1/users"))
            .json(&json!({"email": email, "password": password, "name": name}))
            .send()
            .await
            .expect("register request");
        assert_eq!(resp.status(), 201, "registering {email}");
        resp.json().await.expect("user JSON")
    }

    /// Logs in and returns the token response JSON.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 200, "logging in {email}");
        resp.json().await.expect("token JSON")
    }

    /// Registers a fresh user and logs in: `(user JSON, access token)`.
    pub async fn new_user(&self) -> (Value, String) {
        let email = format!("{}@example.test", unique("u"));
        let user = self.register(&email, "password-123", "Test User").await;
        let tokens = self.login(&email, "password-123").await;
        let token = tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        (user, token)
    }

    /// Logs in as the bootstrap admin and returns the access token.
    pub async fn admin_token(&self) -> String {
        let tokens = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Stops the host.
    pub async fn stop(self) {
        if let Some(events) = self.events {
            events.stop().await;
        }
        self.host.stop().await;
        self.db.close().await;
        if let Some(name) = self.own_mysql_database {
            drop_mysql_database(&name).await;
        }
    }
}

/// Creates the schema the app expects, through the code the app and
/// `tools/migrate` use: on MySQL the files in `migrations/`, on SQLite those
/// in `migrations/sqlite/` (`shared::db::sqlite::migrate`, which the app
/// would otherwise run on its first request).
async fn create_schema(database: &Database) -> Result<()> {
    let url = match database {
        Database::MySql(url) => url.clone(),
        Database::Sqlite(_) => {
            let file = database
                .sqlite_file()
                .expect("a SQLite database has a file");
            format!("sqlite:{}", file.display())
        }
    };
    migrate::apply(&url, &migrate::default_dir())
        .await
        .context("applying migrations to the test database")?;
    Ok(())
}

/// Creates database `name` on the test server.
async fn create_mysql_database(name: &str) -> Result<()> {
    let server = mysql_async::Pool::new(mysql_async::Opts::from_url(&database_url())?);
    let mut conn = server.get_conn().await?;
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{name}`"))
        .await?;
    drop(conn);
    server.disconnect().await?;
    Ok(())
}

/// Drops database `name` from the test server, if it can.
async fn drop_mysql_database(name: &str) {
    let Ok(opts) = mysql_async::Opts::from_url(&database_url()) else {
        return;
    };
    let server = mysql_async::Pool::new(opts);
    if let Ok(mut conn) = server.get_conn().await {
        let _ = conn
            .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .await;
    }
    let _ = server.disconnect().await;
}

//! Helpers shared by the host's black-box tests: the fixture app, hosts,
//! MySQL, SQLite and Redis set-up, and the host binary as a child process.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use spin_test_host::{HostConfig, KeyValueBackend, RunningHost};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const MYSQL_ROOT: &str = "mysql://root@127.0.0.1:3306";
pub const DB: &str = "spin_host_test";
/// The fixture's required variable; every host in these tests supplies it.
pub const API_TOKEN: &str = "test-token-0123456789";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixture/spin.toml`, after checking the fixture wasm is built.
pub fn fixture_manifest() -> PathBuf {
    let wasm = fixture_wasm();
    assert!(
        wasm.exists(),
        "fixture not built: {} is missing. Build it with \
         `rustup target add wasm32-wasip2 && cargo build --target wasm32-wasip2 --release -p fixture` \
         from the repository root.",
        wasm.display()
    );
    repo_root().join("tests/fixture/spin.toml")
}

pub fn fixture_wasm() -> PathBuf {
    repo_root().join("target/wasm32-wasip2/release/fixture.wasm")
}

/// A name unique to this process and call, for keys, prefixes and tables.
pub fn unique(label: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{label}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The fixture's config with the required variable supplied, and a fresh
/// state directory (so no test's SQLite database lands in the repository
/// or meets another test's).
pub fn fixture_config() -> HostConfig {
    let mut config = HostConfig::new(fixture_manifest());
    config
        .variables
        .push(("api_token".to_owned(), API_TOKEN.to_owned()));
    config.state_dir = Some(temp_dir("state"));
    config
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(&format!("spin-test-host-{label}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn start_fixture() -> RunningHost {
    RunningHost::start(fixture_config()).await.unwrap()
}

pub async fn start_fixture_redis(prefix: &str) -> RunningHost {
    let mut config = fixture_config();
    config.key_value = KeyValueBackend::Redis {
        url: REDIS_URL.to_owned(),
        prefix: prefix.to_owned(),
    };
    RunningHost::start(config).await.unwrap()
}

/// Writes a manifest into a fresh temporary directory; `{wasm}` in `body`
/// becomes the fixture wasm's absolute path.
pub fn temp_manifest(body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("spin-test-host"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spin.toml");
    let wasm = fixture_wasm().canonicalize().unwrap_or_else(|_| {
        panic!("fixture not built: run `cargo build --target wasm32-wasip2 --release -p fixture`")
    });
    std::fs::write(&path, body.replace("{wasm}", &wasm.display().to_string())).unwrap();
    path
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET returning (status, JSON body).
pub async fn get_json(url: &str) -> (u16, Value) {
    let res = client().get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Runs a MySQL script through the fixture (`POST /api/mysql`).
pub async fn mysql_script(host: &RunningHost, script: Value) -> Value {
    let res = client()
        .post(format!("{}/api/mysql", host.base_url()))
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Runs a SQLite script through the fixture (`POST /api/sqlite`).
pub async fn sqlite_script(host: &RunningHost, script: Value) -> Value {
    let res = client()
        .post(format!("{}/api/sqlite", host.base_url()))
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A native connection to the test database, creating it if absent.
pub async fn mysql_conn() -> mysql_async::Conn {
    use mysql_async::prelude::Queryable as _;
    let mut root = mysql_async::Conn::from_url(MYSQL_ROOT).await.unwrap();
    root.query_drop(format!("CREATE DATABASE IF NOT EXISTS {DB}"))
        .await
        .unwrap();
    root.disconnect().await.unwrap();
    mysql_async::Conn::from_url(format!("{MYSQL_ROOT}/{DB}"))
        .await
        .unwrap()
}

pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The host binary as a child process; killed on drop.
pub struct HostProcess {
    pub child: Child,
    pub base_url: String,
    /// Every stderr line so far (the host's log).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--state-dir <fresh dir>` unless `args` name one: a manifest's `.spin`
/// (the fixture's is in the repository) is left alone.
fn state_dir_unless_given(args: &[&str]) -> Vec<String> {
    if args.contains(&"--state-dir") {
        return Vec::new();
    }
    vec![
        "--state-dir".to_owned(),
        temp_dir("state").display().to_string(),
    ]
}

/// Starts `spin-test-host` with `args` (plus `--listen 127.0.0.1:0`, and a
/// fresh `--state-dir` unless given) in a temporary working directory, and
/// waits for its "Serving" line.
pub fn spawn_host(args: &[&str], envs: &[(&str, &str)]) -> HostProcess {
    let cwd = std::env::temp_dir().join(unique("spin-test-host-cwd"));
    std::fs::create_dir_all(&cwd).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .args(state_dir_unless_given(args))
        .env_remove("SPIN_VARIABLE_API_TOKEN")
        .envs(envs.iter().copied())
        .current_dir(&cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        // Keep draining so the child never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[host] {line}");
            sink.lock().unwrap().push(line.clone());
            if let Some(url) = line.strip_prefix("Serving ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        }
    });
    let base_url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("spin-test-host did not start serving within 60 s");
    HostProcess {
        child,
        base_url,
        log,
    }
}

/// Runs the binary to completion (for start-up failures): (exit code, stderr).
/// As [`spawn_host`], a fresh `--state-dir` unless `args` give one.
pub fn run_host_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let cwd = std::env::temp_dir().join(unique("spin-test-host-cwd"));
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spin-test-host"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .args(state_dir_unless_given(args))
        .env_remove("SPIN_VARIABLE_API_TOKEN")
        .current_dir(&cwd)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

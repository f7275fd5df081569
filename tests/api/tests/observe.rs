//! Observability (README "Observe"): one JSON log line per request from
//! every component, the host's metrics read back through a real Prometheus
//! server (Debian's package; scripts/setup.sh installs it), and the alert
//! rules and scrape config checked by `promtool`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use api_tests::{
    unique, workspace_root, AppOptions, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, JWT_SECRET,
};
use serde_json::Value;
use spin_test_host::{HostConfig, RunningHost};

/// A fresh directory under the system's temporary directory.
fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(label));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every line each component wrote, by file name (`users_stdout.txt`, …).
fn log_files(dir: &Path) -> HashMap<String, Vec<String>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            (name, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

/// The parsed line of the request sent with `X-Request-Id: request_id`.
fn line_of<'a>(lines: &'a [Value], request_id: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "one line for {request_id}: {lines:#?}");
    found[0]
}

/// Sends `method path` with our own request id (and `token` when given).
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    request_id: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let mut req = app
        .http
        .request(method, app.url(path))
        .header("x-request-id", request_id);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A request's expected line: request id, component, method, route
/// template, status, and whether the caller's user id is logged.
type ExpectedLine<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, u16, bool);

#[tokio::test]
async fn every_component_logs_one_json_line_per_request_with_its_route_template() {
    let logs = temp_dir("logs");
    let app = TestApp::start_with(AppOptions {
        log_dir: Some(logs.clone()),
        ..AppOptions::default()
    })
    .await;
    let email = format!("{}@example.test", unique("obs"));
    let password = format!("pw-{}", unique(""));
    let user = app.register(&email, &password, "Observed").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let tokens = app.login(&email, &password).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let unknown_id = "0123456789abcdef0123456789abcdef";
    let get = reqwest::Method::GET;

    let mut expected: Vec<ExpectedLine> = Vec::new();
    let status = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        "obs-login",
        None,
        Some(serde_json::json!({"email": email, "password": "wrong-password-1"})),
    )
    .await;
    expected.push((
        "obs-login",
        "login",
        "POST",
        Some("/api/v1/auth/login"),
        status,
        false,
    ));
    let me = send(
        &app,
        get.clone(),
        "/api/v1/users/me",
        "obs-me",
        Some(&access),
        None,
    )
    .await;
    expected.push(("obs-me", "users", "GET", Some("/api/v1/users/me"), me, true));
    let by_id = format!("/api/v1/users/{user_id}");
    let status = send(&app, get.clone(), &by_id, "obs-user", Some(&access), None).await;
    expected.push((
        "obs-user",
        "users",
        "GET",
        Some("/api/v1/users/:id"),
        status,
        true,
    ));
    let product = format!("/api/v1/products/{unknown_id}");
    let status = send(&app, get.clone(), &product, "obs-product", None, None).await;
    expected.push((
        "obs-product",
        "orders",
        "GET",
        Some("/api/v1/products/:id"),
        status,
        false,
    ));
    let upload = format!("/api/v1/uploads/{unknown_id}");
    let status = send(
        &app,
        get.clone(),
        &upload,
        "obs-upload",
        Some(&access),
        None,
    )
    .await;
    expected.push((
        "obs-upload",
        "uploads",
        "GET",
        Some("/api/v1/uploads/:id"),
        status,
        true,
    ));
    let status = send(
        &app,
        get.clone(),
        "/api/v1/events",
        "obs-events",
        Some(&access),
        None,
    )
    .await;
    expected.push((
        "obs-events",
        "events",
        "GET",
        Some("/api/v1/events"),
        status,
        true,
    ));
    let status = send(
        &app,
        get.clone(),
        "/api/v1/openapi.json",
        "obs-docs",
        None,
        None,
    )
    .await;
    expected.push((
        "obs-docs",
        "docs",
        "GET",
        Some("/api/v1/openapi.json"),
        status,
        false,
    ));
    let nowhere = format!("/api/v1/orders/{unknown_id}/nowhere/else");
    let status = send(&app, get.clone(), &nowhere, "obs-unrouted", None, None).await;
    expected.push(("obs-unrouted", "orders", "GET", None, status, false));
    assert_eq!(me, 200);
    app.stop().await;

    let files = log_files(&logs);
    for (name, lines) in &files {
        if name.ends_with("_stderr.txt") {
            assert!(lines.is_empty(), "{name} holds {lines:#?}");
        }
    }
    let mut parsed = Vec::new();
    for (name, lines) in &files {
        let component = name.trim_end_matches("_stdout.txt");
        for line in lines {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
            assert_eq!(value["component"], component, "{line}");
            for field in ["time", "level", "request_id", "method"] {
                assert!(value[field].is_string(), "{field} in {line}");
            }
            assert!(value["status"].is_u64(), "{line}");
            assert!(value["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
            assert!(value["time"].as_str().unwrap().ends_with('Z'), "{line}");
            let secrets = [
                password.as_str(),
                access.as_str(),
                refresh.as_str(),
                JWT_SECRET,
                ADMIN_PASSWORD,
            ];
            for secret in secrets {
                assert!(!line.contains(secret), "a secret in {line}");
            }
            parsed.push(value);
        }
    }
    for (request_id, component, method, route, status, user_logged) in expected {
        let line = line_of(&parsed, request_id);
        assert_eq!(line["component"], component, "{line}");
        assert_eq!(line["method"], method, "{line}");
        assert_eq!(line["route"].as_str(), route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(
            line["level"],
            if status >= 500 { "error" } else { "info" },
            "{line}"
        );
        let logged_user = line.get("user_id").and_then(Value::as_str);
        assert_eq!(
            logged_user,
            user_logged.then_some(user_id.as_str()),
            "{line}"
        );
        assert!(!line.to_string().contains(unknown_id), "raw id in {line}");
    }
    let login = line_of(&parsed, "obs-login");
    assert_eq!(login["status"], 401);
    assert_eq!(login["code"], "invalid_credentials");
    assert_eq!(line_of(&parsed, "obs-events")["status"], 403);
    let _ = std::fs::remove_dir_all(&logs);
}

/// A host whose MySQL is unreachable (a closed port; the URL carries a
/// password), with in-memory key-value, metrics and a log directory.
async fn start_without_mysql(password: &str, logs: &Path) -> RunningHost {
    let mut config = HostConfig::new(workspace_root().join("spin.toml"));
    config.variables = vec![
        ("jwt_secret".into(), JWT_SECRET.into()),
        (
            "db_url".into(),
            format!("mysql://root:{password}@127.0.0.1:1/spin_api"),
        ),
        ("db_host".into(), "127.0.0.1:1".into()),
        ("admin_email".into(), ADMIN_EMAIL.into()),
        ("admin_password".into(), ADMIN_PASSWORD.into()),
    ];
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    config.log_dir = Some(logs.to_owned());
    RunningHost::start(config).await.expect("host starts")
}

#[tokio::test]
async fn a_5xx_line_names_its_cause_without_the_database_password() {
    let logs = temp_dir("logs5xx");
    let password = unique("dbpw").replace(['-', '_'], "");
    let host = start_without_mysql(&password, &logs).await;
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/health", host.base_url()))
        .header("x-request-id", "obs-health")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let product = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/products/0123456789abcdef0123456789abcdef",
            host.base_url()
        ))
        .header("x-request-id", "obs-product-503")
        .send()
        .await
        .unwrap();
    assert_eq!(product.status(), 503);
    host.stop().await;

    let files = log_files(&logs);
    let lines: Vec<Value> = files
        .values()
        .flatten()
        .map(|l| {
            assert!(!l.contains(&password), "the database password in {l}");
            serde_json::from_str(l).unwrap()
        })
        .collect();
    let health = line_of(&lines, "obs-health");
    assert_eq!(health["level"], "error");
    assert_eq!(health["route"], "/api/v1/health");
    let cause = health["error"].as_str().expect("a 5xx line has its cause");
    assert!(cause.contains("health: database"), "{cause}");
    let product = line_of(&lines, "obs-product-503");
    assert_eq!(product["code"], "unavailable");
    assert!(product["error"].is_string(), "{product}");
    let _ = std::fs::remove_dir_all(&logs);
}

/// A real Prometheus server scraping one target every second; killed on drop.
struct Prometheus {
    child: tokio::process::Child,
    base: String,
    dir: PathBuf,
}

impl Prometheus {
    async fn start(target: std::net::SocketAddr) -> Prometheus {
        let dir = temp_dir("prometheus");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: spin-api\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus is installed (scripts/setup.sh installs Debian's package)");
        let prometheus = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/-/ready", prometheus.base)).await;
            if matches!(&ready, Ok(r) if r.status() == 200) {
                return prometheus;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "prometheus not ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of an instant query that yields one sample, if it does.
    async fn value(&self, query: &str) -> Option<f64> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        assert_eq!(body["status"], "success", "{query}: {body}");
        let result = body["data"]["result"].as_array()?;
        let [sample] = result.as_slice() else {
            return None;
        };
        sample["value"][1].as_str()?.parse().ok()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn prometheus_reads_back_the_hosts_request_counts() {
    let logs = temp_dir("logsprom");
    let host = start_without_mysql("pw", &logs).await;
    let prometheus = Prometheus::start(host.metrics_addr().unwrap()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", host.base_url());
    for _ in 0..2 {
        let res = http.get(url("/no/such/route")).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
    for _ in 0..3 {
        let res = http.get(url("/api/v1/users/me")).send().await.unwrap();
        assert_eq!(res.status(), 401);
    }
    let res = http.get(url("/api/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    for _ in 0..4 {
        let res = http.get(url("/api/v1/openapi.json")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }

    let requests = "spin_host_http_requests_total";
    let expected = [
        (
            format!(r#"sum({requests}{{component="unmatched",status="404"}})"#),
            2.0,
        ),
        (
            format!(
                r#"sum({requests}{{component="users",route="/api/v1/users/...",method="GET",status="401"}})"#
            ),
            3.0,
        ),
        (
            format!(r#"sum({requests}{{route="/api/v1/health",status="503"}})"#),
            1.0,
        ),
        (
            format!(r#"sum({requests}{{component="docs",status="200"}})"#),
            4.0,
        ),
        (
            r#"sum(spin_host_http_request_duration_seconds_count{route="/api/v1/health"})"#
                .to_owned(),
            1.0,
        ),
        (
            r#"sum(spin_host_mysql_calls_total{component="users",op="open",outcome="error"}) > bool 0"#
                .to_owned(),
            1.0,
        ),
        (
            format!(
                r#"sum({requests}{{status=~"5.."}}) / sum({requests})"#
            ),
            0.1,
        ),
    ];
    let started = Instant::now();
    let mut last = Vec::new();
    loop {
        last.clear();
        for (query, want) in &expected {
            let got = prometheus.value(query).await;
            if got.is_none_or(|g| (g - want).abs() > 1e-9) {
                last.push(format!("{query} = {got:?}, want {want}"));
            }
        }
        if last.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus never read the expected counts:\n{}",
            last.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    prometheus.stop().await;
    host.stop().await;
    let _ = std::fs::remove_dir_all(&logs);
}

fn promtool(args: &[&str]) {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(workspace_root().join("deploy/prometheus"))
        .output()
        .expect("promtool is installed (scripts/setup.sh installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_scrape_config() {
    promtool(&["check", "config", "prometheus.yml"]);
}

#[test]
fn promtool_accepts_the_alert_rules() {
    promtool(&["check", "rules", "alerts.yml"]);
}

#[test]
fn each_alert_fires_on_its_failure_and_stays_quiet_when_healthy() {
    promtool(&["test", "rules", "alerts.test.yml"]);
}

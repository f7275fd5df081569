//! The API reference page (`GET /api/v1/docs`) in a real browser: Debian's
//! headless Chromium (`/usr/bin/chromium`, or `$CHROMIUM`) driven by Playwright
//! (`tests/browser/docs-page.mjs`, `playwright-core` from npm). The page must
//! render every operation of openapi.yaml, and "Try it out" on
//! `GET /api/v1/health` must show 200 — with no request leaving the app's
//! origin, no Content-Security-Policy violation and no script error.
//! Screenshots land in `target/browser/`.
//!
//! scripts/setup.sh installs Chromium (apt) and `tests/browser/node_modules`
//! (`npm ci`); without them this test fails and says so.

use std::path::Path;
use std::process::Command;

use api_tests::{workspace_root, TestApp};
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn documented_operations() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace_root().join("openapi.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn reference_page_renders_every_operation_and_tries_health() {
    let root = workspace_root();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/setup.sh (apt-get install chromium)"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is missing: run scripts/setup.sh (npm ci --prefix tests/browser)"
    );
    let operations = documented_operations();
    assert!(operations.len() > 20, "{operations:?}");

    let app = TestApp::start().await;
    let shots = root.join("target/browser");
    let base = app.base.clone();
    let args = (
        serde_json::to_string(&operations).unwrap(),
        shots.display().to_string(),
    );
    let script = root.join("tests/browser/docs-page.mjs");
    // The browser blocks; keep it off the runtime that serves the app.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(base)
            .arg(args.0)
            .arg(args.1)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs (Node.js is installed by scripts/setup.sh)")
    })
    .await
    .unwrap();
    app.stop().await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser check failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report from docs-page.mjs ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(report["operations"], operations.len(), "{report}");
    assert!(report["health_status"].as_str().unwrap().starts_with("200"));
    assert_eq!(report["problems"], serde_json::json!([]));
    assert!(shots.join("docs-page.png").exists());
    assert!(shots.join("docs-try-health.png").exists());
}

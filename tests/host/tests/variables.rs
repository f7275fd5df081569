//! `fermyon:spin/variables@2.0.0` and variable providers.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn component_variables_render_templates() {
    let host = start_fixture().await;
    let base = host.base_url();
    assert_eq!(
        get_json(&format!("{base}/api/var/token")).await.1,
        json!({"ok": API_TOKEN})
    );
    assert_eq!(
        get_json(&format!("{base}/api/var/message")).await.1,
        json!({"ok": "hello, world (spin_host_test)"})
    );
    host.stop().await;
}

#[tokio::test]
async fn variable_option_beats_default_and_last_wins() {
    let mut config = fixture_config();
    config.variables.push(("greeting".into(), "first".into()));
    config.variables.push(("greeting".into(), "bonjour".into()));
    let host = spin_test_host::RunningHost::start(config).await.unwrap();
    assert_eq!(
        get_json(&format!("{}/api/var/message", host.base_url()))
            .await
            .1,
        json!({"ok": "bonjour, world (spin_host_test)"})
    );
    host.stop().await;
}

#[tokio::test]
async fn undefined_variable_is_spins_undefined_error() {
    let host = start_fixture().await;
    let (_, body) = get_json(&format!("{}/api/var/nope", host.base_url())).await;
    assert_eq!(
        body,
        json!({"err": "Error::Undefined(\"no variable for \\\"fixture\\\".\\\"nope\\\"\")"})
    );
    host.stop().await;
}

#[tokio::test]
async fn invalid_variable_name_is_spins_invalid_name_error() {
    let host = start_fixture().await;
    let (_, body) = get_json(&format!("{}/api/var/Bad", host.base_url())).await;
    let err = body["err"].as_str().unwrap();
    assert!(err.starts_with("Error::InvalidName("), "{err}");
    host.stop().await;
}

#[tokio::test]
async fn missing_required_variable_fails_start_naming_it() {
    let config = spin_test_host::HostConfig::new(fixture_manifest());
    let err = match spin_test_host::RunningHost::start(config).await {
        Ok(_) => panic!("start must fail without api_token"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("api_token"), "{err}");
    assert!(err.contains("SPIN_VARIABLE_API_TOKEN"), "{err}");
}

#[test]
fn binary_exits_nonzero_on_missing_required_variable() {
    let manifest = fixture_manifest();
    let (code, stderr) = run_host_to_exit(&["--from", manifest.to_str().unwrap()]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(stderr.contains("Error:"), "{stderr}");
    assert!(stderr.contains("required variable"), "{stderr}");
    assert!(stderr.contains("api_token"), "{stderr}");
}

#[tokio::test]
async fn binary_reads_spin_variable_environment() {
    let manifest = fixture_manifest();
    let host = spawn_host(
        &["--from", manifest.to_str().unwrap()],
        &[
            ("SPIN_VARIABLE_API_TOKEN", "from-env"),
            ("SPIN_VARIABLE_GREETING", "hi"),
        ],
    );
    assert_eq!(
        get_json(&format!("{}/api/var/token", host.base_url))
            .await
            .1,
        json!({"ok": "from-env"})
    );
    assert_eq!(
        get_json(&format!("{}/api/var/message", host.base_url))
            .await
            .1,
        json!({"ok": "hi, world (spin_host_test)"})
    );
}

#[tokio::test]
async fn binary_variable_option_beats_environment() {
    let manifest = fixture_manifest();
    let host = spawn_host(
        &[
            "--from",
            manifest.to_str().unwrap(),
            "--variable",
            "api_token=from-flag",
        ],
        &[("SPIN_VARIABLE_API_TOKEN", "from-env")],
    );
    assert_eq!(
        get_json(&format!("{}/api/var/token", host.base_url))
            .await
            .1,
        json!({"ok": "from-flag"})
    );
}

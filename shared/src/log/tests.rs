use super::*;

#[test]
fn warnings_are_redacted_capped_and_taken_once() {
    warn("cache: set failed: redis://user:hunter2@cache:6379");
    for i in 0..20 {
        warn(format!("w{i}"));
    }
    let taken = take_warnings();
    assert_eq!(taken.len(), MAX_WARNINGS);
    assert!(!taken[0].contains("hunter2"), "{}", taken[0]);
    assert!(take_warnings().is_empty());
}

#[test]
fn a_triggered_run_logs_one_line_with_its_redacted_failure() {
    let ok = triggered_line(
        "events",
        "redis",
        1_000,
        1_250,
        Ok(serde_json::json!({"n": 1})),
    );
    assert_eq!(ok["level"], "info");
    assert_eq!(ok["duration_ms"], 250);
    assert_eq!(ok["result"]["n"], 1);
    assert_eq!(ok["request_id"].as_str().unwrap().len(), 32);
    let failed = triggered_line(
        "events",
        "redis",
        0,
        0,
        Err("mysql://app:hunter2@db/shop unreachable".into()),
    );
    assert_eq!(failed["level"], "error");
    assert!(!failed.to_string().contains("hunter2"), "{failed}");
}

#[test]
fn time_is_rfc3339_utc_with_milliseconds() {
    assert_eq!(
        crate::time::rfc3339(1_800_000_000_123),
        "2027-01-15T08:00:00.123Z"
    );
}

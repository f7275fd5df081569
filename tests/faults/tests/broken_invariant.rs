//! The suite fails when an invariant is broken, end to end: a short run
//! without faults, with `--break outbox` (an `order.created` outbox row
//! deleted mid-run, as an order committed without its event would leave
//! it), must report that invariant violated — and only it — and exit 1.
//!
//! Needs what `scripts/faults` needs: the release `.wasm` components, the
//! `spin-test-host` binary beside `faults`, MariaDB's binaries, `redis-server`
//! and `s3s-fs` (scripts/test sets them all up).

use std::process::Command;

#[test]
fn a_missing_outbox_row_fails_the_suite() {
    let results = tempfile::NamedTempFile::new().expect("temporary file");
    let output = Command::new(env!("CARGO_BIN_EXE_faults"))
        .args(["--seconds", "8", "--workers", "6", "--no-faults"])
        .args(["--break", "outbox", "--results"])
        .arg(results.path())
        .output()
        .expect("faults runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1 (an invariant violated)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report = std::fs::read_to_string(results.path()).expect("results written");
    let violated: Vec<&str> = report
        .lines()
        .filter(|line| line.contains("**VIOLATED**"))
        .collect();
    assert_eq!(violated.len(), 1, "{report}");
    assert!(
        violated[0].starts_with(&format!("| {} |", faults::invariants::OUTBOX)),
        "{report}"
    );
    assert!(report.contains("9 of 10 invariants held"), "{report}");
}

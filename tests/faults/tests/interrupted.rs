//! Stopped mid-run by SIGTERM (a CI timeout, `kill`), the suite stops every
//! server and host it started before it exits, instead of leaving a MariaDB,
//! a Redis, an s3s-fs and three hosts behind.
//!
//! Needs what `scripts/faults` needs (see broken_invariant.rs).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fields of `/proc/<pid>/stat` after `pid (comm)`, from the state on
/// (comm may hold spaces and parentheses, so split after its last `)`).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The pids of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| stat_fields(pid).is_some_and(|f| f.get(1) == Some(&parent.to_string())))
        .collect()
}

/// Whether `pid` is still a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

#[test]
fn sigterm_stops_every_server_the_suite_started() {
    let results = tempfile::NamedTempFile::new().expect("temporary file");
    let mut suite = Command::new(env!("CARGO_BIN_EXE_faults"))
        .args([
            "--seconds",
            "60",
            "--workers",
            "2",
            "--no-faults",
            "--results",
        ])
        .arg(results.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faults runs");
    let pid = suite.id();

    // Its progress lines: once it creates products, every server and host runs.
    let stderr = suite.stderr.take().expect("piped stderr");
    let (lines, progress) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut seen = Vec::new();
    loop {
        let line = progress
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the suite never started its hosts:\n{}", seen.join("\n")));
        let ready = line.contains("creating products and users");
        seen.push(line);
        if ready {
            break;
        }
    }
    let started = children_of(pid);
    // MariaDB, Redis, s3s-fs, two API hosts and the events app.
    assert!(
        started.len() >= 6,
        "children {started:?}\n{}",
        seen.join("\n")
    );

    faults::processes::send_signal(pid, libc::SIGTERM).expect("SIGTERM");
    let exited = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = suite.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > exited {
            let _ = suite.kill();
            panic!("the suite did not exit within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(143), "the shell's code for SIGTERM");

    // Orphans, had there been any, would outlive it; give init a moment to reap.
    let settled = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = started.clone();
    while !left.is_empty() && Instant::now() < settled {
        left.retain(|&child| alive(child));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        left.is_empty(),
        "still running after the suite exited: {left:?}"
    );
}

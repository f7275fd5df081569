//! The host bounds hostile guests and clients: request deadlines, instance
//! memory, slow clients, connection and instance caps, graceful shutdown,
//! and no secrets in its log. Each test runs the host binary as a child
//! process, as `scripts/serve` and CI do, with its limits made small.
//!
//! Times here are liveness bounds (a runaway guest would otherwise hold its
//! thread for good), not performance claims; `.config/nextest.toml` runs
//! these tests one at a time so they do not load each other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The fixture host with `extra` flags.
fn host(extra: &[&str]) -> HostProcess {
    let manifest = fixture_manifest();
    let token = format!("api_token={API_TOKEN}");
    let mut args = vec!["--from", manifest.to_str().unwrap(), "--variable", &token];
    args.extend_from_slice(extra);
    spawn_host(&args, &[])
}

fn addr(host: &HostProcess) -> String {
    host.base_url.trim_start_matches("http://").to_owned()
}

/// Wall time of one `GET /noop` on a fresh connection, asserting it is 200.
async fn time_noop(base: &str) -> Duration {
    let started = Instant::now();
    let res = client().get(format!("{base}/noop")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    started.elapsed()
}

/// The median of `n` sequential `/noop` timings: one scheduler hiccup on a
/// shared CI machine must not decide the test.
async fn median_noop(base: &str, n: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..n {
        times.push(time_noop(base).await);
    }
    times.sort();
    times[n / 2]
}

/// Reads from `stream` until the server closes it (EOF or reset), or
/// `within` passes; the bytes read, or None if still open.
async fn closed_within(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Peak resident memory of a process, from `/proc` (kB → bytes).
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

fn signal(host: &HostProcess, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// Waits for the child to exit; its exit code.
fn exit_code_within(host: &mut HostProcess, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = host.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("host still running {within:?} after the signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_never_returns_is_answered_500_at_the_deadline() {
    let host = host(&["--request-timeout", "2s"]);
    let base = host.base_url.clone();
    let started = Instant::now();
    let runaway = tokio::spawn({
        let base = base.clone();
        async move { client().get(format!("{base}/api/spin")).send().await }
    });
    let res = runaway.await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 500);
    assert_eq!(res.text().await.unwrap(), "");
    assert!(
        elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}, deadline 2 s"
    );
    // The instance was freed: the next request is served normally.
    let (status, body) = get_json(&format!("{base}/api/var/token")).await;
    assert_eq!((status, body), (200, serde_json::json!({"ok": API_TOKEN})));
    let log = host.log.lock().unwrap().join("\n");
    assert!(log.contains("stopped at the request deadline"), "{log}");
}

/// As on Spin 4.0.2, a guest is never made to yield: runaway guests on
/// every worker thread stall the whole app — `/noop` included — until the
/// deadline stops them, and then it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_guests_on_every_worker_stall_the_app_until_their_deadline() {
    let host = host(&["--request-timeout", "2s"]);
    let base = host.base_url.clone();
    // The host's runtime has one worker per available core.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let started = Instant::now();
    let mut runaways = Vec::new();
    for _ in 0..workers {
        let base = base.clone();
        runaways.push(tokio::spawn(async move {
            client().get(format!("{base}/api/spin")).send().await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let noop = time_noop(&base).await;
    let answered_at = started.elapsed();
    assert!(
        answered_at >= Duration::from_millis(1500),
        "/noop answered {answered_at:?} after {workers} runaway guests started (took {noop:?}): \
         a guest was made to yield, which Spin never does"
    );
    assert!(
        answered_at < Duration::from_secs(5),
        "/noop answered only {answered_at:?} after the runaways started; their deadline is 2 s"
    );
    for r in runaways {
        assert_eq!(r.await.unwrap().unwrap().status(), 500);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_allocates_1_gib_traps_and_host_memory_stays_bounded() {
    let host = host(&[]);
    let base = host.base_url.clone();
    let res = client()
        .get(format!("{base}/api/alloc/1024"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let res = client()
        .get(format!("{base}/api/alloc/64"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "memory under the cap still works");
    assert!(time_noop(&base).await < Duration::from_secs(5));
    let peak = peak_rss_bytes(host.child.id());
    assert!(peak < 1 << 30, "host peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_instance_memory_cap_refuses_what_the_default_allows() {
    let host = host(&["--max-instance-memory", "32MiB"]);
    let res = client()
        .get(format!("{}/api/alloc/64", host.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    assert!(time_noop(&host.base_url).await < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_header_clients_do_not_block_others_and_are_closed() {
    let host = host(&["--header-read-timeout", "2s"]);
    let address = addr(&host);
    let head = b"GET /noop HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut slow = Vec::new();
    for _ in 0..300 {
        let address = address.clone();
        slow.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&address).await.unwrap();
            let opened = Instant::now();
            let (mut reader, mut writer) = stream.into_split();
            // One byte a second, never finishing the head within 2 s.
            let trickle = tokio::spawn(async move {
                for byte in head.iter().take(8) {
                    if writer.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let got = closed_within(&mut reader, Duration::from_secs(10)).await;
            trickle.abort();
            (got, opened.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let median = median_noop(&host.base_url, 7).await;
    assert!(
        median < Duration::from_millis(100),
        "/noop took {median:?} beside 300 slow heads"
    );
    for task in slow {
        let (got, open_for) = task.await.unwrap();
        let got = got.expect("slow-head connection still open 10 s later");
        assert!(
            !String::from_utf8_lossy(&got).contains(" 200 "),
            "a head that never finished was answered"
        );
        assert!(
            open_for >= Duration::from_millis(1900) && open_for < Duration::from_secs(5),
            "closed after {open_for:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_stalled_bodies_hold_no_instance_and_get_408() {
    // Fewer instances than slow clients: if a stalled body held an
    // instance, /noop would find none.
    let host = host(&["--body-idle-timeout", "2s", "--max-instances", "32"]);
    let address = addr(&host);
    let mut slow = Vec::new();
    for _ in 0..300 {
        let address = address.clone();
        slow.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            let opened = Instant::now();
            stream
                .write_all(
                    b"POST /api/kv/default/slow HTTP/1.1\r\nHost: x\r\n\
                      Content-Length: 1000\r\n\r\nfirst bytes",
                )
                .await
                .unwrap();
            let got = closed_within(&mut stream, Duration::from_secs(10)).await;
            (got, opened.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let median = median_noop(&host.base_url, 7).await;
    assert!(
        median < Duration::from_millis(100),
        "/noop took {median:?} beside 300 stalled bodies"
    );
    for task in slow {
        let (got, open_for) = task.await.unwrap();
        let got = got.expect("stalled-body connection still open 10 s later");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            open_for >= Duration::from_secs(2) && open_for < Duration::from_secs(6),
            "closed after {open_for:?}"
        );
    }
    // Nothing reached the store.
    let (_, value) = get_json(&format!("{}/api/kv/default/slow", host.base_url)).await;
    assert_eq!(value, serde_json::json!({"ok": null}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_under_the_idle_timeout_ends_at_the_request_deadline() {
    let host = host(&["--body-idle-timeout", "2s", "--request-timeout", "3s"]);
    let mut stream = TcpStream::connect(addr(&host)).await.unwrap();
    let opened = Instant::now();
    stream
        .write_all(
            b"POST /api/kv/default/trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(3500), trickle).await;
    let got = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("trickling connection still open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(opened.elapsed() < Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let host = host(&["--keep-alive-timeout", "1s"]);
    let mut stream = TcpStream::connect(addr(&host)).await.unwrap();
    let request = b"GET /noop HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Reused within the timeout: still served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(request).await.unwrap();
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let got = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("idle connection still open 5 s later");
    // At most the tail of the last response; no new answer.
    assert!(!String::from_utf8_lossy(&got).contains("HTTP/1.1"));
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_clients_wait_until_one_closes() {
    let host = host(&[
        "--max-connections",
        "3",
        "--keep-alive-timeout",
        "30s",
        "--header-read-timeout",
        "30s",
    ]);
    let address = addr(&host);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let base = host.base_url.clone();
        async move { time_noop(&base).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a fourth connection was served at the cap of 3"
    );
    drop(held.pop());
    let waited = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("not served after a slot freed")
        .unwrap();
    assert!(waited >= Duration::from_millis(700));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_requests_than_instances_get_503_with_retry_after_and_all_recover() {
    let host = host(&["--max-instances", "4"]);
    let base = host.base_url.clone();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let res = client()
                .get(format!("{base}/api/sleep/1500"))
                .send()
                .await
                .unwrap();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status().as_u16(), retry_after)
        }));
    }
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, None) => ok += 1,
            (503, Some(retry)) => {
                assert_eq!(retry, "1");
                busy += 1
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((ok, busy), (4, 6));
    // Every instance came back.
    let mut again = Vec::new();
    for _ in 0..4 {
        let base = base.clone();
        again.push(tokio::spawn(async move {
            client()
                .get(format!("{base}/api/sleep/200"))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in again {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_twenty_requests_in_flight_finish_then_exits_0() {
    let mut host = host(&["--shutdown-grace", "10s"]);
    let base = host.base_url.clone();
    let mut in_flight = Vec::new();
    for _ in 0..20 {
        let base = base.clone();
        in_flight.push(tokio::spawn(async move {
            let res = client()
                .get(format!("{base}/api/sleep/2000"))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&host, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = TcpStream::connect(addr(&host)).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    for t in in_flight {
        assert_eq!(t.await.unwrap(), (200, "slept".to_owned()));
    }
    assert_eq!(
        exit_code_within(&mut host, Duration::from_secs(10)),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_on_an_idle_host_exits_0_at_once() {
    let mut host = host(&[]);
    assert!(time_noop(&host.base_url).await < Duration::from_secs(5));
    let started = Instant::now();
    signal(&host, "INT");
    assert_eq!(exit_code_within(&mut host, Duration::from_secs(5)), Some(0));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_never_contains_the_redis_password() {
    const PASSWORD: &str = "pa55-w0rd-never-logged";
    let url = format!("redis://:{PASSWORD}@127.0.0.1:6379");
    let prefix = unique("pw");
    let host = host(&["--key-value", &url, "--key-value-prefix", &prefix]);
    // Redis here has no password, so every call fails and is logged.
    let (status, body) = get_json(&format!("{}/api/kv/default/k", host.base_url)).await;
    assert_eq!(status, 200);
    assert!(body["err"].is_string(), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = host.log.lock().unwrap().join("\n");
    assert!(log.contains("redis://***@127.0.0.1:6379"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    assert!(!body.to_string().contains(PASSWORD), "{body}");
}

#[test]
fn a_mistyped_key_value_url_is_refused_without_echoing_it() {
    let manifest = fixture_manifest();
    let (code, stderr) = run_host_to_exit(&[
        "--from",
        manifest.to_str().unwrap(),
        "--variable",
        "api_token=x",
        "--key-value",
        "redis:/:pa55-w0rd@localhost",
    ]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--key-value"), "{stderr}");
    assert!(!stderr.contains("pa55-w0rd"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_without_any_body_reaches_the_guest_after_the_idle_timeout() {
    let host = host(&["--body-idle-timeout", "1s"]);
    let mut stream = TcpStream::connect(addr(&host)).await.unwrap();
    let sent = Instant::now();
    stream
        .write_all(b"POST /api/trap HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let got = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("head-only request still open 5 s later");
    let text = String::from_utf8_lossy(&got);
    // The guest ran and read the failing body: spin-sdk answers the read
    // error it got (500 with its text), not the host's 408.
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(text.contains("connection read timeout"), "{text}");
    assert!(sent.elapsed() >= Duration::from_millis(900));
}

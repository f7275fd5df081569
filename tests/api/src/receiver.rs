//! A webhook receiver for the order events tests: a local HTTP server that
//! records every delivery and answers from a script (e.g. 503 twice, then
//! 200), and the check of deliveries with the Standard Webhooks reference
//! library ([`verify_with_reference_library`]), never with our own code.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The body, as received.
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

#[derive(Default)]
struct State {
    script: VecDeque<u16>,
    /// While set, every request is answered with it (script untouched).
    outage: Option<u16>,
    seen: Vec<Delivery>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts on a free port, answering `script` in turn and then 200.
    pub async fn start(script: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            script: script.iter().copied().collect(),
            outage: None,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let state = state.clone();
                            async move {
                                let header = |name: &str| {
                                    req.headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("")
                                        .to_owned()
                                };
                                let (id, timestamp, signature) = (
                                    header("webhook-id"),
                                    header("webhook-timestamp"),
                                    header("webhook-signature"),
                                );
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                                let answered = match state.outage {
                                    Some(status) => status,
                                    None => state.script.pop_front().unwrap_or(200),
                                };
                                state.seen.push(Delivery {
                                    id,
                                    timestamp,
                                    signature,
                                    body,
                                    answered,
                                });
                                let response = Response::builder()
                                    .status(answered)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap_or_default();
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, state, task }
    }

    /// Answers every request with `status` from now on (a receiver that is
    /// down), or with the script and then 200 again for `None`.
    pub fn set_outage(&self, status: Option<u16>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).outage = status;
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for `allowed_outbound_hosts`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .clone()
    }

    /// The ids answered 2xx, in order.
    pub fn accepted_ids(&self) -> Vec<String> {
        self.deliveries()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .map(|d| d.id)
            .collect()
    }

    /// Waits until `n` deliveries were accepted (or `within` passes).
    pub async fn wait_for_accepted(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let accepted = self.accepted_ids();
            if accepted.len() >= n || tokio::time::Instant::now() >= deadline {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks `deliveries` with the Standard Webhooks reference library (the
/// `standardwebhooks` package from PyPI, in `target/webhooks-venv`, which
/// `scripts/setup.sh` installs; `WEBHOOK_VERIFY_PYTHON` names another
/// interpreter): `Ok` or the library's refusal, per delivery, in order.
pub fn verify_with_reference_library(
    secret: &str,
    deliveries: &[Delivery],
) -> Vec<Result<(), String>> {
    use base64::Engine as _;
    use std::io::Write as _;
    let root = crate::workspace_root();
    let python = std::env::var("WEBHOOK_VERIFY_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target/webhooks-venv/bin/python"));
    let mut child = std::process::Command::new(&python)
        .arg(root.join("tests/webhooks/verify.py"))
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/setup.sh's setup_webhook_tests)",
                python.display()
            )
        });
    let mut input = String::new();
    for d in deliveries {
        let line = serde_json::json!({
            "headers": {
                "webhook-id": d.id,
                "webhook-timestamp": d.timestamp,
                "webhook-signature": d.signature,
            },
            "body": base64::engine::general_purpose::STANDARD.encode(&d.body),
        });
        input.push_str(&line.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write deliveries");
    let output = child.wait_with_output().expect("verify.py runs");
    assert!(output.status.success(), "verify.py failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| match line {
            "ok" => Ok(()),
            refused => Err(refused.to_string()),
        })
        .collect()
}

//! A webhook receiver for the order events tests: a local HTTP server that
//! records every delivery and answers from a script (e.g. 503 twice, then
//! 200), and the signature check README tells receivers to make.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `Webhook-Id`.
    pub id: String,
    /// `Webhook-Signature`.
    pub signature: String,
    /// The body, as received.
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

#[derive(Default)]
struct State {
    script: VecDeque<u16>,
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
                                let (id, signature) =
                                    (header("webhook-id"), header("webhook-signature"));
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                                let answered = state.script.pop_front().unwrap_or(200);
                                state.seen.push(Delivery {
                                    id,
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

/// Why a delivery is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The header is not `t=<seconds>,v1=<hex>`.
    Malformed,
    /// The timestamp is further than the tolerance from `now`: a replay.
    Stale,
    /// The HMAC does not match: the body or timestamp was altered, or
    /// another secret signed it.
    BadSignature,
}

/// README's receiver check: parse `t` and `v1`, refuse a timestamp more than
/// `tolerance_secs` from `now_secs`, then compare the HMAC-SHA256 of
/// `"<t>.<body>"` in constant time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), Refused> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signature = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(signature)) = (timestamp, signature) else {
        return Err(Refused::Malformed);
    };
    if (now_secs - t).abs() > tolerance_secs {
        return Err(Refused::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refused::Malformed)?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature)
        .map_err(|_| Refused::BadSignature)
}

//! The steady mixed load: workers that each act as one user against both
//! hosts at random — orders on a few hot and many cold products (with and
//! without `Idempotency-Key`, some retried under the same key),
//! cancellations, logins, registrations, raw and direct uploads, reads —
//! recording every request in a [`Journal`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::journal::{Journal, Kind, OrderAttempt, Outcome, Request, Target, UploadAccepted};
use crate::rng::Rng;
use crate::snapshot::sha256_hex;

/// A user the load acts as.
#[derive(Clone, Debug)]
pub struct User {
    /// Its id.
    pub id: String,
    /// Its email.
    pub email: String,
    /// Its password.
    pub password: String,
    /// A current access token.
    pub token: String,
}

/// What every worker shares.
pub struct Load {
    /// The hosts' base URLs.
    pub bases: Vec<String>,
    /// The client: no redirects, a timeout past the hosts' deadline (a
    /// request that reaches it is recorded, and breaks the deadline
    /// invariant).
    pub http: reqwest::Client,
    /// The products many orders compete for.
    pub hot: Vec<String>,
    /// The rest.
    pub cold: Vec<String>,
    /// When the load started: the journal's time zero.
    pub epoch: Instant,
    /// Set when the load should end.
    pub stop: Arc<AtomicBool>,
}

/// One worker's state: its user and the orders it may cancel.
struct Worker<'a> {
    load: &'a Load,
    user: User,
    rng: Rng,
    mine: Vec<String>,
    journal: Journal,
}

/// An answer: the status, the `Retry-After` flag and the body.
struct Answer {
    code: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Load {
    /// Seconds since [`Load::epoch`].
    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Runs one worker as `user` until [`Load::stop`]; its journal.
    pub async fn worker(&self, user: User, seed: u64) -> Journal {
        let mut worker = Worker {
            load: self,
            user,
            rng: Rng::new(seed),
            mine: Vec::new(),
            journal: Journal::default(),
        };
        while !self.stop.load(Ordering::Relaxed) {
            worker.step().await;
            // A little think time keeps the load steady rather than a flood
            // that would only measure the two cores.
            tokio::time::sleep(Duration::from_millis(worker.rng.below(30) as u64)).await;
        }
        worker.journal
    }
}

impl Worker<'_> {
    async fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=17 => self.order(false).await,
            18..=34 => self.order(true).await,
            35..=42 => self.cancel().await,
            43..=46 => self.login().await,
            47..=49 => self.register().await,
            50..=57 => self.upload_raw().await,
            58..=63 => self.upload_direct().await,
            _ => self.read().await,
        }
    }

    fn host(&mut self) -> (usize, String) {
        let n = self.rng.below(self.load.bases.len());
        (n, self.load.bases[n].clone())
    }

    /// Sends `req`, records it, and returns the answer if there was one.
    async fn send(
        &mut self,
        kind: Kind,
        target: Target,
        req: reqwest::RequestBuilder,
    ) -> (Outcome, Option<Answer>) {
        let started = self.load.now();
        let result = async {
            let resp = req.send().await?;
            let code = resp.status().as_u16();
            let retry_after = resp.headers().contains_key("retry-after");
            let body = resp.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>((code, retry_after, body))
        }
        .await;
        let ended = self.load.now();
        let (outcome, answer) = match result {
            Ok((code, retry_after, body)) => (
                Outcome::Status { code, retry_after },
                Some(Answer { code, body }),
            ),
            Err(e) => (Outcome::Transport(transport_error(&e)), None),
        };
        self.journal.requests.push(Request {
            kind,
            target,
            started,
            ended,
            outcome: outcome.clone(),
        });
        if answer.is_none() {
            // A killed host refuses at once: do not spin on it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (outcome, answer)
    }

    fn lines(&mut self) -> Vec<(String, i64)> {
        let count = 1 + self.rng.below(3);
        let mut lines: Vec<(String, i64)> = Vec::new();
        while lines.len() < count {
            let product = if lines.is_empty() && self.rng.below(100) < 40 {
                self.rng.pick(&self.load.hot).clone()
            } else {
                self.rng.pick(&self.load.cold).clone()
            };
            if lines.iter().all(|(p, _)| *p != product) {
                lines.push((product, 1 + self.rng.below(3) as i64));
            }
        }
        lines
    }

    async fn order(&mut self, keyed: bool) {
        let lines = self.lines();
        let key = keyed.then(|| unique("idem-"));
        let body = json!({
            "items": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>()
        });
        // Some keyed orders are sent again under the same key, as a client
        // whose first answer was slow or lost would, sometimes to the other host.
        let tries = if keyed && self.rng.below(100) < 35 {
            2
        } else {
            1
        };
        for attempt in 0..tries {
            let (n, base) = self.host();
            let target = Target::Host(n);
            let mut req = self
                .load
                .http
                .post(format!("{base}/api/v1/orders"))
                .bearer_auth(&self.user.token)
                .json(&body);
            if let Some(key) = &key {
                req = req.header("idempotency-key", key);
            }
            let kind = if attempt == 0 {
                Kind::Order
            } else {
                Kind::OrderRetry
            };
            let (outcome, answer) = self.send(kind, target, req).await;
            let order_id = answer
                .filter(|a| a.code == 201)
                .and_then(|a| a.json()["id"].as_str().map(str::to_owned));
            if let Some(id) = &order_id {
                if !self.mine.contains(id) {
                    self.mine.push(id.clone());
                }
            }
            self.journal.orders.push(OrderAttempt {
                user_id: self.user.id.clone(),
                key: key.clone(),
                lines: lines.clone(),
                outcome,
                order_id,
            });
        }
    }

    async fn cancel(&mut self) {
        if self.mine.is_empty() {
            return self.read().await;
        }
        let at = self.rng.below(self.mine.len());
        let id = self.mine.swap_remove(at);
        let (n, base) = self.host();
        let req = self
            .load
            .http
            .post(format!("{base}/api/v1/orders/{id}/cancel"))
            .bearer_auth(&self.user.token);
        let (_, answer) = self.send(Kind::Cancel, Target::Host(n), req).await;
        if answer.is_none_or(|a| a.code >= 500) {
            // Not known to be cancelled: it may be tried again.
            self.mine.push(id);
        }
    }

    async fn login(&mut self) {
        let (n, base) = self.host();
        let req = self
            .load
            .http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": self.user.email, "password": self.user.password}));
        let (_, answer) = self.send(Kind::Login, Target::Host(n), req).await;
        if let Some(token) = answer
            .filter(|a| a.code == 200)
            .and_then(|a| a.json()["access_token"].as_str().map(str::to_owned))
        {
            self.user.token = token;
        }
    }

    async fn register(&mut self) {
        let (n, base) = self.host();
        let email = format!("{}@faults.test", unique("r"));
        let req =
            self.load.http.post(format!("{base}/api/v1/users")).json(
                &json!({"email": email, "password": "a password of the load", "name": "Load"}),
            );
        self.send(Kind::Register, Target::Host(n), req).await;
    }

    fn png(&mut self) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut random = vec![0u8; 512 + self.rng.below(8 * 1024)];
        self.rng.fill(&mut random);
        bytes.extend_from_slice(&random);
        bytes
    }

    async fn upload_raw(&mut self) {
        let bytes = self.png();
        let sha256 = sha256_hex(&bytes);
        let (n, base) = self.host();
        let req = self
            .load
            .http
            .post(format!(
                "{base}/api/v1/uploads?filename=load.png&visibility=private"
            ))
            .bearer_auth(&self.user.token)
            .header("content-type", "image/png")
            .body(bytes);
        let (_, answer) = self.send(Kind::UploadRaw, Target::Host(n), req).await;
        self.accepted_upload(answer, sha256);
    }

    fn accepted_upload(&mut self, answer: Option<Answer>, sha256: String) {
        if let Some(id) = answer
            .filter(|a| a.code == 201)
            .and_then(|a| a.json()["id"].as_str().map(str::to_owned))
        {
            self.journal.uploads.push(UploadAccepted { id, sha256 });
        }
    }

    async fn upload_direct(&mut self) {
        let bytes = self.png();
        let sha256 = sha256_hex(&bytes);
        let (n, base) = self.host();
        let req = self
            .load
            .http
            .post(format!("{base}/api/v1/uploads/presign"))
            .bearer_auth(&self.user.token)
            .json(&json!({
                "filename": "direct.png",
                "size": bytes.len(),
                "sha256": sha256,
                "visibility": "private",
            }));
        let (_, answer) = self.send(Kind::Presign, Target::Host(n), req).await;
        let Some(presigned) = answer.filter(|a| a.code == 200).map(|a| a.json()) else {
            return;
        };
        let (Some(id), Some(url)) = (presigned["id"].as_str(), presigned["url"].as_str()) else {
            return;
        };
        let mut put = self.load.http.put(url).body(bytes);
        if let Some(headers) = presigned["headers"].as_object() {
            for (name, value) in headers {
                if let Some(value) = value.as_str() {
                    put = put.header(name, value);
                }
            }
        }
        let (_, stored) = self.send(Kind::DirectPut, Target::Store, put).await;
        if stored.is_none_or(|a| a.code != 200) {
            return;
        }
        let (n, base) = self.host();
        let req = self
            .load
            .http
            .post(format!("{base}/api/v1/uploads/{id}/complete"))
            .bearer_auth(&self.user.token);
        let (_, answer) = self.send(Kind::Complete, Target::Host(n), req).await;
        self.accepted_upload(answer, sha256);
    }

    async fn read(&mut self) {
        let (n, base) = self.host();
        if self.rng.below(3) == 0 {
            let product = if self.rng.below(2) == 0 {
                self.rng.pick(&self.load.hot).clone()
            } else {
                self.rng.pick(&self.load.cold).clone()
            };
            let req = self
                .load
                .http
                .get(format!("{base}/api/v1/products/{product}"));
            self.send(Kind::ReadProduct, Target::Host(n), req).await;
            return;
        }
        let req = match self.rng.below(2) {
            0 => self
                .load
                .http
                .get(format!("{base}/api/v1/orders?limit=5"))
                .bearer_auth(&self.user.token),
            _ => self
                .load
                .http
                .get(format!("{base}/api/v1/users/me"))
                .bearer_auth(&self.user.token),
        };
        self.send(Kind::Read, Target::Host(n), req).await;
    }
}

/// A fresh random name.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    // The OS random source does not fail on Linux; a fixed fallback would
    // only make names collide, which the checks would then report.
    let _ = getrandom::fill(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// What went wrong without an answer, briefly.
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "client timeout".into()
    } else if e.is_connect() {
        "connect failed".into()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            text = inner.to_string();
            source = inner.source();
        }
        text
    }
}

//! What the suite saw from the outside while it ran: every request the load
//! sent (with what is needed to check it afterwards) and every fault it
//! injected. Times are seconds since the load started, so windows and
//! requests compare without clocks.

use std::collections::BTreeMap;

/// What a request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `POST /orders`, without or with a fresh `Idempotency-Key`.
    Order,
    /// `POST /orders` again with an earlier request's key and body.
    OrderRetry,
    /// `POST /orders/{id}/cancel`.
    Cancel,
    /// `POST /auth/login`.
    Login,
    /// `POST /users`.
    Register,
    /// `POST /uploads?filename=…` with the bytes.
    UploadRaw,
    /// `POST /uploads/presign`.
    Presign,
    /// The presigned `PUT` straight to the store (not the API).
    DirectPut,
    /// `POST /uploads/{id}/complete`.
    Complete,
    /// An anonymous `GET` of a product.
    ReadProduct,
    /// An authenticated `GET` of the caller's orders or of the caller.
    Read,
}

impl Kind {
    /// The answers that are a success or an ordinary business refusal for
    /// this kind: anything else is a failure, to be explained by a fault.
    pub fn expected(self, status: u16) -> bool {
        match self {
            // 409: insufficient stock (the hot products run out by design).
            Kind::Order | Kind::OrderRetry => matches!(status, 201 | 409),
            // 409: not cancellable (already cancelled is 200).
            Kind::Cancel => matches!(status, 200 | 409),
            Kind::Login | Kind::Presign | Kind::DirectPut | Kind::ReadProduct | Kind::Read => {
                status == 200
            }
            Kind::Register | Kind::UploadRaw | Kind::Complete => status == 201,
        }
    }

    /// A short name for the results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Order => "order",
            Kind::OrderRetry => "order retry",
            Kind::Cancel => "cancel",
            Kind::Login => "login",
            Kind::Register => "register",
            Kind::UploadRaw => "upload (raw)",
            Kind::Presign => "presign",
            Kind::DirectPut => "PUT to store",
            Kind::Complete => "complete",
            Kind::ReadProduct => "read product (anonymous)",
            Kind::Read => "read own orders / user",
        }
    }
}

/// Where a request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Test host number `n` of the API.
    Host(usize),
    /// The S3 store itself (a presigned `PUT`).
    Store,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer.
    Status {
        /// Its status code.
        code: u16,
        /// Whether it carried `Retry-After`.
        retry_after: bool,
    },
    /// No answer: refused, reset, or the client's own timeout.
    Transport(String),
}

impl Outcome {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Status { code, .. } if (200..300).contains(code))
    }

    /// The column of the results this outcome is counted in.
    pub fn label(&self) -> String {
        match self {
            Outcome::Status {
                code: 503,
                retry_after: true,
            } => "503+Retry-After".into(),
            Outcome::Status { code, .. } => code.to_string(),
            Outcome::Transport(_) => "connection error".into(),
        }
    }
}

/// One request of the load.
#[derive(Clone, Debug)]
pub struct Request {
    /// What it did.
    pub kind: Kind,
    /// Where it went.
    pub target: Target,
    /// When it was sent (seconds since the load started).
    pub started: f64,
    /// When its answer (or error) was complete.
    pub ended: f64,
    /// Its answer.
    pub outcome: Outcome,
}

/// One `POST /orders` and what checking it needs.
#[derive(Clone, Debug)]
pub struct OrderAttempt {
    /// The ordering user's id.
    pub user_id: String,
    /// Its `Idempotency-Key`, if any.
    pub key: Option<String>,
    /// `(product id, quantity)` per line, as sent.
    pub lines: Vec<(String, i64)>,
    /// Its answer.
    pub outcome: Outcome,
    /// The order id of a 201 answer.
    pub order_id: Option<String>,
}

/// One upload answered 201 (raw, or a completed direct upload).
#[derive(Clone, Debug)]
pub struct UploadAccepted {
    /// Its id.
    pub id: String,
    /// SHA-256 (hex) of the bytes the client sent.
    pub sha256: String,
}

/// Which dependency a fault took away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The MariaDB server.
    Database,
    /// The Redis server (key-value store, event announcements).
    Redis,
    /// The S3 store.
    Store,
    /// The webhook receiver.
    Receiver,
    /// Test host `n` of the API.
    Host(usize),
}

/// One injected fault: from when it began to when the dependency was back
/// (for a kill and restart, until the restarted process accepted connections).
#[derive(Clone, Debug)]
pub struct FaultWindow {
    /// What was done, e.g. "MariaDB SIGKILL + restart".
    pub name: String,
    /// What it took away.
    pub service: Service,
    /// Seconds since the load started.
    pub started: f64,
    /// See [`FaultWindow::started`].
    pub ended: f64,
    /// For the receiver: when the first delivery after the outage was
    /// accepted (the receiver's own success; seconds since the load started).
    pub first_delivery_after: Option<f64>,
}

impl FaultWindow {
    /// Whether `[started, ended]` of a request overlaps this window.
    pub fn overlaps(&self, started: f64, ended: f64) -> bool {
        started <= self.ended && ended >= self.started
    }
}

/// Everything the client side recorded.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    /// Every request, in no particular order.
    pub requests: Vec<Request>,
    /// Every order attempt (also in `requests`).
    pub orders: Vec<OrderAttempt>,
    /// Every upload answered 201.
    pub uploads: Vec<UploadAccepted>,
    /// The faults, in the order injected.
    pub faults: Vec<FaultWindow>,
    /// Product id → the stock it was created with.
    pub initial_stock: BTreeMap<String, i64>,
    /// The hosts' request deadline, in seconds.
    pub deadline_secs: f64,
    /// How long the load ran, in seconds.
    pub load_secs: f64,
    /// How many times the events app was started again after it ended.
    pub events_app_restarts: u32,
    /// `(seconds, deliveries the receiver accepted so far)`, sampled each
    /// second of the load: when events flowed and when they stalled.
    pub delivered_over_time: Vec<(f64, usize)>,
}

impl Journal {
    /// Adds another worker's records.
    pub fn absorb(&mut self, other: Journal) {
        self.requests.extend(other.requests);
        self.orders.extend(other.orders);
        self.uploads.extend(other.uploads);
    }
}

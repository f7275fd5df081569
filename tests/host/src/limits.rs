//! The bounds the host puts on guests and clients, with the values it uses
//! by default and why. Spin bounds the same things (epoch deadlines, instance
//! limits, graceful shutdown); the platforms this app deploys to publish
//! theirs, and the defaults follow them so a run here fails where a deployed
//! app would.

use std::time::Duration;

/// Every limit the host enforces. `Limits::default()` is what the binary
/// uses without flags; README lists each with its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long one request may take, from its complete head to the end of
    /// the guest's work (reading the body included). A guest still running
    /// then is stopped and its instance freed; a client gets a 500 as for a
    /// trap. 30 s is the handler limit on Fermyon's cloud and Akamai Functions.
    pub request_timeout: Duration,
    /// Largest linear memory one instance may grow to. A guest that asks for
    /// more gets a failed `memory.grow` (Rust aborts: a trap, so a 500).
    /// 128 MiB is Akamai Functions' limit; argon2 logins need about 7 MiB.
    pub max_instance_memory: usize,
    /// Instances that may run at once (the pooling allocator's slots). A
    /// request beyond them is answered 503 with `Retry-After` at once rather
    /// than queued, so a burst cannot build a backlog of 30-second waits.
    pub max_instances: u32,
    /// Open client connections. At the cap the host stops accepting, so new
    /// clients wait in the kernel's backlog instead of being reset.
    pub max_connections: usize,
    /// Time a client has to send a complete request head. hyper starts this
    /// clock when it begins waiting for a head, so it also ends a keep-alive
    /// connection idle for longer (see `keep_alive_timeout`).
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept open between requests.
    pub keep_alive_timeout: Duration,
    /// Longest pause between two pieces of a request body. A client that
    /// stalls longer gets 408 (before the guest starts) or a read error in
    /// the guest; one that sent no body byte at all has its request passed
    /// to the guest with a failing body (see `body.rs`). `request_timeout`
    /// bounds a client that trickles bytes.
    pub body_idle_timeout: Duration,
    /// After SIGTERM or SIGINT: how long in-flight requests may take to
    /// finish before their connections are closed. Kubernetes waits 30 s
    /// before SIGKILL; requests may themselves take `request_timeout`.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_instance_memory: 128 << 20,
            max_instances: 256,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            body_idle_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// How often the engine's epoch advances: Spin 4.0.2's default interval.
/// At every tick a running guest's deadline is checked; the guest is not
/// made to yield (Spin does not), so a CPU-bound guest — an argon2 login, a
/// runaway loop — keeps its worker thread until it calls the host or its
/// deadline stops it, and with every worker so taken the app stalls, as on
/// Spin.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Body bytes the host reads before it takes an instance: a request whose
/// body is smaller arrives whole before any guest runs, so a slow client
/// holds a connection, not one of the instances.
pub const BODY_PREBUFFER_BYTES: usize = 64 * 1024;

/// `Retry-After` (seconds) on a 503 for an exhausted instance pool: most
/// requests finish well within a second.
pub const RETRY_AFTER_SECS: u32 = 1;

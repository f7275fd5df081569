//! `spin-test-host`: serve a Spin app's components the way `spin up` does.
//!
//! ```text
//! spin-test-host --from spin.toml --listen 127.0.0.1:3000 \
//!     --variable jwt_secret=... --key-value redis://127.0.0.1:6379 --key-value-prefix dev: \
//!     --state-dir .spin --sqlite @schema.sql
//! ```
//! Variables also come from `SPIN_VARIABLE_<NAME>` and a `.env` file in the
//! working directory (below `--variable`). Logs go to stderr (`RUST_LOG`
//! filters them). Runs until SIGTERM or SIGINT (Ctrl-C), then stops
//! accepting, lets requests in flight finish (`--shutdown-grace`) and exits 0;
//! a second signal closes what is left at once.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use spin_test_host::{HostConfig, KeyValueBackend, Limits, RunningHost, TriggerLoss};
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Runs a Spin app's components under wasmtime, the way Spin does"
)]
struct Args {
    /// The Spin manifest.
    #[arg(long = "from", short = 'f', default_value = "spin.toml")]
    from: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// An application variable, `name=value` or `name=@file`; repeatable, last wins.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Key-value backend: `memory` or a `redis://` URL.
    #[arg(long = "key-value", default_value = "memory")]
    key_value: String,
    /// Prefix of every Redis key (with a Redis backend).
    #[arg(long = "key-value-prefix", default_value = "")]
    key_value_prefix: String,
    /// Longest a request may take, body and guest included (`30s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Largest linear memory an instance may grow to (`128MiB`, `1GiB`, bytes).
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = parse_size)]
    max_instance_memory: usize,
    /// Instances that may run at once; beyond them requests get 503.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_instances)]
    max_instances: u32,
    /// Open client connections; at the cap the host stops accepting.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Time a client has to send a complete request head.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    keep_alive_timeout: Duration,
    /// Longest pause allowed between two pieces of a request body.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    body_idle_timeout: Duration,
    /// After SIGTERM/SIGINT, how long requests in flight may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (off by default).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Also write each component's stdout and stderr to
    /// `DIR/{component}_stdout.txt` and `_stderr.txt`, as `spin up --log-dir`.
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// When a Redis trigger's connection is lost (or never made), end only
    /// that subscription and keep serving HTTP. Without it the app ends, as
    /// Spin 4.0.2's does.
    #[arg(long)]
    keep_serving_without_redis_trigger: bool,
    /// The app's state directory, as `spin up --state-dir`; the SQLite
    /// database `default` is its `sqlite_db.db`. Default: `.spin` beside
    /// the manifest. (Spin's `--state-dir ""`, no state and in-memory
    /// databases, is not offered.)
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A SQLite statement run on the database `default` at start, or
    /// `@file[:label]` to run a file's statements; repeatable, in order, as
    /// `spin up --sqlite`. A failure stops the start.
    #[arg(long = "sqlite", value_name = "STATEMENT")]
    sqlite_statements: Vec<String>,
}

/// `30s`, `1.5s`, `500ms`, or a bare number of seconds.
fn parse_duration(arg: &str) -> Result<Duration, String> {
    let (number, unit) = match arg.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (arg.strip_suffix('s').unwrap_or(arg), 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(format!(
            "{arg:?}: expected a positive duration such as 30s or 500ms"
        )),
    }
}

/// `128MiB`, `1GiB`, `512KiB`, or a bare number of bytes.
fn parse_size(arg: &str) -> Result<usize, String> {
    let units = [("KiB", 1usize << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| arg.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((arg, 1));
    number
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|bytes| *bytes >= 1 << 16)
        .ok_or_else(|| format!("{arg:?}: expected a size of at least 64KiB, such as 128MiB"))
}

fn parse_variable(arg: &str) -> anyhow::Result<(String, String)> {
    let (name, value) = arg
        .split_once('=')
        .with_context(|| format!("--variable {arg:?}: expected NAME=VALUE"))?;
    // Spin's `name=@file` reads the value from a file.
    let value = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--variable {name}: cannot read {path}"))?,
        None => value.to_owned(),
    };
    Ok((name.to_owned(), value))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = HostConfig::new(args.from);
    config.listen = args.listen;
    config.metrics_listen = args.metrics_listen;
    config.log_dir = args.log_dir;
    config.state_dir = args.state_dir;
    config.sqlite_statements = args.sqlite_statements;
    if args.keep_serving_without_redis_trigger {
        config.trigger_loss = TriggerLoss::KeepServing;
    }
    config.variables = args
        .variables
        .iter()
        .map(|v| parse_variable(v))
        .collect::<anyhow::Result<_>>()?;
    config.key_value = match args.key_value.as_str() {
        "memory" => KeyValueBackend::Memory,
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            KeyValueBackend::Redis {
                url: url.to_owned(),
                prefix: args.key_value_prefix,
            }
        }
        // Not echoed: a mistyped URL may still carry a password.
        _ => anyhow::bail!("--key-value: expected `memory` or a redis:// URL"),
    };
    config.limits = Limits {
        request_timeout: args.request_timeout,
        max_instance_memory: args.max_instance_memory,
        max_instances: args.max_instances,
        max_connections: args.max_connections,
        header_read_timeout: args.header_read_timeout,
        keep_alive_timeout: args.keep_alive_timeout,
        body_idle_timeout: args.body_idle_timeout,
        shutdown_grace: args.shutdown_grace,
    };
    let grace = config.limits.shutdown_grace;
    // Listen for signals before serving, so none is missed.
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    let host = RunningHost::start(config).await?;
    eprintln!("Serving {}", host.base_url());
    let received = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        // As `spin up`: a lost Redis trigger ends the process, with an error.
        _ = host.ended() => {
            host.stop().await;
            anyhow::bail!("A trigger exited unexpectedly. Terminating.");
        }
    };
    tracing::info!(
        "{received}: no new connections; finishing requests in flight (up to {grace:?})"
    );
    let shutdown = host.shutdown(grace);
    tokio::select! {
        report = shutdown => {
            if report.cut_off == 0 {
                tracing::info!("stopped cleanly");
            }
        }
        _ = terminate.recv() => tracing::warn!("second signal: stopping now"),
        _ = interrupt.recv() => tracing::warn!("second signal: stopping now"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not for log files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `spin-test-host`: serve a Spin app's components the way `spin up` does.
//!
//! ```text
//! spin-test-host --from spin.toml --listen 127.0.0.1:3000 \
//!     --variable jwt_secret=... --key-value redis://127.0.0.1:6379 --key-value-prefix dev:
//! ```
//! Variables also come from `SPIN_VARIABLE_<NAME>` and a `.env` file in the
//! working directory (below `--variable`). Logs go to stderr (`RUST_LOG`
//! filters them). Runs until Ctrl-C.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use spin_test_host::{HostConfig, KeyValueBackend, RunningHost};

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
        other => anyhow::bail!("--key-value {other:?}: expected `memory` or a redis:// URL"),
    };
    let host = RunningHost::start(config).await?;
    eprintln!("Serving {}", host.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("shutting down");
    host.stop().await;
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

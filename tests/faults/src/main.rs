//! `faults`: runs the fault-injection suite once, prints the results and
//! writes them to `--results`; exits 1 when an invariant was violated, 2
//! when the suite itself could not run. Stopped by SIGINT or SIGTERM (Ctrl-C,
//! a CI timeout), it stops the servers it started before it exits (130 or
//! 143): the default action would end it at once and leave its MariaDB,
//! Redis, s3s-fs and hosts running.
//!
//! ```text
//! faults --seconds 60 --results tests/faults/RESULTS.md
//! faults --seconds 12 --no-faults --break outbox    # must fail
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use faults::suite::{self, Options, Sabotage};

#[derive(Parser, Debug)]
#[command(about = "Fault-injection suite: load on two API hosts while their dependencies fail")]
struct Args {
    /// How long the load runs at least, in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Concurrent load workers.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Run the load and the checks without injecting faults.
    #[arg(long)]
    no_faults: bool,
    /// Break an invariant on purpose, to see the suite fail.
    #[arg(long = "break", value_enum)]
    sabotage: Option<Sabotage>,
    /// Write the results (markdown) here too.
    #[arg(long)]
    results: Option<PathBuf>,
    /// The `spin-test-host` binary (default: beside this one).
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// The hosts' request deadline, in seconds: the test host's default,
    /// as Fermyon's cloud. Not shorter than the events component's 20 s
    /// delivery run budget, or runs are cut off holding a claim.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Seed of the load's random choices.
    #[arg(long, default_value_t = 31)]
    seed: u64,
    /// Keep the logs of the hosts and servers even when every invariant held.
    #[arg(long)]
    keep_logs: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let host_bin = args.host_bin.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("spin-test-host")))
            .unwrap_or_else(|| PathBuf::from("spin-test-host"))
    });
    let options = Options {
        seconds: args.seconds,
        workers: args.workers.max(1),
        faults: !args.no_faults,
        sabotage: args.sabotage,
        host_bin,
        request_timeout_secs: args.request_timeout.max(1),
        seed: args.seed,
        keep_logs: args.keep_logs,
    };
    let mut interrupt = match Interrupt::listen() {
        Ok(interrupt) => interrupt,
        Err(e) => {
            eprintln!("faults: cannot handle SIGINT and SIGTERM: {e}");
            return ExitCode::from(2);
        }
    };
    // On a signal the suite's future is dropped where it stands: every
    // server and host it started is owned by a guard that kills it (by pid)
    // and removes its data directory on drop.
    let outcome = tokio::select! {
        outcome = suite::run(&options) => outcome,
        (name, code) = interrupt.received() => {
            eprintln!("faults: {name}: stopping the suite's servers");
            return ExitCode::from(code);
        }
    };
    let findings = match outcome {
        Ok(findings) => findings,
        Err(e) => {
            eprintln!("faults: the suite could not run: {e:#}");
            return ExitCode::from(2);
        }
    };
    let report = faults::report::markdown(&options, &findings);
    println!("{report}");
    if let Some(path) = &args.results {
        if let Err(e) = std::fs::write(path, &report) {
            eprintln!("faults: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if findings.verdicts.iter().all(|v| v.held) {
        ExitCode::SUCCESS
    } else {
        for v in findings.verdicts.iter().filter(|v| !v.held) {
            eprintln!("faults: VIOLATED: {}: {}", v.name, v.detail);
        }
        ExitCode::FAILURE
    }
}

/// SIGINT and SIGTERM, listened for from the start so that neither ends the
/// process by its default action.
struct Interrupt {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The first signal to arrive, and the shell's exit code for it.
    async fn received(&mut self) -> (&'static str, u8) {
        tokio::select! {
            _ = self.int.recv() => ("SIGINT", 130),
            _ = self.term.recv() => ("SIGTERM", 143),
        }
    }
}

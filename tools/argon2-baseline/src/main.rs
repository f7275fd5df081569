//! `argon2-baseline [--seconds S] [--threads N] [--cost M,T,P]` — native
//! argon2id verifications per second per core.
//!
//! Verifies one password against a hash made with `shared::password`'s
//! current parameters (or `--cost`), through the very function the login
//! component calls, for S seconds (default 5) on N threads at once (default
//! 1), and prints one line for bench/run:
//!
//! ```text
//! NATIVE argon2id m=7168 t=5 p=1 threads=1 verifies=371 seconds=5.00 per_core_per_s=74.2 ms_per_verify=13.48
//! ```
//!
//! Built with an optimised profile (bench/run uses `bench-host`), this is the
//! argon2 crate at native speed (AVX2 where the CPU has it): what the wasm
//! login is compared with.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character. Outside tests, split where a search found a boundary.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use shared::password::{hash_password_with, verify_password, Cost, CURRENT};

const USAGE: &str = "usage: argon2-baseline [--seconds S] [--threads N] [--cost M,T,P]
  --seconds S    how long to verify (default 5)
  --threads N    verifying threads at once (default 1); the rate is per thread
  --cost M,T,P   argon2id memory KiB, passes, lanes (default: shared::password::CURRENT)";

const PASSWORD: &str = "argon2-baseline password";

struct Args {
    seconds: f64,
    threads: usize,
    cost: Cost,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        seconds: 5.0,
        threads: 1,
        cost: CURRENT,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--seconds" => {
                parsed.seconds = value()?
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0 && s.is_finite())
                    .ok_or("--seconds must be a positive number")?;
            }
            "--threads" => {
                parsed.threads = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--threads must be a positive integer")?;
            }
            "--cost" => parsed.cost = parse_cost(&value()?)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(parsed))
}

fn parse_cost(text: &str) -> Result<Cost, String> {
    let numbers: Vec<u32> = text
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--cost {text:?}: expected M,T,P"))?;
    match numbers[..] {
        [memory_kib, passes, lanes] => Ok(Cost {
            memory_kib,
            passes,
            lanes,
        }),
        _ => Err(format!("--cost {text:?}: expected M,T,P")),
    }
}

/// Verifies `hash` until `deadline`; how many verifications it made.
fn verify_until(hash: &str, deadline: Instant) -> Result<u64, String> {
    let mut count = 0;
    while Instant::now() < deadline {
        if !verify_password(hash, PASSWORD) {
            return Err("the password did not verify against its own hash".into());
        }
        count += 1;
    }
    Ok(count)
}

fn run(args: &Args) -> Result<String, String> {
    let hash = hash_password_with(PASSWORD, args.cost).map_err(|e| format!("{e:?}"))?;
    // One verification first, untimed: the allocator and caches are warm.
    if !verify_password(&hash, PASSWORD) {
        return Err("the password did not verify against its own hash".into());
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.threads)
            .map(|_| scope.spawn(|| verify_until(&hash, deadline)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| "a verifying thread panicked".to_string())?
            })
            .collect::<Result<Vec<u64>, String>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let verifies: u64 = counts.iter().sum();
    let per_core = verifies as f64 / elapsed / args.threads as f64;
    let Cost {
        memory_kib,
        passes,
        lanes,
    } = args.cost;
    Ok(format!(
        "NATIVE argon2id m={memory_kib} t={passes} p={lanes} threads={} verifies={verifies} \
         seconds={elapsed:.2} per_core_per_s={per_core:.1} ms_per_verify={:.2}",
        args.threads,
        1000.0 / per_core
    ))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("argon2-baseline: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("argon2-baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;

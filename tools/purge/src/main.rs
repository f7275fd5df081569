//! `cargo run -p purge -- [DATABASE_URL] [--key-value REDIS_URL [--key-value-prefix PREFIX]]`
//!
//! Deletes expired sessions (and their refresh-token records), idempotency
//! keys older than 24 hours, expired login-attempt windows, blobs no upload
//! refers to and, with `--key-value`, expired entries of a Redis-backed
//! key-value store. Safe to run at any time, while the API serves, as often
//! as wanted (README: "Purging"). `DATABASE_URL` is
//! `mysql://user:password@host:port/database` or `sqlite:PATH`, a SQLite file
//! the app or `migrate` already gave its schema (for `spin up`'s database,
//! `sqlite:.spin/sqlite_db.db` beside spin.toml; `sqlite://PATH` means the
//! same). The URL defaults to `$DATABASE_URL`, then
//! `mysql://root@127.0.0.1:3306/spin_api`; the Redis URL may also come from
//! `$KEY_VALUE_URL`. Prints one line; never prints a URL's credentials.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

use anyhow::{bail, Context as _};

const USAGE: &str =
    "usage: purge [DATABASE_URL] [--key-value REDIS_URL [--key-value-prefix PREFIX]]
  DATABASE_URL  mysql://user:password@host:port/database
                sqlite:PATH (e.g. sqlite:.spin/sqlite_db.db; must exist, with its schema)
                default: $DATABASE_URL, then mysql://root@127.0.0.1:3306/spin_api";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut database = std::env::var("DATABASE_URL").ok();
    let mut key_value = std::env::var("KEY_VALUE_URL").ok();
    let mut prefix = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--key-value" => key_value = Some(args.next().context("--key-value needs a URL")?),
            "--key-value-prefix" => {
                prefix = args.next().context("--key-value-prefix needs a value")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with('-') => bail!("unknown option {other}"),
            url => database = Some(url.to_string()),
        }
    }
    let database = database.unwrap_or_else(|| "mysql://root@127.0.0.1:3306/spin_api".to_string());
    let now = purge::now_ms();
    let mut report = purge::purge_database(&database, now).await?;
    if let Some(url) = key_value {
        report.key_value_entries = purge::sweep_key_value(&url, &prefix, now).await?;
    }
    println!("{report}");
    Ok(())
}

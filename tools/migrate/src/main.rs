//! `cargo run -p migrate -- [DATABASE_URL]` — applies pending migrations.
//!
//! `DATABASE_URL` is `mysql://user:password@host:port/database` (MySQL or
//! MariaDB: the files in `migrations/`) or `sqlite:PATH` (a SQLite database
//! file, created when absent: the files in `migrations/sqlite/`; for the
//! database `spin up` uses, `sqlite:.spin/sqlite_db.db` beside spin.toml).
//! `sqlite://PATH` means the same as `sqlite:PATH`. The URL defaults to
//! `$DATABASE_URL`, then `mysql://root@127.0.0.1:3306/spin_api`.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

const USAGE: &str = "usage: migrate [DATABASE_URL]
  DATABASE_URL  mysql://user:password@host:port/database
                sqlite:PATH (e.g. sqlite:.spin/sqlite_db.db; created when absent)
                default: $DATABASE_URL, then mysql://root@127.0.0.1:3306/spin_api";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return Ok(());
    }
    let url = arg
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/spin_api".to_string());
    let applied = migrate::apply(&url, &migrate::default_dir()).await?;
    if applied.is_empty() {
        println!("schema is up to date");
    } else {
        for version in applied {
            println!("applied {version}");
        }
    }
    Ok(())
}

//! `cargo run -p migrate -- [DATABASE_URL]` — applies pending migrations.
//! The URL defaults to `$DATABASE_URL`, then `mysql://root@127.0.0.1:3306/spin_api`.

// Text is Unicode: slicing a `str` by byte offsets panics on the first
// multi-byte character (and a panic traps the component). Outside tests,
// split where a search found a boundary, or use `str::get`.
#![cfg_attr(not(test), deny(clippy::string_slice))]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
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

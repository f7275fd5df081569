//! A real S3-compatible store for the uploads tests: `s3s-fs` (crates.io),
//! which verifies SigV4 signatures, presigned-URL expiry and
//! `x-amz-checksum-*` headers, run with a bucket in a directory of its own
//! and stopped by its pid when dropped.
//!
//! The binary is `$S3S_FS_BIN`, or `s3s-fs` on `PATH` (scripts/setup.sh
//! installs it with `cargo install`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The bucket every test store has.
pub const BUCKET: &str = "uploads";
/// Its region.
pub const REGION: &str = "us-east-1";

/// A running `s3s-fs`.
pub struct S3Server {
    child: Child,
    root: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The access key it accepts.
    pub access_key: String,
    /// The secret key it accepts.
    pub secret_key: String,
}

impl S3Server {
    /// Starts a store with an empty bucket on a free port, and waits until it
    /// accepts connections.
    pub fn start() -> Result<S3Server> {
        let root = std::env::temp_dir().join(crate::unique("s3s-"));
        std::fs::create_dir_all(root.join(BUCKET)).context("creating the bucket directory")?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let access_key = crate::unique("AK");
        let secret_key = crate::unique("secret-");
        let binary = std::env::var("S3S_FS_BIN").unwrap_or_else(|_| "s3s-fs".into());
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {binary} (install it with scripts/setup.sh or set S3S_FS_BIN)")
            })?;
        let server = S3Server {
            child,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
        };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("s3s-fs did not listen on {address} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(server)
    }

    /// The keys of the objects in the bucket (directory separators as `/`).
    pub fn keys(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // s3s-fs keeps its own metadata beside the objects.
                if name.starts_with('.') {
                    continue;
                }
                let key = format!("{prefix}{name}");
                if entry.path().is_dir() {
                    walk(&entry.path(), &format!("{key}/"), out);
                } else {
                    out.push(key);
                }
            }
        }
        let mut keys = Vec::new();
        walk(&self.root.join(BUCKET), "", &mut keys);
        keys.sort();
        keys
    }

    /// The Spin variables that point the uploads component at this store.
    pub fn variables(&self) -> Vec<(String, String)> {
        vec![
            ("upload_storage".into(), "s3".into()),
            ("s3_endpoint".into(), self.endpoint.clone()),
            ("s3_region".into(), REGION.into()),
            ("s3_bucket".into(), BUCKET.into()),
            ("s3_access_key".into(), self.access_key.clone()),
            ("s3_secret_key".into(), self.secret_key.clone()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

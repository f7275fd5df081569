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
    child: Option<Child>,
    root: PathBuf,
    port: u16,
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
        let mut server = S3Server {
            child: None,
            root,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: crate::unique("AK"),
            secret_key: crate::unique("secret-"),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let binary = std::env::var("S3S_FS_BIN").unwrap_or_else(|_| "s3s-fs".into());
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.access_key])
            .args(["--secret-key", &self.secret_key])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {binary} (install it with scripts/setup.sh or set S3S_FS_BIN)")
            })?;
        self.child = Some(child);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("s3s-fs did not listen on {address} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    }

    /// Kills the store (by its pid): every connection is refused until
    /// [`S3Server::restart`]. The bucket's files stay.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the store again after [`S3Server::kill`]: same port, keys and
    /// bucket directory.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// The file holding the object `key` of the bucket, as s3s-fs keeps it.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
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
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

//! The processes the suite starts besides MariaDB and s3s-fs (which
//! api-tests' harness owns): a Redis server, the API's test hosts and the
//! events app. Each is a child of this process, stopped by its pid when its
//! handle is dropped (on success, on error, on panic), and can be killed
//! (SIGKILL), frozen (SIGSTOP) and restarted on the same port.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A port of 127.0.0.1 free at the time of asking.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Sends `signal` (e.g. `libc::SIGSTOP`) to process `pid`.
pub fn send_signal(pid: u32, signal: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A command line to (re)start, and the child running it.
pub struct Supervised {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Supervised {
    /// A process not started yet; its stdout and stderr are appended to `log`.
    pub fn new(name: &str, program: &Path, args: Vec<String>, log: PathBuf) -> Supervised {
        Supervised {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            log,
            child: None,
        }
    }

    /// Starts it (killing a previous run first).
    pub fn spawn(&mut self) -> Result<()> {
        self.kill();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL (by its pid) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` of the suite's own: no persistence, so a kill loses
/// what it held, as a cache's loss would.
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Supervised,
}

impl Redis {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start(dir: &Path) -> Result<Redis> {
        let port = free_port()?;
        let program = std::env::var_os("REDIS_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"));
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        let mut redis = Redis {
            port,
            process: Supervised::new("redis-server", &program, args, dir.join("redis.log")),
        };
        redis.restart()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port (empty) and waits for PING.
    pub fn restart(&mut self) -> Result<()> {
        self.process.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ping(self.port) {
            if Instant::now() > deadline {
                bail!(
                    "redis-server did not answer PING on port {} within 20 s:\n{}",
                    self.port,
                    self.process.log_tail(10)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    }
}

fn ping(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// One `spin-test-host` process serving a manifest.
pub struct Host {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Supervised,
}

impl Host {
    /// A host of `manifest` on a free port with `args` (variables, key-value
    /// store, limits) after `--from` and `--listen`; not started yet.
    pub fn new(
        name: &str,
        binary: &Path,
        manifest: &Path,
        args: &[String],
        log: PathBuf,
    ) -> Result<Host> {
        let port = free_port()?;
        let mut all = vec![
            "--from".to_owned(),
            manifest.display().to_string(),
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
        ];
        all.extend(args.iter().cloned());
        Ok(Host {
            port,
            process: Supervised::new(name, binary, all, log),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts it and waits until `GET /api/v1/health` gets any HTTP
    /// answer (the components are compiled at start, which takes a while).
    pub async fn start(&mut self, http: &reqwest::Client) -> Result<()> {
        self.process.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(180);
        let health = format!("{}/api/v1/health", self.base());
        loop {
            if !self.process.is_running() {
                bail!(
                    "{} exited while starting:\n{}",
                    self.process.name,
                    self.process.log_tail(20)
                );
            }
            if http.get(&health).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not answer within 180 s", self.process.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, by its pid.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The underlying process (the events app is watched, not polled).
    pub fn process(&mut self) -> &mut Supervised {
        &mut self.process
    }
}

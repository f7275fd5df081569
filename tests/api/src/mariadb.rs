//! MariaDB servers a test owns: a primary, and a replica replicating it, for
//! the tests that stop replication or kill a database (`tests/replicas.rs`).
//! The machine's own server (the shared test database) is never touched.
//!
//! Each server is Debian's `mariadb-server` binaries (`mariadb-install-db`
//! and `mariadbd`, found on `PATH`, in `/usr/sbin` or `/usr/bin`, or named by
//! `$MARIADB_INSTALL_DB_BIN` and `$MARIADBD_BIN`) run with `--no-defaults`
//! on a fresh data directory under the system temporary directory, on a free
//! port of 127.0.0.1, with `root` reachable over TCP without a password. A
//! server is killed (SIGKILL, by its pid) and its directory removed when it
//! is dropped: no server outlives its test.
//!
//! [`Replicated::start`] starts both servers at once, points the replica at
//! the primary (`CHANGE MASTER TO … MASTER_USE_GTID = slave_pos` from the
//! primary's first binary log, so the replica replays everything), then
//! creates and migrates [`DATABASE`] on the primary, adds the SELECT-only
//! [`READER`] account (what a replica's clients are given), and waits until
//! the replica has all of it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Params, Row};

use crate::{AppOptions, Store};

/// The database every harness server holds (migrated on the primary).
pub const DATABASE: &str = "spin_api";
/// An account that may only read [`DATABASE`], created on the primary and so
/// on the replica: the replica URL the app is given ([`Replicated::reader_url`]),
/// so that a write sent to the replica fails instead of forking it.
pub const READER: &str = "reader";
/// How long a server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long [`Replicated::wait_until_replica_caught_up`] waits.
pub const CATCH_UP_DEADLINE: Duration = Duration::from_secs(20);

/// Which server of a [`Replicated`] pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `server_id = 1`, with a binary log.
    Primary,
    /// `server_id = 2`, read-only, replicating the primary.
    Replica,
}

impl Role {
    fn server_id(self) -> u32 {
        match self {
            Role::Primary => 1,
            Role::Replica => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

/// One running `mariadbd` of the test's own.
pub struct MariaDb {
    role: Role,
    /// Every acknowledged commit survives a kill ([`MariaDb::start_durable`]).
    durable: bool,
    child: Option<Child>,
    pid: u32,
    dir: PathBuf,
    port: u16,
}

impl MariaDb {
    /// Installs a fresh data directory and starts a server on it, returning
    /// once it accepts connections. [`DATABASE`] does not exist yet (see
    /// [`MariaDb::migrate`]).
    pub async fn start(role: Role) -> Result<MariaDb> {
        Self::start_with(role, false).await
    }

    /// [`MariaDb::start`] for a server that is killed and must keep every
    /// commit it acknowledged (the fault-injection suite, `tests/faults`):
    /// the redo log and binary log are flushed to disk at each commit
    /// (`innodb_flush_log_at_trx_commit = 1`, `sync_binlog = 1`) rather than
    /// about once a second, so what the server answered is what it restarts with.
    pub async fn start_durable(role: Role) -> Result<MariaDb> {
        Self::start_with(role, true).await
    }

    async fn start_with(role: Role, durable: bool) -> Result<MariaDb> {
        let install_db = binary(
            "MARIADB_INSTALL_DB_BIN",
            &["mariadb-install-db", "mysql_install_db"],
        )?;
        let mariadbd = binary("MARIADBD_BIN", &["mariadbd", "mysqld"])?;
        let dir = std::env::temp_dir().join(crate::unique(&format!("mariadb-{}-", role.name())));
        // Its own temporary directory too: installs (and servers) running at
        // once in one directory remove each other's temporary tables.
        std::fs::create_dir_all(dir.join("tmp"))
            .with_context(|| format!("creating {}", dir.display()))?;
        // From here on, dropping `server` removes the directory.
        let mut server = MariaDb {
            role,
            durable,
            child: None,
            pid: 0,
            dir,
            port: 0,
        };

        let mut install = tokio::process::Command::new(&install_db);
        install
            .arg("--no-defaults")
            .arg("--auth-root-authentication-method=normal")
            .arg(format!("--datadir={}", server.data_dir().display()))
            .args(["--skip-test-db", "--skip-name-resolve"])
            .arg(format!("--tmpdir={}", server.dir.join("tmp").display()))
            .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M"]);
        if running_as_root() {
            install.arg("--user=root");
        }
        let installed = install
            .output()
            .await
            .with_context(|| format!("running {}", install_db.display()))?;
        if !installed.status.success() {
            bail!(
                "{} failed ({}):\n{}",
                install_db.display(),
                installed.status,
                String::from_utf8_lossy(&installed.stderr).trim_end()
            );
        }

        // Another process may take the free port before the server binds
        // it: then the server exits at once, and gets another port.
        for attempt in 1..=3 {
            server.port = free_port()?;
            server.spawn(&mariadbd)?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) if attempt < 3 && server.lost_its_port() => {
                    eprintln!("mariadb {}: {e:#}; trying another port", role.name());
                    server.kill();
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn spawn(&mut self, mariadbd: &Path) -> Result<()> {
        let dir = &self.dir;
        let mut command = Command::new(mariadbd);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", self.error_log_path().display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .arg(format!("--server-id={}", self.role.server_id()))
            .arg("--skip-name-resolve")
            // As the machine's server (/etc/mysql/my.cnf) is configured.
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_general_ci")
            .arg("--max-connections=256")
            .arg("--innodb-buffer-pool-size=16M")
            .arg("--innodb-log-file-size=4M")
            // Small and quick unless durable: then nothing acknowledged may
            // be lost by a kill.
            .arg(format!(
                "--innodb-flush-log-at-trx-commit={}",
                if self.durable { 1 } else { 2 }
            ));
        match self.role {
            Role::Primary => {
                command
                    .arg(format!(
                        "--log-bin={}",
                        self.data_dir().join("binlog").display()
                    ))
                    .arg(format!("--sync-binlog={}", u8::from(self.durable)));
            }
            Role::Replica => {
                command
                    .arg(format!(
                        "--relay-log={}",
                        self.data_dir().join("relay").display()
                    ))
                    .arg("--read-only");
            }
        }
        if running_as_root() {
            // mariadbd refuses to run as root unless told to.
            command.arg("--user=root");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", mariadbd.display()))?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "mariadbd ({}) exited with {status} before accepting connections:\n{}",
                        self.role.name(),
                        self.error_log_tail(20)
                    );
                }
            }
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), Conn::new(self.opts(None))).await;
            if let Ok(Ok(conn)) = attempt {
                let _ = conn.disconnect().await;
                return Ok(());
            }
            if started.elapsed() > START_DEADLINE {
                bail!(
                    "mariadbd ({}) did not accept connections on port {} within {START_DEADLINE:?}:\n{}",
                    self.role.name(),
                    self.port,
                    self.error_log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lost_its_port(&self) -> bool {
        let log = std::fs::read_to_string(self.error_log_path()).unwrap_or_default();
        log.contains("Address already in use")
    }

    /// Which server this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as `allowed_outbound_hosts` names it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `mysql://root@127.0.0.1:<port>/spin_api`.
    pub fn url(&self) -> String {
        format!("mysql://root@{}/{DATABASE}", self.address())
    }

    /// The pid of `mariadbd` (also after it was killed).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding its data, socket, pid file and error log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn error_log_path(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// The last `lines` lines of the server's error log.
    pub fn error_log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.error_log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the process runs (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server (SIGKILL, by its pid) and reaps it: every connection
    /// to it is refused from now on. The data directory stays until drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`MariaDb::kill`], on the same data
    /// directory and port (as a restarted pod keeps its volume and service),
    /// returning once it accepts connections: crash recovery included.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        let mariadbd = binary("MARIADBD_BIN", &["mariadbd", "mysqld"])?;
        self.spawn(&mariadbd)?;
        self.wait_ready().await
    }

    fn opts(&self, database: Option<&str>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .db_name(database)
            .prefer_socket(false)
            .into()
    }

    /// A connection as `root`, with [`DATABASE`] selected.
    pub async fn conn(&self) -> Result<Conn> {
        self.connect(Some(DATABASE)).await
    }

    async fn connect(&self, database: Option<&str>) -> Result<Conn> {
        tokio::time::timeout(Duration::from_secs(5), Conn::new(self.opts(database)))
            .await
            .with_context(|| format!("connecting to the {} timed out", self.role.name()))?
            .with_context(|| format!("connecting to the {}", self.role.name()))
    }

    /// Runs one statement (prepared, with `params`) on [`DATABASE`].
    pub async fn exec(&self, sql: &str, params: impl Into<Params> + Send) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.exec_drop(sql, params)
            .await
            .with_context(|| format!("{} on the {}", sql, self.role.name()))?;
        conn.disconnect().await?;
        Ok(())
    }

    /// Runs one query (prepared, with `params`) on [`DATABASE`] and returns its rows.
    pub async fn query<T: FromRow + Send + 'static>(
        &self,
        sql: &str,
        params: impl Into<Params> + Send,
    ) -> Result<Vec<T>> {
        let mut conn = self.conn().await?;
        let rows = conn
            .exec(sql, params)
            .await
            .with_context(|| format!("{} on the {}", sql, self.role.name()))?;
        conn.disconnect().await?;
        Ok(rows)
    }

    /// Runs statements as text (no database selected): for what cannot be
    /// prepared, such as `CHANGE MASTER TO` or `START SLAVE`.
    pub async fn admin(&self, sql: &str) -> Result<()> {
        let mut conn = self.connect(None).await?;
        conn.query_drop(sql)
            .await
            .with_context(|| format!("{} on the {}", sql, self.role.name()))?;
        conn.disconnect().await?;
        Ok(())
    }

    /// A server variable (`@@name`) as text.
    pub async fn variable(&self, name: &str) -> Result<String> {
        let mut conn = self.connect(None).await?;
        let value = variable(&mut conn, name).await;
        conn.disconnect().await?;
        value
    }

    /// Creates [`DATABASE`] and applies the project's migrations to it, as
    /// the test apps do ([`migrate::apply`]).
    pub async fn migrate(&self) -> Result<()> {
        migrate::apply(&self.url(), &migrate::default_dir())
            .await
            .with_context(|| format!("migrating the {}", self.role.name()))?;
        Ok(())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary and a replica replicating it, each a [`MariaDb`] of the test's.
pub struct Replicated {
    /// The primary: the app's `db_url`.
    pub primary: MariaDb,
    /// The replica: the app's `db_read_url` (as [`READER`]).
    pub replica: MariaDb,
}

impl Replicated {
    /// Starts both servers (concurrently), sets up replication, migrates
    /// [`DATABASE`] on the primary, creates [`READER`], and waits until the
    /// replica has all of it.
    pub async fn start() -> Result<Replicated> {
        // Both to the end even when one fails: a start cancelled during its
        // install would leave the install's server writing to the directory
        // being removed.
        let (primary, replica) =
            tokio::join!(MariaDb::start(Role::Primary), MariaDb::start(Role::Replica));
        let pair = Replicated {
            primary: primary?,
            replica: replica?,
        };
        // From the primary's first binary log (the slave position is empty),
        // before anything is created there: the replica replays it all.
        pair.replica
            .admin(&format!(
                "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, \
                 MASTER_USER = 'root', MASTER_PASSWORD = '', \
                 MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
                pair.primary.port
            ))
            .await?;
        pair.replica.admin("START SLAVE").await?;
        pair.primary.migrate().await?;
        // `localhost` too: a client preferring the socket (mysql_async's
        // default) logs in there as `reader@localhost`.
        for host in ["127.0.0.1", "localhost"] {
            let account = format!("'{READER}'@'{host}'");
            pair.primary
                .admin(&format!("CREATE USER IF NOT EXISTS {account}"))
                .await?;
            pair.primary
                .admin(&format!("GRANT SELECT ON `{DATABASE}`.* TO {account}"))
                .await?;
        }
        pair.wait_until_replica_caught_up().await?;
        Ok(pair)
    }

    /// The server playing `role`.
    pub fn server(&self, role: Role) -> &MariaDb {
        match role {
            Role::Primary => &self.primary,
            Role::Replica => &self.replica,
        }
    }

    fn server_mut(&mut self, role: Role) -> &mut MariaDb {
        match role {
            Role::Primary => &mut self.primary,
            Role::Replica => &mut self.replica,
        }
    }

    /// `mysql://root@127.0.0.1:<primary port>/spin_api`.
    pub fn primary_url(&self) -> String {
        self.primary.url()
    }

    /// `mysql://root@127.0.0.1:<replica port>/spin_api`.
    pub fn replica_url(&self) -> String {
        self.replica.url()
    }

    /// `mysql://reader@127.0.0.1:<replica port>/spin_api`: the replica as
    /// the app is given it, allowed to read only.
    pub fn reader_url(&self) -> String {
        format!("mysql://{READER}@{}/{DATABASE}", self.replica.address())
    }

    /// Options for [`crate::TestApp::start_with`]: `db_url` the primary,
    /// `db_read_url` the replica (as [`READER`]), and their hosts. Add
    /// variables to `variables` as needed.
    pub fn app_options(&self) -> AppOptions {
        AppOptions {
            store: Some(Store::MySql),
            database_url: Some(self.primary_url()),
            variables: vec![
                ("db_read_url".into(), self.reader_url()),
                ("db_read_host".into(), self.replica.address()),
            ],
            ..AppOptions::default()
        }
    }

    /// Runs one statement on [`DATABASE`] of `role`, straight to the server.
    pub async fn exec(
        &self,
        role: Role,
        sql: &str,
        params: impl Into<Params> + Send,
    ) -> Result<()> {
        self.server(role).exec(sql, params).await
    }

    /// Runs one query on [`DATABASE`] of `role`, straight to the server.
    pub async fn query<T: FromRow + Send + 'static>(
        &self,
        role: Role,
        sql: &str,
        params: impl Into<Params> + Send,
    ) -> Result<Vec<T>> {
        self.server(role).query(sql, params).await
    }

    /// Waits (up to [`CATCH_UP_DEADLINE`]) until the replica has applied
    /// everything the primary had written when called.
    pub async fn wait_until_replica_caught_up(&self) -> Result<()> {
        self.wait_until_replica_caught_up_within(CATCH_UP_DEADLINE)
            .await
    }

    /// [`Replicated::wait_until_replica_caught_up`] with another deadline:
    /// an error says how far each side is and what the replica reports.
    pub async fn wait_until_replica_caught_up_within(&self, deadline: Duration) -> Result<()> {
        let started = Instant::now();
        let mut primary = self.primary.connect(None).await?;
        let target = variable(&mut primary, "gtid_binlog_pos").await?;
        primary.disconnect().await?;
        let wanted = gtid_positions(&target);
        let mut replica = self.replica.connect(None).await?;
        loop {
            let have = variable(&mut replica, "gtid_slave_pos").await?;
            let applied = gtid_positions(&have);
            if wanted
                .iter()
                .all(|(domain, seq)| applied.get(domain).is_some_and(|a| a >= seq))
            {
                replica.disconnect().await?;
                return Ok(());
            }
            if started.elapsed() > deadline {
                let status = slave_status(&mut replica).await;
                let _ = replica.disconnect().await;
                bail!(
                    "the replica did not catch up within {deadline:?}: primary at {target:?}, \
                     replica at {have:?}; {status}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `STOP SLAVE SQL_THREAD`: the replica keeps receiving the primary's
    /// changes but applies none of them (it lags) until
    /// [`Replicated::start_replica_sql_thread`].
    pub async fn stop_replica_sql_thread(&self) -> Result<()> {
        self.replica.admin("STOP SLAVE SQL_THREAD").await
    }

    /// `START SLAVE SQL_THREAD`.
    pub async fn start_replica_sql_thread(&self) -> Result<()> {
        self.replica.admin("START SLAVE SQL_THREAD").await
    }

    /// Kills `role`'s server (SIGKILL, by its pid).
    pub fn kill(&mut self, role: Role) {
        self.server_mut(role).kill();
    }
}

/// `SELECT @@name` as text (empty for NULL).
async fn variable(conn: &mut Conn, name: &str) -> Result<String> {
    let value: Option<Option<String>> = conn
        .query_first(format!("SELECT @@{name}"))
        .await
        .with_context(|| format!("reading @@{name}"))?;
    Ok(value.flatten().unwrap_or_default())
}

/// `domain-server-seq,…` as domain → seq.
fn gtid_positions(text: &str) -> BTreeMap<u32, u64> {
    text.split(',')
        .filter_map(|gtid| {
            let mut parts = gtid.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

/// The parts of `SHOW SLAVE STATUS` that say why a replica is behind.
async fn slave_status(conn: &mut Conn) -> String {
    let row: Option<Row> = match conn.query_first("SHOW SLAVE STATUS").await {
        Ok(row) => row,
        Err(e) => return format!("SHOW SLAVE STATUS failed: {e}"),
    };
    let Some(row) = row else {
        return "the replica has no replication configured".into();
    };
    [
        "Slave_IO_Running",
        "Slave_SQL_Running",
        "Last_IO_Error",
        "Last_SQL_Error",
    ]
    .iter()
    .map(|column| {
        let value: Option<Option<String>> = row.get(*column);
        format!("{column}: {:?}", value.flatten().unwrap_or_default())
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// A port of 127.0.0.1 free at the time of asking.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `$variable`, else the first of `names` on `PATH`, in /usr/sbin or in /usr/bin.
fn binary(variable: &str, names: &[&str]) -> Result<PathBuf> {
    if let Ok(path) = std::env::var(variable) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "none of {names:?} found on PATH, /usr/sbin or /usr/bin: install \
                 Debian's mariadb-server package, or set {variable}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::gtid_positions;

    #[test]
    fn gtid_positions_are_read_per_domain() {
        assert!(gtid_positions("").is_empty());
        let read = gtid_positions("0-1-12,3-2-7");
        assert_eq!(read.get(&0), Some(&12));
        assert_eq!(read.get(&3), Some(&7));
    }
}

//! One run of the suite: start every server, set up products and users, run
//! the load while the faults are injected one after another, drain the
//! outbox, read the stores back and check the invariants.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use api_tests::mariadb::{MariaDb, Role};
use api_tests::receiver::Receiver;
use api_tests::s3::S3Server;
use serde_json::{json, Value};

use crate::invariants::{self, Verdict};
use crate::journal::{FaultWindow, Journal, Service};
use crate::load::{unique, Load, User};
use crate::processes::{send_signal, Host, Redis};
use crate::snapshot::{self, sha256_hex, Snapshot};

/// The admin the hosts bootstrap.
const ADMIN_EMAIL: &str = "admin@faults.test";
const ADMIN_PASSWORD: &str = "admin-password-of-the-faults-suite";
/// A Standard Webhooks signing key.
const WEBHOOK_SECRET: &str = "whsec_ZmF1bHRzLXN1aXRlLXNpZ25pbmcta2V5IQ==";
/// Products many orders compete for: small stock, so some run out and
/// orders are refused with 409 while others race for the last units.
const HOT_PRODUCTS: usize = 3;
const HOT_STOCK: i64 = 150;
const COLD_PRODUCTS: usize = 40;
const COLD_STOCK: i64 = 100_000;

/// A deliberately broken invariant, to show the suite fails on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sabotage {
    /// Deletes an `order.created` outbox row mid-run, as an order change
    /// committed without its event would leave it.
    Outbox,
    /// Adds a unit of stock to a hot product mid-run, out of thin air.
    Stock,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long the load runs at least (the faults may stretch it).
    pub seconds: f64,
    /// Concurrent workers.
    pub workers: usize,
    /// Inject the faults (off: load and checks only).
    pub faults: bool,
    /// Break an invariant on purpose.
    pub sabotage: Option<Sabotage>,
    /// The `spin-test-host` binary.
    pub host_bin: PathBuf,
    /// The hosts' request deadline, in seconds.
    pub request_timeout_secs: u64,
    /// Seed of the load's choices.
    pub seed: u64,
    /// Keep the work directory (the hosts' logs) even when every invariant held.
    pub keep_logs: bool,
}

/// What a run found.
pub struct Findings {
    /// What the client side saw.
    pub journal: Journal,
    /// What the stores held after.
    pub snapshot: Snapshot,
    /// Every invariant.
    pub verdicts: Vec<Verdict>,
    /// Wall time of the whole run (start-up included).
    pub wall_secs: f64,
    /// How long draining the outbox took.
    pub drain_secs: f64,
}

/// The suite's working directory (logs, host state), removed after a run
/// that held, kept (and named) after one that did not.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("faults: logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the suite.
pub async fn run(options: &Options) -> Result<Findings> {
    let wall = Instant::now();
    let root = api_tests::workspace_root();
    for component in ["login", "users", "orders", "uploads", "docs", "events"] {
        let wasm = root.join(format!("target/wasm32-wasip2/release/{component}.wasm"));
        if !wasm.exists() {
            bail!(
                "{} is missing: build the components first (scripts/faults does)",
                wasm.display()
            );
        }
    }
    if !options.host_bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p spin-test-host` (scripts/faults does)",
            options.host_bin.display()
        );
    }
    let mut work = WorkDir {
        path: std::env::temp_dir().join(unique("faults-")),
        keep: true,
    };
    std::fs::create_dir_all(&work.path).context("creating the work directory")?;

    eprintln!("faults: starting MariaDB, Redis, s3s-fs and the webhook receiver");
    let mut db = MariaDb::start_durable(Role::Primary).await?;
    db.migrate().await?;
    let mut redis = Redis::start(&work.path)?;
    let mut s3 = S3Server::start()?;
    let receiver = Arc::new(Receiver::start(&[]).await);

    let mut variables: Vec<(String, String)> = vec![
        ("jwt_secret".into(), unique("faults-jwt-secret-")),
        ("db_url".into(), db.url()),
        ("db_host".into(), db.address()),
        ("redis_url".into(), redis.url()),
        ("redis_host".into(), format!("127.0.0.1:{}", redis.port)),
        ("admin_email".into(), ADMIN_EMAIL.into()),
        ("admin_password".into(), ADMIN_PASSWORD.into()),
        ("events_channel".into(), "faults-order-events".into()),
        ("webhook_url".into(), receiver.url()),
        ("webhook_origin".into(), receiver.origin()),
        ("webhook_secret".into(), WEBHOOK_SECRET.into()),
    ];
    // Every request comes from 127.0.0.1: lift the per-address limits, as
    // the API tests do, so registrations and logins are not refused for it.
    variables.extend(api_tests::shared_address_limits());
    variables.extend(s3.variables());
    let timeout = format!("{}s", options.request_timeout_secs);
    let host_args = |state: &str| -> Vec<String> {
        let mut args = vec![
            "--key-value".to_owned(),
            redis.url(),
            "--key-value-prefix".to_owned(),
            "faults:".to_owned(),
            "--request-timeout".to_owned(),
            timeout.clone(),
            "--state-dir".to_owned(),
            work.path.join(state).display().to_string(),
        ];
        for (name, value) in &variables {
            args.push("--variable".to_owned());
            args.push(format!("{name}={value}"));
        }
        args
    };
    let manifest = root.join("spin.toml");
    let mut hosts = Vec::new();
    for n in 0..2 {
        hosts.push(Host::new(
            &format!("host {n}"),
            &options.host_bin,
            &manifest,
            &host_args(&format!("state-{n}")),
            work.path.join(format!("host-{n}.log")),
        )?);
    }
    let events = Arc::new(Mutex::new(Host::new(
        "events app",
        &options.host_bin,
        &root.join("spin-events.toml"),
        &host_args("state-events"),
        work.path.join("events.log"),
    )?));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Under the hosts' 5 s keep-alive timeout: a pooled connection the
        // host is closing as the client reuses it fails the request with
        // "connection closed before message completed", a race of every
        // HTTP/1.1 client with a server's idle timeout, not of the API
        // (seen after the SIGSTOP, when workers had waited 5 s on the database).
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(
            options.request_timeout_secs + invariants::DEADLINE_SLACK_SECS as u64 + 3,
        ))
        .build()?;
    eprintln!("faults: starting two API hosts and the events app");
    {
        let (first, second) = hosts.split_at_mut(1);
        let (a, b) = tokio::join!(first[0].start(&http), second[0].start(&http));
        a?;
        b?;
    }
    lock(&events).process().spawn()?;

    // The events app ends when it loses Redis, as on Spin 4.0.2; start it
    // again whenever it is down, as SpinKube restarts a pod.
    let supervising = Arc::new(AtomicBool::new(true));
    let supervisor = {
        let events = events.clone();
        let supervising = supervising.clone();
        tokio::spawn(async move {
            let mut restarts = 0u32;
            while supervising.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut app = lock(&events);
                if !app.process().is_running() && app.process().spawn().is_ok() {
                    restarts += 1;
                }
            }
            restarts
        })
    };

    let bases: Vec<String> = hosts.iter().map(Host::base).collect();
    eprintln!("faults: creating products and users");
    let admin = login(&http, &bases[0], ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let mut initial_stock = std::collections::BTreeMap::new();
    let mut hot = Vec::new();
    let mut cold = Vec::new();
    for n in 0..HOT_PRODUCTS + COLD_PRODUCTS {
        let stock = if n < HOT_PRODUCTS {
            HOT_STOCK
        } else {
            COLD_STOCK
        };
        let resp = http
            .post(format!("{}/api/v1/products", bases[0]))
            .bearer_auth(&admin)
            .json(&json!({"sku": unique("F-"), "name": "Faulted", "price_cents": 199, "stock": stock}))
            .send()
            .await?;
        let body = expect(resp, 201, "creating a product").await?;
        let id = body["id"].as_str().context("product id")?.to_owned();
        initial_stock.insert(id.clone(), stock);
        if n < HOT_PRODUCTS {
            hot.push(id);
        } else {
            cold.push(id);
        }
    }
    let mut users = Vec::new();
    for n in 0..options.workers {
        let email = format!("{}@faults.test", unique("w"));
        let password = format!("password of worker {n}");
        let resp = http
            .post(format!("{}/api/v1/users", bases[n % 2]))
            .json(&json!({"email": email, "password": password, "name": format!("Worker {n}")}))
            .send()
            .await?;
        let body = expect(resp, 201, "registering a worker").await?;
        let id = body["id"].as_str().context("user id")?.to_owned();
        let token = login(&http, &bases[n % 2], &email, &password).await?;
        users.push(User {
            id,
            email,
            password,
            token,
        });
    }

    eprintln!(
        "faults: load for {} s on {} workers{}",
        options.seconds,
        options.workers,
        if options.faults {
            ", injecting faults"
        } else {
            ""
        }
    );
    let load = Arc::new(Load {
        bases: bases.clone(),
        http: http.clone(),
        hot: hot.clone(),
        cold,
        epoch: Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
    });
    let mut workers = Vec::new();
    for (n, user) in users.into_iter().enumerate() {
        let load = load.clone();
        let seed = options.seed.wrapping_add(n as u64);
        workers.push(tokio::spawn(async move { load.worker(user, seed).await }));
    }

    let sampler = {
        let receiver = receiver.clone();
        let load = load.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !load.stop.load(Ordering::Relaxed) {
                samples.push((load.now(), receiver.accepted_ids().len()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        })
    };
    let mut faults = Vec::new();
    let mut first_delivery = None;
    let sabotage_at = options.seconds / 2.0;
    let mut sabotaged = options.sabotage.is_none();
    let until = |t: f64, load: &Load| {
        let wait = (t - load.now()).max(0.0);
        tokio::time::sleep(Duration::from_secs_f64(wait))
    };
    if options.faults {
        // The faults' own durations (and the restarts') take about 55 s;
        // the rest of the run is spread as pauses between them, so the
        // load runs unfaulted before, between and after.
        let gap = ((options.seconds - 55.0) / 7.0).max(1.5);
        until(gap, &load).await;

        let started = load.now();
        eprintln!("faults: {started:5.1} s  MariaDB SIGKILL + restart");
        db.kill();
        db.restart().await.context("restarting MariaDB")?;
        faults.push(window(
            "MariaDB SIGKILL + restart",
            Service::Database,
            started,
            &load,
        ));

        until(load.now() + gap, &load).await;
        let started = load.now();
        eprintln!("faults: {started:5.1} s  MariaDB SIGSTOP 5 s + SIGCONT");
        send_signal(db.pid(), libc::SIGSTOP)?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        send_signal(db.pid(), libc::SIGCONT)?;
        faults.push(window(
            "MariaDB SIGSTOP 5 s",
            Service::Database,
            started,
            &load,
        ));

        until(load.now() + gap, &load).await;
        let started = load.now();
        eprintln!("faults: {started:5.1} s  Redis SIGKILL, down 10 s");
        redis.kill();
        tokio::time::sleep(Duration::from_secs(10)).await;
        redis.restart().context("restarting Redis")?;
        faults.push(window(
            "Redis SIGKILL, down 10 s, restarted empty",
            Service::Redis,
            started,
            &load,
        ));

        until(load.now() + gap, &load).await;
        let started = load.now();
        eprintln!("faults: {started:5.1} s  S3 store SIGKILL, down 10 s");
        s3.kill();
        tokio::time::sleep(Duration::from_secs(10)).await;
        s3.restart().context("restarting s3s-fs")?;
        faults.push(window(
            "S3 store SIGKILL, down 10 s",
            Service::Store,
            started,
            &load,
        ));

        if !sabotaged && load.now() >= sabotage_at {
            sabotage(&db, options.sabotage, &hot).await?;
            sabotaged = true;
        }

        until(load.now() + gap, &load).await;
        let started = load.now();
        eprintln!("faults: {started:5.1} s  webhook receiver answers 500 for 20 s");
        receiver.set_outage(Some(500));
        tokio::time::sleep(Duration::from_secs(20)).await;
        receiver.set_outage(None);
        faults.push(window(
            "webhook receiver answers 500 for 20 s",
            Service::Receiver,
            started,
            &load,
        ));
        first_delivery = Some({
            let receiver = receiver.clone();
            let load = load.clone();
            let before = receiver.accepted_ids().len();
            tokio::spawn(async move {
                for _ in 0..1200 {
                    if receiver.accepted_ids().len() > before {
                        return Some(load.now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None
            })
        });

        until(load.now() + gap, &load).await;
        let started = load.now();
        eprintln!("faults: {started:5.1} s  host 1 SIGKILL + restart");
        hosts[1].kill();
        hosts[1].start(&http).await.context("restarting host 1")?;
        faults.push(window(
            "host 1 SIGKILL mid-load + restart",
            Service::Host(1),
            started,
            &load,
        ));
    }
    if !sabotaged {
        until(sabotage_at, &load).await;
        sabotage(&db, options.sabotage, &hot).await?;
    }
    // Load goes on after the last fault long enough to see recovery.
    let end = options
        .seconds
        .max(faults.last().map_or(0.0, |f: &FaultWindow| f.ended + 3.0));
    until(end, &load).await;
    load.stop.store(true, Ordering::Relaxed);
    let mut journal = Journal {
        initial_stock,
        deadline_secs: options.request_timeout_secs as f64,
        load_secs: load.now(),
        ..Journal::default()
    };
    for worker in workers {
        journal.absorb(worker.await.context("a load worker panicked")?);
    }
    journal.delivered_over_time = sampler.await.unwrap_or_default();
    if let (Some(task), Some(receiver_fault)) = (
        first_delivery,
        faults.iter_mut().find(|f| f.service == Service::Receiver),
    ) {
        receiver_fault.first_delivery_after = task.await.ok().flatten();
    }
    journal.faults = faults;
    eprintln!(
        "faults: load done: {} requests in {:.1} s",
        journal.requests.len(),
        journal.load_secs
    );

    let drain_started = Instant::now();
    drain(&http, &bases[0], &admin, &db).await?;
    let drain_secs = drain_started.elapsed().as_secs_f64();
    supervising.store(false, Ordering::Relaxed);
    journal.events_app_restarts = supervisor.await.unwrap_or(0);
    lock(&events).kill();

    let mut conn = db.conn().await?;
    let mut snapshot = snapshot::collect(&mut conn, |key| s3.object_path(key)).await?;
    conn.disconnect().await?;
    snapshot.readbacks = read_back(&bases[0], &admin, &journal).await?;
    snapshot.delivered = receiver.accepted_ids().into_iter().collect();
    let verdicts = invariants::check(&journal, &snapshot);
    // A run broken on purpose fails as expected: nothing to look into.
    work.keep =
        options.keep_logs || (options.sabotage.is_none() && verdicts.iter().any(|v| !v.held));
    for host in &mut hosts {
        host.kill();
    }
    Ok(Findings {
        journal,
        snapshot,
        verdicts,
        wall_secs: wall.elapsed().as_secs_f64(),
        drain_secs,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn window(name: &str, service: Service, started: f64, load: &Load) -> FaultWindow {
    FaultWindow {
        name: name.to_owned(),
        service,
        started,
        ended: load.now(),
        first_delivery_after: None,
    }
}

/// Breaks an invariant behind the API's back (`--break`).
async fn sabotage(db: &MariaDb, what: Option<Sabotage>, hot: &[String]) -> Result<()> {
    match what {
        None => {}
        Some(Sabotage::Outbox) => {
            eprintln!("faults: sabotage: deleting an order.created outbox row");
            db.exec(
                "DELETE FROM order_events WHERE type = 'order.created' ORDER BY seq DESC LIMIT 1",
                (),
            )
            .await?;
        }
        Some(Sabotage::Stock) => {
            eprintln!("faults: sabotage: adding a unit of stock from nowhere");
            db.exec(
                "UPDATE products SET stock = stock + 1 WHERE id = ?",
                (hot[0].clone(),),
            )
            .await?;
        }
    }
    Ok(())
}

/// `POST /auth/login`: the access token.
async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Result<String> {
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    let body = expect(resp, 200, "logging in").await?;
    Ok(body["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned())
}

async fn expect(resp: reqwest::Response, status: u16, what: &str) -> Result<Value> {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if got != status {
        bail!("{what}: {got} instead of {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON"))
}

/// Delivers the outbox once the faults are over: `POST /events/deliver`
/// until no event is left undelivered (an event given up on after its
/// attempts is sent again with `/redeliver`), within two minutes.
async fn drain(http: &reqwest::Client, base: &str, admin: &str, db: &MariaDb) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_said = Instant::now() - Duration::from_secs(5);
    loop {
        let left: Vec<(String, String)> = db
            .query(
                "SELECT id, state FROM order_events WHERE state <> 'delivered'",
                (),
            )
            .await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            eprintln!(
                "faults: {} events still undelivered after 120 s",
                left.len()
            );
            return Ok(());
        }
        if last_said.elapsed() >= Duration::from_secs(5) {
            last_said = Instant::now();
            say_oldest_pending(db, left.len()).await;
        }
        for (id, _) in left.iter().filter(|(_, state)| state == "failed") {
            let _ = http
                .post(format!("{base}/api/v1/events/{id}/redeliver"))
                .bearer_auth(admin)
                .send()
                .await;
        }
        let _ = http
            .post(format!("{base}/api/v1/events/deliver"))
            .bearer_auth(admin)
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Says on stderr why the outbox is not drained yet: its oldest undelivered
/// event's attempts, claim and backoff (relative to now, in seconds).
async fn say_oldest_pending(db: &MariaDb, left: usize) {
    type Row = (i64, String, i64, Option<i64>, i64, Option<String>);
    let oldest: Result<Vec<Row>> = db
        .query(
            "SELECT seq, state, attempts, claimed_until_ms - ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000), \
             next_attempt_at_ms - ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000), last_error \
             FROM order_events WHERE state <> 'delivered' ORDER BY seq LIMIT 1",
            (),
        )
        .await;
    if let Ok(Some((seq, state, attempts, claimed, next, error))) =
        oldest.map(|rows| rows.into_iter().next())
    {
        eprintln!(
            "faults: draining: {left} undelivered; oldest #{seq} {state}, {attempts} attempts, \
             claimed for {:?} s more, due in {:.1} s, last error {error:?}",
            claimed.map(|ms| ms as f64 / 1000.0),
            next as f64 / 1000.0
        );
    }
}

/// Reads every upload answered 201 back through the API (following the
/// redirect to the store), as its SHA-256.
async fn read_back(
    base: &str,
    admin: &str,
    journal: &Journal,
) -> Result<std::collections::BTreeMap<String, Option<String>>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut read = std::collections::BTreeMap::new();
    for upload in &journal.uploads {
        let resp = http
            .get(format!("{base}/api/v1/uploads/{}/content", upload.id))
            .bearer_auth(admin)
            .send()
            .await;
        let sha = match resp {
            Ok(resp) if resp.status() == 200 => resp.bytes().await.ok().map(|b| sha256_hex(&b)),
            _ => None,
        };
        read.insert(upload.id.clone(), sha);
    }
    Ok(read)
}

//! Key-value backends behind `fermyon:spin/key-value@2.0.0`.
//!
//! Spin keeps one store per label; here a label is a namespace inside one
//! backend: an in-memory map shared by every component of the process, or
//! Redis (so several host processes share one store), where a value lives
//! at `{prefix}{store}:{key}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands as _;

/// A backend failure, reported to the guest as `error::other`.
pub type KvResult<T> = Result<T, String>;

/// How long a Redis command may take before the guest gets an error; a
/// Redis that is down must not hang a request.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The in-memory stores: label to (key to value).
type MemoryStores = Arc<Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>>;

/// A key-value backend shared by every instance of the host.
#[derive(Clone)]
pub enum KvBackend {
    /// Process-local maps: store label to (key to value).
    Memory(MemoryStores),
    /// A Redis server.
    Redis(Arc<RedisBackend>),
}

/// Redis connection and key layout.
pub struct RedisBackend {
    conn: ConnectionManager,
    prefix: String,
    url: String,
}

impl KvBackend {
    /// An empty in-memory backend.
    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// A Redis backend. The connection is made lazily (and remade after a
    /// failure), so a Redis that is down only fails the calls that need it.
    pub fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::Redis(Arc::new(RedisBackend {
            conn,
            prefix: prefix.to_owned(),
            url: url.to_owned(),
        })))
    }

    /// A one-line description for the start-up log.
    pub fn summary(&self) -> String {
        match self {
            Self::Memory(_) => "in memory".to_owned(),
            Self::Redis(r) => format!(
                "Redis at {} (key prefix {:?})",
                without_credentials(&r.url),
                r.prefix
            ),
        }
    }

    /// Value of `key` in `store`, if any.
    pub async fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        match self {
            Self::Memory(m) => Ok(lock(m)?.get(store).and_then(|s| s.get(key)).cloned()),
            Self::Redis(r) => {
                r.run(|mut c, k| async move { c.get(k).await }, store, key)
                    .await
            }
        }
    }

    /// Sets `key` in `store`, replacing any value.
    pub async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> KvResult<()> {
        match self {
            Self::Memory(m) => {
                lock(m)?
                    .entry(store.to_owned())
                    .or_default()
                    .insert(key.to_owned(), value);
                Ok(())
            }
            Self::Redis(r) => {
                r.run(|mut c, k| async move { c.set(k, value).await }, store, key)
                    .await
            }
        }
    }

    /// Removes `key` from `store`; no error when absent.
    pub async fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        match self {
            Self::Memory(m) => {
                if let Some(s) = lock(m)?.get_mut(store) {
                    s.remove(key);
                }
                Ok(())
            }
            Self::Redis(r) => {
                r.run(
                    |mut c, k| async move { c.del::<_, ()>(k).await },
                    store,
                    key,
                )
                .await
            }
        }
    }

    /// Whether `key` is in `store`.
    pub async fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        match self {
            Self::Memory(m) => Ok(lock(m)?.get(store).is_some_and(|s| s.contains_key(key))),
            Self::Redis(r) => {
                r.run(|mut c, k| async move { c.exists(k).await }, store, key)
                    .await
            }
        }
    }

    /// The values of `keys` in `store`, in the order asked, `None` for an
    /// absent key: one `MGET` on Redis, so a guest's batch read is one round
    /// trip however many keys it names.
    pub async fn get_many(&self, store: &str, keys: &[String]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Memory(m) => {
                let stores = lock(m)?;
                let entries = stores.get(store);
                Ok(keys
                    .iter()
                    .map(|k| entries.and_then(|s| s.get(k)).cloned())
                    .collect())
            }
            Self::Redis(r) => {
                let full: Vec<String> = keys.iter().map(|k| r.full_key(store, k)).collect();
                let mut cmd = ::redis::cmd("MGET");
                cmd.arg(&full);
                r.timed(async move { cmd.query_async(&mut r.conn.clone()).await })
                    .await
            }
        }
    }

    /// Sets every pair of `entries` in `store`: one `MSET` on Redis (atomic
    /// there, as a series of sets would not be).
    pub async fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> KvResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        match self {
            Self::Memory(m) => {
                let mut stores = lock(m)?;
                let target = stores.entry(store.to_owned()).or_default();
                target.extend(entries);
                Ok(())
            }
            Self::Redis(r) => {
                let mut cmd = ::redis::cmd("MSET");
                for (key, value) in &entries {
                    cmd.arg(r.full_key(store, key)).arg(value);
                }
                r.timed(async move { cmd.query_async(&mut r.conn.clone()).await })
                    .await
            }
        }
    }

    /// Removes every key of `keys` from `store` (one `DEL` on Redis); absent
    /// keys are no error.
    pub async fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        match self {
            Self::Memory(m) => {
                if let Some(s) = lock(m)?.get_mut(store) {
                    for key in keys {
                        s.remove(key);
                    }
                }
                Ok(())
            }
            Self::Redis(r) => {
                let mut cmd = ::redis::cmd("DEL");
                cmd.arg(
                    keys.iter()
                        .map(|k| r.full_key(store, k))
                        .collect::<Vec<_>>(),
                );
                r.timed(async move { cmd.query_async(&mut r.conn.clone()).await })
                    .await
            }
        }
    }

    /// Every key of `store` (only that store's, without any prefix).
    pub async fn get_keys(&self, store: &str) -> KvResult<Vec<String>> {
        match self {
            Self::Memory(m) => Ok(lock(m)?
                .get(store)
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default()),
            Self::Redis(r) => r.keys(store).await,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> KvResult<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| "key-value store lock poisoned".to_owned())
}

impl RedisBackend {
    fn namespace(&self, store: &str) -> String {
        format!("{}{}:", self.prefix, store)
    }

    fn full_key(&self, store: &str, key: &str) -> String {
        format!("{}{key}", self.namespace(store))
    }

    async fn run<T, F, Fut>(&self, op: F, store: &str, key: &str) -> KvResult<T>
    where
        F: FnOnce(ConnectionManager, String) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.timed(op(self.conn.clone(), self.full_key(store, key)))
            .await
    }

    /// `command` with [`REDIS_TIMEOUT`]; failures logged and turned into text.
    async fn timed<T>(
        &self,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> KvResult<T> {
        match tokio::time::timeout(REDIS_TIMEOUT, command).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::warn!("redis error: {e}");
                Err(e.to_string())
            }
            Err(_) => {
                tracing::warn!("redis timed out after {REDIS_TIMEOUT:?}");
                Err(format!("redis timed out after {REDIS_TIMEOUT:?}"))
            }
        }
    }

    async fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        let namespace = self.namespace(store);
        let mut conn = self.conn.clone();
        // Every key, filtered here by its prefix: a Redis glob would need the
        // namespace escaped, and Spin's own Redis store lists with `KEYS *`.
        let keys: Vec<String> = match tokio::time::timeout(REDIS_TIMEOUT, conn.keys("*")).await {
            Ok(Ok(k)) => k,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("redis timed out after {REDIS_TIMEOUT:?}")),
        };
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&namespace).map(str::to_owned))
            .collect())
    }
}

/// `url` without its userinfo (`redis://:password@host` → `redis://***@host`),
/// for log lines: the host never logs a credential.
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_password(None);
                let _ = parsed.set_username("***");
            }
            parsed.to_string()
        }
        Err(_) => "(a URL that does not parse)".to_owned(),
    }
}

#[cfg(test)]
mod tests;

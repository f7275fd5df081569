//! `wasi:keyvalue@0.2.0-draft2`, interfaces `store` and `batch`: the same
//! stores as `fermyon:spin/key-value`, behind WASI's interface, as Spin
//! 4.0.2 offers them:
//!
//! * `store.open(identifier)` takes the store's label and is granted by the
//!   same `key_value_stores` list; an ungranted label is `access-denied`, and
//!   open buckets count against the same table as Spin's stores.
//! * `batch.get-many` answers one entry per key asked, in order, `none` for
//!   an absent key. On Redis it is one `MGET` (`set-many` one `MSET`,
//!   `delete-many` one `DEL`), which is what makes it worth calling: a guest
//!   that needs two keys pays one round trip.
//! * `list-keys` returns every key at once (no cursor), as Spin's backends do.

use std::time::Instant;

use wasmtime::component::Resource;

use self::bindings::wasi::keyvalue::{batch, store};
use crate::state::{HostState, StoreRefusal};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit-keyvalue",
        world: "keyvalue-host",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::state::KvStore,
        },
    });
}

impl From<StoreRefusal> for store::Error {
    fn from(refusal: StoreRefusal) -> Self {
        match refusal {
            StoreRefusal::AccessDenied => store::Error::AccessDenied,
            StoreRefusal::TableFull => {
                store::Error::Other("too many open key-value stores".to_owned())
            }
        }
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl HostState {
    /// Runs one backend call on `bucket`'s store, recording it in the metrics
    /// as `op`.
    async fn bucket_call<T, F, Fut>(
        &mut self,
        bucket: &Resource<store::Bucket>,
        op: &str,
        call: F,
    ) -> Answer<T>
    where
        F: FnOnce(crate::kv::KvBackend, String) -> Fut,
        Fut: std::future::Future<Output = crate::kv::KvResult<T>>,
    {
        let label = self.table.get(bucket)?.label().to_owned();
        let started = Instant::now();
        let result = call(self.kv.clone(), label).await;
        self.metrics
            .key_value_call(&self.component.id, op, result.is_ok(), started.elapsed());
        Ok(result.map_err(store::Error::Other))
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Answer<Resource<store::Bucket>> {
        match self.admit_store(identifier) {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(refusal) => Ok(Err(refusal.into())),
        }
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<store::Bucket>,
        key: String,
    ) -> Answer<Option<Vec<u8>>> {
        self.bucket_call(&bucket, "get", |kv, label| async move {
            kv.get(&label, &key).await
        })
        .await
    }

    async fn set(
        &mut self,
        bucket: Resource<store::Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Answer<()> {
        self.bucket_call(&bucket, "set", |kv, label| async move {
            kv.set(&label, &key, value).await
        })
        .await
    }

    async fn delete(&mut self, bucket: Resource<store::Bucket>, key: String) -> Answer<()> {
        self.bucket_call(&bucket, "delete", |kv, label| async move {
            kv.delete(&label, &key).await
        })
        .await
    }

    async fn exists(&mut self, bucket: Resource<store::Bucket>, key: String) -> Answer<bool> {
        self.bucket_call(&bucket, "exists", |kv, label| async move {
            kv.exists(&label, &key).await
        })
        .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<store::Bucket>,
        _cursor: Option<String>,
    ) -> Answer<store::KeyResponse> {
        self.bucket_call(&bucket, "get_keys", |kv, label| async move {
            let keys = kv.get_keys(&label).await?;
            Ok(store::KeyResponse { keys, cursor: None })
        })
        .await
    }

    async fn drop(&mut self, bucket: Resource<store::Bucket>) -> wasmtime::Result<()> {
        self.close_store(bucket)
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<store::Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<(String, Option<Vec<u8>>)>> {
        self.bucket_call(&bucket, "get_many", |kv, label| async move {
            let values = kv.get_many(&label, &keys).await?;
            Ok(keys.into_iter().zip(values).collect())
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<store::Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        self.bucket_call(&bucket, "set_many", |kv, label| async move {
            kv.set_many(&label, key_values).await
        })
        .await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<store::Bucket>,
        keys: Vec<String>,
    ) -> Answer<()> {
        self.bucket_call(&bucket, "delete_many", |kv, label| async move {
            kv.delete_many(&label, &keys).await
        })
        .await
    }
}

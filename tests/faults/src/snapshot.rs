//! What the stores held once the faults were over and the outbox drained:
//! read from MySQL, the bucket and the receiver by [`collect`], checked
//! against the journal by `invariants::check`. Plain data, so the checker's
//! tests can build broken states by hand.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use sha2::{Digest, Sha256};

/// A product and its stock now.
#[derive(Clone, Debug)]
pub struct ProductRow {
    /// Its id.
    pub id: String,
    /// `products.stock`.
    pub stock: i64,
}

/// An order with its lines.
#[derive(Clone, Debug)]
pub struct OrderRow {
    /// Its id.
    pub id: String,
    /// `created` or `cancelled`.
    pub status: String,
    /// `(product id, quantity)` per line.
    pub lines: Vec<(String, i64)>,
}

/// An outbox row.
#[derive(Clone, Debug)]
pub struct EventRow {
    /// The event id (`webhook-id`).
    pub id: String,
    /// The order it reports.
    pub order_id: String,
    /// `order.created` or `order.cancelled`.
    pub kind: String,
}

/// An idempotency-key reservation.
#[derive(Clone, Debug)]
pub struct KeyRow {
    /// Whose key.
    pub user_id: String,
    /// The key.
    pub key: String,
    /// The order it made, if it made one.
    pub order_id: Option<String>,
}

/// An upload row and whether its bytes are where its blob says.
#[derive(Clone, Debug)]
pub struct UploadRow {
    /// Its id.
    pub id: String,
    /// Whether the blob row exists and its bytes (in MySQL or in the
    /// bucket) hash to the upload's SHA-256.
    pub has_bytes: bool,
}

/// The stores after the run.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every product.
    pub products: Vec<ProductRow>,
    /// Every order.
    pub orders: Vec<OrderRow>,
    /// Every outbox event.
    pub events: Vec<EventRow>,
    /// Every idempotency key.
    pub keys: Vec<KeyRow>,
    /// Every upload.
    pub uploads: Vec<UploadRow>,
    /// Upload id → SHA-256 of the bytes read back through the API (`None`:
    /// could not be read).
    pub readbacks: BTreeMap<String, Option<String>>,
    /// The event ids the receiver answered 2xx, deduplicated.
    pub delivered: BTreeSet<String>,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads the database part of the snapshot; `bucket_file` maps an object
/// key to the file the store keeps it in.
pub async fn collect(
    conn: &mut mysql_async::Conn,
    bucket_file: impl Fn(&str) -> std::path::PathBuf,
) -> Result<Snapshot> {
    let products: Vec<(String, i64)> = conn
        .query("SELECT id, stock FROM products")
        .await
        .context("reading products")?;
    let orders: Vec<(String, String)> = conn
        .query("SELECT id, status FROM orders")
        .await
        .context("reading orders")?;
    let lines: Vec<(String, String, i64)> = conn
        .query("SELECT order_id, product_id, quantity FROM order_lines ORDER BY order_id, line_no")
        .await
        .context("reading order lines")?;
    let events: Vec<(String, String, String)> = conn
        .query("SELECT id, order_id, type FROM order_events")
        .await
        .context("reading the outbox")?;
    let keys: Vec<(String, String, Option<String>)> = conn
        .query("SELECT user_id, idem_key, order_id FROM idempotency_keys")
        .await
        .context("reading idempotency keys")?;
    // id, sha256, the blob's object key (in the bucket) or bytes (in MySQL).
    type UploadBlob = (String, String, Option<String>, Option<Vec<u8>>);
    let uploads: Vec<UploadBlob> = conn
        .query(
            "SELECT u.id, u.sha256, b.object_key, b.data FROM uploads u \
             LEFT JOIN upload_blobs b ON b.sha256 = u.sha256",
        )
        .await
        .context("reading uploads")?;

    let mut by_order: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for (order_id, product_id, quantity) in lines {
        by_order
            .entry(order_id)
            .or_default()
            .push((product_id, quantity));
    }
    Ok(Snapshot {
        products: products
            .into_iter()
            .map(|(id, stock)| ProductRow { id, stock })
            .collect(),
        orders: orders
            .into_iter()
            .map(|(id, status)| OrderRow {
                lines: by_order.remove(&id).unwrap_or_default(),
                id,
                status,
            })
            .collect(),
        events: events
            .into_iter()
            .map(|(id, order_id, kind)| EventRow { id, order_id, kind })
            .collect(),
        keys: keys
            .into_iter()
            .map(|(user_id, key, order_id)| KeyRow {
                user_id,
                key,
                order_id,
            })
            .collect(),
        uploads: uploads
            .into_iter()
            .map(|(id, sha256, object_key, data)| {
                let bytes = match (data, object_key) {
                    (Some(data), _) => Some(data),
                    (None, Some(key)) => std::fs::read(bucket_file(&key)).ok(),
                    (None, None) => None,
                };
                UploadRow {
                    id,
                    has_bytes: bytes.is_some_and(|b| sha256_hex(&b) == sha256),
                }
            })
            .collect(),
        readbacks: BTreeMap::new(),
        delivered: BTreeSet::new(),
    })
}

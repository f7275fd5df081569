//! `Idempotency-Key`: the key, the stored answer, and what a repeat gets.

use shared::error::ApiError;

use super::*;

/// A checked `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The header's value when present: 1–255 printable ASCII characters
    /// (spaces included), else 400 `bad_request`.
    pub fn from_header(value: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(v) = value else {
            return Ok(None);
        };
        let ok = (1..=MAX_IDEMPOTENCY_KEY).contains(&v.len())
            && v.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if ok {
            Ok(Some(Self(v.to_string())))
        } else {
            Err(ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters."
            )))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored idempotency record: the first answer given under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// Fingerprint of the request that made it.
    pub fingerprint: String,
    /// Its HTTP status.
    pub status: u16,
    /// Its exact body.
    pub body: Vec<u8>,
    /// The order it created, for the `Location` header.
    pub order_id: Option<String>,
    /// When the key was first used, epoch milliseconds.
    pub created_at_ms: i64,
}

/// What a request carrying an already-used key gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDecision {
    /// Same request within 24 hours: the stored answer again, nothing else.
    Replay,
    /// The stored answer is older than 24 hours: forget it, treat as new.
    Expired,
}

/// Decides what a key already in use means for a request with `fingerprint` at `now_ms`.
pub fn decide_key(
    stored: &StoredAnswer,
    fingerprint: &str,
    now_ms: i64,
) -> Result<KeyDecision, ApiError> {
    if stored.created_at_ms + IDEMPOTENCY_TTL_MS <= now_ms {
        Ok(KeyDecision::Expired)
    } else if stored.fingerprint == fingerprint {
        Ok(KeyDecision::Replay)
    } else {
        Err(ApiError::IdempotencyKeyReused)
    }
}

/// The result of placing an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A new order was placed (its stock taken, its key, if any, recorded).
    Created(Order),
    /// The order was refused for a reason that is the answer to this exact
    /// request (`product_not_found`, `insufficient_stock`); nothing changed
    /// except that, under an `Idempotency-Key`, the refusal was recorded.
    Refused(ApiError),
    /// The key's first answer, replayed verbatim.
    Replayed(StoredAnswer),
}

/// True for refusals that are a stable answer to the request and are
/// therefore recorded under its `Idempotency-Key` (failures of the service,
/// 5xx, are not: they roll back and a retry may succeed).
pub fn is_recorded_refusal(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::ProductNotFound { .. } | ApiError::InsufficientStock { .. }
    )
}

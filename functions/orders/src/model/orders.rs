//! Orders: requests, pricing against locked products, states and their JSON view.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use shared::domain::FieldErrors;
use shared::error::{ApiError, FieldError};
use shared::time::rfc3339;

use super::*;

/// An order's state. Only `created` orders can be cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    /// Placed; its stock is taken.
    Created,
    /// Cancelled; its stock was given back.
    Cancelled,
    /// Any state this version does not know (set by a later version or by an
    /// operator); such an order cannot be cancelled here.
    Other(String),
}

impl OrderStatus {
    /// Parses a stored status.
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_string()),
        }
    }

    /// The stored and shown name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }
}

/// What a cancel request does to an order in a given state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelDecision {
    /// Cancel it and give its stock back.
    Cancel,
    /// Already cancelled: answer the order as it is (the same 200 as the
    /// first cancel), give nothing back.
    AlreadyCancelled,
}

/// The state machine of cancellation.
pub fn decide_cancel(status: &OrderStatus) -> Result<CancelDecision, ApiError> {
    match status {
        OrderStatus::Created => Ok(CancelDecision::Cancel),
        OrderStatus::Cancelled => Ok(CancelDecision::AlreadyCancelled),
        OrderStatus::Other(s) => Err(ApiError::InvalidState(format!(
            "An order in state {s:?} cannot be cancelled."
        ))),
    }
}

/// One line of an order, with the product's sku, name and price copied at placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product ordered.
    pub product_id: String,
    /// Its SKU at placement.
    pub sku: String,
    /// Its name at placement.
    pub name: String,
    /// Its price at placement.
    pub unit_price_cents: i64,
    /// Units, 1–1000.
    pub quantity: i64,
    /// `unit_price_cents × quantity`.
    pub line_total_cents: i64,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Opaque id.
    pub id: String,
    /// The buyer (may since have been deleted).
    pub user_id: String,
    /// Its state.
    pub status: OrderStatus,
    /// Lines, in the order the client sent them.
    pub items: Vec<OrderLine>,
    /// Sum of the lines.
    pub total_cents: i64,
    /// Placement time, epoch milliseconds.
    pub created_at_ms: i64,
    /// Last change, epoch milliseconds.
    pub updated_at_ms: i64,
}

/// docs/API.md's Order JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView<'a> {
    id: &'a str,
    user_id: &'a str,
    status: &'a str,
    items: &'a [OrderLine],
    total_cents: i64,
    created_at: String,
    updated_at: String,
}

impl Order {
    /// The public JSON shape.
    pub fn view(&self) -> OrderView<'_> {
        OrderView {
            id: &self.id,
            user_id: &self.user_id,
            status: self.status.as_str(),
            items: &self.items,
            total_cents: self.total_cents,
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
        }
    }

    /// The exact bytes of the 201 answer, as stored for idempotent replays.
    pub fn json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.view()).unwrap_or_default()
    }
}

/// The body of `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    items: Option<Vec<ItemBody>>,
}

/// One requested line, raw.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    product_id: Option<Json>,
    quantity: Option<Json>,
}

/// One checked requested line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wanted {
    /// The product (not yet known to exist).
    pub product_id: String,
    /// Units, 1–1000.
    pub quantity: Quantity,
}

/// Units of one order line, from 1 to [`MAX_QUANTITY`]. Serialised as the bare
/// number, so request fingerprints stored under an `Idempotency-Key` keep
/// their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(i64);

impl Quantity {
    /// Parses `items[i].quantity`; `field` names it in the error.
    pub fn parse(field: &str, value: Option<&Json>) -> Result<Self, FieldError> {
        match value.and_then(Json::as_i64) {
            Some(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(Self(q)),
            _ => Err(FieldError::new(
                field,
                format!("must be an integer from 1 to {MAX_QUANTITY}"),
            )),
        }
    }

    /// The units.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = FieldError;

    /// A quantity from a number already in hand (tests, stored data).
    fn try_from(units: i64) -> Result<Self, FieldError> {
        Self::parse("quantity", Some(&Json::from(units)))
    }
}

/// A checked order request: 1–50 lines, each product at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The lines in the client's order.
    pub items: Vec<Wanted>,
}

impl PlaceOrderBody {
    /// Checks the request, reporting every bad field at once.
    pub fn validate(self) -> Result<OrderRequest, ApiError> {
        let mut errors = FieldErrors::new();
        let Some(raw) = self.items else {
            return Err(ApiError::Validation(vec![FieldError::new(
                "items",
                "is required",
            )]));
        };
        if raw.is_empty() || raw.len() > MAX_LINES {
            errors.push(FieldError::new(
                "items",
                format!("must hold 1 to {MAX_LINES} lines"),
            ));
        }
        let mut items: Vec<Wanted> = Vec::with_capacity(raw.len());
        for (i, item) in raw.into_iter().enumerate() {
            let field = |f: &str| format!("items[{i}].{f}");
            let product_id = match item.product_id {
                Some(Json::String(s)) if (1..=64).contains(&s.len()) => Some(s),
                _ => {
                    errors.push(FieldError::new(
                        field("product_id"),
                        "must be a product id string",
                    ));
                    None
                }
            };
            let quantity =
                errors.check(Quantity::parse(&field("quantity"), item.quantity.as_ref()));
            if let Some(id) = &product_id {
                if items.iter().any(|w| &w.product_id == id) {
                    errors.push(FieldError::new(
                        field("product_id"),
                        "names a product already ordered in another line",
                    ));
                    continue;
                }
            }
            if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
                items.push(Wanted {
                    product_id,
                    quantity,
                });
            }
        }
        errors.finish()?;
        Ok(OrderRequest { items })
    }
}

impl OrderRequest {
    /// SHA-256 (hex) of the canonical request: the lines sorted by product id
    /// (each product appears once, so the order of lines does not change what
    /// is bought), serialised as compact JSON. Whitespace, key order and line
    /// order in the client's body therefore do not make a different request.
    pub fn fingerprint(&self) -> String {
        let mut items = self.items.clone();
        items.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        let canonical =
            serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap_or_default();
        hex::encode(Sha256::digest(&canonical))
    }

    /// The product ids in ascending order: the one order in which every
    /// transaction locks product rows, so two orders cannot deadlock.
    pub fn product_ids_sorted(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.items.iter().map(|w| w.product_id.clone()).collect();
        ids.sort();
        ids
    }
}

/// Builds the order's lines and total from the products as locked in the
/// transaction (`products` in any order). The first line, in the client's
/// order, whose product does not exist is a 404 `product_not_found`; then the
/// first line whose product cannot cover it is a 409 `insufficient_stock`.
pub fn price_order(
    request: &OrderRequest,
    products: &[Product],
) -> Result<(Vec<OrderLine>, i64), ApiError> {
    let priced = price_lines(request, products)?;
    if let Some(short) = request.items.iter().find(|w| {
        products
            .iter()
            .any(|p| p.id == w.product_id && p.stock < w.quantity.get())
    }) {
        return Err(ApiError::InsufficientStock {
            product_id: short.product_id.clone(),
        });
    }
    Ok(priced)
}

/// The order's lines and total from `products` (in any order), without
/// looking at stock: for rows whose stock this transaction has already taken.
/// The first line, in the client's order, whose product is missing is a 404
/// `product_not_found`.
pub fn price_lines(
    request: &OrderRequest,
    products: &[Product],
) -> Result<(Vec<OrderLine>, i64), ApiError> {
    let mut lines = Vec::with_capacity(request.items.len());
    let mut total: i64 = 0;
    for wanted in &request.items {
        let product = products
            .iter()
            .find(|p| p.id == wanted.product_id)
            .ok_or_else(|| ApiError::ProductNotFound {
                product_id: wanted.product_id.clone(),
            })?;
        // Bounded: 10^12 × 1000 × 50 < 2^63, but checked anyway.
        let line_total = product
            .price_cents
            .checked_mul(wanted.quantity.get())
            .ok_or_else(|| ApiError::Internal("line total overflows".into()))?;
        total = total
            .checked_add(line_total)
            .ok_or_else(|| ApiError::Internal("order total overflows".into()))?;
        lines.push(OrderLine {
            product_id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            unit_price_cents: product.price_cents,
            quantity: wanted.quantity.get(),
            line_total_cents: line_total,
        });
    }
    Ok((lines, total))
}

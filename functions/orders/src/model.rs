//! Products and orders: validated inputs, records, their JSON views, and the
//! pure rules (totals, stock, state changes, idempotency decisions) that both
//! the MySQL repository and the in-memory fake apply, so the unit tests of the
//! rules cover what production runs.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use shared::domain::FieldErrors;
use shared::error::{ApiError, FieldError};
use shared::time::rfc3339;

/// Highest `price_cents` accepted (10^12 cents = 10 billion in major units).
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000_000;
/// Highest `stock` accepted.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Lines per order.
pub const MAX_LINES: usize = 50;
/// Units per line.
pub const MAX_QUANTITY: i64 = 1000;
/// How long an `Idempotency-Key` keeps its first answer.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

// ------------------------------------------------------------------ products

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Opaque id.
    pub id: String,
    /// Unique stock-keeping unit, `[A-Za-z0-9._-]{1,64}` (case-sensitive).
    pub sku: String,
    /// Display name, 1–200 chars.
    pub name: String,
    /// Unit price in cents.
    pub price_cents: i64,
    /// Units available to order.
    pub stock: i64,
    /// Creation time, epoch milliseconds.
    pub created_at_ms: i64,
    /// Last change (including stock taken or given back), epoch milliseconds.
    pub updated_at_ms: i64,
}

/// API.md's Product JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductView {
    id: String,
    sku: String,
    name: String,
    price_cents: i64,
    stock: i64,
    created_at: String,
    updated_at: String,
}

impl Product {
    /// The public JSON shape.
    pub fn view(&self) -> ProductView {
        ProductView {
            id: self.id.clone(),
            sku: self.sku.clone(),
            name: self.name.clone(),
            price_cents: self.price_cents,
            stock: self.stock,
            created_at: rfc3339(self.created_at_ms),
            updated_at: rfc3339(self.updated_at_ms),
        }
    }
}

/// The body of `POST /api/v1/products`. Numbers arrive as raw JSON so that a
/// float or a string is reported as a field error together with the others,
/// instead of failing the whole parse.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProductBody {
    sku: Option<Json>,
    name: Option<Json>,
    price_cents: Option<Json>,
    stock: Option<Json>,
}

/// A checked new product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// See [`Product::sku`].
    pub sku: String,
    /// See [`Product::name`].
    pub name: String,
    /// See [`Product::price_cents`].
    pub price_cents: i64,
    /// See [`Product::stock`].
    pub stock: i64,
}

impl NewProductBody {
    /// Checks every field, reporting every bad one at once.
    pub fn validate(self) -> Result<NewProduct, ApiError> {
        let mut errors = FieldErrors::new();
        let sku = errors.check(required("sku", self.sku).and_then(|v| sku(&v)));
        let name = errors.check(required("name", self.name).and_then(|v| name(&v)));
        let price = errors.check(
            required("price_cents", self.price_cents)
                .and_then(|v| int_in("price_cents", &v, 0, MAX_PRICE_CENTS)),
        );
        let stock = errors
            .check(required("stock", self.stock).and_then(|v| int_in("stock", &v, 0, MAX_STOCK)));
        errors.finish()?;
        match (sku, name, price, stock) {
            (Some(sku), Some(name), Some(price_cents), Some(stock)) => Ok(NewProduct {
                sku,
                name,
                price_cents,
                stock,
            }),
            _ => Err(ApiError::Internal("validation lost a field".into())),
        }
    }
}

/// The body of `PATCH /api/v1/products/{id}`: any of `name`, `price_cents`,
/// `stock` (the SKU is the product's identity outside the API and never changes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchBody {
    name: Option<Json>,
    price_cents: Option<Json>,
    stock: Option<Json>,
}

/// A checked product change; `None` leaves the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<String>,
    /// New price; orders already placed keep the price they copied.
    pub price_cents: Option<i64>,
    /// New absolute stock (a restock or a correction).
    pub stock: Option<i64>,
}

impl ProductPatchBody {
    /// Checks every present field; an empty patch is refused, since a client
    /// sending nothing to change most likely has a bug.
    pub fn validate(self) -> Result<ProductPatch, ApiError> {
        let mut errors = FieldErrors::new();
        let mut patch = ProductPatch::default();
        if let Some(v) = self.name {
            patch.name = errors.check(name(&v));
        }
        if let Some(v) = self.price_cents {
            patch.price_cents = errors.check(int_in("price_cents", &v, 0, MAX_PRICE_CENTS));
        }
        if let Some(v) = self.stock {
            patch.stock = errors.check(int_in("stock", &v, 0, MAX_STOCK));
        }
        errors.finish()?;
        if patch == ProductPatch::default() {
            return Err(ApiError::Validation(vec![FieldError::new(
                "body",
                "must change at least one of name, price_cents, stock",
            )]));
        }
        Ok(patch)
    }
}

impl ProductPatch {
    /// `product` with this patch applied at `now_ms`.
    pub fn apply(&self, product: &Product, now_ms: i64) -> Product {
        Product {
            name: self.name.clone().unwrap_or_else(|| product.name.clone()),
            price_cents: self.price_cents.unwrap_or(product.price_cents),
            stock: self.stock.unwrap_or(product.stock),
            updated_at_ms: now_ms,
            ..product.clone()
        }
    }
}

fn required(field: &str, value: Option<Json>) -> Result<Json, FieldError> {
    match value {
        Some(Json::Null) | None => Err(FieldError::new(field, "is required")),
        Some(v) => Ok(v),
    }
}

fn sku(value: &Json) -> Result<String, FieldError> {
    let bad = || FieldError::new("sku", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
    let s = value.as_str().ok_or_else(bad)?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(bad())
    }
}

fn name(value: &Json) -> Result<String, FieldError> {
    let bad = || {
        FieldError::new(
            "name",
            "must be a string of 1 to 200 characters without control or invisible formatting characters",
        )
    };
    let s = value.as_str().ok_or_else(bad)?.trim();
    let count = s.chars().count();
    if (1..=200).contains(&count) && !s.chars().any(shared::domain::is_hidden_character) {
        Ok(s.to_string())
    } else {
        Err(bad())
    }
}

/// An integer JSON number within `min..=max` (so `1.5`, `"3"` and `1e3` are refused).
fn int_in(field: &str, value: &Json, min: i64, max: i64) -> Result<i64, FieldError> {
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

// ------------------------------------------------------------------ orders

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

/// API.md's Order JSON.
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
    pub quantity: i64,
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
            let quantity = match item.quantity.as_ref().and_then(Json::as_i64) {
                Some(q) if (1..=MAX_QUANTITY).contains(&q) => Some(q),
                _ => {
                    errors.push(FieldError::new(
                        field("quantity"),
                        format!("must be an integer from 1 to {MAX_QUANTITY}"),
                    ));
                    None
                }
            };
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
    let find = |id: &str| products.iter().find(|p| p.id == id);
    if let Some(missing) = request.items.iter().find(|w| find(&w.product_id).is_none()) {
        return Err(ApiError::ProductNotFound {
            product_id: missing.product_id.clone(),
        });
    }
    let mut lines = Vec::with_capacity(request.items.len());
    let mut total: i64 = 0;
    for wanted in &request.items {
        let product = find(&wanted.product_id).ok_or_else(|| ApiError::ProductNotFound {
            product_id: wanted.product_id.clone(),
        })?;
        if product.stock < wanted.quantity {
            return Err(ApiError::InsufficientStock {
                product_id: product.id.clone(),
            });
        }
        // Bounded: 10^12 × 1000 × 50 < 2^63, but checked anyway.
        let line_total = product
            .price_cents
            .checked_mul(wanted.quantity)
            .ok_or_else(|| ApiError::Internal("line total overflows".into()))?;
        total = total
            .checked_add(line_total)
            .ok_or_else(|| ApiError::Internal("order total overflows".into()))?;
        lines.push(OrderLine {
            product_id: product.id.clone(),
            sku: product.sku.clone(),
            name: product.name.clone(),
            unit_price_cents: product.price_cents,
            quantity: wanted.quantity,
            line_total_cents: line_total,
        });
    }
    Ok((lines, total))
}

// ------------------------------------------------------------------ idempotency

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product_body(v: Json) -> Result<NewProduct, ApiError> {
        serde_json::from_value::<NewProductBody>(v)
            .unwrap()
            .validate()
    }

    fn order_body(v: Json) -> Result<OrderRequest, ApiError> {
        serde_json::from_value::<PlaceOrderBody>(v)
            .unwrap()
            .validate()
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(e) => e.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    fn product(id: &str, price: i64, stock: i64) -> Product {
        Product {
            id: id.into(),
            sku: format!("sku-{id}"),
            name: format!("name {id}"),
            price_cents: price,
            stock,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn wanted(items: &[(&str, i64)]) -> OrderRequest {
        OrderRequest {
            items: items
                .iter()
                .map(|(id, q)| Wanted {
                    product_id: id.to_string(),
                    quantity: *q,
                })
                .collect(),
        }
    }

    #[test]
    fn valid_product_is_accepted_with_trimmed_name() {
        let p = product_body(
            json!({"sku":"A-1.b_2","name":"  Mug ","price_cents":0,"stock":1_000_000_000}),
        )
        .unwrap();
        assert_eq!(p.name, "Mug");
        assert_eq!(p.stock, MAX_STOCK);
    }

    #[test]
    fn every_bad_product_field_is_reported_at_once() {
        let err =
            product_body(json!({"sku":"a b","name":"","price_cents":1.5,"stock":-1})).unwrap_err();
        assert_eq!(fields(err), ["sku", "name", "price_cents", "stock"]);
    }

    #[test]
    fn missing_product_fields_are_required() {
        let err = product_body(json!({})).unwrap_err();
        assert_eq!(fields(err).len(), 4);
    }

    #[test]
    fn product_limits_are_inclusive() {
        assert!(product_body(json!({"sku":"x".repeat(64),"name":"n".repeat(200),"price_cents":MAX_PRICE_CENTS,"stock":0})).is_ok());
        let err = product_body(json!({"sku":"x".repeat(65),"name":"n".repeat(201),"price_cents":MAX_PRICE_CENTS + 1,"stock":MAX_STOCK + 1})).unwrap_err();
        assert_eq!(fields(err).len(), 4);
    }

    #[test]
    fn string_numbers_are_refused() {
        let err =
            product_body(json!({"sku":"s","name":"n","price_cents":"5","stock":"1"})).unwrap_err();
        assert_eq!(fields(err), ["price_cents", "stock"]);
    }

    #[test]
    fn empty_patch_is_refused() {
        let err = serde_json::from_value::<ProductPatchBody>(json!({}))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(fields(err), ["body"]);
    }

    #[test]
    fn patch_applies_only_present_fields() {
        let patch = serde_json::from_value::<ProductPatchBody>(json!({"stock": 7}))
            .unwrap()
            .validate()
            .unwrap();
        let p = patch.apply(&product("a", 100, 1), 42);
        assert_eq!((p.price_cents, p.stock, p.updated_at_ms), (100, 7, 42));
        assert_eq!(p.name, "name a");
    }

    #[test]
    fn order_needs_one_to_fifty_lines() {
        assert_eq!(
            fields(order_body(json!({"items": []})).unwrap_err()),
            ["items"]
        );
        assert_eq!(fields(order_body(json!({})).unwrap_err()), ["items"]);
        let many: Vec<Json> = (0..51)
            .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1}))
            .collect();
        assert_eq!(
            fields(order_body(json!({"items": many})).unwrap_err()),
            ["items"]
        );
    }

    #[test]
    fn order_line_errors_name_their_index() {
        let err = order_body(
            json!({"items":[{"product_id":"a","quantity":0},{"product_id":5,"quantity":1001}]}),
        )
        .unwrap_err();
        assert_eq!(
            fields(err),
            [
                "items[0].quantity",
                "items[1].product_id",
                "items[1].quantity"
            ]
        );
    }

    #[test]
    fn a_product_may_appear_only_once() {
        let err = order_body(
            json!({"items":[{"product_id":"a","quantity":1},{"product_id":"a","quantity":2}]}),
        )
        .unwrap_err();
        assert_eq!(fields(err), ["items[1].product_id"]);
    }

    #[test]
    fn totals_multiply_and_sum_and_copy_prices() {
        let (lines, total) = price_order(
            &wanted(&[("b", 3), ("a", 2)]),
            &[product("a", 250, 5), product("b", 1_000, 3)],
        )
        .unwrap();
        assert_eq!(total, 3 * 1_000 + 2 * 250);
        assert_eq!(lines[0].product_id, "b");
        assert_eq!(lines[0].line_total_cents, 3_000);
        assert_eq!(lines[1].unit_price_cents, 250);
        assert_eq!(lines[1].sku, "sku-a");
    }

    #[test]
    fn largest_order_total_does_not_overflow() {
        let items: Vec<(String, i64)> = (0..50)
            .map(|i| (format!("p{i:02}"), MAX_QUANTITY))
            .collect();
        let products: Vec<Product> = items
            .iter()
            .map(|(id, _)| product(id, MAX_PRICE_CENTS, MAX_STOCK))
            .collect();
        let request = OrderRequest {
            items: items
                .iter()
                .map(|(id, q)| Wanted {
                    product_id: id.clone(),
                    quantity: *q,
                })
                .collect(),
        };
        let (_, total) = price_order(&request, &products).unwrap();
        assert_eq!(total, 50 * MAX_QUANTITY * MAX_PRICE_CENTS);
    }

    #[test]
    fn unknown_product_is_named_before_any_shortfall() {
        let err = price_order(&wanted(&[("a", 99), ("zz", 1)]), &[product("a", 1, 1)]).unwrap_err();
        assert_eq!(
            err,
            ApiError::ProductNotFound {
                product_id: "zz".into()
            }
        );
    }

    #[test]
    fn shortfall_names_the_short_product() {
        let err = price_order(
            &wanted(&[("a", 1), ("b", 4)]),
            &[product("a", 1, 1), product("b", 1, 3)],
        )
        .unwrap_err();
        assert_eq!(
            err,
            ApiError::InsufficientStock {
                product_id: "b".into()
            }
        );
    }

    #[test]
    fn exact_stock_is_enough() {
        assert!(price_order(&wanted(&[("a", 3)]), &[product("a", 1, 3)]).is_ok());
    }

    #[test]
    fn fingerprint_ignores_line_order_but_not_quantities() {
        let a = wanted(&[("a", 1), ("b", 2)]).fingerprint();
        assert_eq!(a, wanted(&[("b", 2), ("a", 1)]).fingerprint());
        assert_ne!(a, wanted(&[("a", 1), ("b", 3)]).fingerprint());
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn idempotency_key_length_and_characters() {
        assert!(IdempotencyKey::from_header(None).unwrap().is_none());
        assert!(IdempotencyKey::from_header(Some(&"k".repeat(255)))
            .unwrap()
            .is_some());
        assert_eq!(
            IdempotencyKey::from_header(Some("")).unwrap_err().status(),
            400
        );
        assert!(IdempotencyKey::from_header(Some(&"k".repeat(256))).is_err());
        assert!(IdempotencyKey::from_header(Some("a\tb")).is_err());
    }

    fn stored(fp: &str, at: i64) -> StoredAnswer {
        StoredAnswer {
            fingerprint: fp.into(),
            status: 201,
            body: b"{}".to_vec(),
            order_id: Some("o".into()),
            created_at_ms: at,
        }
    }

    #[test]
    fn same_key_same_request_replays() {
        assert_eq!(
            decide_key(&stored("f", 0), "f", 1_000),
            Ok(KeyDecision::Replay)
        );
    }

    #[test]
    fn same_key_other_request_is_422() {
        assert_eq!(
            decide_key(&stored("f", 0), "g", 1_000),
            Err(ApiError::IdempotencyKeyReused)
        );
    }

    #[test]
    fn key_older_than_a_day_is_treated_as_new() {
        assert_eq!(
            decide_key(&stored("f", 0), "g", IDEMPOTENCY_TTL_MS),
            Ok(KeyDecision::Expired)
        );
        assert_eq!(
            decide_key(&stored("f", 0), "f", IDEMPOTENCY_TTL_MS - 1),
            Ok(KeyDecision::Replay)
        );
    }

    #[test]
    fn only_created_orders_can_be_cancelled() {
        assert_eq!(
            decide_cancel(&OrderStatus::Created),
            Ok(CancelDecision::Cancel)
        );
        assert_eq!(
            decide_cancel(&OrderStatus::Cancelled),
            Ok(CancelDecision::AlreadyCancelled)
        );
        assert_eq!(
            decide_cancel(&OrderStatus::parse("fulfilled"))
                .unwrap_err()
                .code(),
            "invalid_state"
        );
    }
}

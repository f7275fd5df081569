//! The catalogue: products, their JSON view, and checked inputs.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use shared::domain::FieldErrors;
use shared::error::{ApiError, FieldError};
use shared::time::rfc3339;

use super::*;

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

/// docs/API.md's Product JSON.
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
    pub sku: Sku,
    /// See [`Product::name`].
    pub name: String,
    /// See [`Product::price_cents`].
    pub price_cents: Cents,
    /// See [`Product::stock`].
    pub stock: Stock,
}

impl NewProductBody {
    /// Checks every field, reporting every bad one at once.
    pub fn validate(self) -> Result<NewProduct, ApiError> {
        let mut errors = FieldErrors::new();
        let sku = errors.check(required("sku", self.sku).and_then(|v| Sku::parse(&v)));
        let name = errors.check(required("name", self.name).and_then(|v| name(&v)));
        let price =
            errors.check(required("price_cents", self.price_cents).and_then(|v| Cents::parse(&v)));
        let stock = errors.check(required("stock", self.stock).and_then(|v| Stock::parse(&v)));
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
    pub price_cents: Option<Cents>,
    /// New absolute stock (a restock or a correction).
    pub stock: Option<Stock>,
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
            patch.price_cents = errors.check(Cents::parse(&v));
        }
        if let Some(v) = self.stock {
            patch.stock = errors.check(Stock::parse(&v));
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
            price_cents: self.price_cents.map_or(product.price_cents, Cents::get),
            stock: self.stock.map_or(product.stock, Stock::get),
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

/// A SKU: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, the product's
/// identity outside the API (unique, never changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// Parses the `sku` field.
    pub fn parse(value: &Json) -> Result<Self, FieldError> {
        let bad = || FieldError::new("sku", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        let s = value.as_str().ok_or_else(bad)?;
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(bad())
        }
    }

    /// The SKU as stored.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A price in integer cents, from 0 to [`MAX_PRICE_CENTS`] (docs/API.md: money is
/// integer minor units, never floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cents(i64);

impl Cents {
    /// Parses the `price_cents` field.
    pub fn parse(value: &Json) -> Result<Self, FieldError> {
        int_in("price_cents", value, 0, MAX_PRICE_CENTS).map(Self)
    }

    /// The amount.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A stock level, from 0 to [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock(i64);

impl Stock {
    /// Parses the `stock` field.
    pub fn parse(value: &Json) -> Result<Self, FieldError> {
        int_in("stock", value, 0, MAX_STOCK).map(Self)
    }

    /// The units in stock.
    pub fn get(self) -> i64 {
        self.0
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
pub(super) fn int_in(field: &str, value: &Json, min: i64, max: i64) -> Result<i64, FieldError> {
    match value.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

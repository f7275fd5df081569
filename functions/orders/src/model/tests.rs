//! The pure rules of products, orders and idempotency.

use serde_json::Value as Json;
use shared::error::ApiError;

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
                quantity: Quantity::try_from(*q).unwrap(),
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
    assert_eq!(p.stock.get(), MAX_STOCK);
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
    assert!(product_body(
        json!({"sku":"x".repeat(64),"name":"n".repeat(200),"price_cents":MAX_PRICE_CENTS,"stock":0})
    )
    .is_ok());
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
                quantity: Quantity::try_from(*q).unwrap(),
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

#[test]
fn lines_for_stock_already_taken_are_priced_without_a_stock_check() {
    // After the conditional update the rows hold what is left, here nothing.
    let (lines, total) = price_lines(&wanted(&[("a", 3)]), &[product("a", 7, 0)]).unwrap();
    assert_eq!((lines[0].line_total_cents, total), (21, 21));
    let err = price_lines(&wanted(&[("zz", 1)]), &[product("a", 7, 0)]).unwrap_err();
    assert_eq!(
        err,
        ApiError::ProductNotFound {
            product_id: "zz".into()
        }
    );
}

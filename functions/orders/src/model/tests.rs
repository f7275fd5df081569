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

mod properties {
    //! Property tests: arbitrary Unicode and arbitrary JSON through every
    //! parser of client input; accepted values keep the documented rules.

    use super::*;
    use proptest::prelude::*;
    use shared::testing::hostile_text;

    /// Any JSON value: every scalar kind (numbers near the limits too),
    /// hostile strings, and arrays and objects of them.
    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            (-3..MAX_QUANTITY + 3).prop_map(Json::from),
            prop::sample::select(vec![
                MAX_PRICE_CENTS,
                MAX_PRICE_CENTS + 1,
                MAX_STOCK,
                MAX_STOCK + 1,
                i64::MIN,
            ])
            .prop_map(Json::from),
            any::<u64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            hostile_text().prop_map(Json::from),
            "[A-Za-z0-9._-]{0,70}".prop_map(Json::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
                prop::collection::vec((hostile_text(), inner), 0..5)
                    .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// A JSON object with each of `fields` absent or any value, and now and
    /// then a key the body does not know.
    fn object_of(fields: &'static [&'static str]) -> impl Strategy<Value = Json> {
        (
            prop::collection::vec(prop::option::of(any_json()), fields.len()),
            prop::option::weighted(0.1, (hostile_text(), any_json())),
        )
            .prop_map(move |(values, extra)| {
                let mut object: serde_json::Map<String, Json> = fields
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect();
                if let Some((k, v)) = extra {
                    object.insert(k, v);
                }
                Json::Object(object)
            })
    }

    /// An order body: 0–60 lines whose ids come from a small pool (so
    /// repeats happen) or are any JSON, and whose quantities are any JSON.
    fn order_json() -> impl Strategy<Value = Json> {
        let id = prop_oneof![
            3 => prop::sample::select(vec!["a", "b", "c", "d", "p\u{e9}", "\u{1f980}"]).prop_map(Json::from),
            1 => any_json(),
        ];
        let quantity = prop_oneof![3 => (1..=MAX_QUANTITY).prop_map(Json::from), 1 => any_json()];
        let line = (
            prop::option::weighted(0.95, id),
            prop::option::weighted(0.95, quantity),
        )
            .prop_map(|(id, quantity)| {
                let mut line = serde_json::Map::new();
                if let Some(id) = id {
                    line.insert("product_id".into(), id);
                }
                if let Some(quantity) = quantity {
                    line.insert("quantity".into(), quantity);
                }
                Json::Object(line)
            });
        prop_oneof![
            8 => prop::collection::vec(line, 0..8).prop_map(|items| json!({ "items": items })),
            1 => (1..60usize).prop_map(|n| {
                let items: Vec<Json> = (0..n).map(|i| json!({"product_id": format!("p{i}"), "quantity": 1})).collect();
                json!({ "items": items })
            }),
            1 => any_json(),
        ]
    }

    fn is_sku(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    fn is_product_name(s: &str) -> bool {
        s.trim() == s
            && (1..=200).contains(&s.chars().count())
            && !s.chars().any(shared::domain::is_hidden_character)
    }

    /// A refusal of a body: 422 with one error per bad field, each named.
    fn is_field_refusal(e: &ApiError, known: &[&str]) -> bool {
        match e {
            ApiError::Validation(errors) => {
                !errors.is_empty()
                    && errors.iter().all(|f| {
                        known.iter().any(|k| {
                            f.field == *k
                                || (f.field.starts_with(&format!("{k}[")) && f.field.contains("]."))
                        })
                    })
            }
            _ => false,
        }
    }

    const PRODUCT_FIELDS: &[&str] = &["sku", "name", "price_cents", "stock"];
    const PATCH_FIELDS: &[&str] = &["name", "price_cents", "stock"];

    proptest! {
        #[test]
        fn any_text_body_is_parsed_or_refused_without_panicking(text in hostile_text()) {
            if let Ok(body) = serde_json::from_str::<NewProductBody>(&text) {
                let _ = body.validate();
            }
            if let Ok(body) = serde_json::from_str::<ProductPatchBody>(&text) {
                let _ = body.validate();
            }
            if let Ok(body) = serde_json::from_str::<PlaceOrderBody>(&text) {
                let _ = body.validate();
            }
        }

        #[test]
        fn an_accepted_product_keeps_the_documented_rules(body in object_of(&["sku", "name", "price_cents", "stock"])) {
            let Ok(parsed) = serde_json::from_value::<NewProductBody>(body) else {
                return Ok(());
            };
            match parsed.validate() {
                Ok(p) => {
                    let sku = p.sku.clone().into_inner();
                    prop_assert!(is_sku(&sku), "{:?}", sku);
                    prop_assert!(is_product_name(&p.name), "{:?}", p.name);
                    prop_assert!((0..=MAX_PRICE_CENTS).contains(&p.price_cents.get()));
                    prop_assert!((0..=MAX_STOCK).contains(&p.stock.get()));
                }
                Err(e) => prop_assert!(is_field_refusal(&e, PRODUCT_FIELDS), "{:?}", e),
            }
        }

        #[test]
        fn an_accepted_patch_keeps_the_documented_rules(body in object_of(&["name", "price_cents", "stock"])) {
            let Ok(parsed) = serde_json::from_value::<ProductPatchBody>(body) else {
                return Ok(());
            };
            match parsed.validate() {
                Ok(patch) => {
                    prop_assert_ne!(&patch, &ProductPatch::default());
                    if let Some(name) = &patch.name {
                        prop_assert!(is_product_name(name), "{:?}", name);
                    }
                    if let Some(price) = patch.price_cents {
                        prop_assert!((0..=MAX_PRICE_CENTS).contains(&price.get()));
                    }
                    if let Some(stock) = patch.stock {
                        prop_assert!((0..=MAX_STOCK).contains(&stock.get()));
                    }
                }
                Err(e) => prop_assert!(
                    is_field_refusal(&e, PATCH_FIELDS) || is_field_refusal(&e, &["body"]),
                    "{:?}", e
                ),
            }
        }

        #[test]
        fn an_accepted_name_is_accepted_again_unchanged(name in hostile_text()) {
            let patch = |name: &str| {
                serde_json::from_value::<ProductPatchBody>(json!({ "name": name }))
                    .map_err(|e| ApiError::InvalidBody(e.to_string()))
                    .and_then(ProductPatchBody::validate)
            };
            if let Ok(ProductPatch { name: Some(accepted), .. }) = patch(&name) {
                prop_assert_eq!(name.trim(), accepted.as_str());
                let again = patch(&accepted).map(|p| p.name);
                prop_assert_eq!(again, Ok(Some(accepted)));
            }
        }

        #[test]
        fn a_sku_is_accepted_exactly_when_it_follows_the_rule(
            text in prop_oneof![hostile_text(), "[A-Za-z0-9._-]{0,70}", "[ -~]{0,66}"],
        ) {
            match Sku::parse(&Json::from(text.as_str())) {
                Ok(sku) => {
                    prop_assert!(is_sku(&text), "{:?}", text);
                    prop_assert_eq!(sku.into_inner(), text);
                }
                Err(e) => {
                    prop_assert!(!is_sku(&text), "{:?}", text);
                    prop_assert_eq!(e.field, "sku");
                }
            }
        }

        #[test]
        fn a_sku_is_a_string(value in any_json()) {
            if Sku::parse(&value).is_ok() {
                prop_assert!(value.as_str().is_some_and(is_sku), "{:?}", value);
            }
        }

        #[test]
        fn a_quantity_is_an_integer_from_1_to_1000(value in any_json()) {
            match Quantity::parse("items[0].quantity", Some(&value)) {
                Ok(q) => {
                    prop_assert!((1..=MAX_QUANTITY).contains(&q.get()));
                    prop_assert_eq!(value.as_i64(), Some(q.get()));
                }
                Err(e) => {
                    prop_assert!(!value.as_i64().is_some_and(|n| (1..=MAX_QUANTITY).contains(&n)));
                    prop_assert_eq!(e.field, "items[0].quantity");
                }
            }
        }

        #[test]
        fn prices_and_stock_are_integers_within_their_limits(value in any_json()) {
            if let Ok(price) = Cents::parse(&value) {
                prop_assert_eq!(value.as_i64(), Some(price.get()));
                prop_assert!((0..=MAX_PRICE_CENTS).contains(&price.get()));
            }
            if let Ok(stock) = Stock::parse(&value) {
                prop_assert_eq!(value.as_i64(), Some(stock.get()));
                prop_assert!((0..=MAX_STOCK).contains(&stock.get()));
            }
        }

        #[test]
        fn an_accepted_order_keeps_the_documented_rules(body in order_json()) {
            let Ok(parsed) = serde_json::from_value::<PlaceOrderBody>(body) else {
                return Ok(());
            };
            match parsed.validate() {
                Ok(request) => {
                    prop_assert!((1..=MAX_LINES).contains(&request.items.len()));
                    let mut ids = request.product_ids_sorted();
                    ids.dedup();
                    prop_assert_eq!(ids.len(), request.items.len(), "a product twice");
                    for w in &request.items {
                        prop_assert!((1..=64).contains(&w.product_id.len()));
                        prop_assert!((1..=MAX_QUANTITY).contains(&w.quantity.get()));
                    }
                }
                Err(e) => prop_assert!(is_field_refusal(&e, &["items"]), "{:?}", e),
            }
        }

        #[test]
        fn the_fingerprint_ignores_line_order_only(body in order_json(), rotate in any::<prop::sample::Index>()) {
            let Ok(Ok(request)) = serde_json::from_value::<PlaceOrderBody>(body).map(PlaceOrderBody::validate) else {
                return Ok(());
            };
            let fingerprint = request.fingerprint();
            prop_assert_eq!(fingerprint.len(), 64);
            let mut items = request.items.clone();
            let by = rotate.index(items.len());
            items.rotate_left(by);
            prop_assert_eq!(OrderRequest { items: items.clone() }.fingerprint(), fingerprint.clone());
            items.reverse();
            prop_assert_eq!(OrderRequest { items: items.clone() }.fingerprint(), fingerprint.clone());
            items[0].quantity = Quantity::try_from(items[0].quantity.get() % MAX_QUANTITY + 1).unwrap();
            prop_assert_ne!(OrderRequest { items }.fingerprint(), fingerprint);
        }

        #[test]
        fn accepted_lines_are_priced_without_overflow(
            body in order_json(),
            prices in prop::collection::vec((0..=MAX_PRICE_CENTS, 0..=MAX_STOCK), 60),
        ) {
            let Ok(Ok(request)) = serde_json::from_value::<PlaceOrderBody>(body).map(PlaceOrderBody::validate) else {
                return Ok(());
            };
            let products: Vec<Product> = request
                .items
                .iter()
                .zip(&prices)
                .map(|(w, (price, stock))| Product {
                    price_cents: *price,
                    stock: *stock,
                    ..product(&w.product_id, 0, 0)
                })
                .collect();
            let (lines, total) = price_lines(&request, &products).unwrap();
            prop_assert_eq!(lines.iter().map(|l| l.line_total_cents).sum::<i64>(), total);
            for (line, wanted) in lines.iter().zip(&request.items) {
                prop_assert_eq!(&line.product_id, &wanted.product_id);
                prop_assert_eq!(line.line_total_cents, line.unit_price_cents * line.quantity);
            }
            match price_order(&request, &products) {
                Ok(priced) => prop_assert_eq!(priced, (lines, total)),
                Err(ApiError::InsufficientStock { product_id }) => prop_assert!(request
                    .items
                    .iter()
                    .zip(&products)
                    .any(|(w, p)| w.product_id == product_id && p.stock < w.quantity.get())),
                Err(e) => prop_assert!(false, "{:?}", e),
            }
        }

        #[test]
        fn an_idempotency_key_is_1_to_255_printable_ascii_characters(
            value in prop_oneof![hostile_text(), "[ -~]{0,260}", "[ -~]{250,260}"],
        ) {
            let rule = (1..=MAX_IDEMPOTENCY_KEY).contains(&value.len())
                && value.chars().all(|c| c == ' ' || c.is_ascii_graphic());
            match IdempotencyKey::from_header(Some(&value)) {
                Ok(key) => {
                    prop_assert!(rule, "{:?}", value);
                    prop_assert_eq!(key.map(|k| k.as_str().to_string()), Some(value));
                }
                Err(e) => {
                    prop_assert!(!rule, "{:?}", value);
                    prop_assert_eq!(e.status(), 400);
                }
            }
        }

        #[test]
        fn any_stored_status_reads_back_as_itself(text in hostile_text()) {
            let status = OrderStatus::parse(&text);
            prop_assert_eq!(status.as_str(), text.as_str());
            match decide_cancel(&status) {
                Ok(_) => prop_assert!(matches!(text.as_str(), "created" | "cancelled")),
                Err(e) => prop_assert_eq!(e.code(), "invalid_state"),
            }
        }

        #[test]
        fn an_event_payload_is_json_carrying_the_order(
            id in hostile_text(),
            order_id in hostile_text(),
            user_id in hostile_text(),
            status in hostile_text(),
            cancelled in any::<bool>(),
            now_ms in 0..253_402_300_799_000_i64,
        ) {
            let order = Order {
                id: order_id,
                user_id,
                status: OrderStatus::parse(&status),
                items: Vec::new(),
                total_cents: 0,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            };
            let event_type = if cancelled { EventType::Cancelled } else { EventType::Created };
            let event = OrderEvent::new(&id, event_type, &order, now_ms);
            let payload: Json = serde_json::from_str(&event.payload).unwrap();
            prop_assert_eq!(payload["id"].as_str(), Some(id.as_str()));
            prop_assert_eq!(payload["type"].as_str(), Some(event_type.as_str()));
            prop_assert_eq!(payload["data"]["order"]["id"].as_str(), Some(order.id.as_str()));
            prop_assert_eq!(payload["data"]["order"]["status"].as_str(), Some(status.as_str()));
            prop_assert_eq!(&event.order_id, &order.id);
        }
    }
}

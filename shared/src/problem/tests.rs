use super::*;

fn body(resp: &Response) -> serde_json::Value {
    serde_json::from_slice(&resp.body).unwrap()
}

#[test]
fn validation_problem_lists_every_field() {
    let err = ApiError::Validation(vec![
        FieldError::new("email", "bad"),
        FieldError::new("name", "empty"),
    ]);
    let resp = err.to_response("r1");
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.header("content-type"),
        Some("application/problem+json")
    );
    let b = body(&resp);
    assert_eq!(b["code"], "validation_failed");
    assert_eq!(b["request_id"], "r1");
    assert_eq!(b["errors"][1]["field"], "name");
}

#[test]
fn problems_are_never_cached() {
    let resp = ApiError::InvalidCredentials.to_response("r");
    assert_eq!(resp.header("cache-control"), Some("no-store"));
}

#[test]
fn internal_error_never_leaks_its_detail() {
    let resp = ApiError::Internal("SELECT secret FROM t".into()).to_response("r");
    assert_eq!(resp.status, 500);
    assert!(!String::from_utf8_lossy(&resp.body).contains("SELECT"));
}

#[test]
fn quota_exceeded_is_409_with_its_code() {
    let resp = ApiError::QuotaExceeded { quota: 10 }.to_response("r");
    assert_eq!(resp.status, 409);
    assert_eq!(body(&resp)["code"], "quota_exceeded");
}

#[test]
fn log_detail_never_carries_a_url_password() {
    let err = ApiError::Unavailable(
        "database: address mysql://root:hunter2@10.0.0.1:3306/app is not permitted".into(),
    );
    assert!(!err.log_detail().contains("hunter2"));
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn unavailable_sets_retry_after() {
    let resp = ApiError::Unavailable("db down".into()).to_response("r");
    assert_eq!(resp.status, 503);
    assert_eq!(body(&resp)["code"], "unavailable");
    assert!(resp.header("retry-after").is_some());
}

#[test]
fn invalid_token_sets_www_authenticate() {
    let resp = ApiError::InvalidToken.to_response("r");
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
}

#[test]
fn method_not_allowed_sets_allow() {
    let resp = ApiError::MethodNotAllowed {
        allow: "GET, POST".into(),
    }
    .to_response("r");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, POST"));
}

use crate::error::tests::any_error;
use proptest::prelude::*;

/// A valid HTTP field value as this API writes them: visible ASCII and
/// inner spaces, no leading or trailing whitespace (RFC 9110 §5.5).
fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) && value.trim() == value
}

/// A valid header name: an RFC 9110 token, lower-case here.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

proptest! {
    #[test]
    fn every_header_of_a_problem_is_a_valid_http_field(
        error in any_error(),
        request_id in "[A-Za-z0-9._-]{1,128}",
    ) {
        let response = error.to_response(&request_id);
        prop_assert_eq!(response.status, error.status());
        for (name, value) in &response.headers {
            prop_assert!(is_header_name(name), "{name:?}");
            prop_assert!(is_header_value(value), "{name}: {value:?}");
        }
        if let Some(retry_after) = response.header("retry-after") {
            // Delay-seconds: digits only.
            prop_assert!(retry_after.parse::<u64>().is_ok(), "{retry_after:?}");
        }
        if let ApiError::TooManyAttempts { retry_after_secs } = error {
            let expected = retry_after_secs.to_string();
            prop_assert_eq!(response.header("retry-after"), Some(expected.as_str()));
        }
    }

    #[test]
    fn problem_documents_of_any_error_are_json_with_its_code_and_detail(
        error in any_error(),
        request_id in "[A-Za-z0-9._-]{1,128}",
    ) {
        let response = error.to_response(&request_id);
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
        prop_assert_eq!(&body["status"], &serde_json::json!(error.status()));
        prop_assert_eq!(&body["code"], error.code());
        prop_assert_eq!(&body["request_id"], request_id.as_str());
        let detail = error.detail();
        prop_assert_eq!(&body["detail"], detail.as_str());
        match &error {
            ApiError::InvalidBody(text)
            | ApiError::BadRequest(text)
            | ApiError::InvalidState(text)
            | ApiError::UnsupportedMediaType(text) => {
                prop_assert_eq!(&body["detail"], text.as_str());
            }
            ApiError::Validation(errors) => {
                prop_assert_eq!(&body["errors"], &serde_json::to_value(errors).unwrap());
            }
            ApiError::ProductNotFound { product_id }
            | ApiError::InsufficientStock { product_id } => {
                prop_assert_eq!(&body["product_id"], product_id.as_str());
            }
            // 5xx details are logged, never sent.
            ApiError::Internal(text) | ApiError::Unavailable(text) => {
                let sent = body.to_string();
                prop_assert!(
                    text.chars().count() < 8
                        || *text == detail
                        || !sent.contains(&serde_json::to_string(text).unwrap()),
                    "{sent}"
                );
            }
            _ => prop_assert!(body.get("errors").is_none() && body.get("product_id").is_none()),
        }
    }
}

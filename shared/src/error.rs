//! The one error type of the API and its one mapping to HTTP.
//!
//! Every failure a handler can meet ends up as an [`ApiError`]; [`ApiError::to_response`]
//! turns it into an RFC 9457 problem document carrying API.md's stable `code`.
//! Nothing else in the project chooses a status code for an error.

use serde::Serialize;

use crate::http::Response;

/// One invalid input field, reported inside a `validation_failed` problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON field or query parameter at fault, e.g. `email` or `items[2].quantity`.
    pub field: String,
    /// What is wrong with it, for people.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` with a human-readable `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error an API route can answer, one variant per problem `code` of API.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400 `validation_failed`: one entry per bad field, all reported at once.
    Validation(Vec<FieldError>),
    /// 400 `invalid_body`: not JSON, not UTF-8, unknown or mistyped fields.
    InvalidBody(String),
    /// 400 `bad_request`: a malformed header or query that is not a field error.
    BadRequest(String),
    /// 401 `invalid_credentials`: wrong email/password or wrong `current_password`.
    InvalidCredentials,
    /// 401 `invalid_token`: missing, malformed, expired, mis-signed or revoked token.
    InvalidToken,
    /// 401 `refresh_token_reused`: an already-rotated refresh token came back.
    RefreshTokenReused,
    /// 403 `forbidden`: authenticated, but not allowed to do this.
    Forbidden,
    /// 404 `not_found`: no such resource (or not yours to know about).
    NotFound,
    /// 404 `product_not_found`: an order line names a product that does not exist.
    ProductNotFound {
        /// The id the client sent.
        product_id: String,
    },
    /// 405 `method_not_allowed`, with the methods the path does accept.
    MethodNotAllowed {
        /// Value of the `Allow` header, e.g. `GET, PATCH, DELETE`.
        allow: String,
    },
    /// 409 `email_taken`.
    EmailTaken,
    /// 409 `sku_taken`.
    SkuTaken,
    /// 409 `insufficient_stock`, naming the first product that is short.
    InsufficientStock {
        /// The product whose stock could not cover the order.
        product_id: String,
    },
    /// 409 `invalid_state`: the resource's state forbids the transition.
    InvalidState(String),
    /// 409 `quota_exceeded`: storing this would take the user's stored bytes
    /// past their quota.
    QuotaExceeded {
        /// The quota in bytes.
        quota: u64,
    },
    /// 413 `payload_too_large`.
    PayloadTooLarge {
        /// The limit in bytes that was exceeded.
        limit: u64,
    },
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType(String),
    /// 422 `idempotency_key_reused`: same key, different request.
    IdempotencyKeyReused,
    /// 429 `too_many_attempts`, with how long to wait.
    TooManyAttempts {
        /// Seconds until the lock lifts (the `Retry-After` value).
        retry_after_secs: u64,
    },
    /// 500 `internal_error`: a bug or an unexpected reply. The detail is logged, never sent.
    Internal(String),
    /// 503 `unavailable`: the database or the key-value store cannot be reached.
    /// The detail is logged, never sent.
    Unavailable(String),
}

/// Seconds a client is asked to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// The RFC 9457 body, as API.md shapes it.
#[derive(Serialize)]
struct Problem<'a> {
    status: u16,
    code: &'a str,
    title: &'a str,
    detail: String,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<&'a str>,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) | Self::InvalidBody(_) | Self::BadRequest(_) => 400,
            Self::InvalidCredentials | Self::InvalidToken | Self::RefreshTokenReused => 401,
            Self::Forbidden => 403,
            Self::NotFound | Self::ProductNotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::EmailTaken
            | Self::SkuTaken
            | Self::InsufficientStock { .. }
            | Self::InvalidState(_)
            | Self::QuotaExceeded { .. } => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::IdempotencyKeyReused => 422,
            Self::TooManyAttempts { .. } => 429,
            Self::Internal(_) => 500,
            Self::Unavailable(_) => 503,
        }
    }

    /// The stable `code` clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::InvalidBody(_) => "invalid_body",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::ProductNotFound { .. } => "product_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::EmailTaken => "email_taken",
            Self::SkuTaken => "sku_taken",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::InvalidState(_) => "invalid_state",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::Internal(_) => "internal_error",
            Self::Unavailable(_) => "unavailable",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Validation(_) => "The request has invalid fields",
            Self::InvalidBody(_) => "The request body is not acceptable JSON",
            Self::BadRequest(_) => "The request is malformed",
            Self::InvalidCredentials => "Invalid credentials",
            Self::InvalidToken => "Invalid or expired token",
            Self::RefreshTokenReused => "Refresh token already used",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::ProductNotFound { .. } => "Product not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::EmailTaken => "Email already registered",
            Self::SkuTaken => "SKU already exists",
            Self::InsufficientStock { .. } => "Insufficient stock",
            Self::InvalidState(_) => "Invalid state for this operation",
            Self::QuotaExceeded { .. } => "Upload quota exceeded",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::IdempotencyKeyReused => "Idempotency key reused with a different request",
            Self::TooManyAttempts { .. } => "Too many attempts",
            Self::Internal(_) => "Internal error",
            Self::Unavailable(_) => "Service unavailable",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(errors) => format!("{} field(s) are invalid", errors.len()),
            Self::InvalidBody(d) | Self::BadRequest(d) | Self::UnsupportedMediaType(d) => d.clone(),
            Self::InvalidState(d) => d.clone(),
            Self::InvalidCredentials => "The email or password is wrong.".into(),
            Self::InvalidToken => {
                "The bearer token is missing, invalid, expired or revoked.".into()
            }
            Self::RefreshTokenReused => {
                "This refresh token was already used; its session has been revoked.".into()
            }
            Self::Forbidden => "You are not allowed to do this.".into(),
            Self::NotFound => "No such resource.".into(),
            Self::ProductNotFound { product_id } => format!("Product {product_id} does not exist."),
            Self::MethodNotAllowed { allow } => format!("Allowed methods: {allow}."),
            Self::EmailTaken => "An account with this email already exists.".into(),
            Self::SkuTaken => "A product with this SKU already exists.".into(),
            Self::InsufficientStock { product_id } => {
                format!("Product {product_id} does not have enough stock.")
            }
            Self::QuotaExceeded { quota } => format!(
                "Storing this file would take your uploads past your quota of {quota} bytes; delete some first."
            ),
            Self::PayloadTooLarge { limit } => format!("The body exceeds {limit} bytes."),
            Self::IdempotencyKeyReused => {
                "This Idempotency-Key was used with a different request.".into()
            }
            Self::TooManyAttempts { retry_after_secs } => {
                format!("Try again in {retry_after_secs} seconds.")
            }
            // Internal details may hold SQL or host messages: they go to the log only.
            Self::Internal(_) => "An unexpected error occurred.".into(),
            Self::Unavailable(_) => "A backing service is unavailable; try again shortly.".into(),
        }
    }

    /// The text worth logging for this error (never sent to clients for 5xx),
    /// with every credential a host or driver message may quote removed
    /// ([`crate::redact::redact`]): log lines never carry a secret.
    pub fn log_detail(&self) -> String {
        match self {
            Self::Internal(d) | Self::Unavailable(d) => crate::redact::redact(d),
            other => other.detail(),
        }
    }

    /// The problem+json response for this error, stamped with the request id.
    pub fn to_response(&self, request_id: &str) -> Response {
        let (errors, product_id) = match self {
            Self::Validation(errors) => (Some(errors.as_slice()), None),
            Self::ProductNotFound { product_id } | Self::InsufficientStock { product_id } => {
                (None, Some(product_id.as_str()))
            }
            _ => (None, None),
        };
        let problem = Problem {
            status: self.status(),
            code: self.code(),
            title: self.title(),
            detail: self.detail(),
            request_id,
            errors,
            product_id,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        // An error depends on the caller's credentials and the moment (a lock,
        // an outage): no cache, shared or private, may keep it.
        let mut response = Response::new(self.status())
            .with_header("content-type", "application/problem+json")
            .with_header("cache-control", "no-store")
            .with_body(body);
        match self {
            Self::InvalidToken | Self::RefreshTokenReused => {
                response =
                    response.with_header("www-authenticate", "Bearer error=\"invalid_token\"");
            }
            Self::MethodNotAllowed { allow } => response = response.with_header("allow", allow),
            Self::TooManyAttempts { retry_after_secs } => {
                response = response.with_header("retry-after", &retry_after_secs.to_string());
            }
            Self::Unavailable(_) => {
                response =
                    response.with_header("retry-after", &UNAVAILABLE_RETRY_AFTER_SECS.to_string());
            }
            _ => {}
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.log_detail())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
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
}

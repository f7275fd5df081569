//! The one error type of the API and its one mapping to HTTP.
//!
//! Every failure a handler can meet ends up as an [`ApiError`]; [`ApiError::to_response`]
//! (in [`crate::problem`]) turns it into an RFC 9457 problem document carrying
//! docs/API.md's stable `code`.
//! Nothing else in the project chooses a status code for an error.

use serde::Serialize;

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

/// Every error an API route can answer, one variant per problem `code` of docs/API.md.
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

    pub(crate) fn title(&self) -> &'static str {
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

    pub(crate) fn detail(&self) -> String {
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
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.log_detail())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
pub(crate) mod tests;

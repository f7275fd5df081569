//! RFC 9457 problem documents: the one place an [`ApiError`] becomes an HTTP
//! response. Kept apart from [`crate::error`] so the error type does not
//! depend on the HTTP types (and [`crate::http`], which reports its parsing
//! failures as `ApiError`s, does not form a cycle with it).

use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::http::Response;

/// Seconds a client is asked to wait after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// The RFC 9457 body, as docs/API.md shapes it.
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

#[cfg(test)]
mod tests;

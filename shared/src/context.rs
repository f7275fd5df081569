//! The per-request context: request id, caller address, clock, and the one
//! place where a handler's result becomes the response that leaves the component.

use std::net::IpAddr;

use crate::error::ApiError;
use crate::http::{Method, Request, Response};

/// What every handler knows about the request besides its content.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's `X-Request-Id` when acceptable, else a fresh one.
    pub request_id: String,
    /// The TCP peer's address, from the `spin-client-addr` header Spin sets
    /// (its last value: a client may send its own copy first). Never taken
    /// from `X-Forwarded-For`, which any client can forge.
    pub client_ip: Option<IpAddr>,
    /// Milliseconds since the epoch when the request arrived (tests fix it).
    pub now_ms: i64,
    method: Method,
    path: String,
}

impl RequestContext {
    /// Builds the context from the request line and headers.
    pub fn new(request: &Request, now_ms: i64) -> Self {
        Self {
            request_id: request_id(request.header("x-request-id")),
            client_ip: request
                .last_header("spin-client-addr")
                .and_then(parse_client_addr),
            now_ms,
            method: request.method.clone(),
            path: request.path.clone(),
        }
    }

    /// Turns a handler's result into the final response: errors become problem
    /// documents, every response gets `X-Request-Id`, and one log line records
    /// the request with the same id (5xx lines carry the hidden detail).
    pub fn finish(&self, result: Result<Response, ApiError>) -> Response {
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                if err.status() >= 500 {
                    eprintln!(
                        "request_id={} {} {} error={}",
                        self.request_id,
                        self.method.as_str(),
                        self.path,
                        err.log_detail()
                    );
                }
                err.to_response(&self.request_id)
            }
        };
        eprintln!(
            "request_id={} {} {} status={}",
            self.request_id,
            self.method.as_str(),
            self.path,
            response.status
        );
        response.with_header("x-request-id", &self.request_id)
    }
}

/// The caller's request id when it is 1–128 chars of `[A-Za-z0-9._-]`
/// (anything else could inject into logs), otherwise a fresh random one.
pub fn request_id(candidate: Option<&str>) -> String {
    match candidate {
        Some(id)
            if (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            id.to_string()
        }
        _ => crate::id::random_bytes::<16>()
            .map(hex::encode)
            .unwrap_or_else(|_| "unknown".to_string()),
    }
}

fn parse_client_addr(value: &str) -> Option<IpAddr> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| value.parse::<IpAddr>())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptable_request_id_is_kept() {
        assert_eq!(request_id(Some("abc-1.2_3")), "abc-1.2_3");
    }

    #[test]
    fn unacceptable_request_id_is_replaced() {
        let id = request_id(Some("bad id\n"));
        assert_eq!(id.len(), 32);
        assert_ne!(request_id(Some(&"a".repeat(129))).len(), 129);
    }

    #[test]
    fn client_ip_comes_from_spin_client_addr() {
        let req = Request::new(Method::Get, "/").with_header("spin-client-addr", "10.1.2.3:5555");
        let ctx = RequestContext::new(&req, 0);
        assert_eq!(ctx.client_ip, Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn client_sent_spin_client_addr_is_ignored_in_favour_of_spins() {
        let req = Request::new(Method::Get, "/")
            .with_header("spin-client-addr", "1.1.1.1:1")
            .with_header("spin-client-addr", "10.1.2.3:5555");
        let ctx = RequestContext::new(&req, 0);
        assert_eq!(ctx.client_ip, Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn finish_stamps_request_id_on_errors_and_successes() {
        let req = Request::new(Method::Get, "/").with_header("x-request-id", "rid");
        let ctx = RequestContext::new(&req, 0);
        let ok = ctx.finish(Ok(Response::new(204)));
        assert_eq!(ok.header("x-request-id"), Some("rid"));
        let err = ctx.finish(Err(ApiError::NotFound));
        assert_eq!(err.header("x-request-id"), Some("rid"));
        assert_eq!(err.json_body()["request_id"], "rid");
    }
}

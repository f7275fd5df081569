//! The per-request context: request id, caller address, clock, and the one
//! place where a handler's result becomes the response that leaves the component.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::time::Instant;

use ipnet::IpNet;

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
    /// Every `X-Forwarded-For` entry, left to right; trusted only through
    /// [`RequestContext::client_address`] when the peer is a trusted proxy.
    forwarded_for: Vec<String>,
    method: Method,
    /// The component's name, for the log line (`"unknown"` in unit tests).
    component: &'static str,
    started: Instant,
    /// The route pattern that owned the path, once the router found one.
    route: Cell<Option<&'static str>>,
    /// The authenticated caller, once known.
    user_id: RefCell<Option<String>>,
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
            forwarded_for: request
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-for"))
                .flat_map(|(_, value)| value.split(','))
                .map(|entry| entry.trim().to_string())
                .collect(),
            method: request.method.clone(),
            component: "unknown",
            started: Instant::now(),
            route: Cell::new(None),
            user_id: RefCell::new(None),
        }
    }

    /// Names the component in the request's log line.
    pub fn for_component(mut self, component: &'static str) -> Self {
        self.component = component;
        self
    }

    /// Records the route pattern that owns the path (the router calls it).
    pub fn record_route(&self, template: &'static str) {
        self.route.set(Some(template));
    }

    /// Records the authenticated caller for the log line.
    pub fn record_user(&self, user_id: &str) {
        *self.user_id.borrow_mut() = Some(user_id.to_string());
    }

    /// The client's address: the TCP peer, unless the peer is one of the
    /// `trusted` proxies, in which case it is the right-most `X-Forwarded-For`
    /// entry that is not itself a trusted proxy. Entries to the left of that
    /// one were written by the client and are never believed; an entry that
    /// does not parse ends the walk at the last trusted hop.
    pub fn client_address(&self, trusted: &TrustedProxies) -> Option<IpAddr> {
        let mut client = self.client_ip.map(|ip| ip.to_canonical())?;
        for entry in self.forwarded_for.iter().rev() {
            if !trusted.contains(client) {
                break;
            }
            match parse_client_addr(entry) {
                Some(hop) => client = hop.to_canonical(),
                None => break,
            }
        }
        Some(client)
    }

    /// The client as the attempt limits count it: an IPv4 address, or the
    /// /64 network of an IPv6 one (one subscriber holds a whole /64 and can
    /// pick a fresh address per request), or `unknown` when no peer address
    /// was given (Spin always gives one).
    pub fn client_bucket(&self, trusted: &TrustedProxies) -> String {
        match self.client_address(trusted) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let segments = v6.segments();
                let mut network = [0u16; 8];
                network[..4].copy_from_slice(&segments[..4]);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
            None => "unknown".to_string(),
        }
    }

    /// Turns a handler's result into the final response: errors become problem
    /// documents, every response gets `X-Request-Id`, and the request's one
    /// log line ([`crate::log`]) records it with the same id.
    pub fn finish(&self, result: Result<Response, ApiError>) -> Response {
        let (response, line) = self.conclude(result, crate::time::now_ms());
        line.emit();
        response
    }

    /// The response and the log line for `result`, at `now_ms`.
    fn conclude(
        &self,
        result: Result<Response, ApiError>,
        now_ms: i64,
    ) -> (Response, crate::log::RequestLine<'_>) {
        let (response, code, cause) = match result {
            Ok(response) => (response, None, None),
            Err(err) => {
                let cause = (err.status() >= 500).then(|| err.log_detail());
                (err.to_response(&self.request_id), Some(err.code()), cause)
            }
        };
        let warnings = crate::log::take_warnings();
        let error = match cause {
            Some(cause) => Some(cause),
            // A handler that answers 5xx itself (health) leaves its cause
            // as warnings.
            None if response.status >= 500 && !warnings.is_empty() => Some(warnings.join("; ")),
            None => None,
        };
        let line = crate::log::RequestLine {
            time: crate::time::rfc3339(now_ms),
            level: if response.status >= 500 {
                "error"
            } else {
                "info"
            },
            request_id: &self.request_id,
            component: self.component,
            method: self.method.as_str(),
            route: self.route.get(),
            status: response.status,
            duration_ms: (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            user_id: self.user_id.borrow().clone(),
            code,
            error,
            warnings,
        };
        (response.with_header("x-request-id", &self.request_id), line)
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

/// The proxies whose `X-Forwarded-For` is believed: the `trusted_proxies`
/// Spin variable, comma-separated CIDRs (or single addresses), empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the variable; a malformed entry is a configuration error (500,
    /// logged) rather than silently trusting nobody or everybody.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ApiError::Internal(format!(
                            "configuration: trusted_proxies entry {entry:?} is not a CIDR"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when `ip` lies in one of the trusted networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
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
mod tests;

//! HTTP routing with Spin's semantics (`crates/routes` in Spin 4.0.2): the
//! same `routefinder` crate, the same route normalisation, the same
//! trailing-wildcard capture and the same request headers.

use std::net::SocketAddr;

use anyhow::anyhow;

/// What a route leads to.
#[derive(Debug, Clone)]
struct RouteHandler {
    component: String,
    /// The route with the base (`/`) applied and a trailing `/` removed.
    based_route: String,
    /// The route exactly as written in the manifest.
    raw_route: String,
}

/// The application's router.
#[derive(Debug)]
pub struct Router {
    inner: routefinder::Router<RouteHandler>,
}

/// A successful match of a request path.
#[derive(Debug)]
pub struct RouteMatch<'r> {
    handler: &'r RouteHandler,
    named: Vec<(String, String)>,
    trailing: String,
}

impl Router {
    /// Builds the router from `(route, component)` pairs in manifest order.
    /// A duplicated route keeps the last entry and is logged, as Spin does.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> anyhow::Result<Self> {
        // Keyed by raw route, preserving first-seen order, last value wins.
        let mut entries: Vec<(String, String)> = Vec::new();
        for (route, component) in routes {
            if let Some(existing) = entries.iter_mut().find(|(r, _)| r == route) {
                tracing::error!(
                    "duplicate route {route}: {} will never be used (duplicate of {component})",
                    existing.1
                );
                existing.1 = component.to_owned();
            } else {
                entries.push((route.to_owned(), component.to_owned()));
            }
        }
        let mut inner = routefinder::Router::new();
        for (raw_route, component) in entries {
            let based_route = sanitize_with_base("/", &raw_route);
            let spec = match based_route.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => based_route.clone(),
            };
            let handler = RouteHandler {
                component: component.clone(),
                based_route: based_route.clone(),
                raw_route,
            };
            inner.add(spec.as_str(), handler).map_err(|e| {
                anyhow!(
                    "Error parsing route {based_route} associated with component {component}: {e}"
                )
            })?;
        }
        Ok(Self { inner })
    }

    /// Finds the component for `path`: exact routes beat wildcards, the
    /// longest wildcard prefix wins (routefinder's ordering).
    pub fn route<'r>(&'r self, path: &str) -> Option<RouteMatch<'r>> {
        let m = self.inner.best_match(path)?;
        let captures = m.captures();
        let named = captures
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // Spin keeps the trailing slash that routefinder drops.
        let trailing = match captures.wildcard() {
            None => String::new(),
            Some(s) => match (s.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            },
        };
        Some(RouteMatch {
            handler: m.handler(),
            named,
            trailing,
        })
    }

    /// `(route, component)` pairs, for the start-up log.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .iter()
            .map(|(_, h)| (h.raw_route.as_str(), h.component.as_str()))
    }
}

/// The names of the headers Spin sets; a client's copies are removed.
pub const SPIN_HEADERS: [&str; 7] = [
    "spin-full-url",
    "spin-path-info",
    "spin-matched-route",
    "spin-base-path",
    "spin-raw-component-route",
    "spin-component-route",
    "spin-client-addr",
];

/// Prefix of the per-named-wildcard headers.
pub const PATH_MATCH_PREFIX: &str = "spin-path-match-";

impl RouteMatch<'_> {
    /// The component id.
    pub fn component(&self) -> &str {
        &self.handler.component
    }

    /// The route as written in the manifest.
    pub fn raw_route(&self) -> &str {
        &self.handler.raw_route
    }

    /// The headers Spin 4.0.2 adds (`compute_default_headers`), in its order.
    /// `host` is the request's `Host` (Spin uses `localhost` when absent) and
    /// `path_and_query` the request target.
    pub fn spin_headers(
        &self,
        host: &str,
        path_and_query: &str,
        client: SocketAddr,
    ) -> Vec<(String, String)> {
        let raw = &self.handler.raw_route;
        let mut headers = vec![
            ("spin-path-info".to_owned(), self.trailing.clone()),
            (
                "spin-full-url".to_owned(),
                format!("http://{host}{path_and_query}"),
            ),
            (
                "spin-matched-route".to_owned(),
                self.handler.based_route.clone(),
            ),
            ("spin-base-path".to_owned(), "/".to_owned()),
            ("spin-raw-component-route".to_owned(), raw.clone()),
            (
                "spin-component-route".to_owned(),
                raw.strip_suffix("/...").unwrap_or(raw).to_owned(),
            ),
            ("spin-client-addr".to_owned(), client.to_string()),
        ];
        for (name, value) in &self.named {
            // SPIN_PATH_MATCH_<NAME> with `_` turned into `-`, lower-cased.
            let key = format!("{PATH_MATCH_PREFIX}{}", name.to_ascii_lowercase()).replace('_', "-");
            headers.push((key, value.clone()));
        }
        headers
    }
}

fn sanitize_with_base(base: &str, path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{}{}", strip_one_slash(base), strip_one_slash(&path))
}

fn strip_one_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

#[cfg(test)]
mod tests;

//! Path routing with docs/API.md's 404 and 405 behaviour.
//!
//! Routes are patterns of literal segments and `:name` parameters. When several
//! patterns match a path, the most specific one owns it (a literal segment beats
//! a parameter at the first position where they differ), so `/users/me` is never
//! taken for `/users/:id`. A path whose pattern has no route for this method
//! answers 405 with that pattern's `Allow`; a path matching none answers 404.
//! (The SDK's router answers both with an empty body and no `Allow`, and
//! cannot run in native unit tests, hence this small one.)
//!
//! Why not `routefinder`, which Spin and the test host use to pick the
//! component: within a component we need the set of methods a path allows (for
//! `Allow`) and literal-over-parameter ownership per segment, neither of which
//! it offers; wrapping it would keep this file's logic and add a dependency
//! to every component's wasm.

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::http::Method;

/// Captured `:name` segments of a matched route.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The captured value of `:name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A table of `(method, pattern) → route` entries; `R` is usually a small enum.
#[derive(Debug)]
pub struct Router<R> {
    routes: Vec<(Method, &'static str, R)>,
}

impl<R: Copy> Default for Router<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Copy> Router<R> {
    /// An empty table.
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Adds a route (builder style).
    pub fn route(mut self, method: Method, pattern: &'static str, route: R) -> Self {
        self.routes.push((method, pattern, route));
        self
    }

    /// Finds the route for `method` and `path`, or the 404/405 error, and
    /// records in `ctx` the pattern that owns the path (for the request's
    /// log line: the template, never the raw path with its ids).
    pub fn dispatch(
        &self,
        ctx: &RequestContext,
        method: &Method,
        path: &str,
    ) -> Result<(R, Params), ApiError> {
        let owner = self.owner(path).ok_or(ApiError::NotFound)?;
        ctx.record_route(owner);
        self.find_owned(owner, method, path)
    }

    /// Finds the route for `method` and `path`, or the 404/405 error.
    /// `HEAD` falls back to a `GET` route, as HTTP expects.
    pub fn find(&self, method: &Method, path: &str) -> Result<(R, Params), ApiError> {
        let owner = self.owner(path).ok_or(ApiError::NotFound)?;
        self.find_owned(owner, method, path)
    }

    /// The most specific pattern matching `path`, whatever the method.
    fn owner(&self, path: &str) -> Option<&'static str> {
        self.routes
            .iter()
            .filter_map(|(_, pattern, _)| match_pattern(pattern, path).map(|_| *pattern))
            .max_by(|a, b| specificity(a).cmp(&specificity(b)))
    }

    fn find_owned(
        &self,
        owner: &'static str,
        method: &Method,
        path: &str,
    ) -> Result<(R, Params), ApiError> {
        let mut allowed: Vec<&str> = Vec::new();
        for (m, pattern, route) in self.routes.iter().filter(|(_, p, _)| *p == owner) {
            if m == method || (*method == Method::Head && *m == Method::Get) {
                let params = match_pattern(pattern, path).unwrap_or_default();
                return Ok((*route, params));
            }
            if !allowed.contains(&m.as_str()) {
                allowed.push(m.as_str());
            }
        }
        Err(ApiError::MethodNotAllowed {
            allow: allowed.join(", "),
        })
    }
}

/// Orders patterns so that, segment by segment, a literal outranks a parameter.
fn specificity(pattern: &str) -> Vec<bool> {
    pattern.split('/').map(|s| !s.starts_with(':')).collect()
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<Params> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(Params(params)),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix(':') {
                    if s.is_empty() {
                        return None;
                    }
                    params.push((name, s.to_string()));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;

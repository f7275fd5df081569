//! The one log line each request leaves: a JSON object on stdout, written by
//! [`crate::context::RequestContext::finish`] and nowhere else.
//!
//! ```json
//! {"time":"2026-11-22T10:00:00.123Z","level":"info","request_id":"4f…",
//!  "component":"orders","method":"GET","route":"/api/v1/products/:id",
//!  "status":200,"duration_ms":1.732,"user_id":"8c…"}
//! ```
//!
//! `route` is the pattern that owned the path (`null` when none did), so
//! ids never reach a log index as labels. A 5xx line carries `error`, the
//! internal cause, after [`crate::redact`]; an error answer carries its
//! docs/API.md `code`. Problems that did not fail the request (a cache write
//! refused, a counter not reset) are collected with [`warn`] and ride on the
//! same line as `warnings`, so a request is never spread over several lines.
//!
//! Why stdout: Spin writes a component's stdout to its log (and to
//! `--log-dir`), which is what log shippers collect on every platform.

use std::cell::RefCell;
use std::io::Write as _;

use serde::Serialize;

/// The most warnings one line keeps; more only bloat the log.
const MAX_WARNINGS: usize = 8;

thread_local! {
    // One instance serves one request (as on Spin), so the instance's only
    // thread holds exactly this request's warnings.
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records, for this request's log line, a problem the request survived.
/// The message is redacted here, so callers may pass a storage error as is.
pub fn warn(message: impl AsRef<str>) {
    let message = crate::redact::redact(message.as_ref());
    WARNINGS.with(|w| {
        let mut w = w.borrow_mut();
        if w.len() < MAX_WARNINGS {
            w.push(message);
        }
    });
}

/// Takes the warnings recorded since the last call.
pub(crate) fn take_warnings() -> Vec<String> {
    WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

/// One request's log line; see the module documentation for its fields.
#[derive(Debug, Serialize)]
pub(crate) struct RequestLine<'a> {
    pub time: String,
    pub level: &'static str,
    pub request_id: &'a str,
    pub component: &'a str,
    pub method: &'a str,
    pub route: Option<&'a str>,
    pub status: u16,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl RequestLine<'_> {
    /// The line as one JSON object, without the newline.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"level":"error","request_id":"{}","error":"log line not serialisable"}}"#,
                self.request_id
            )
        })
    }

    /// Writes the line to stdout. A closed stdout loses the line, never the
    /// response (`println!` would panic).
    pub fn emit(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.render());
        let _ = out.flush();
    }
}

/// The one line a triggered run (not an HTTP request) leaves, e.g. a Redis
/// message: the same `time`, `level`, `request_id` (fresh, to join it with
/// traces), `component` and `duration_ms` as a request's line, with
/// `trigger` instead of the HTTP fields, and what the run reports.
pub fn triggered(
    component: &str,
    trigger: &str,
    started_ms: i64,
    outcome: Result<serde_json::Value, String>,
) {
    let line = triggered_line(
        component,
        trigger,
        started_ms,
        crate::time::now_ms(),
        outcome,
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn triggered_line(
    component: &str,
    trigger: &str,
    started_ms: i64,
    now: i64,
    outcome: Result<serde_json::Value, String>,
) -> serde_json::Value {
    let warnings = take_warnings();
    let (level, result, error) = match outcome {
        Ok(result) => ("info", Some(result), None),
        Err(e) => ("error", None, Some(crate::redact::redact(&e))),
    };
    serde_json::json!({
        "time": crate::time::rfc3339(now),
        "level": level,
        "request_id": crate::context::request_id(None),
        "component": component,
        "trigger": trigger,
        "duration_ms": now - started_ms,
        "result": result,
        "error": error,
        "warnings": warnings,
    })
}

#[cfg(test)]
mod tests;

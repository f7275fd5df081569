//! The Spin entry point: no variables, stores or outbound hosts, just the document.

use crate::app;

/// The route takes no body; anything bigger than this is refused with 413.
const BODY_LIMIT: usize = 1024;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    shared::spin::serve(env!("CARGO_PKG_NAME"), req, BODY_LIMIT, app::handle).await
}

//! The Spin entry point: no variables, stores or outbound hosts; the document,
//! and the page's files from the component's Spin `files` mount.

use std::path::Path;

use crate::app;

/// The route takes no body; anything bigger than this is refused with 413.
const BODY_LIMIT: usize = 1024;

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    shared::spin::serve(env!("CARGO_PKG_NAME"), req, BODY_LIMIT, |ctx, req| {
        app::handle(ctx, req, Path::new(app::MOUNTED_FILES))
    })
    .await
}

//! The Spin entry point: Spin variables into [`crate::app::Config`], Spin's
//! key-value store and MySQL behind the ports, then [`crate::app::handle`].

use shared::http::MAX_JSON_BODY;
use shared::spin::{
    numeric_variable, optional_variable, serve, token_config, variable, SpinKv, SpinSql,
};
use shared::users::MySqlUsers;
use shared::ApiError;

use crate::app::{self, BootstrapAdmin, Config};
use crate::limiter::Limits;

fn config() -> Result<Config, ApiError> {
    let defaults = Limits::default();
    let refresh_ttl_secs: i64 = numeric_variable("refresh_token_ttl_secs", 1_209_600)?;
    if refresh_ttl_secs <= 0 {
        return Err(ApiError::Internal(
            "configuration: refresh_token_ttl_secs must be positive".into(),
        ));
    }
    Ok(Config {
        tokens: token_config()?,
        refresh_ttl_secs,
        limits: Limits {
            per_account: numeric_variable("login_max_failures_per_account", defaults.per_account)?,
            per_address: numeric_variable("login_max_failures_per_address", defaults.per_address)?,
            window_secs: numeric_variable("login_lock_window_secs", defaults.window_secs)?,
        }
        .checked()?,
        admin: BootstrapAdmin::from_variables(
            &optional_variable("admin_email").unwrap_or_default(),
            &optional_variable("admin_password").unwrap_or_default(),
        )?,
    })
}

#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest) -> spin_sdk::http::Response {
    serve(req, MAX_JSON_BODY, |ctx, req| {
        let config = config()?;
        // Both open lazily: a locked-out login never connects to MySQL.
        let kv = SpinKv::new("default");
        let sql = SpinSql::new(variable("db_url")?);
        app::handle(ctx, req, &config, &kv, &MySqlUsers::new(&sql))
    })
    .await
}

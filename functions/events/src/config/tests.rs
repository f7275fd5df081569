//! `Config::from_vars`: no webhook without a URL, a webhook only with an
//! http(s) URL and Standard Webhooks keys, and any variables read safely.

use super::*;
use proptest::prelude::*;
use shared::testing::{config_lookup, config_variables, is_configuration_error, ConfigVariables};

fn config(pairs: &[(&str, &str)]) -> Result<Config, ApiError> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("jwt_secret".to_string(), "s".repeat(32))])
        .collect();
    let get = move |n: &str| owned.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    Config::from_vars(&Vars::new(&get))
}

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn no_webhook_url_means_no_deliveries() {
    let c = config(&[]).unwrap();
    assert_eq!(c.webhook, None);
    assert_eq!(c.max_attempts, 15);
}

#[test]
fn a_webhook_needs_a_long_enough_secret_and_an_http_url() {
    assert!(config(&[("webhook_url", "https://hooks.test/x")]).is_err());
    assert!(config(&[
        ("webhook_url", "https://hooks.test/x"),
        ("webhook_secret", "short")
    ])
    .is_err());
    assert!(config(&[
        ("webhook_url", "ftp://hooks.test/x"),
        ("webhook_secret", KEY)
    ])
    .is_err());
    assert!(
        config(&[
            ("webhook_url", "https://hooks.test/x"),
            ("webhook_secret", "a-long-enough-secret-but-not-base64")
        ])
        .is_err(),
        "Standard Webhooks keys are base64"
    );
    let c = config(&[
        ("webhook_url", "https://hooks.test/x"),
        ("webhook_secret", KEY),
    ])
    .unwrap();
    assert_eq!(c.webhook.unwrap().url, "https://hooks.test/x");
}

#[test]
fn a_webhook_url_is_trimmed_and_needs_a_host() {
    for bad in ["https://", "http:///x", "https://hooks.test/a b"] {
        assert!(
            config(&[("webhook_url", bad), ("webhook_secret", KEY)]).is_err(),
            "{bad:?}"
        );
    }
    let c = config(&[
        ("webhook_url", " https://hooks.test/x\n"),
        ("webhook_secret", KEY),
    ])
    .unwrap();
    assert_eq!(c.webhook.unwrap().url, "https://hooks.test/x");
}

/// Every variable the component reads.
const NAMES: [&str; 7] = [
    "jwt_secret",
    "jwt_issuer",
    "jwt_audience",
    "access_token_ttl_secs",
    "webhook_url",
    "webhook_secret",
    "webhook_max_attempts",
];

/// Settings this component's variables take, besides numbers and secrets.
const PLAUSIBLE: &[&str] = &[
    "61",
    "10.0.0.0/8, ::1",
    " Root@Example.com ",
    "a-long-enough-password",
    "https://hooks.example.com/x",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
];

fn any_variables() -> impl Strategy<Value = ConfigVariables> {
    config_variables(&NAMES, PLAUSIBLE)
}

proptest! {
    #[test]
    fn any_variables_give_a_config_or_a_configuration_error(vars in any_variables()) {
        let get = config_lookup(&vars);
        if let Err(e) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(is_configuration_error(&e), "{:?}", e);
        }
    }

    #[test]
    fn an_accepted_webhook_is_an_http_url_with_a_long_secret(vars in any_variables()) {
        let get = config_lookup(&vars);
        if let Ok(config) = Config::from_vars(&Vars::new(&get)) {
            prop_assert!(config.max_attempts >= 1);
            if let Some(webhook) = &config.webhook {
                prop_assert!(
                    webhook.url.starts_with("https://") || webhook.url.starts_with("http://"),
                    "{:?}", webhook.url
                );
                prop_assert!(!webhook.keys.is_empty());
            }
        }
    }
}

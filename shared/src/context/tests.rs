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

fn forwarded(peer: &str, xff: &str) -> RequestContext {
    let req = Request::new(Method::Get, "/")
        .with_header("x-forwarded-for", xff)
        .with_header("spin-client-addr", peer);
    RequestContext::new(&req, 0)
}

#[test]
fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    let ctx = forwarded("203.0.113.9:1", "198.51.100.7");
    let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
    assert_eq!(
        ctx.client_address(&trusted),
        Some("203.0.113.9".parse().unwrap())
    );
}

#[test]
fn right_most_untrusted_forwarded_entry_is_the_client_behind_trusted_proxies() {
    let ctx = forwarded("10.0.0.2:1", "6.6.6.6, 198.51.100.7, 10.0.0.1");
    let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
    assert_eq!(
        ctx.client_address(&trusted),
        Some("198.51.100.7".parse().unwrap())
    );
}

#[test]
fn no_trusted_proxies_means_the_peer_is_the_client() {
    let ctx = forwarded("10.0.0.2:1", "198.51.100.7");
    assert_eq!(
        ctx.client_address(&TrustedProxies::default()),
        Some("10.0.0.2".parse().unwrap())
    );
}

#[test]
fn ipv6_clients_are_counted_per_64() {
    let a = forwarded("[2001:db8:1:2:aaaa::1]:1", "");
    let b = forwarded("[2001:db8:1:2:bbbb::9]:1", "");
    let none = TrustedProxies::default();
    assert_eq!(a.client_bucket(&none), "2001:db8:1:2::/64");
    assert_eq!(a.client_bucket(&none), b.client_bucket(&none));
    assert_eq!(forwarded("1.2.3.4:5", "").client_bucket(&none), "1.2.3.4");
}

#[test]
fn malformed_trusted_proxies_is_a_configuration_error() {
    assert!(TrustedProxies::parse("10.0.0.0/8, nonsense").is_err());
    assert_eq!(
        TrustedProxies::parse(" 127.0.0.1 , ::1/128 ")
            .unwrap()
            .0
            .len(),
        2
    );
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

fn logged(ctx: &RequestContext, result: Result<Response, ApiError>) -> serde_json::Value {
    let (_, line) = ctx.conclude(result, 1_800_000_000_000);
    serde_json::from_str(&line.render()).unwrap()
}

#[test]
fn log_line_names_the_route_template_and_never_the_path() {
    let req = Request::new(Method::Get, "/api/v1/products/0123abcd");
    let ctx = RequestContext::new(&req, 0).for_component("orders");
    crate::router::Router::new()
        .route(Method::Get, "/api/v1/products/:id", ())
        .dispatch(&ctx, &req.method, &req.path)
        .unwrap();
    ctx.record_user("u-1");
    let line = logged(&ctx, Ok(Response::new(200)));
    assert_eq!(line["route"], "/api/v1/products/:id");
    assert_eq!(line["component"], "orders");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["status"], 200);
    assert_eq!(line["level"], "info");
    assert_eq!(line["user_id"], "u-1");
    assert_eq!(line["time"], "2027-01-15T08:00:00.000Z");
    assert_eq!(line["request_id"], ctx.request_id.as_str());
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(line.get("error").is_none() && line.get("code").is_none());
    assert!(!line.to_string().contains("0123abcd"));
}

#[test]
fn log_line_of_an_unrouted_path_has_a_null_route() {
    let req = Request::new(Method::Get, "/nowhere/secret-id");
    let ctx = RequestContext::new(&req, 0);
    let line = logged(&ctx, Err(ApiError::NotFound));
    assert!(line["route"].is_null());
    assert_eq!(line["status"], 404);
    assert_eq!(line["code"], "not_found");
    assert!(line.get("error").is_none());
}

#[test]
fn log_line_of_a_5xx_carries_the_redacted_cause() {
    let ctx = RequestContext::new(&Request::new(Method::Get, "/"), 0);
    let err = ApiError::Unavailable(
        "connection-failed: mysql://app:hunter2@db.internal/shop refused".into(),
    );
    let line = logged(&ctx, Err(err));
    assert_eq!(line["level"], "error");
    assert_eq!(line["status"], 503);
    let cause = line["error"].as_str().unwrap();
    assert!(cause.contains("connection-failed"), "{cause}");
    assert!(!line.to_string().contains("hunter2"), "{line}");
}

#[test]
fn warnings_of_a_self_made_5xx_become_its_cause() {
    let ctx = RequestContext::new(&Request::new(Method::Get, "/"), 0);
    crate::log::warn("health: database: timed out");
    let line = logged(&ctx, Ok(Response::new(503)));
    assert_eq!(line["error"], "health: database: timed out");
    assert_eq!(line["warnings"][0], "health: database: timed out");
}

use crate::testing::hostile_text;
use proptest::prelude::*;

fn is_acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.chars().count())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An address as a header may carry it: IPv4 or IPv6, with or without a
/// port (IPv6 with a port in brackets), or hostile text.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
        any::<std::net::SocketAddr>().prop_map(|a| a.to_string()),
        // Addresses inside the trusted network of the tests below.
        (0u8..=255, any::<u16>()).prop_map(|(last, port)| format!("10.0.0.{last}:{port}")),
        (0u8..=255).prop_map(|last| format!("10.9.9.{last}")),
        hostile_text(),
    ]
}

/// An `X-Forwarded-For` value: addresses and junk, comma-separated,
/// with stray spaces.
fn forwarded_for() -> impl Strategy<Value = String> {
    prop::collection::vec((address(), " {0,2}", " {0,2}"), 0..6).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(a, before, after)| format!("{before}{a}{after}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

proptest! {
    #[test]
    fn request_ids_are_kept_only_when_acceptable_and_always_come_out_acceptable(
        candidate in prop::option::of(prop_oneof![
            hostile_text(),
            "[A-Za-z0-9._-]{0,130}",
            "[A-Za-z0-9._\\-é]{1,130}",
        ])
    ) {
        let id = request_id(candidate.as_deref());
        prop_assert!(is_acceptable_request_id(&id), "{id:?}");
        match candidate.as_deref() {
            Some(c) if is_acceptable_request_id(c) => prop_assert_eq!(id.as_str(), c),
            // A fresh id: 32 hex characters.
            _ => prop_assert!(crate::id::is_valid_id(&id), "{id:?}"),
        }
    }

    #[test]
    fn the_client_ip_is_what_spin_client_addr_names_or_none(
        header in address(),
        forged in prop::option::of(address()),
    ) {
        let mut request = Request::new(Method::Get, "/");
        if let Some(forged) = &forged {
            request = request.with_header("spin-client-addr", forged);
        }
        let request = request.with_header("Spin-Client-Addr", &header);
        let ctx = RequestContext::new(&request, 0);
        let expected = header
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| header.parse::<IpAddr>())
            .ok();
        prop_assert_eq!(ctx.client_ip, expected);
    }

    #[test]
    fn forwarded_for_never_moves_the_client_away_from_an_untrusted_peer(
        peer in address(),
        xff in prop::collection::vec(forwarded_for(), 0..3),
        trusted in prop_oneof![Just(""), Just("10.0.0.0/8"), Just("0.0.0.0/0, ::/0")],
    ) {
        let trusted = TrustedProxies::parse(trusted).unwrap();
        let mut request = Request::new(Method::Get, "/");
        for value in &xff {
            request = request.with_header("X-Forwarded-For", value);
        }
        let ctx = RequestContext::new(&request.with_header("spin-client-addr", &peer), 0);
        let client = ctx.client_address(&trusted);
        let bucket = ctx.client_bucket(&trusted);
        let peer_ip = ctx.client_ip.map(|ip| ip.to_canonical());
        match (peer_ip, client) {
            (None, None) => prop_assert_eq!(bucket, "unknown"),
            (Some(peer_ip), Some(client)) => {
                if !trusted.contains(peer_ip) {
                    prop_assert_eq!(client, peer_ip);
                } else if client != peer_ip {
                    // Only what a header listed can replace the peer.
                    let listed = xff
                        .iter()
                        .flat_map(|v| v.split(','))
                        .filter_map(|e| parse_client_addr(e.trim()))
                        .any(|ip| ip.to_canonical() == client);
                    prop_assert!(listed, "{client} is in no X-Forwarded-For entry");
                }
                match client {
                    IpAddr::V4(v4) => prop_assert_eq!(bucket, v4.to_string()),
                    IpAddr::V6(_) => {
                        let network = bucket.parse::<IpNet>();
                        prop_assert!(
                            network.is_ok_and(|n| n.prefix_len() == 64 && n.contains(&client)),
                            "{bucket} is not the /64 of {client}"
                        );
                    }
                }
            }
            (peer, client) => prop_assert!(false, "peer {peer:?}, client {client:?}"),
        }
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_always_the_client(
        peer in address(),
        xff in forwarded_for(),
    ) {
        let request = Request::new(Method::Get, "/")
            .with_header("x-forwarded-for", &xff)
            .with_header("spin-client-addr", &peer);
        let ctx = RequestContext::new(&request, 0);
        prop_assert_eq!(
            ctx.client_address(&TrustedProxies::default()),
            ctx.client_ip.map(|ip| ip.to_canonical())
        );
    }

    #[test]
    fn trusted_proxies_of_any_text_parse_or_are_a_configuration_error(
        text in prop_oneof![hostile_text(), any::<String>(), forwarded_for()]
    ) {
        let entries = text.split(',').filter(|e| !e.trim().is_empty()).count();
        match TrustedProxies::parse(&text) {
            // One network per entry: none dropped, none invented.
            Ok(trusted) => prop_assert_eq!(trusted.0.len(), entries),
            Err(e) => prop_assert_eq!(e.status(), 500),
        }
    }

    #[test]
    fn every_listed_proxy_address_is_trusted(
        ips in prop::collection::vec(any::<IpAddr>(), 0..5),
        padding in " {0,2}",
    ) {
        let text = ips
            .iter()
            .map(|ip| format!("{padding}{ip}{padding}"))
            .collect::<Vec<_>>()
            .join(",");
        let trusted = TrustedProxies::parse(&text).unwrap();
        prop_assert_eq!(trusted.0.len(), ips.len());
        prop_assert!(ips.iter().all(|ip| trusted.contains(*ip)));
    }
}

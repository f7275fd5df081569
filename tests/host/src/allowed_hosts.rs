//! `allowed_outbound_hosts` with Spin 4.0.2's rules
//! (`crates/outbound-networking-config/src/allowed_hosts.rs`): entries are
//! `scheme://host[:port]`, `*` may stand for the scheme, the host, a leading
//! subdomain (`*.example.com`) or the port; a host may be an IP network
//! (`10.0.0.0/8`); ports may be ranges (`3306..3310`); a missing port means
//! the scheme's well-known port.

use std::net::IpAddr;

use anyhow::{bail, ensure, Context as _};

/// One parsed entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    /// `self`: relative requests only, never matched by an address.
    ToSelf,
    Literal(url::Host),
    Network(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    Port(u16),
    Range(u16, u16),
}

/// The well-known port of a scheme, as Spin defines them.
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one (already rendered) entry.
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')");
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                ensure!(path.is_empty(), "{url:?} has a path but is not allowed to");
                port
            }
            None => rest,
        };
        let port = Self::parse_port(port, scheme)
            .with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = if scheme == "*" {
            None
        } else {
            ensure!(
                !scheme.starts_with('{'),
                "Invalid allowed host scheme {scheme:?}: scheme lists are not supported"
            );
            ensure!(
                scheme.chars().all(char::is_alphabetic),
                "Invalid allowed host scheme {scheme:?}: only alphabetic characters are allowed"
            );
            Some(scheme.to_owned())
        };
        let host =
            Self::parse_host(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    fn parse_port(port: &str, scheme: &str) -> anyhow::Result<PortPattern> {
        if port.is_empty() {
            return well_known_port(scheme).map(PortPattern::Port).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(PortPattern::Any);
        }
        ensure!(!port.starts_with('{'), "port lists are not yet supported");
        if let Some((start, end)) = port.split_once("..") {
            let start = start
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            let end = end
                .parse()
                .with_context(|| format!("port range {port:?} contains non-number"))?;
            return Ok(PortPattern::Range(start, end));
        }
        Ok(PortPattern::Port(port.parse().with_context(|| {
            format!("port {port:?} is not a number")
        })?))
    }

    fn parse_host(host: &str) -> anyhow::Result<HostPattern> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostPattern::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(HostPattern::ToSelf);
        }
        ensure!(!host.starts_with('{'), "host lists are not yet supported");
        if let Some(net) = parse_network(host) {
            return Ok(net);
        }
        let host = host.trim_end_matches('/');
        ensure!(!host.contains('/'), "must not include a path");
        if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "wildcards are allowed only as prefixes"
            );
            return Ok(HostPattern::AnySubdomain(format!(".{domain}")));
        }
        ensure!(
            !host.contains('*'),
            "wildcards are allowed only as subdomains"
        );
        Ok(HostPattern::Literal(url::Host::parse(host)?))
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match url::Host::parse(host) {
            Err(_) => false,
            Ok(h) => match (&self.host, h) {
                (HostPattern::Any, _) => true,
                (HostPattern::AnySubdomain(suffix), url::Host::Domain(d)) => d.ends_with(suffix),
                (HostPattern::AnySubdomain(_), _) => false,
                (HostPattern::Literal(l), h) => *l == h,
                (HostPattern::Network(net, bits), url::Host::Ipv4(ip)) => {
                    in_network(*net, *bits, IpAddr::V4(ip))
                }
                (HostPattern::Network(net, bits), url::Host::Ipv6(ip)) => {
                    in_network(*net, *bits, IpAddr::V6(ip))
                }
                (HostPattern::Network(..), url::Host::Domain(_)) => false,
                (HostPattern::ToSelf, _) => false,
            },
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            _ => match port.or_else(|| well_known_port(scheme)) {
                None => false,
                Some(p) => match self.port {
                    PortPattern::Port(allowed) => p == allowed,
                    PortPattern::Range(start, end) => (start..end).contains(&p),
                    PortPattern::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

/// Spin accepts an IP address or network (`ip_network::from_str_truncate`):
/// a bare address is a single-host network.
fn parse_network(host: &str) -> Option<HostPattern> {
    let (addr, bits) = match host.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (host, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some(HostPattern::Network(addr, bits))
}

fn in_network(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// A component's parsed list.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses rendered entries. `insecure:allow-all` is refused, as by Spin.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'");
        }
        let entries = entries
            .iter()
            .map(|e| AllowedHost::parse(e))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { entries })
    }

    /// Whether `address` (e.g. `mysql://user:pw@host:3306/db`) may be used
    /// with `scheme`; an unparseable address is refused (Spin's `check_url`).
    pub fn allows_url(&self, address: &str, scheme: &str) -> bool {
        let Some((url_scheme, host, port)) = parse_outbound(address, scheme) else {
            tracing::warn!("a component tried to use an address that could not be parsed");
            return false;
        };
        self.entries
            .iter()
            .any(|e| e.allows(&url_scheme, &host, port))
    }
}

/// Spin's `OutboundUrl::parse`: percent-encode the user info (so passwords
/// with odd characters parse), then try the address as is and, failing
/// that, with `scheme://` in front.
fn parse_outbound(address: &str, scheme: &str) -> Option<(String, String, Option<u16>)> {
    let (prefix, rest) = match address.find("://") {
        Some(end) => address.split_at(end + 3),
        None => ("", address),
    };
    // The first '@' of the address, when it ends a user info: after the
    // scheme and before the path.
    let url = match rest.split_once('@') {
        Some((userinfo, host_and_path)) if !prefix.contains('@') && !userinfo.contains('/') => {
            let encoded: String = url::form_urlencoded::byte_serialize(userinfo.as_bytes())
                .collect::<String>()
                .replace('+', "%20");
            format!("{prefix}{encoded}@{host_and_path}")
        }
        _ => address.to_owned(),
    };
    let parsed = match url::Url::parse(&url) {
        Ok(u) if u.has_host() => u,
        _ => url::Url::parse(&format!("{scheme}://{url}")).ok()?,
    };
    let host = parsed.host_str()?.to_owned();
    // `host_str` keeps IPv6 brackets; Host::parse wants them too.
    Some((parsed.scheme().to_owned(), host, parsed.port()))
}

#[cfg(test)]
mod tests;

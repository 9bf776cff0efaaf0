//! DNS rebinding: the `Host` a request names must be this server's.
//!
//! A page of another site can point a name it controls (`evil.example`) at 127.0.0.1 or at
//! a plant's address, and then read what the dashboard answers "same origin" (its own),
//! WebSocket included: the browser only sees `evil.example`. What gives it away is the
//! `Host` header, which the browser sets to that name and a page cannot change. So before
//! any route (and before the token gate), a request is refused with 421 Misdirected
//! Request (RFC 9110 section 15.5.20) unless its `Host` is:
//!
//! - an IP literal, `127.0.0.1`, `10.0.0.5`, `[::1]` (v6 in brackets, RFC 3986 section
//!   3.2.2), with any port: no rebinding goes through an address;
//! - `localhost`;
//! - the machine's own host name (`/proc/sys/kernel/hostname`, else `/etc/hostname`);
//! - a name given with `--allowed-host` (repeatable; `FACTORYDASH_ALLOWED_HOSTS`,
//!   comma-separated; `allowed-hosts = [...]` in the configuration file).
//!
//! Names are compared without case and without a trailing dot, with any port. A request
//! without `Host` (HTTP/1.0) goes on: a browser always sends one.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use warp::http::{HeaderMap, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

/// The host names a request may name besides IP literals and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: HashSet<String>,
}

impl AllowedHosts {
    /// `names` (from `--allowed-host`, already checked by [`parse_name`]) and the
    /// machine's own host name.
    pub fn new(names: &[String]) -> Self {
        let own = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|n| normalized(n.trim()))
            .filter(|n| !n.is_empty());
        AllowedHosts {
            names: names.iter().map(|n| normalized(n)).chain(own).collect(),
        }
    }

    /// Whether a request whose `Host` header is `host` (`name[:port]`, `[v6][:port]`) is
    /// for this server.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        match name {
            Name::Ip => true,
            Name::Dns(name) => {
                let name = normalized(name);
                name == "localhost" || self.names.contains(&name)
            }
        }
    }
}

/// A host name as compared: lower case, no trailing dot.
fn normalized(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A `--allowed-host` value: a host name (letters, digits, `-`, `.`, `_`), no port.
///
/// # Errors
/// Anything else, with what is wrong.
pub fn parse_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(normalized(name))
    } else {
        Err(format!(
            "an allowed host is a host name without a port (e.g. dashboard.plant.example); got '{s}'"
        ))
    }
}

/// What a `Host` names.
enum Name<'a> {
    /// An IPv4 or (bracketed) IPv6 address.
    Ip,
    /// A registered name.
    Dns(&'a str),
}

/// The name in a `Host` value without its port; `None` when it is not `host[:port]`.
fn host_name(host: &str) -> Option<Name<'_>> {
    let port_ok = |p: &str| p.is_empty() || p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<Ipv6Addr>().ok()?;
        return match after.strip_prefix(':') {
            Some(port) if port_ok(port) => Some(Name::Ip),
            None if after.is_empty() => Some(Name::Ip),
            _ => None,
        };
    }
    let (name, port) = host.rsplit_once(':').unwrap_or((host, ""));
    if !port_ok(port) || name.is_empty() || name.contains(':') {
        return None;
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some(Name::Ip);
    }
    Some(Name::Dns(name))
}

/// Answers 421 to a request whose `Host` is not this server's (see the module's docs),
/// WebSocket upgrades included; rejects every other request, so that the routes answer.
pub fn guard(
    allowed: Arc<AllowedHosts>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned().and_then(move |headers: HeaderMap| {
        let allowed = allowed.clone();
        async move {
            let mut hosts = headers.get_all("host").iter();
            let refused = match (hosts.next(), hosts.next()) {
                (None, _) => None,
                (Some(host), None) => match host.to_str() {
                    Ok(h) if allowed.allows(h) => None,
                    Ok(h) => Some(h.to_owned()),
                    Err(_) => Some("(not text)".to_owned()),
                },
                (Some(_), Some(_)) => Some("(more than one Host header)".to_owned()),
            };
            match refused {
                None => Err(warp::reject()),
                Some(host) => {
                    tracing::debug!(host = %host.escape_debug(), "refused: not this server's Host");
                    Ok(warp::reply::with_status(
                        "this server does not answer for that Host; an address, localhost and this machine's name are allowed, other names with --allowed-host NAME\n",
                        StatusCode::MISDIRECTED_REQUEST,
                    )
                    .into_response())
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_name, AllowedHosts};

    #[test]
    fn addresses_localhost_and_given_names() {
        let hosts = AllowedHosts::new(&["dash.plant.example".into()]);
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.1.2.3:1",
            "[::1]",
            "[::1]:8080",
            "[fe80::1]:80",
            "localhost",
            "LOCALHOST:8080",
            "localhost.:80",
            "dash.plant.example",
            "Dash.Plant.Example.:443",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "::1",
            "[::1",
            "[nope]:80",
            "127.0.0.1:80x",
            "",
            ":80",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
        assert_eq!(parse_name("Dash.Example"), Ok("dash.example".into()));
        assert!(parse_name("dash.example:80").is_err());
        assert!(parse_name("").is_err());
    }
}

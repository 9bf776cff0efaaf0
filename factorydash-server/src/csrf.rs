//! Cross-site request forgery: changes come only from this server's own pages and from
//! admin scripts, never from a page of another origin that a browser has open.
//!
//! A page of another origin can make a browser send a `POST` (a form, or
//! `fetch(…, {mode: "no-cors"})`) with the browser's cookies; `SameSite=Strict` does not
//! stop it when that page is on another port of the same host, since a site ignores ports.
//! So every state-changing request (any method but `GET`, `HEAD` and `OPTIONS`) must
//! prove where it comes from, whatever tokens are configured:
//!
//! 1. `Sec-Fetch-Site: same-origin` (Fetch Metadata, sent by every current browser and
//!    not settable by a page's scripts); any other `Sec-Fetch-Site` is refused;
//! 2. without `Sec-Fetch-Site`, an `Origin` whose host and port are the request's `Host`
//!    (RFC 6454; browsers send `Origin` on every `POST` and `DELETE`); `Origin: null`
//!    and any other origin are refused;
//! 3. with neither header the client is not a browser page (browsers send at least one of
//!    them on these methods): it may go on when it authenticates with an
//!    `Authorization: Bearer` header (which a page of another origin cannot add without a
//!    CORS preflight, which this server never allows), or when no token is configured (the
//!    dashboard is open to anyone who can reach it, and a script can change it anyway).
//!    A request that only carries the browser's token cookie is refused.
//!
//! A body must also be declared `Content-Type: application/json` (415 otherwise): no form
//! or `no-cors` fetch of another page can send that type without a preflight.
//!
//! WebSocket upgrades (`GET`, read only) get the same origin check when they carry an
//! `Origin`, so that a page of another origin cannot read the live stream with the
//! browser's cookie.
//!
//! Refusals are answered here (403 or 415, JSON `{"error": "..."}`); everything else is
//! rejected so that the routes answer.

use std::sync::Arc;

use serde_json::json;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{self, Reply, Response};
use warp::Filter;

use crate::accounts::Auth;

/// Answers the state-changing requests (and WebSocket upgrades) that do not prove they
/// come from this server's own pages or from a script; rejects every other request.
pub fn guard(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    // Fails closed: nothing read here can reject (which would let the request go on
    // unchecked). The `Host` is the header that `crate::host` let in (absent or text).
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(
            move |method: Method, path: warp::path::FullPath, headers: HeaderMap| {
                let open = auth.is_open();
                async move {
                    let host = headers.get("host").and_then(|h| h.to_str().ok());
                    let forms = takes_forms(path.as_str());
                    match refusal(&method, &headers, host, open, forms) {
                        Some((status, message)) => Ok(reply::with_status(
                            reply::json(&json!({ "error": message })),
                            status,
                        )
                        .into_response()),
                        None => Err(warp::reject()),
                    }
                }
            },
        )
}

/// Whether `path` takes HTML forms (`application/x-www-form-urlencoded`): the sign-in,
/// the sign-out, a stop's reason and the account and administration pages, which work
/// without JavaScript. Their posts pass the same origin checks as every change; the forms
/// also carry a token of their own (the `factorydash_form` double-submit cookie).
fn takes_forms(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/stops/reason")
        || path.starts_with("/account/")
        || path.starts_with("/admin/")
}

/// Why a request is refused (its status and message), or `None` when it may go on.
fn refusal(
    method: &Method,
    headers: &HeaderMap,
    host: Option<&str>,
    open: bool,
    forms: bool,
) -> Option<(StatusCode, &'static str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let upgrade = header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if !changes && !upgrade {
        return None;
    }
    let fetch_site = header("sec-fetch-site");
    let origin = header("origin");
    let from_here = match (fetch_site, origin) {
        (Some(site), _) => site.eq_ignore_ascii_case("same-origin"),
        (None, Some(origin)) => host.is_some_and(|h| same_origin(origin, h)),
        // Not a browser page.
        (None, None) => {
            upgrade || open || header("authorization").is_some_and(|a| a.starts_with("Bearer "))
        }
    };
    // DNS rebinding: a name of the attacker's, resolved to this server, makes its page
    // this server's origin. Without tokens nothing else tells it apart, so an open
    // dashboard takes changes only at an address or `localhost` (a name no attacker
    // controls). With tokens the attacker's page has no token: its origin's cookie jar is
    // its own.
    if changes && !takes_changes(open, host) {
        return Some((
            StatusCode::FORBIDDEN,
            "refused: an open dashboard (no --token) takes changes only at an IP address or localhost, never at a DNS name (DNS rebinding); give --token to change it by name",
        ));
    }
    if !from_here {
        return Some((
            StatusCode::FORBIDDEN,
            "refused: a change must come from this server's own pages (Sec-Fetch-Site: same-origin, or an Origin that is this server) or from a script sending Authorization: Bearer <token>",
        ));
    }
    let has_body = header("transfer-encoding").is_some()
        || header("content-length").is_some_and(|n| n.trim() != "0");
    let json = header("content-type").is_some_and(|t| {
        t.split(';').next().is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json")
                || (forms && t.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        })
    });
    if changes && has_body && !json {
        return Some((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a body must be sent as Content-Type: application/json",
        ));
    }
    None
}

/// Whether a dashboard asked for at `host` (the request's `Host`) takes changes at all
/// (from its own pages or from scripts): always with tokens; without (`open`), only at an
/// IP address or `localhost` (DNS rebinding, see [`guard`]).
pub fn takes_changes(open: bool, host: Option<&str>) -> bool {
    !open || host.is_none_or(is_address_or_localhost)
}

/// Whether the request's dashboard takes changes ([`takes_changes`], by its `Host`): for
/// a page that offers them (the agents page says why it does not, rather than offering
/// buttons that every change would be refused by).
pub fn takes_changes_here(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (bool,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned().map(move |headers: HeaderMap| {
        let host = headers.get("host").and_then(|h| h.to_str().ok());
        takes_changes(auth.is_open(), host)
    })
}

/// Whether a `Host` (`name[:port]`, `[v6]:port`) is an IP address or `localhost`.
fn is_address_or_localhost(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(a, _)| a.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Whether `origin` (`scheme://host[:port]`) names the server at `host` (the request's
/// `Host`, `host[:port]`): the same host and port, the port implied by the scheme
/// when not given. Host names compare case-insensitively.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let normal = |a: &str| {
        let a = a.to_ascii_lowercase();
        match a.strip_suffix(default_port) {
            Some(bare) => bare.to_owned(),
            None => a,
        }
    };
    !authority.contains('/') && normal(authority) == normal(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const HOST: Option<&str> = Some("127.0.0.1:8080");

    #[test]
    fn reads_go_on_whatever_their_origin() {
        let cross = headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://evil")]);
        assert_eq!(refusal(&Method::GET, &cross, HOST, false, false), None);
        assert_eq!(refusal(&Method::HEAD, &cross, HOST, true, false), None);
    }

    #[test]
    fn an_open_dashboard_takes_changes_only_at_an_address_or_localhost() {
        let same = headers(&[("sec-fetch-site", "same-origin")]);
        let at = |host: &str, open: bool| {
            refusal(&Method::POST, &same, Some(host), open, false).map(|(s, _)| s.as_u16())
        };
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.0.0.5",
        ] {
            assert_eq!(at(host, true), None, "{host}");
        }
        // A rebinding attacker's name, resolved to 127.0.0.1: same origin to the browser.
        assert_eq!(at("rebind.attacker.example:8080", true), Some(403));
        assert_eq!(at("[::1", true), Some(403));
        // With tokens, names are fine: the attacker has no token.
        assert_eq!(at("dashboard.plant.example", false), None);
    }

    #[test]
    fn changes_need_a_same_origin_proof() {
        let refused = |h: &HeaderMap, open: bool| {
            refusal(&Method::POST, h, HOST, open, false).map(|(s, _)| s.as_u16())
        };
        let json = ("content-type", "application/json");
        let body = ("content-length", "20");
        assert_eq!(
            refused(
                &headers(&[("sec-fetch-site", "same-origin"), json, body]),
                false
            ),
            None
        );
        // Another port of the same host is same-site, not same-origin.
        assert_eq!(
            refused(&headers(&[("sec-fetch-site", "same-site"), json]), true),
            Some(403)
        );
        assert_eq!(
            refused(&headers(&[("sec-fetch-site", "cross-site")]), true),
            Some(403)
        );
        assert_eq!(
            refused(&headers(&[("sec-fetch-site", "none")]), true),
            Some(403)
        );
        assert_eq!(
            refused(&headers(&[("origin", "http://127.0.0.1:8080")]), false),
            None
        );
        assert_eq!(
            refused(&headers(&[("origin", "http://127.0.0.1:9090")]), true),
            Some(403)
        );
        assert_eq!(refused(&headers(&[("origin", "null")]), true), Some(403));
        // No browser headers: a script, with a bearer token or on an open dashboard.
        assert_eq!(
            refused(&headers(&[("authorization", "Bearer x")]), false),
            None
        );
        assert_eq!(refused(&headers(&[]), true), None);
        assert_eq!(
            refused(&headers(&[("cookie", "factorydash_token=x")]), false),
            Some(403)
        );
        // A body of another type than JSON.
        assert_eq!(
            refused(&headers(&[("content-type", "text/plain"), body]), true),
            Some(415)
        );
        assert_eq!(refused(&headers(&[body]), true), Some(415));
        assert_eq!(
            refused(
                &headers(&[("content-type", "Application/JSON; charset=utf-8"), body]),
                true
            ),
            None
        );
        let delete = refusal(
            &Method::DELETE,
            &headers(&[("origin", "http://evil:8080")]),
            HOST,
            true,
            false,
        );
        assert_eq!(delete.map(|(s, _)| s.as_u16()), Some(403));
        // A form is taken where forms are (the sign-in), from this server's pages only.
        let form = |site: &'static str, forms: bool| {
            refusal(
                &Method::POST,
                &headers(&[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("sec-fetch-site", site),
                    body,
                ]),
                HOST,
                false,
                forms,
            )
            .map(|(s, _)| s.as_u16())
        };
        assert_eq!(form("same-origin", true), None);
        assert_eq!(form("cross-site", true), Some(403));
        assert_eq!(form("same-origin", false), Some(415));
    }

    #[test]
    fn websockets_from_another_origin_are_refused() {
        let ws = |origin: &'static str| {
            let mut h = headers(&[("upgrade", "websocket")]);
            if !origin.is_empty() {
                h.insert("origin", origin.parse().unwrap());
            }
            refusal(&Method::GET, &h, HOST, false, false).map(|(s, _)| s.as_u16())
        };
        assert_eq!(ws("http://127.0.0.1:8080"), None);
        assert_eq!(ws(""), None);
        assert_eq!(ws("http://127.0.0.1:9090"), Some(403));
    }

    #[test]
    fn origins_and_hosts() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://Dash.Example", "dash.example:80"));
        assert!(same_origin("https://dash.example:443", "dash.example"));
        assert!(!same_origin("https://dash.example", "dash.example:80"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("http://127.0.0.1:8080/x", "127.0.0.1:8080"));
    }
}

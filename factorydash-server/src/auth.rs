//! The gate before every route, and the fixed API tokens of the command line.
//!
//! Fixed tokens have two roles: `viewer` reads, `admin` also changes (adds, pauses,
//! removes agents). A token is sent as `Authorization: Bearer <token>`, or once in a
//! browser as `?token=<token>`, which sets an HTTP-only cookie. Users (see
//! [`crate::accounts`]) sign in at `/login` or send a personal token. Without fixed
//! tokens and without users, factorydash is open (and says so in its log). Otherwise
//! every request but `/healthz`, `/login` and the assets needs credentials: the [`gate`]
//! decides what a request may do, [`scope`] what devices it may see.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{self, Reply, Response};
use warp::Filter;

use crate::accounts::{Auth, Principal, Refusal, Scope};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads pages and the API.
    Viewer,
    /// Also changes: `/api/agents`.
    Admin,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<(Role, String)>);

/// The cookie a browser keeps its fixed token in.
pub const COOKIE: &str = "factorydash_token";

impl Tokens {
    /// Parses `ROLE:SECRET` items (`viewer:…`, `admin:…`); a secret has at least 16
    /// characters, all URL-safe (letters, digits, `-`, `.`, `_`, `~`).
    ///
    /// # Errors
    /// An item that is not `viewer:` or `admin:` followed by a long enough secret.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in items {
            // Never quoted in an error: it may be a secret with a typo.
            let (role, secret) = item
                .split_once(':')
                .ok_or("a token is ROLE:SECRET, with ROLE viewer or admin")?;
            let role = match role {
                "viewer" => Role::Viewer,
                "admin" => Role::Admin,
                other => return Err(format!("a token's role is viewer or admin, got '{other}'")),
            };
            if secret.len() < 16 {
                return Err(format!(
                    "a {role:?} token's secret needs at least 16 characters"
                ));
            }
            // It travels in headers, a query and a cookie: URL-safe characters only.
            if !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return Err(format!(
                    "a {role:?} token's secret may hold only letters, digits and - . _ ~"
                ));
            }
            out.push((role, secret.to_owned()));
        }
        Ok(Tokens(out))
    }

    /// Parses a token file: one `ROLE:SECRET` a line (as [`Tokens::parse`]), with blank
    /// lines and lines starting with `#` skipped, and white space around each line trimmed.
    ///
    /// # Errors
    /// A line that [`Tokens::parse`] refuses, by its number (its text is not repeated).
    pub fn parse_file(text: &str) -> Result<Self, String> {
        let mut out = Tokens::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.extend(
                Tokens::parse(&[line.to_owned()]).map_err(|e| format!("line {}: {e}", n + 1))?,
            );
        }
        Ok(out)
    }

    /// Adds `other`'s tokens.
    pub fn extend(&mut self, other: Tokens) {
        self.0.extend(other.0);
    }

    /// Whether no token is configured (the dashboard is open).
    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    /// The role of `secret`, compared in constant time with every configured token.
    pub fn role(&self, secret: &str) -> Option<Role> {
        let mut found = None;
        for (role, s) in &self.0 {
            if bool::from(s.as_bytes().ct_eq(secret.as_bytes())) {
                found = found.max(Some(*role));
            }
        }
        found
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing: anyone may (`/healthz`, the sign-in page, the assets).
    Nothing,
    /// Someone signed in (or a fixed token): reading, a user's own account, and an
    /// operator's changes (a stop's reason), which their handlers check per device.
    Someone,
    /// An admin: changes, and the administration's pages and API.
    Admin,
}

/// What the request needs.
fn needed(method: &Method, path: &str) -> Need {
    // warp's `path!` takes `/metrics/` as `/metrics`: so does the gate.
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if path == "/healthz" || path == "/login" || under("/assets") {
        Need::Nothing
    } else if path == "/logout" || under("/account") || under("/api/tokens") {
        Need::Someone
    } else if path == "/api/alarms/deliveries" {
        Need::Admin
    } else if path == "/api/stop-reasons" || path == "/stops/reason" || under("/api/alarms") {
        // An operator's change: the handler checks the role over the stop's device.
        Need::Someone
    } else if path == "/metrics"
        || under("/admin")
        || under("/api/users")
        || under("/api/groups")
        || under("/api/audit")
        || under("/api/device-records")
    {
        Need::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Need::Someone
    } else {
        Need::Admin
    }
}

/// `path` when it can only name a path of this server, else `/`: it starts with one `/`
/// (`//host/x` and `/\host/x` are other hosts to a browser, RFC 3986 section 4.2 and the
/// WHATWG URL Standard) and holds no `\` (a browser reads it as `/`) nor anything but
/// visible ASCII. The `?token=` redirect and the sign-in's `next` go there: never to
/// another site.
pub fn local_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if local {
        path
    } else {
        "/"
    }
}

/// The request's principal (see [`crate::accounts::Auth::principal`]), `None` when it has
/// none or cannot have one: for a page that shows who is signed in and offers changes to
/// admins only. Access is decided by the [`gate`] and by [`scope`], whatever a page shows.
pub fn principal(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Option<Principal>,), Error = Infallible> + Clone {
    warp::header::headers_cloned()
        .and(crate::accounts::peer())
        .then(move |headers: HeaderMap, peer| {
            let auth = auth.clone();
            async move { auth.principal(&headers, peer).await.ok().flatten() }
        })
}

/// The devices the request may see: its principal's [`Scope`] (nothing, should it have
/// none: the [`gate`] has answered such a request before any route runs).
pub fn scope(auth: Arc<Auth>) -> impl Filter<Extract = (Scope,), Error = Infallible> + Clone {
    let records = auth.records.clone();
    principal(auth).map(move |p: Option<Principal>| scope_of(p.as_ref(), &records))
}

/// The [`Scope`] of principal `p`, cells placed by `records`' layout (nothing for none).
pub fn scope_of(p: Option<&Principal>, records: &crate::records::RecordBoard) -> Scope {
    match p {
        Some(p) => {
            let scope = Scope::new(p.access.clone(), records.layout());
            if p.is_user() {
                scope.of_user(&p.shown)
            } else {
                scope
            }
        }
        None => Scope::nothing(),
    }
}

fn refused(status: StatusCode, message: &str) -> Response {
    reply::with_status(reply::json(&json!({ "error": message })), status).into_response()
}

/// Whether a request is a browser asking for a page (then a sign-in page answers it
/// rather than a 401).
fn wants_page(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && !path.starts_with("/api/")
        && path != "/ws"
        && headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// Answers the requests that may not go on (a browser without credentials asking for a
/// page is sent to `/login`; otherwise 401 without valid credentials, 403 for a request
/// its principal may not make, 503 when the store cannot tell) and turns `?token=` into a
/// cookie; rejects (so that the routes answer) every request that may go on.
///
/// It fails closed: what it reads of a request cannot make it reject (which would let the
/// request go on unchecked). Headers are read from the whole map, and one that is not
/// text counts as no credentials (`Authorization`, `Cookie`) or as another site
/// (`Sec-Fetch-Site`).
pub fn gate(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(crate::accounts::peer())
        .and_then(
            move |method: Method,
                  path: warp::path::FullPath,
                  headers: HeaderMap,
                  query: String,
                  peer: Option<std::net::IpAddr>| {
                let auth = auth.clone();
                async move {
                    let path = path.as_str();
                    let need = needed(&method, path);
                    let tokens = &auth.tokens;
                    let fetch_site = headers
                        .get("sec-fetch-site")
                        .map(|v| v.to_str().unwrap_or("(not text)"));
                    // `?token=` once in a browser: keep it in a cookie, and drop it from
                    // the address.
                    let from_query = (!tokens.is_open())
                        .then(|| {
                            form_urlencoded::parse(query.as_bytes())
                                .find(|(k, _)| k == "token")
                                .map(|(_, v)| v.into_owned())
                        })
                        .flatten();
                    // A link on another site must not sign the browser in with the link's
                    // token (login CSRF: the victim would then act in the attacker's
                    // name): the address must be opened directly (typed, pasted, a
                    // bookmark: `Sec-Fetch-Site: none`) or from this server's own pages.
                    if from_query.is_some()
                        && fetch_site.is_some_and(|s| !matches!(s, "none" | "same-origin"))
                    {
                        return Ok(refused(
                            StatusCode::FORBIDDEN,
                            "a token in a link from another site is not taken: open the address yourself (type or paste it)",
                        ));
                    }
                    if let Some(secret) = from_query.filter(|s| tokens.role(s).is_some()) {
                        let rest: String = form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(
                                form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "token"),
                            )
                            .finish();
                        let path = local_path(path);
                        let to = if rest.is_empty() { path.to_owned() } else { format!("{path}?{rest}") };
                        let r = reply::with_header(
                            reply::with_header(StatusCode::SEE_OTHER, "location", to),
                            "set-cookie",
                            format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict"),
                        );
                        return Ok::<Response, warp::Rejection>(r.into_response());
                    }
                    if need == Need::Nothing {
                        return Err(warp::reject());
                    }
                    // Whether users exist is not known yet (the store has not answered):
                    // asked now; while it cannot be told, a request without credentials
                    // is answered 503 with why (never let in as to an open dashboard).
                    if auth.users_unknown() {
                        if let Err(e) = auth.refresh().await {
                            let anonymous = !headers.contains_key("authorization")
                                && crate::accounts::cookie(&headers, auth.session_cookie()).is_none()
                                && crate::accounts::cookie(&headers, COOKIE).is_none();
                            if anonymous && tokens.is_open() {
                                return Ok(refused(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    &format!("who may see this dashboard cannot be told until the store answers: {e}"),
                                ));
                            }
                        }
                    }
                    let principal = match auth.principal(&headers, peer).await {
                        Ok(p) => p,
                        Err(Ok(Refusal::ProxyHeaderFromElsewhere)) => {
                            return Ok(refused(
                                StatusCode::FORBIDDEN,
                                "the auth proxy's header is taken only from the proxy's addresses (--auth-proxy-from)",
                            ))
                        }
                        Err(Ok(Refusal::ProxyUserRefused)) => {
                            return Ok(refused(
                                StatusCode::FORBIDDEN,
                                "the user named by the auth proxy is disabled or not a valid name",
                            ))
                        }
                        Err(Err(e)) => {
                            tracing::warn!(error = %e, "cannot read credentials from the store");
                            return Ok(refused(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "the store cannot be read to check credentials; retry shortly",
                            ));
                        }
                    };
                    match principal {
                        Some(p) if need == Need::Someone || p.access.is_admin() => {
                            Err(warp::reject())
                        }
                        Some(_) => Ok(refused(StatusCode::FORBIDDEN, "this needs an admin")),
                        None if wants_page(&method, path, &headers) => {
                            let next = if query.is_empty() {
                                path.to_owned()
                            } else {
                                format!("{path}?{query}")
                            };
                            let to = format!(
                                "/login?{}",
                                form_urlencoded::Serializer::new(String::new())
                                    .append_pair("next", local_path(&next))
                                    .finish()
                            );
                            Ok(reply::with_header(StatusCode::SEE_OTHER, "location", to)
                                .into_response())
                        }
                        None => Ok(reply::with_header(
                            reply::with_status(
                                reply::json(&json!({
                                    "error": "sign in first: send Authorization: Bearer <token>, or sign in at /login in a browser"
                                })),
                                StatusCode::UNAUTHORIZED,
                            ),
                            "www-authenticate",
                            "Bearer",
                        )
                        .into_response()),
                    }
                }
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_roles() {
        let t = Tokens::parse(&[
            "viewer:0123456789abcdefv".into(),
            "admin:0123456789abcdefa".into(),
        ])
        .unwrap();
        assert_eq!(t.role("0123456789abcdefv"), Some(Role::Viewer));
        assert_eq!(t.role("0123456789abcdefa"), Some(Role::Admin));
        assert_eq!(t.role("0123456789abcdef"), None);
        assert!(Tokens::parse(&["root:0123456789abcdefx".into()]).is_err());
        assert!(Tokens::parse(&["admin:short".into()]).is_err());
        assert!(Tokens::parse(&["admin:0123456789abcdef; Path=/x".into()]).is_err());
        assert!(Tokens::default().is_open());
        let file = Tokens::parse_file(
            "# the plant's tokens\n\n  viewer:0123456789abcdefv  \nadmin:0123456789abcdefa\n",
        )
        .unwrap();
        assert_eq!(file.role("0123456789abcdefa"), Some(Role::Admin));
        assert_eq!(file.role("0123456789abcdefv"), Some(Role::Viewer));
        let refused = Tokens::parse_file("viewer:0123456789abcdefv\nadmin=0123456789abcdefa\n");
        assert_eq!(
            refused.unwrap_err(),
            "line 2: a token is ROLE:SECRET, with ROLE viewer or admin"
        );
        assert_eq!(needed(&Method::GET, "/api/latest"), Need::Someone);
        assert_eq!(needed(&Method::POST, "/api/agents"), Need::Admin);
        assert_eq!(needed(&Method::GET, "/healthz"), Need::Nothing);
        assert_eq!(needed(&Method::POST, "/login"), Need::Nothing);
        assert_eq!(needed(&Method::GET, "/assets/app.js"), Need::Nothing);
        assert_eq!(needed(&Method::GET, "/assetsx"), Need::Someone);
        assert_eq!(needed(&Method::POST, "/api/tokens"), Need::Someone);
        assert_eq!(needed(&Method::POST, "/api/stop-reasons"), Need::Someone);
        assert_eq!(
            needed(&Method::POST, "/api/alarms/7/acknowledge"),
            Need::Someone
        );
        assert_eq!(needed(&Method::GET, "/api/alarms/deliveries"), Need::Admin);
        assert_eq!(needed(&Method::POST, "/stops/reason"), Need::Someone);
        assert_eq!(needed(&Method::POST, "/stops/reason/x"), Need::Admin);
        assert_eq!(needed(&Method::GET, "/api/users"), Need::Admin);
        assert_eq!(needed(&Method::GET, "/api/audit"), Need::Admin);
        assert_eq!(needed(&Method::GET, "/metrics"), Need::Admin);
        assert_eq!(needed(&Method::GET, "/admin/users"), Need::Admin);
    }

    #[test]
    fn the_token_redirect_stays_on_this_server() {
        assert_eq!(local_path("/device"), "/device");
        assert_eq!(local_path("/"), "/");
        assert_eq!(local_path("//evil.example/x"), "/");
        assert_eq!(local_path("/\\evil.example/x"), "/");
        assert_eq!(local_path("/a\\b"), "/");
        assert_eq!(local_path("/%2F%2Fevil.example"), "/%2F%2Fevil.example");
        assert_eq!(local_path("http://evil.example/"), "/");
    }
}

//! Optional API tokens with two roles. Without tokens, factorydash is open (and says so in
//! its log); with them, every request but `/healthz` needs one: `viewer` reads, `admin`
//! also changes (adds, pauses, removes agents). A token is sent as `Authorization: Bearer
//! <token>`, or once in a browser as `?token=<token>`, which sets an HTTP-only cookie.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{self, Reply, Response};
use warp::Filter;

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

/// The cookie a browser keeps its token in.
const COOKIE: &str = "factorydash_token";

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

/// What the request needs.
fn needed(method: &Method, path: &str) -> Option<Role> {
    if path == "/healthz" {
        None
    } else if method == Method::GET || method == Method::HEAD {
        Some(Role::Viewer)
    } else {
        Some(Role::Admin)
    }
}

/// `path` when it can only name a path of this server, else `/`: it starts with one `/`
/// (`//host/x` and `/\host/x` are other hosts to a browser, RFC 3986 section 4.2 and the
/// WHATWG URL Standard) and holds no `\` (a browser reads it as `/`) nor anything but
/// visible ASCII. The `?token=` redirect goes there: never to another site.
fn local_path(path: &str) -> &str {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if local {
        path
    } else {
        "/"
    }
}

fn bearer(header: Option<&str>) -> Option<&str> {
    header?.strip_prefix("Bearer ").map(str::trim)
}

/// The value of the browser's token cookie among `headers`' `Cookie` headers, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == COOKIE).then(|| value.trim())
        })
}

/// The role that a request's credentials give: its `Authorization: Bearer` token, else
/// its token cookie; `None` without a valid one. A header that is not text gives none.
fn role_of(tokens: &Tokens, headers: &HeaderMap) -> Option<Role> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    bearer(authorization)
        .and_then(|s| tokens.role(s))
        .or_else(|| cookie(headers).and_then(|s| tokens.role(s)))
}

/// The role the [`gate`] let a request in with: that of its bearer token or cookie, and
/// [`Role::Admin`] on an open dashboard (no tokens: anyone who reaches it may change it,
/// within the CSRF guard's rules). For a page that offers changes to admins only (the
/// agents page); the API checks the role again, in the gate, whatever a page shows.
pub fn role(
    tokens: Arc<Tokens>,
) -> impl Filter<Extract = (Option<Role>,), Error = Infallible> + Clone {
    warp::header::headers_cloned().map(move |headers: HeaderMap| {
        if tokens.is_open() {
            Some(Role::Admin)
        } else {
            role_of(&tokens, &headers)
        }
    })
}

/// Answers the requests that may not go on (401 without a valid token, 403 for a viewer
/// asking to change something) and turns `?token=` into a cookie; rejects (so that the
/// routes answer) every request that may go on.
///
/// It fails closed: what it reads of a request cannot make it reject (which would let the
/// request go on unchecked). Headers are read from the whole map, and one that is not
/// text counts as no credentials (`Authorization`, `Cookie`) or as another site
/// (`Sec-Fetch-Site`).
pub fn gate(
    tokens: Arc<Tokens>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(
            move |method: Method,
                  path: warp::path::FullPath,
                  headers: HeaderMap,
                  query: String| {
                let tokens = tokens.clone();
                async move {
                    if tokens.is_open() {
                        return Err(warp::reject());
                    }
                    let path = path.as_str();
                    let fetch_site = headers
                        .get("sec-fetch-site")
                        .map(|v| v.to_str().unwrap_or("(not text)"));
                    // `?token=` once in a browser: keep it in a cookie, and drop it from
                    // the address.
                    let from_query = form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "token")
                        .map(|(_, v)| v.into_owned());
                    // A link on another site must not sign the browser in with the link's
                    // token (login CSRF: the victim would then act in the attacker's
                    // name): the address must be opened directly (typed, pasted, a
                    // bookmark: `Sec-Fetch-Site: none`) or from this server's own pages.
                    if from_query.is_some()
                        && fetch_site.is_some_and(|s| !matches!(s, "none" | "same-origin"))
                    {
                        return Ok(reply::with_status(
                            reply::json(&json!({
                                "error": "a token in a link from another site is not taken: open the address yourself (type or paste it)"
                            })),
                            StatusCode::FORBIDDEN,
                        )
                        .into_response());
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
                    let Some(need) = needed(&method, path) else {
                        return Err(warp::reject());
                    };
                    match role_of(&tokens, &headers) {
                        Some(r) if r >= need => Err(warp::reject()),
                        Some(_) => Ok(reply::with_status(
                            reply::json(&json!({ "error": "this needs an admin token" })),
                            StatusCode::FORBIDDEN,
                        )
                        .into_response()),
                        None => Ok(reply::with_header(
                            reply::with_status(
                                reply::json(&json!({
                                    "error": "a token is required: send Authorization: Bearer <token>, or open /?token=<token> once in the browser"
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
        assert_eq!(needed(&Method::GET, "/api/latest"), Some(Role::Viewer));
        assert_eq!(needed(&Method::POST, "/api/agents"), Some(Role::Admin));
        assert_eq!(needed(&Method::GET, "/healthz"), None);
    }

    #[test]
    fn credentials_come_from_the_bearer_header_or_the_cookie() {
        let t = Tokens::parse(&[
            "viewer:0123456789abcdefv".into(),
            "admin:0123456789abcdefa".into(),
        ])
        .unwrap();
        let headers = |pairs: &[(&'static str, &[u8])]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, warp::http::HeaderValue::from_bytes(v).unwrap());
            }
            h
        };
        let admin = b"Bearer 0123456789abcdefa";
        assert_eq!(
            role_of(&t, &headers(&[("authorization", admin)])),
            Some(Role::Admin)
        );
        assert_eq!(
            role_of(
                &t,
                &headers(&[
                    ("cookie", b"a=1"),
                    ("cookie", b"x=2; factorydash_token=0123456789abcdefv")
                ])
            ),
            Some(Role::Viewer)
        );
        // Not text: no credentials, never an error that would skip the check.
        assert_eq!(
            role_of(&t, &headers(&[("authorization", b"Bearer \xff")])),
            None
        );
        assert_eq!(
            role_of(&t, &headers(&[("cookie", b"factorydash_token=\xff")])),
            None
        );
        assert_eq!(role_of(&t, &headers(&[])), None);
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

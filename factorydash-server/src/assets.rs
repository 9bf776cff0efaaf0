//! The page's scripts and stylesheets, built into the binary, under content-hashed URLs.
//!
//! The pages link every asset as `/assets/NAME?v=HASH`, `HASH` being the FNV-1a 64-bit
//! hash of its content: a new build with another content has another URL, so that URL
//! may be cached for a year (`Cache-Control: public, max-age=31536000, immutable`).
//! The same asset asked for without the current hash (an old page, a bookmark) is
//! `Cache-Control: no-cache`: kept, but checked again each time with its `ETag` (the
//! hash; `304 Not Modified` when unchanged).
//!
//! Each asset is also gzipped once, when the routes are built, and sent so to clients
//! that say `Accept-Encoding: gzip` (with `Vary: Accept-Encoding`).

use std::io::Write;
use std::sync::LazyLock;

use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

/// One embedded asset.
struct Asset {
    /// The name under `/assets/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// `body`, gzipped.
    gzip: Vec<u8>,
    /// The FNV-1a hash of `body`, 16 hex digits.
    hash: String,
}

/// Every asset.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    let files: [(&str, &str, &str); 14] = [
        ("dom.js", include_str!("../assets/dom.js"), JS),
        ("controls.js", include_str!("../assets/controls.js"), JS),
        ("app.js", include_str!("../assets/app.js"), JS),
        ("alarms.js", include_str!("../assets/alarms.js"), JS),
        ("live.js", include_str!("../assets/live.js"), JS),
        ("app.css", include_str!("../assets/app.css"), CSS),
        ("theme.js", include_str!("../assets/theme.js"), JS),
        ("device.js", include_str!("../assets/device.js"), JS),
        ("agents.js", include_str!("../assets/agents.js"), JS),
        ("agents.css", include_str!("../assets/agents.css"), CSS),
        ("accounts.css", include_str!("../assets/accounts.css"), CSS),
        ("report.css", include_str!("../assets/report.css"), CSS),
        (
            "uplot.js",
            include_str!("../assets/vendor/uplot/uPlot.iife.min.js"),
            JS,
        ),
        (
            "uplot.css",
            include_str!("../assets/vendor/uplot/uPlot.min.css"),
            CSS,
        ),
    ];
    files
        .into_iter()
        .map(|(name, body, content_type)| Asset {
            name,
            content_type,
            body,
            gzip: gzip(body.as_bytes()),
            hash: format!("{:016x}", fnv1a(body.as_bytes())),
        })
        .collect()
});

/// The FNV-1a 64-bit hash (Fowler, Noll and Vo; <http://www.isthe.com/chongo/tech/comp/fnv/>).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The URL of the asset `name` (e.g. `app.js`), with its content hash.
///
/// # Panics
/// When no asset has that name: a typo in this crate's pages.
pub fn url(name: &str) -> String {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no asset {name}"));
    format!("/assets/{}?v={}", asset.name, asset.hash)
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 section 12.5.3: `gzip`, or
/// `x-gzip`, with a `q` other than 0).
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip")) && q > 0.0
    })
}

/// `GET /assets/NAME[?v=HASH]`.
pub fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    // Hashed and gzipped now, not on the first request.
    LazyLock::force(&ASSETS);
    warp::path!("assets" / String)
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(
            |name: String,
             query: String,
             accept_encoding: Option<String>,
             if_none_match: Option<String>| async move {
                let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
                    return Err(warp::reject::not_found());
                };
                let hashed = form_urlencoded::parse(query.as_bytes())
                    .any(|(k, v)| k == "v" && v == asset.hash.as_str());
                let cache = if hashed {
                    "public, max-age=31536000, immutable"
                } else {
                    "no-cache"
                };
                let etag = format!("\"{}\"", asset.hash);
                let builder = warp::http::Response::builder()
                    .header("cache-control", cache)
                    .header("etag", &etag)
                    .header("vary", "accept-encoding");
                let unchanged = if_none_match
                    .is_some_and(|m| m.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
                let response = if unchanged {
                    builder
                        .status(StatusCode::NOT_MODIFIED)
                        .body(warp::hyper::body::Bytes::new())
                } else if accept_encoding.as_deref().is_some_and(accepts_gzip) {
                    builder
                        .header("content-type", asset.content_type)
                        .header("content-encoding", "gzip")
                        .body(warp::hyper::body::Bytes::from_static(
                            // The assets live as long as the process.
                            asset.gzip.as_slice(),
                        ))
                } else {
                    builder
                        .header("content-type", asset.content_type)
                        .body(warp::hyper::body::Bytes::from_static(asset.body.as_bytes()))
                };
                Ok::<Response, warp::Rejection>(response.into_response())
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let u = url("app.js");
        assert!(u.starts_with("/assets/app.js?v="), "{u}");
        assert_eq!(u.len(), "/assets/app.js?v=".len() + 16);
        assert!(ASSETS.iter().all(|a| !a.gzip.is_empty()));
    }

    #[test]
    fn gzip_when_accepted() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("br"));
    }
}

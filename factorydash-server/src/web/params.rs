//! Typed requests: each route's query string (or JSON body) is a `Raw` struct of what the
//! client sent, validated once, in the route's filter, into the struct its handler takes
//! ([`FromQuery`], [`query`], [`json_body`]). A request refused here never reaches a
//! handler; the refusal is an [`ApiError`] (400) that says what is wrong.
//!
//! NUL characters are refused before any route, for every parameter, by
//! [`super::refuse_nul`].

use chrono::{DateTime, Utc};
use factorydash_core::TimeWindow;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use super::errors::ApiError;

/// A request type validated from what the client sent.
pub trait FromQuery: Sized + Send + 'static {
    /// What the client sent, as strings (every field optional: absence is judged in
    /// [`FromQuery::validate`], where the message says which is missing).
    type Raw: DeserializeOwned + Send + 'static;
    /// The request, or why it is refused.
    ///
    /// # Errors
    ///
    /// An [`ApiError`] (400) naming the parameter and what it must be.
    fn validate(raw: Self::Raw) -> Result<Self, ApiError>;
}

/// The route's query string as `T`, validated; refused with an [`ApiError`].
pub fn query<T: FromQuery>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::<T::Raw>()
        .and_then(|raw| async move { T::validate(raw).map_err(warp::reject::custom) })
}

/// The largest JSON body a client may send, in bytes.
const MAX_BODY: u64 = 16 * 1024;

/// The request's JSON body as `T`: at most 16 KiB, with a `Content-Length`. A body refused
/// here is answered (400), not passed on to the 404 of no route.
pub fn json_body<T: DeserializeOwned + Send + 'static>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY)
        .and(warp::body::bytes())
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
        .and_then(|body: Option<warp::hyper::body::Bytes>| async move {
            let body = body.ok_or_else(|| {
                warp::reject::custom(ApiError::bad_request(
                    "the body must be JSON of at most 16 KiB, with a Content-Length",
                ))
            })?;
            serde_json::from_slice::<T>(&body)
                .map_err(|e| {
                    if e.is_data() {
                        ApiError::bad_request(format!("the body is not the JSON expected: {e}"))
                    } else {
                        ApiError::bad_request(format!("the body is not JSON: {e}"))
                    }
                })
                .map_err(warp::reject::custom)
        })
}

/// `v` unless it is absent or empty (an empty form field is no filter).
pub fn text(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// `v`, required: absent or empty is refused as `"{name} is required"`.
pub fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    text(v).ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// A whole number in `range`, `default` when absent; else refused, naming `name`.
pub fn number(
    v: Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<usize>,
    default: usize,
) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} must be a whole number from {} to {}, got '{s}'",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// Whether `format` asks for CSV: `json` (the default, also when empty) or `csv`.
///
/// # Errors
/// 400 for any other format.
pub fn csv_format(format: Option<String>) -> Result<bool, ApiError> {
    match text(format).as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "format must be json or csv, got '{other}'"
        ))),
    }
}

/// A time (RFC 3339); absent or empty is `None`.
pub fn time(v: Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    text(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got '{s}'"
                    ))
                })
        })
        .transpose()
}

/// The window `from`..`to`: `to` defaults to now, `from` to `span` before `to`.
pub fn window(
    from: Option<String>,
    to: Option<String>,
    span: chrono::Duration,
) -> Result<TimeWindow, ApiError> {
    let to = time(to, "to")?.unwrap_or_else(Utc::now);
    let from = time(from, "from")?.unwrap_or(to - span);
    TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A query string as the client sent it: its (name, value) pairs in order, a name given
/// several times kept several times. For routes that take a parameter more than once
/// (`dataItemId`, [`items`]); the others take a struct of their fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Every value given for `name`, in the order given (empty values included).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The value given for `name`, `None` when it is absent.
    ///
    /// # Errors
    /// 400 when `name` is given more than once.
    pub fn one(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut given = self.0.iter().filter(|(n, _)| n == name);
        match (given.next(), given.next()) {
            (first, None) => Ok(first.map(|(_, v)| v.clone())),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be given at most once"
            ))),
        }
    }
}

/// The most data items one request may name ([`items`]).
pub const MAX_ITEMS: usize = 16;

/// A data item as a request names it, not yet looked up: a device's name, its agent (as
/// the server shows it) where given, and the data item's `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedItem {
    /// The device's name.
    pub device: String,
    /// The device's agent (its URL as the server shows it), where given.
    pub agent: Option<String>,
    /// The data item's `id` (`dataItemId`).
    pub data_item_id: String,
}

/// The data items a request names: `dataItemId` once or repeated (1 to [`MAX_ITEMS`]
/// times), each of the `device` (and `agent`) given once for all of them, or given as many
/// times as `dataItemId` and paired with it by position (the i-th `dataItemId` is of the
/// i-th `device` at the i-th `agent`). `agent` may be left out, or empty at a position
/// (no agent for that data item). In the order given; the same data item named twice is
/// kept twice here (taken once when looked up).
///
/// # Errors
/// 400 saying what is wrong: `dataItemId` or `device` missing or empty, more than
/// [`MAX_ITEMS`] data items, or `device` or `agent` given another number of times.
pub fn items(q: &QueryPairs) -> Result<Vec<NamedItem>, ApiError> {
    let ids = q.all("dataItemId");
    let devices = q.all("device");
    let agents = q.all("agent");
    if devices.iter().all(String::is_empty) {
        return Err(ApiError::bad_request("device is required"));
    }
    if ids.iter().all(String::is_empty) {
        return Err(ApiError::bad_request("dataItemId is required"));
    }
    let n = ids.len();
    if n > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ITEMS} data items in one request, got {n} dataItemId"
        )));
    }
    if ids.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("dataItemId must not be empty"));
    }
    if devices.len() != 1 && devices.len() != n {
        return Err(ApiError::bad_request(format!(
            "device must be given once (for every data item) or as many times as dataItemId \
             ({n}), paired by position; got {}",
            devices.len()
        )));
    }
    if devices.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("device must not be empty"));
    }
    if agents.len() > 1 && agents.len() != n {
        return Err(ApiError::bad_request(format!(
            "agent must be left out, given once (for every data item) or as many times as \
             dataItemId ({n}), paired by position; got {}",
            agents.len()
        )));
    }
    let at = |given: &[String], i: usize| given.get(i).or(given.first()).cloned();
    Ok(ids
        .into_iter()
        .enumerate()
        .map(|(i, data_item_id)| NamedItem {
            device: at(&devices, i).unwrap_or_default(),
            agent: text(at(&agents, i)),
            data_item_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> QueryPairs {
        QueryPairs(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn named(device: &str, agent: Option<&str>, id: &str) -> NamedItem {
        NamedItem {
            device: device.into(),
            agent: agent.map(str::to_owned),
            data_item_id: id.into(),
        }
    }

    #[test]
    fn items_pair_devices_and_agents_by_position_or_share_one() {
        assert_eq!(
            items(&pairs("device=M&dataItemId=x&dataItemId=y")).unwrap(),
            [named("M", None, "x"), named("M", None, "y")]
        );
        assert_eq!(
            items(&pairs(
                "device=M&agent=http://a&dataItemId=x&device=N&dataItemId=y&agent=&from=1"
            ))
            .unwrap(),
            [named("M", Some("http://a"), "x"), named("N", None, "y")]
        );
        assert_eq!(
            items(&pairs("dataItemId=x&device=M&agent=http://a&dataItemId=x")).unwrap(),
            [
                named("M", Some("http://a"), "x"),
                named("M", Some("http://a"), "x")
            ]
        );
        for (query, needle) in [
            ("dataItemId=x", "device is required"),
            ("device=M", "dataItemId is required"),
            ("device=M&dataItemId=", "dataItemId is required"),
            ("device=M&dataItemId=x&dataItemId=", "must not be empty"),
            (
                "device=M&device=N&device=O&dataItemId=x&dataItemId=y",
                "got 3",
            ),
            (
                "device=M&device=&dataItemId=x&dataItemId=y",
                "device must not be empty",
            ),
            ("device=M&agent=a&agent=b&dataItemId=x", "got 2"),
        ] {
            let e = items(&pairs(query)).unwrap_err();
            assert!(format!("{e:?}").contains(needle), "{query}: {e:?}");
        }
        let sixteen = "&dataItemId=x".repeat(MAX_ITEMS);
        assert_eq!(
            items(&pairs(&format!("device=M{sixteen}"))).unwrap().len(),
            16
        );
        let e = items(&pairs(&format!("device=M{sixteen}&dataItemId=y"))).unwrap_err();
        assert!(format!("{e:?}").contains("at most 16"), "{e:?}");
    }

    #[test]
    fn a_single_parameter_given_twice_is_refused() {
        let q = pairs("from=a&to=b&from=c");
        assert_eq!(q.one("to").unwrap().as_deref(), Some("b"));
        assert_eq!(q.one("limit").unwrap(), None);
        assert!(format!("{:?}", q.one("from").unwrap_err()).contains("at most once"));
    }
}

/// `?done=`: what a page's last form did, as a code the page turns into its own words
/// (nothing from the address is shown as it is).
#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    /// The code.
    pub done: Option<String>,
}

/// The request's [`DoneQuery`]; none when the query is not one.
pub fn done_query() -> impl Filter<Extract = (DoneQuery,), Error = std::convert::Infallible> + Clone
{
    warp::query::<DoneQuery>()
        .or(warp::any().map(DoneQuery::default))
        .unify()
}

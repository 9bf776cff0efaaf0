//! Operators' reasons for stops: what a person at the machine says a stop was
//! ("waiting for material", "tool change"), beside the cause the data gives
//! ([`crate::summary::stop_cause`]). A reason names its stop by the device, the Execution
//! data item and the stop's start (as [`crate::summary::StopRecord`] gives them), and
//! keeps who gave it and when. Plain data, its checks and the Pareto of a stop list by
//! reason; the stores keep reasons (`factorydash_store::Store::put_stop_reason`), the
//! server takes them from operators on the stop list.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use factorydash_core::reasons::{by_reason, StopReason, NO_REASON};
//!
//! let began = Utc.with_ymd_and_hms(2026, 3, 2, 8, 15, 0).unwrap();
//! let mut r = StopReason::new("http://10.0.0.5:5000", "Mazak01", "execution", began);
//! r.reason = "Waiting for material".into();
//! r.given_by = "ada".into();
//! assert!(r.check().is_ok());
//!
//! // Two stops: one with that reason (600 s), one without (60 s).
//! let p = by_reason([(600.0, Some("Waiting for material")), (60.0, None)]);
//! assert_eq!(p.by_time[0].cause, "Waiting for material");
//! assert_eq!(p.by_time[1].cause, NO_REASON);
//! assert_eq!(p.stops, 2);
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::downtime::{pareto, Pareto};

/// The longest reason, in bytes.
pub const MAX_REASON_LEN: usize = 64;
/// The longest comment, in bytes.
pub const MAX_COMMENT_LEN: usize = 500;
/// The most reasons a configuration lists.
pub const MAX_REASON_CHOICES: usize = 100;
/// The row of a stop list's Pareto holding the stops nobody gave a reason.
pub const NO_REASON: &str = "(no reason given)";

/// What an operator said one stop was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReason {
    /// The agent's base URL, as the dashboard shows it (no credentials).
    pub agent: String,
    /// The device's name in its agent's model.
    pub device: String,
    /// The id of the Execution data item that stopped.
    pub item: String,
    /// When the stop began (UTC, to the microsecond): with the three above, which stop.
    pub began: DateTime<Utc>,
    /// The reason, one of the configuration's `stop-reasons` when it was given.
    pub reason: String,
    /// Free text, one line.
    pub comment: Option<String>,
    /// When it was given (UTC).
    pub given_at: DateTime<Utc>,
    /// Who gave it (a user's name, `token:admin`, or `open`).
    pub given_by: String,
}

/// What is wrong with a [`StopReason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReasonError(pub String);

impl StopReason {
    /// The reason of the stop of `device` at `agent` that `item` began at `began`, with no
    /// reason yet, given now by nobody.
    pub fn new(agent: &str, device: &str, item: &str, began: DateTime<Utc>) -> Self {
        StopReason {
            agent: agent.to_owned(),
            device: device.to_owned(),
            item: item.to_owned(),
            began,
            reason: String::new(),
            comment: None,
            given_at: Utc::now(),
            given_by: String::new(),
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// An empty agent, device or item; a reason that is blank, longer than
    /// [`MAX_REASON_LEN`] bytes or holds a control character; a comment longer than
    /// [`MAX_COMMENT_LEN`] bytes or with a control character. (Whether the reason is one
    /// of the configuration's is for the caller, who has the configuration.)
    pub fn check(&self) -> Result<(), ReasonError> {
        if self.agent.is_empty() || self.device.is_empty() || self.item.is_empty() {
            return Err(ReasonError(
                "a stop's reason names its device's agent, its name and its Execution data item"
                    .into(),
            ));
        }
        check_reason(&self.reason)?;
        if let Some(c) = &self.comment {
            if c.len() > MAX_COMMENT_LEN || c.chars().any(char::is_control) {
                return Err(ReasonError(format!(
                    "a comment has at most {MAX_COMMENT_LEN} bytes on one line"
                )));
            }
        }
        Ok(())
    }
}

/// Checks one reason's text: 1 to [`MAX_REASON_LEN`] bytes, not blank, no control
/// character, and not a name a Pareto gives its own rows ([`NO_REASON`],
/// [`crate::downtime::OTHER`], [`crate::downtime::NO_DATA`]).
///
/// # Errors
/// [`ReasonError`] saying which rule it breaks.
pub fn check_reason(reason: &str) -> Result<(), ReasonError> {
    if reason.trim().is_empty()
        || reason.len() > MAX_REASON_LEN
        || reason.chars().any(char::is_control)
    {
        return Err(ReasonError(format!(
            "a reason has 1 to {MAX_REASON_LEN} bytes, not blank, without control characters, got '{}'",
            reason.chars().take(80).collect::<String>()
        )));
    }
    if [NO_REASON, crate::downtime::OTHER, crate::downtime::NO_DATA].contains(&reason) {
        return Err(ReasonError(format!(
            "'{reason}' names a row of the Pareto itself; choose another reason"
        )));
    }
    Ok(())
}

/// The Pareto of a stop list by operators' reason: each stop's seconds and its reason
/// (`None`: nobody gave one, counted under [`NO_REASON`]), summed per reason, ranked by
/// time and by count as [`crate::downtime::pareto`] ranks causes (its row caps
/// included). Negative, NaN and infinite seconds count as 0.
pub fn by_reason<'a>(stops: impl IntoIterator<Item = (f64, Option<&'a str>)>) -> Pareto {
    // Reason → (seconds, stops).
    let mut rows: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (s, reason) in stops {
        let row = rows.entry(reason.unwrap_or(NO_REASON)).or_default();
        row.0 += if s.is_finite() && s > 0.0 { s } else { 0.0 };
        row.1 += 1.0;
    }
    let seconds = rows.iter().map(|(r, v)| ((*r).to_owned(), v.0)).collect();
    let count = rows.into_iter().map(|(r, v)| (r.to_owned(), v.1)).collect();
    pareto(&seconds, &count, 0.0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn reason() -> StopReason {
        let began = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        let mut r = StopReason::new("http://a:5000", "M1", "exec", began);
        r.reason = "Tool change".into();
        r
    }

    #[test]
    fn checks_refuse_what_cannot_be_shown() {
        assert!(reason().check().is_ok());
        for change in [
            |r: &mut StopReason| r.reason = String::new(),
            |r: &mut StopReason| r.reason = "  ".into(),
            |r: &mut StopReason| r.reason = "a\u{7}".into(),
            |r: &mut StopReason| r.reason = "x".repeat(MAX_REASON_LEN + 1),
            |r: &mut StopReason| r.reason = NO_REASON.into(),
            |r: &mut StopReason| r.reason = "OTHER".into(),
            |r: &mut StopReason| r.reason = "NO DATA".into(),
            |r: &mut StopReason| r.comment = Some("two\nlines".into()),
            |r: &mut StopReason| r.comment = Some("x".repeat(MAX_COMMENT_LEN + 1)),
            |r: &mut StopReason| r.item = String::new(),
            |r: &mut StopReason| r.device = String::new(),
        ] {
            let mut r = reason();
            change(&mut r);
            assert!(r.check().is_err(), "{r:?}");
        }
        let mut r = reason();
        r.reason = "x".repeat(MAX_REASON_LEN);
        r.comment = Some("é".repeat(MAX_COMMENT_LEN / 2));
        assert!(r.check().is_ok());
    }

    #[test]
    fn the_pareto_by_reason_sums_each_reason_and_the_stops_without_one() {
        let p = by_reason([
            (100.0, Some("Tool change")),
            (300.0, None),
            (50.0, Some("Tool change")),
            (10.0, Some("Material")),
            (f64::NAN, Some("Material")),
            (-5.0, None),
        ]);
        let rows: Vec<(&str, f64, u64)> = p
            .by_time
            .iter()
            .map(|l| (l.cause.as_str(), l.seconds, l.stops))
            .collect();
        assert_eq!(
            rows,
            [
                (NO_REASON, 300.0, 2),
                ("Tool change", 150.0, 2),
                ("Material", 10.0, 2)
            ]
        );
        assert_eq!((p.seconds, p.stops), (460.0, 6));
        assert!((p.by_time.last().unwrap().cumulative - 1.0).abs() < 1e-12);
        assert_eq!(by_reason([]).stops, 0);
    }
}

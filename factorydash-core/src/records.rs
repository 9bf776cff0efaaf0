//! Device records: what an admin says about a device beyond what its agent's model does:
//! a display name, the layout cell it stands in, a description and its ideal cycle time.
//! Plain data and its checks; the stores keep them (`factorydash_store::Store::
//! device_records`), the server edits them on its admin page and shows them on the board.
//!
//! ```
//! use factorydash_core::records::DeviceRecord;
//!
//! let mut r = DeviceRecord::new("http://10.0.0.5:5000", "Mazak01");
//! r.display_name = Some("Mazak VTC 1 (bay 3)".into());
//! r.ideal_cycle_time = Some(92.5);
//! assert!(r.check().is_ok());
//! r.ideal_cycle_time = Some(-1.0);
//! assert!(r.check().is_err());
//! ```

use chrono::{DateTime, Utc};

use crate::DeviceKey;

/// The longest display name, in bytes.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 2_000;
/// The longest cell name, in bytes (as [`crate::layout::MAX_NAME_LEN`]).
pub const MAX_CELL_LEN: usize = crate::layout::MAX_NAME_LEN;
/// The longest ideal cycle time, in seconds: a week.
pub const MAX_IDEAL_CYCLE_TIME: f64 = 7.0 * 24.0 * 3600.0;
/// The most records a store keeps.
pub const MAX_RECORDS: usize = 100_000;

/// What an admin says about one device (its agent and name, as [`DeviceKey`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// The agent's base URL, as the dashboard shows it (no credentials).
    pub agent: String,
    /// The device's name in its agent's model.
    pub device: String,
    /// The name shown on the board instead of the device's; `None`: the device's.
    pub display_name: Option<String>,
    /// The layout cell the device stands in (a cell of the configuration's `[[cell]]`
    /// tables, by name), before any cell's name patterns; `None`: as the patterns say.
    /// Its line is the cell's.
    pub cell: Option<String>,
    /// Free text: where it stands, who to call.
    pub description: Option<String>,
    /// The ideal cycle time, in seconds per part: ISO 22400-2's planned run time per
    /// item, the numerator of OEE's performance factor (ideal cycle time × produced
    /// quantity / run time). `None`: not known.
    pub ideal_cycle_time: Option<f64>,
    /// When it was last changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// Who last changed it (a user's name, or `token:admin`).
    pub updated_by: String,
}

/// What is wrong with a [`DeviceRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

impl DeviceRecord {
    /// A record of `device` at `agent` that says nothing yet, changed now by nobody.
    pub fn new(agent: &str, device: &str) -> Self {
        DeviceRecord {
            agent: agent.to_owned(),
            device: device.to_owned(),
            display_name: None,
            cell: None,
            description: None,
            ideal_cycle_time: None,
            updated_at: Utc::now(),
            updated_by: String::new(),
        }
    }

    /// The device it is about.
    pub fn key(&self) -> DeviceKey {
        DeviceKey::new(&self.agent, &self.device)
    }

    /// Whether it says nothing (every field `None`): such a record need not be kept.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.cell.is_none()
            && self.description.is_none()
            && self.ideal_cycle_time.is_none()
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// An empty agent or device; a display name that is blank, longer than
    /// [`MAX_DISPLAY_NAME_LEN`] bytes or holds a control character; a blank cell or one
    /// longer than [`MAX_CELL_LEN`]; a description longer than [`MAX_DESCRIPTION_LEN`]
    /// bytes or with control characters other than line breaks and tabs; an ideal
    /// cycle time that is not a finite number of seconds in (0, [`MAX_IDEAL_CYCLE_TIME`]].
    /// (Whether the cell is one of the layout's is for the caller, who has the layout.)
    pub fn check(&self) -> Result<(), RecordError> {
        let bad = |m: String| Err(RecordError(m));
        if self.agent.is_empty() || self.device.is_empty() {
            return bad("a record names its device's agent and name".into());
        }
        if let Some(n) = &self.display_name {
            if n.trim().is_empty()
                || n.len() > MAX_DISPLAY_NAME_LEN
                || n.chars().any(char::is_control)
            {
                return bad(format!(
                    "a display name has 1 to {MAX_DISPLAY_NAME_LEN} bytes, not blank, without control characters"
                ));
            }
        }
        if let Some(c) = &self.cell {
            if c.trim().is_empty() || c.len() > MAX_CELL_LEN {
                return bad(format!("a cell name has 1 to {MAX_CELL_LEN} bytes"));
            }
        }
        if let Some(d) = &self.description {
            if d.len() > MAX_DESCRIPTION_LEN
                || d.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return bad(format!(
                    "a description has at most {MAX_DESCRIPTION_LEN} bytes, without control characters"
                ));
            }
        }
        if let Some(t) = self.ideal_cycle_time {
            if !(t.is_finite() && t > 0.0 && t <= MAX_IDEAL_CYCLE_TIME) {
                return bad(format!(
                    "an ideal cycle time is a number of seconds over 0 and at most {MAX_IDEAL_CYCLE_TIME}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_refuse_what_cannot_be_shown_or_computed() {
        let ok = DeviceRecord::new("http://a:5000", "M1");
        assert!(ok.check().is_ok() && ok.is_empty());
        for change in [
            |r: &mut DeviceRecord| r.display_name = Some(" ".into()),
            |r: &mut DeviceRecord| r.display_name = Some("a\u{7}b".into()),
            |r: &mut DeviceRecord| r.display_name = Some("x".repeat(129)),
            |r: &mut DeviceRecord| r.cell = Some(String::new()),
            |r: &mut DeviceRecord| r.description = Some("a\u{0}".into()),
            |r: &mut DeviceRecord| r.ideal_cycle_time = Some(0.0),
            |r: &mut DeviceRecord| r.ideal_cycle_time = Some(f64::NAN),
            |r: &mut DeviceRecord| r.ideal_cycle_time = Some(f64::INFINITY),
            |r: &mut DeviceRecord| r.ideal_cycle_time = Some(MAX_IDEAL_CYCLE_TIME * 2.0),
            |r: &mut DeviceRecord| r.device = String::new(),
        ] {
            let mut r = ok.clone();
            change(&mut r);
            assert!(r.check().is_err(), "{r:?}");
        }
        let mut r = ok.clone();
        r.description = Some("Bay 3\nCall line 2 lead".into());
        r.ideal_cycle_time = Some(MAX_IDEAL_CYCLE_TIME);
        assert!(r.check().is_ok());
        assert!(!r.is_empty());
    }
}

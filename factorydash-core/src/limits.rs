//! The limits a device model sets on a data item's values, for charts: MTConnect Part 2,
//! a DataItem's `Constraints` (`Minimum`, `Maximum`, `Nominal`) and a Component's
//! `Configuration/Specifications` (`Specification` with `Maximum`, `Minimum`, `Nominal`,
//! `UpperLimit`, `LowerLimit`, `UpperWarning`, `LowerWarning`; since MTConnect 1.8
//! `ProcessSpecification`, the same names grouped in `ControlLimits`,
//! `SpecificationLimits` and `AlarmLimits`).
//!
//! ```
//! use factorydash_core::limits::{Limit, LimitKind, LimitSource};
//!
//! let max = Limit::new(LimitKind::Maximum, 120.0, LimitSource::Specification);
//! assert_eq!(max.kind.as_str(), "Maximum");
//! assert_eq!(max.kind.label(), "max");
//! assert_eq!(serde_json::to_value(&max).unwrap()["source"], "specification");
//! ```

use serde::{Deserialize, Serialize};

/// Which limit: the element's name in the device model (MTConnect Part 2,
/// "Constraints" and "Specification"). Serialised as written there (`UpperLimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LimitKind {
    /// `Maximum`: the largest value the data item can take.
    Maximum,
    /// `UpperLimit`: above it the value is out of specification.
    UpperLimit,
    /// `UpperWarning`: above it a warning is due.
    UpperWarning,
    /// `Nominal`: the ideal value.
    Nominal,
    /// `LowerWarning`: below it a warning is due.
    LowerWarning,
    /// `LowerLimit`: below it the value is out of specification.
    LowerLimit,
    /// `Minimum`: the smallest value the data item can take.
    Minimum,
}

impl LimitKind {
    /// Every kind, from the top down.
    pub const ALL: [LimitKind; 7] = [
        LimitKind::Maximum,
        LimitKind::UpperLimit,
        LimitKind::UpperWarning,
        LimitKind::Nominal,
        LimitKind::LowerWarning,
        LimitKind::LowerLimit,
        LimitKind::Minimum,
    ];

    /// The element's name: `Maximum`, `UpperLimit`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Maximum => "Maximum",
            LimitKind::UpperLimit => "UpperLimit",
            LimitKind::UpperWarning => "UpperWarning",
            LimitKind::Nominal => "Nominal",
            LimitKind::LowerWarning => "LowerWarning",
            LimitKind::LowerLimit => "LowerLimit",
            LimitKind::Minimum => "Minimum",
        }
    }

    /// The kind of the element named `name` (its local name, exactly as the standard
    /// spells it), if it is one.
    pub fn from_element(name: &[u8]) -> Option<Self> {
        LimitKind::ALL
            .into_iter()
            .find(|k| k.as_str().as_bytes() == name)
    }

    /// How a chart labels it: `max`, `upper limit`, `upper warning`, `nominal`, ….
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Maximum => "max",
            LimitKind::UpperLimit => "upper limit",
            LimitKind::UpperWarning => "upper warning",
            LimitKind::Nominal => "nominal",
            LimitKind::LowerWarning => "lower warning",
            LimitKind::LowerLimit => "lower limit",
            LimitKind::Minimum => "min",
        }
    }
}

/// Where a limit comes from in the device model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LimitSource {
    /// The data item's own `Constraints` (serialised `constraints`).
    Constraints,
    /// A `Specification` or `ProcessSpecification` of its component (serialised
    /// `specification`).
    Specification,
}

/// One limit on a data item's values, in the data item's units (a specification's
/// `units`, when given, is kept in [`Limit::units`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limit {
    /// Which limit; serialised as `type`.
    #[serde(rename = "type")]
    pub kind: LimitKind,
    /// Its value (finite).
    pub value: f64,
    /// Where it comes from.
    pub source: LimitSource,
    /// The specification's `id`, for [`LimitSource::Specification`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specification_id: Option<String>,
    /// The specification's `name`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A `ProcessSpecification`'s group: `ControlLimits`, `SpecificationLimits` or
    /// `AlarmLimits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The specification's `units` (MTConnect units, e.g. `MILLIMETER`), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
}

impl Limit {
    /// A limit of `kind` at `value` from `source`, with nothing else said of it.
    pub fn new(kind: LimitKind, value: f64, source: LimitSource) -> Self {
        Limit {
            kind,
            value,
            source,
            specification_id: None,
            name: None,
            group: None,
            units: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_element_names() {
        for k in LimitKind::ALL {
            assert_eq!(LimitKind::from_element(k.as_str().as_bytes()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(LimitKind::from_element(b"maximum"), None);
    }
}

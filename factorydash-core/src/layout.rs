//! The plant's layout: cells (and the lines they belong to), each holding the devices
//! whose names match its patterns, so that a board can group its tiles the way the shop
//! floor is laid out.
//!
//! ```
//! use factorydash_core::layout::{CellSpec, Layout, Placement};
//!
//! let layout = Layout::new(vec![
//!     CellSpec { name: "Cell 1".into(), line: Some("Line A".into()), devices: vec!["Mazak*".into()] },
//!     CellSpec { name: "Cell 2".into(), line: None, devices: vec!["http://10.0.0.5:5000|GF*".into()] },
//! ])?;
//! assert_eq!(layout.place("http://a:5000", "Mazak01"), Placement::Cell(0));
//! assert_eq!(layout.place("http://10.0.0.5:5000/", "GFAgie01"), Placement::Cell(1));
//! assert_eq!(layout.place("http://a:5000", "GFAgie01"), Placement::Unassigned);
//! # Ok::<(), factorydash_core::layout::LayoutError>(())
//! ```
//!
//! # Behavior
//! - A pattern is a glob on the device's name: `*` is any run of characters (none
//!   included), `?` exactly one character, everything else itself, case included.
//!   `AGENT|NAME` also asks the agent's base URL (as the dashboard shows it,
//!   without its user and password and without a final `/`) to match `AGENT`, a glob too.
//! - A device goes to the **first** cell, in the layout's order, one of whose patterns it
//!   matches; a device that matches none is [`Placement::Unassigned`].
//! - Matching takes at most (pattern length + 1) × (name length + 1) steps, whatever the
//!   pattern: no backtracking blow-up (see [`glob_match`]).
//! - Everything is bounded: [`MAX_CELLS`] cells, [`MAX_PATTERNS`] patterns in a cell,
//!   patterns of [`MAX_PATTERN_LEN`] bytes and names of [`MAX_NAME_LEN`] bytes at most.

use std::collections::HashSet;

/// The most cells a layout holds.
pub const MAX_CELLS: usize = 1_000;
/// The most device patterns one cell holds.
pub const MAX_PATTERNS: usize = 1_000;
/// The longest device pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 200;
/// The longest cell or line name, in bytes.
pub const MAX_NAME_LEN: usize = 100;
/// The name of the group of devices that match no cell. No cell may take it.
pub const UNASSIGNED: &str = "Unassigned";

/// One cell as written in the configuration, before it is checked ([`Layout::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellSpec {
    /// The cell's name, unique in the layout (e.g. `Cell 1`).
    pub name: String,
    /// The line it belongs to, if any (e.g. `Line A`).
    pub line: Option<String>,
    /// Its device patterns: `NAME` or `AGENT|NAME` globs (see the module docs).
    pub devices: Vec<String>,
}

/// Why a layout is refused: each names the cell (by its place, 1-based, and name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// More than [`MAX_CELLS`] cells.
    #[error("the layout has {0} cells; at most {MAX_CELLS} are allowed")]
    TooManyCells(usize),
    /// A cell (or its line) with an empty or blank name.
    #[error("cell {index}: its {what} is empty")]
    EmptyName {
        /// The cell's place in the layout, from 1.
        index: usize,
        /// `name` or `line`.
        what: &'static str,
    },
    /// A cell or line name longer than [`MAX_NAME_LEN`] bytes.
    #[error("cell {index}: its {what} is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong {
        /// The cell's place in the layout, from 1.
        index: usize,
        /// `name` or `line`.
        what: &'static str,
    },
    /// A cell named [`UNASSIGNED`], the name of the devices that match no cell.
    #[error(
        "cell {index}: '{UNASSIGNED}' is the name of the devices no cell takes; choose another"
    )]
    ReservedName {
        /// The cell's place in the layout, from 1.
        index: usize,
    },
    /// Two cells of one name.
    #[error("cell {index}: another cell is already named '{name}'")]
    DuplicateCell {
        /// The second cell's place in the layout, from 1.
        index: usize,
        /// Their name.
        name: String,
    },
    /// A cell without patterns.
    #[error("cell {index} ('{name}'): it lists no devices")]
    NoDevices {
        /// The cell's place in the layout, from 1.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A cell with more than [`MAX_PATTERNS`] patterns.
    #[error(
        "cell {index} ('{name}'): {count} device patterns; at most {MAX_PATTERNS} are allowed"
    )]
    TooManyPatterns {
        /// The cell's place in the layout, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// How many it lists.
        count: usize,
    },
    /// An empty pattern, or one longer than [`MAX_PATTERN_LEN`] bytes, or with an empty
    /// side of `|`, or more than one `|`.
    #[error("cell {index} ('{name}'): device pattern '{pattern}' {why}")]
    BadPattern {
        /// The cell's place in the layout, from 1.
        index: usize,
        /// Its name.
        name: String,
        /// The pattern, cut to [`MAX_PATTERN_LEN`] bytes.
        pattern: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A checked device pattern: a name glob and, for `AGENT|NAME`, an agent glob.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    agent: Option<String>,
    name: String,
}

impl Pattern {
    fn matches(&self, agent: &str, device: &str) -> bool {
        glob_match(&self.name, device)
            && self
                .agent
                .as_deref()
                .is_none_or(|a| glob_match(a.trim_end_matches('/'), agent.trim_end_matches('/')))
    }
}

/// A checked cell of a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    name: String,
    line: Option<String>,
    patterns: Vec<Pattern>,
}

impl Cell {
    /// The cell's name, unique in its layout.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The line it belongs to, if the configuration says.
    pub fn line(&self) -> Option<&str> {
        self.line.as_deref()
    }
}

/// Where [`Layout::place`] puts a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// In the cell at this index of [`Layout::cells`].
    Cell(usize),
    /// In no cell: its name matches no pattern.
    Unassigned,
}

/// The plant's cells, checked, in the order they are shown: grouped by line (lines in
/// the order of their first cell in the configuration, cells without a line last), then
/// in the configuration's order. The empty layout (the [`Default`]) has no cell: every
/// device is unassigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    cells: Vec<Cell>,
    /// Devices placed by name before any pattern ([`Layout::with_assignments`]): agent →
    /// device → cell index.
    assigned: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
}

/// `s`'s first `max` bytes at most, cut at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Layout {
    /// The layout of `cells`, in the configuration's order; a device goes to the first
    /// cell (in that order, not the shown one) that matches it.
    ///
    /// # Errors
    /// More than [`MAX_CELLS`] cells; a cell whose name is empty, blank, longer than
    /// [`MAX_NAME_LEN`] bytes, [`UNASSIGNED`] or another cell's; an empty line name; a cell
    /// without patterns or with more than [`MAX_PATTERNS`]; a pattern that is empty,
    /// longer than [`MAX_PATTERN_LEN`] bytes, or has more than one `|` or an empty side of
    /// it. Cell names are compared as written (after trimming spaces at either end).
    pub fn new(cells: Vec<CellSpec>) -> Result<Layout, LayoutError> {
        if cells.len() > MAX_CELLS {
            return Err(LayoutError::TooManyCells(cells.len()));
        }
        let mut seen = HashSet::new();
        let mut checked = Vec::with_capacity(cells.len());
        for (i, spec) in cells.into_iter().enumerate() {
            let index = i + 1;
            let name = spec.name.trim().to_owned();
            if name.is_empty() {
                return Err(LayoutError::EmptyName {
                    index,
                    what: "name",
                });
            }
            if name.len() > MAX_NAME_LEN {
                return Err(LayoutError::NameTooLong {
                    index,
                    what: "name",
                });
            }
            if name.eq_ignore_ascii_case(UNASSIGNED) {
                return Err(LayoutError::ReservedName { index });
            }
            let line = match spec.line.as_deref().map(str::trim) {
                None => None,
                Some("") => {
                    return Err(LayoutError::EmptyName {
                        index,
                        what: "line",
                    })
                }
                Some(l) if l.len() > MAX_NAME_LEN => {
                    return Err(LayoutError::NameTooLong {
                        index,
                        what: "line",
                    })
                }
                Some(l) => Some(l.to_owned()),
            };
            if !seen.insert(name.clone()) {
                return Err(LayoutError::DuplicateCell { index, name });
            }
            if spec.devices.is_empty() {
                return Err(LayoutError::NoDevices { index, name });
            }
            if spec.devices.len() > MAX_PATTERNS {
                return Err(LayoutError::TooManyPatterns {
                    index,
                    name,
                    count: spec.devices.len(),
                });
            }
            let mut patterns = Vec::with_capacity(spec.devices.len());
            for p in &spec.devices {
                let bad = |why| LayoutError::BadPattern {
                    index,
                    name: name.clone(),
                    pattern: cut(p, MAX_PATTERN_LEN),
                    why,
                };
                if p.is_empty() {
                    return Err(bad("is empty"));
                }
                if p.len() > MAX_PATTERN_LEN {
                    return Err(bad("is longer than 200 bytes"));
                }
                let pattern = match p.split_once('|') {
                    None => Pattern {
                        agent: None,
                        name: p.clone(),
                    },
                    Some((_, n)) if n.contains('|') => return Err(bad("has more than one '|'")),
                    Some((a, n)) if a.is_empty() || n.is_empty() => {
                        return Err(bad("has an empty side of '|' (write AGENT|NAME)"))
                    }
                    Some((a, n)) => Pattern {
                        agent: Some(a.to_owned()),
                        name: n.to_owned(),
                    },
                };
                patterns.push(pattern);
            }
            checked.push(Cell {
                name,
                line,
                patterns,
            });
        }
        Ok(Layout {
            cells: checked,
            assigned: Default::default(),
        })
    }

    /// Whether the layout has no cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells, in the configuration's order.
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// The index of the cell named `name` (as [`Cell::name`] gives it), if any.
    pub fn cell_named(&self, name: &str) -> Option<usize> {
        self.cells.iter().position(|c| c.name == name)
    }

    /// The indices of [`Layout::cells`] in the order they are shown: by line (lines in
    /// the order their first cell appears, cells without a line last), then as
    /// configured.
    pub fn shown_order(&self) -> Vec<usize> {
        let mut lines: Vec<Option<&str>> = Vec::new();
        for c in &self.cells {
            if c.line.is_some() && !lines.contains(&c.line()) {
                lines.push(c.line());
            }
        }
        lines.push(None);
        let mut order: Vec<usize> = (0..self.cells.len()).collect();
        order.sort_by_key(|&i| lines.iter().position(|l| *l == self.cells[i].line()));
        order
    }

    /// Where the device `device` of the agent `agent` (its base URL as the dashboard
    /// shows it) goes: the first cell with a matching pattern, or
    /// [`Placement::Unassigned`]. Costs at most the sum over the patterns tried of
    /// (pattern length + 1) × (name length + 1) steps.
    pub fn place(&self, agent: &str, device: &str) -> Placement {
        if let Some(&i) = self.assigned.get(agent).and_then(|d| d.get(device)) {
            return Placement::Cell(i);
        }
        self.cells
            .iter()
            .position(|c| c.patterns.iter().any(|p| p.matches(agent, device)))
            .map_or(Placement::Unassigned, Placement::Cell)
    }
}

impl Layout {
    /// This layout with devices placed in cells by name, before any pattern (an admin's
    /// device records, [`crate::records::DeviceRecord::cell`]): each `(agent, device,
    /// cell name)` puts that device of that agent (its base URL as the dashboard shows
    /// it) in the cell of that name. An assignment to a name that is not one of the
    /// layout's cells is left out (the device goes where the patterns say); the last of
    /// two for one device counts.
    pub fn with_assignments<'a>(
        &self,
        assignments: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Layout {
        let mut out = Layout {
            cells: self.cells.clone(),
            assigned: Default::default(),
        };
        for (agent, device, cell) in assignments {
            if let Some(i) = out.cell_named(cell) {
                out.assigned
                    .entry(agent.to_owned())
                    .or_default()
                    .insert(device.to_owned(), i);
            }
        }
        out
    }
}

/// Whether `text` matches the glob `pattern`: `*` matches any run of characters (none
/// included), `?` exactly one character, anything else itself (case-sensitive; there is
/// no escape and no character class).
///
/// The classic two-cursor match, which on a mismatch goes back only to just after the
/// last `*` seen: at most (`pattern` length + 1) × (`text` length + 1) steps, counted in
/// characters, never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `*`: its pattern index and the text index it takes up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    // The last `*` takes one more character.
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(name: &str, line: Option<&str>, devices: &[&str]) -> CellSpec {
        CellSpec {
            name: name.into(),
            line: line.map(Into::into),
            devices: devices.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("Mazak*", "Mazak01", true),
            ("Mazak*", "Mazak", true),
            ("Mazak*", "mazak01", false),
            ("Hurco0?", "Hurco01", true),
            ("Hurco0?", "Hurco012", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*Agie*", "GFAgie01", true),
            ("?", "é", true),
            ("a**b", "ab", true),
        ] {
            assert_eq!(glob_match(p, t), m, "{p} on {t}");
        }
    }

    #[test]
    fn a_hostile_pattern_is_quick() {
        let pattern = "*a".repeat(100);
        let text = "a".repeat(99) + "b";
        let started = std::time::Instant::now();
        assert!(!glob_match(&pattern, &text));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn the_first_matching_cell_wins_and_the_rest_are_unassigned() {
        let layout = Layout::new(vec![
            cell("Cell 1", Some("Line A"), &["Mazak*"]),
            cell("Cell 2", Some("Line B"), &["*"]),
            cell("Cell 3", Some("Line A"), &["http://10.0.0.5:5000|GF*"]),
        ])
        .unwrap();
        assert_eq!(layout.place("http://x", "Mazak1"), Placement::Cell(0));
        assert_eq!(layout.place("http://x", "GFAgie"), Placement::Cell(1));
        let assigned = layout.with_assignments([
            ("http://x", "GFAgie", layout.cells()[0].name()),
            ("http://x", "Mazak1", "no such cell"),
        ]);
        assert_eq!(assigned.place("http://x", "GFAgie"), Placement::Cell(0));
        assert_eq!(assigned.place("http://y", "GFAgie"), Placement::Cell(1));
        assert_eq!(assigned.place("http://x", "Mazak1"), Placement::Cell(0));
        // Shown by line: Line A's cells, then Line B's.
        assert_eq!(layout.shown_order(), vec![0, 2, 1]);
        let only = Layout::new(vec![cell("C", None, &["http://10.0.0.5:5000/|GF*"])]).unwrap();
        assert_eq!(
            only.place("http://10.0.0.5:5000", "GFAgie"),
            Placement::Cell(0)
        );
        assert_eq!(
            only.place("http://10.0.0.6:5000", "GFAgie"),
            Placement::Unassigned
        );
        assert_eq!(only.cell_named("C"), Some(0));
        assert!(Layout::default().is_empty());
    }

    #[test]
    fn bad_layouts_are_refused_with_a_reason() {
        let err = |cells: Vec<CellSpec>| Layout::new(cells).unwrap_err().to_string();
        assert_eq!(
            err(vec![cell(" ", None, &["a"])]),
            "cell 1: its name is empty"
        );
        assert_eq!(
            err(vec![cell("A", None, &["a"]), cell("A", None, &["b"])]),
            "cell 2: another cell is already named 'A'"
        );
        assert_eq!(
            err(vec![cell("A", Some(""), &["a"])]),
            "cell 1: its line is empty"
        );
        assert_eq!(
            err(vec![cell("A", None, &[])]),
            "cell 1 ('A'): it lists no devices"
        );
        assert!(err(vec![cell("unassigned", None, &["a"])]).contains("choose another"));
        assert!(err(vec![cell("A", None, &["a|"])]).contains("empty side"));
        assert!(err(vec![cell("A", None, &["a|b|c"])]).contains("more than one"));
        assert!(err(vec![cell("A", None, &[&"x".repeat(201)])]).contains("longer than 200"));
        assert!(err(vec![cell(&"x".repeat(101), None, &["a"])]).contains("longer than 100"));
        let many = (0..=MAX_CELLS)
            .map(|i| cell(&i.to_string(), None, &["a"]))
            .collect();
        assert_eq!(
            err(many),
            "the layout has 1001 cells; at most 1000 are allowed"
        );
        let patterns: Vec<String> = (0..=MAX_PATTERNS).map(|i| i.to_string()).collect();
        let spec = CellSpec {
            name: "A".into(),
            line: None,
            devices: patterns,
        };
        assert!(err(vec![spec]).contains("at most 1000"));
    }
}

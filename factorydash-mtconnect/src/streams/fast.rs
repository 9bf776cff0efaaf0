//! The fast path: the plain observation element and the DeviceStream/ComponentStream
//! structure around it, read without quick-xml's event machinery (every other shape goes
//! through quick-xml, with the same result); and the attribute scanner it shares with the
//! quick-xml path.
//!
//! The functions called across the modules of `streams/` on the hot path are `#[inline]`:
//! they were one module (one codegen unit) before the split, and stay inlinable now.

use std::borrow::Cow;

use quick_xml::errors::IllFormedError;
use quick_xml::events::BytesStart;

use crate::xml::find_byte;

use super::machine::{Content, Machine};

/// What [`Machine::plain_markup`] made of the markup at the reader's position.
pub(super) enum Plain {
    /// An element (or an end tag) read: the bytes consumed.
    Read(usize),
    /// Not plain: quick-xml reads it.
    Other,
    /// An end tag that does not match the element it closes: the error quick-xml gives.
    Error(quick_xml::Error),
}

/// A start tag read by [`Machine::fast_observation`]: where it closes and whether it is
/// empty; its attributes are in the [`Attributes`] it was scanned into.
pub(super) struct StartTag {
    /// The index of the closing `>`.
    pub(super) close: usize,
    /// `/>`.
    pub(super) empty: bool,
}

/// The one list of the attribute names the parser reads: the [`Key`] enum, [`Key::NAMES`],
/// and the dispatch of [`Key::of`] and [`Key::at`] are generated from it. The generated
/// code is what was written by hand before the list: a `match` on the name's length and
/// first byte (`of`) or on its first byte (`at`), each arm comparing against a constant of
/// known length (a few word compares), in the order of the list.
macro_rules! keys {
    ($($key:ident = $name:literal,)*) => {
        /// The attributes of an observation the parser reads: MTConnect Part 3,
        /// "Observation" (`dataItemId`, `timestamp`, `sequence`, `name`, `subType`, a
        /// Condition's `type`, `nativeCode`, `nativeSeverity`, `qualifier`), "DataItem"
        /// (`compositionId`), statistics (`statistic`, `duration`), TIME_SERIES
        /// (`sampleCount`, `sampleRate`) and DataSet/Table (`count`). Every other attribute
        /// is kept as written.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum Key {
            $($key,)*
        }

        /// Each name's length and first byte, and its first byte alone: the patterns of
        /// [`Key::of`] and [`Key::at`].
        #[allow(non_upper_case_globals)]
        mod shape {
            $(pub(super) const $key: (usize, u8) = ($name.len(), $name.as_bytes()[0]);)*
            pub(super) mod first {
                $(pub(in super::super) const $key: u8 = $name.as_bytes()[0];)*
            }
        }

        impl Key {
            pub(super) const COUNT: usize = [$($name),*].len();

            /// Every key's attribute name, in the order of the variants.
            #[cfg_attr(not(test), allow(dead_code))]
            pub(super) const NAMES: [&'static str; Key::COUNT] = [$($name),*];

            /// The key named `name`. Dispatched on length and first byte, then compared
            /// whole: a comparison of a known length compiles to a few word compares.
            pub(super) fn of(name: &[u8]) -> Option<Key> {
                let key = match (name.len(), *name.first()?) {
                    $(shape::$key if name == $name.as_bytes() => Key::$key,)*
                    _ => return None,
                };
                Some(key)
            }

            /// The key whose name, followed by `=`, starts `bytes`, and the name's length:
            /// what [`Key::of`] finds, without first searching for the `=`. Compares of
            /// known lengths compile to a few word compares.
            pub(super) fn at(bytes: &[u8]) -> Option<(Key, usize)> {
                fn is<const N: usize>(bytes: &[u8], name: &[u8; N]) -> bool {
                    bytes.get(..N) == Some(name)
                }
                let (key, name_and_eq) = match *bytes.first()? {
                    $(shape::first::$key
                        if is(bytes, &const { with_eq::<{ $name.len() + 1 }>($name) }) =>
                    {
                        (Key::$key, $name.len() + 1)
                    })*
                    _ => return None,
                };
                Some((key, name_and_eq - 1))
            }
        }
    };
}

/// `name` followed by `=`, as an array of its length (`N` is `name.len() + 1`).
const fn with_eq<const N: usize>(name: &str) -> [u8; N] {
    let name = name.as_bytes();
    let mut out = [b'='; N];
    let mut i = 0;
    while i < name.len() {
        out[i] = name[i];
        i += 1;
    }
    out
}

keys! {
    DataItemId = "dataItemId",
    Timestamp = "timestamp",
    Sequence = "sequence",
    Name = "name",
    SubType = "subType",
    Type = "type",
    NativeCode = "nativeCode",
    NativeSeverity = "nativeSeverity",
    Qualifier = "qualifier",
    CompositionId = "compositionId",
    Statistic = "statistic",
    Duration = "duration",
    SampleCount = "sampleCount",
    SampleRate = "sampleRate",
    Count = "count",
}

/// The attributes of one start tag, sorted as they are read: the value's byte range (in the
/// tag's raw attribute bytes) of each [`Key`] present, the last one written winning as in
/// quick-xml, and every other attribute's name and value range in document order.
pub(super) struct Attributes<'r> {
    pub(super) known: [(usize, usize); Key::COUNT],
    pub(super) others: Vec<(&'r [u8], std::ops::Range<usize>)>,
}

impl<'r> Attributes<'r> {
    /// An absent key: a value never ends at 0 (a name, `=` and a quote come before it), and
    /// all zeros is the cheapest value to fill the slots with.
    const ABSENT: (usize, usize) = (0, 0);

    #[inline]
    pub(super) fn new() -> Self {
        Attributes {
            known: [Self::ABSENT; Key::COUNT],
            others: Vec::new(),
        }
    }

    #[inline]
    pub(super) fn set(&mut self, name: &'r [u8], value: std::ops::Range<usize>) {
        match Key::of(name) {
            Some(key) => self.known[key as usize] = (value.start, value.end),
            None => self.others.push((name, value)),
        }
    }

    #[inline]
    pub(super) fn get(&self, key: Key) -> Option<std::ops::Range<usize>> {
        let (start, end) = self.known[key as usize];
        (end != 0).then_some(start..end)
    }

    /// Scans `tag` (the bytes after `<`) from the end of its name: `None` when it is not a
    /// well-formed tag with plain attribute names (quick-xml then reads it and reports).
    // Its own function: inlined into the reader's loop, its position lived on the stack.
    #[inline(never)]
    pub(super) fn scan(&mut self, tag: &'r [u8], name_len: usize) -> Option<StartTag> {
        let mut pos = name_len;
        // The common shape first: one space, a known name, `="`, the value, `"`. The
        // general loop below goes on from wherever this stops, as if it had read these
        // attributes itself.
        while tag.get(pos) == Some(&b' ') {
            let Some((key, len)) = Key::at(&tag[pos + 1..]) else {
                break;
            };
            let value_start = pos + 1 + len + 2;
            if tag.get(value_start - 1) != Some(&b'"') {
                break;
            }
            let Some(value_len) = find_byte(&tag[value_start..], b'"') else {
                break;
            };
            self.known[key as usize] = (value_start, value_start + value_len);
            pos = value_start + value_len + 1;
        }
        loop {
            let after = pos;
            while tag.get(pos)?.is_ascii_whitespace() {
                pos += 1;
            }
            match tag[pos] {
                b'>' => {
                    return Some(StartTag {
                        close: pos,
                        empty: false,
                    })
                }
                b'/' if tag.get(pos + 1) == Some(&b'>') => {
                    return Some(StartTag {
                        close: pos + 1,
                        empty: true,
                    })
                }
                _ => {}
            }
            // After the name (or a value), whitespace must separate attributes.
            if pos == after {
                return None;
            }
            let start = pos;
            let (key, key_end) = match Key::at(&tag[start..]) {
                Some((key, len)) => (Some(key), start + len),
                None => {
                    // Not a known name directly followed by `=`: an other attribute.
                    let key_end = start + find_byte(&tag[start..], b'=')?;
                    let name = &tag[start..key_end];
                    if name.is_empty() || !name.iter().all(|&b| PLAIN_NAME[usize::from(b)]) {
                        return None;
                    }
                    (None, key_end)
                }
            };
            pos = key_end + 1;
            while tag.get(pos)?.is_ascii_whitespace() {
                pos += 1;
            }
            let quote = tag[pos];
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = pos + 1;
            let len = find_byte(&tag[value_start..], quote)?;
            pos = value_start + len + 1;
            match key {
                Some(key) => self.known[key as usize] = (value_start, value_start + len),
                None => self
                    .others
                    .push((&tag[start..key_end], value_start..value_start + len)),
            }
        }
    }
}

/// The bytes of the names the fast path reads: ASCII letters, digits, `:`, `_`, `-`, `.`.
/// Any other name goes to quick-xml.
pub(super) const PLAIN_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b':' | b'_' | b'-' | b'.');
        b += 1;
    }
    table
};

/// XML's whitespace (XML 1.0, production 3: space, tab, CR, LF), which is what quick-xml
/// ends names at; `u8::is_ascii_whitespace` also counts the form feed.
#[inline]
pub(super) fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The index of the `>` that closes a tag, in `bytes` (the tag after its name), outside
/// quoted attribute values: quick-xml's rule for start and end tags alike.
#[inline]
pub(super) fn tag_close(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += bytes[i..]
            .iter()
            .position(|&b| matches!(b, b'>' | b'"' | b'\''))?;
        match bytes[i] {
            b'>' => return Some(i),
            // A quoted value, skipped whole.
            quote => i += 1 + find_byte(&bytes[i + 1..], quote)? + 1,
        }
    }
}

/// The index of the first byte of `bytes` that is not ASCII whitespace: runs of spaces (an
/// indented document's) are skipped eight at a time.
#[inline]
pub(super) fn skip_whitespace(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match *bytes.get(i)? {
            b' ' if bytes.get(i..i + 8) == Some(b"        ") => i += 8,
            b if b.is_ascii_whitespace() => i += 1,
            _ => return Some(i),
        }
    }
}

impl<'a> Machine<'a> {
    /// Reads the markup at the start of `rest` (`<`, or nothing at the end of the input)
    /// without quick-xml where it is plain: an observation ([`Machine::fast_observation`]),
    /// any other start tag with a plain name ([`Machine::plain_start`]), and the end tag of
    /// an element read that way ([`Machine::plain_end`]). The result is what quick-xml's
    /// events would give, with the same offsets and the same errors; anything else
    /// (comments, CDATA, processing instructions, odd names, an element beyond the depth
    /// limit, input that is not UTF-8) is left to quick-xml.
    ///
    /// `offset` is the offset of `rest` in the document; only called between elements and
    /// outside an observation.
    #[inline]
    pub(super) fn plain_markup(&mut self, rest: &'a [u8], offset: u64) -> Plain {
        if self.whole.is_none() {
            return Plain::Other;
        }
        let read = match rest.get(1) {
            Some(b'/') => return self.plain_end(rest),
            Some(b'!' | b'?') | None => None,
            Some(_) if self.depth >= self.max_depth => None,
            Some(_) if self.container.is_some() => self.fast_observation(rest, offset),
            Some(_) => self.plain_start(rest, offset),
        };
        read.map_or(Plain::Other, Plain::Read)
    }

    /// Reads a start tag with a plain name outside a container (not an observation's), as
    /// quick-xml's Start or Empty event would be read, into [`Machine::start`]. Returns the
    /// bytes consumed.
    #[inline]
    pub(super) fn plain_start(&mut self, rest: &'a [u8], offset: u64) -> Option<usize> {
        let tag = &rest[1..];
        let name_len = tag.iter().position(|&b| !PLAIN_NAME[usize::from(b)])?;
        let close = match tag[name_len] {
            // quick-xml's name runs to whitespace: `/` must end the tag (`<Name/>`).
            b'/' if tag.get(name_len + 1) == Some(&b'>') => name_len + 1,
            b if name_len > 0 && (is_xml_space(b) || b == b'>') => {
                name_len + tag_close(&tag[name_len..])?
            }
            _ => return None,
        };
        let (content, empty) = match tag[..close].strip_suffix(b"/") {
            Some(content) => (content, true),
            None => (&tag[..close], false),
        };
        let e = BytesStart::from_content(self.sub_str(content)?, name_len);
        self.depth += 1;
        self.start(&e, offset);
        if empty {
            self.end();
            self.depth -= 1;
        } else {
            self.open.push((&tag[..name_len], self.depth));
        }
        Some(1 + close + 1)
    }

    /// Reads the end tag at the start of `rest` when it closes an element that
    /// [`Machine::plain_start`] opened, checking its name as quick-xml does (trailing
    /// whitespace trimmed, the whole rest compared).
    #[inline]
    pub(super) fn plain_end(&mut self, rest: &'a [u8]) -> Plain {
        let Some(&(name, depth)) = self.open.last() else {
            return Plain::Other;
        };
        if depth != self.depth {
            return Plain::Other;
        }
        // Unclosed: quick-xml reports it, whoever opened the element.
        let Some(close) = tag_close(&rest[2..]) else {
            return Plain::Other;
        };
        let content = &rest[2..2 + close];
        let spaces = content
            .iter()
            .rev()
            .take_while(|&&b| is_xml_space(b))
            .count();
        let found = &content[..content.len() - spaces];
        // Closed either way, as quick-xml pops its name on a mismatch too.
        self.open.pop();
        if found != name {
            return Plain::Error(quick_xml::Error::IllFormed(
                IllFormedError::MismatchedEndTag {
                    expected: String::from_utf8_lossy(name).into_owned(),
                    found: String::from_utf8_lossy(found).into_owned(),
                },
            ));
        }
        self.end();
        self.depth -= 1;
        Plain::Read(2 + close + 1)
    }

    /// Reads the observation element at the start of `rest` (at its `<`)
    /// without quick-xml, when it has the shape nearly every observation has: `<Name
    /// attributes/>` or `<Name attributes>text</Name>`, with no entity, comment, CDATA or
    /// child element in it. Returns the bytes consumed, or `None` (nothing consumed) for any
    /// other shape, which quick-xml then reads. The result is the same either way: the same
    /// functions handle the element, its text and its end, with the same offsets.
    ///
    /// `base` is the offset of `rest` in the document.
    #[inline]
    pub(super) fn fast_observation(&mut self, rest: &'a [u8], base: u64) -> Option<usize> {
        let (category, _) = self.container?;
        let tag = &rest[1..];
        // The name, up to whitespace, `>` or `/`. Only plain names: quick-xml reads a name
        // up to whitespace, quotes and all.
        let mut name_len = 0;
        let mut prefixed = false;
        loop {
            let b = *tag.get(name_len)?;
            if PLAIN_NAME[usize::from(b)] {
                prefixed |= b == b':';
                name_len += 1;
            } else if name_len > 0 && (is_xml_space(b) || b == b'>' || b == b'/') {
                break;
            } else {
                return None;
            }
        }
        let mut attributes = Attributes::new();
        let start_tag = attributes.scan(tag, name_len)?;
        let name = &tag[..name_len];
        let after_start = 1 + start_tag.close + 1;
        let (text, consumed) = if start_tag.empty {
            (None, after_start)
        } else {
            let body = &rest[after_start..];
            let t = find_byte(body, b'<')?;
            let end = body[t + 1..].strip_prefix(b"/")?.strip_prefix(name)?;
            let ws = end.iter().position(|&b| !is_xml_space(b))?;
            if end[ws] != b'>' || find_byte(&body[..t], b'&').is_some() {
                return None;
            }
            let text = (t > 0).then(|| &body[..t]);
            (text, after_start + t + 2 + name_len + ws + 1)
        };
        let element = Cow::Borrowed(self.sub_str(name)?);
        let text = match text {
            Some(t) => Some(Cow::Borrowed(self.sub_str(t)?)),
            None => None,
        };
        // The offset of the element's `<`, as quick-xml gives it.
        let offset = base;
        // What `start`, a Text event and `end` would do, without the detour through
        // `pending`.
        let namespace = if prefixed {
            self.namespace(&element, offset)
        } else {
            None
        };
        let plain = memchr::memchr(b'&', &tag[..start_tag.close]).is_none();
        let content = Content::Text(text);
        if let Some(obs) = self.observation_attributes(
            category,
            element,
            namespace,
            tag,
            &attributes,
            plain,
            content,
            offset,
        ) {
            self.out.push_observation(obs);
        }
        Some(consumed)
    }
}

//! Small helpers over quick-xml that keep borrowed slices tied to the input's lifetime.

use std::borrow::Cow;

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart};

use crate::problem::{Problem, ProblemKind};

/// The UTF-8 byte order mark, which some agents (and Windows editors) put first.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The document to parse: at most `options.max_document_bytes`, without a leading BOM.
pub(crate) fn document_input<'a>(
    input: &'a [u8],
    options: &crate::ParseOptions,
) -> Result<&'a [u8], crate::Error> {
    if input.len() > options.max_document_bytes {
        return Err(crate::Error::TooLarge {
            limit: options.max_document_bytes,
        });
    }
    Ok(strip_bom(input))
}

/// The input without a leading UTF-8 BOM.
pub(crate) fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(BOM).unwrap_or(input)
}

/// The attributes of a start tag, from its raw attribute bytes (`BytesStart::attributes_raw`):
/// each a name and the byte range of its value (between the quotes) in those bytes.
///
/// A faster scanner than quick-xml's general one, for the observation elements that make up
/// nearly all of a Streams document. Yields `Err(())` once for malformed input, then stops.
pub(crate) struct RawAttributes<'x> {
    bytes: &'x [u8],
    pos: usize,
}

impl<'x> RawAttributes<'x> {
    pub(crate) fn new(bytes: &'x [u8]) -> Self {
        RawAttributes { bytes, pos: 0 }
    }

    fn skip_whitespace(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
}

impl<'x> Iterator for RawAttributes<'x> {
    type Item = Result<(&'x [u8], std::ops::Range<usize>), ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.bytes;
        self.skip_whitespace();
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        let malformed = |this: &mut Self| {
            this.pos = b.len();
            Some(Err(()))
        };
        let Some(eq) = find_byte(&b[start..], b'=') else {
            return malformed(self);
        };
        let name = b[start..start + eq].trim_ascii_end();
        if name.is_empty() || name.iter().any(u8::is_ascii_whitespace) {
            return malformed(self);
        }
        self.pos = start + eq + 1;
        self.skip_whitespace();
        let quote = match b.get(self.pos) {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => return malformed(self),
        };
        let value_start = self.pos + 1;
        let Some(len) = find_byte(&b[value_start..], quote) else {
            return malformed(self);
        };
        self.pos = value_start + len + 1;
        Some(Ok((name, value_start..value_start + len)))
    }
}

/// The index of the first `needle` in `hay`, eight bytes at a time: attribute values are
/// too short for `memchr`'s vector loops to pay off. The zero-byte test is the classic one
/// (Mycroft; see Hacker's Delight, 2nd ed., section 6-1): it can flag bytes above the first
/// match, never below, so the lowest flagged byte is the first match.
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ pattern;
        let found = word.wrapping_sub(LO) & !word & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&b| b == needle).map(|i| base + i)
}

/// An attribute value as text, unescaped: borrowed from `based` (the attribute bytes
/// re-borrowed from the input) when it has no entity, else owned.
pub(crate) fn attr_text<'a>(
    based: Option<&'a [u8]>,
    raw: &[u8],
    range: std::ops::Range<usize>,
) -> Result<Cow<'a, str>, String> {
    match based {
        Some(b) => {
            let s = std::str::from_utf8(&b[range]).map_err(|e| e.to_string())?;
            if memchr::memchr(b'&', s.as_bytes()).is_none() {
                Ok(Cow::Borrowed(s))
            } else {
                quick_xml::escape::unescape(s).map_err(|e| e.to_string())
            }
        }
        None => {
            let s = std::str::from_utf8(&raw[range]).map_err(|e| e.to_string())?;
            quick_xml::escape::unescape(s)
                .map(|c| Cow::Owned(c.into_owned()))
                .map_err(|e| e.to_string())
        }
    }
}

/// Whether `bytes` are ASCII digits (surrounding whitespace allowed): a whole number, which
/// [`parse_u64`] refuses only when it is beyond 2^64 − 1.
pub(crate) fn is_whole_number(bytes: &[u8]) -> bool {
    let digits = bytes.trim_ascii();
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// A whole number from ASCII digits (surrounding whitespace allowed), `None` on anything else
/// or overflow.
pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Re-borrows `part` from `input` when `part` points into it, so that the result lives as
/// long as the input rather than as long as the quick-xml event that produced it.
pub(crate) fn rebase<'a>(input: &'a [u8], part: &[u8]) -> Option<&'a [u8]> {
    let start = (part.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    input
        .get(start..start.checked_add(part.len())?)
        .filter(|s| s.as_ptr() == part.as_ptr())
}

/// Bytes as UTF-8 text borrowed from the input where possible.
pub(crate) fn text_of<'a>(
    input: &'a [u8],
    bytes: &[u8],
) -> Result<Cow<'a, str>, std::str::Utf8Error> {
    match rebase(input, bytes) {
        Some(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        None => std::str::from_utf8(bytes).map(|s| Cow::Owned(s.to_owned())),
    }
}

/// An attribute's value, unescaped, borrowed from the input when it has no entities.
pub(crate) fn attr_value<'a>(
    input: &'a [u8],
    attr: &Attribute<'_>,
) -> Result<Cow<'a, str>, String> {
    let raw = text_of(input, &attr.value).map_err(|e| e.to_string())?;
    match raw {
        Cow::Borrowed(s) => quick_xml::escape::unescape(s).map_err(|e| e.to_string()),
        Cow::Owned(s) => quick_xml::escape::unescape(&s)
            .map(|c| Cow::Owned(c.into_owned()))
            .map_err(|e| e.to_string()),
    }
}

/// The element's qualified name as written (e.g. `x:Motion`), borrowed from the input.
pub(crate) fn element_name<'a>(input: &'a [u8], e: &BytesStart<'_>) -> Cow<'a, str> {
    match text_of(input, e.name().as_ref()) {
        Ok(name) => name,
        Err(_) => Cow::Owned(String::from_utf8_lossy(e.name().as_ref()).into_owned()),
    }
}

/// The text an entity or character reference stands for (`&amp;`, `&#38;`, `&#x26;`).
pub(crate) fn resolve_reference(r: &BytesRef<'_>) -> Option<char> {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return Some(c);
    }
    match r.as_ref() {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => None,
    }
}

/// Appends text to a value being accumulated from several Text/reference events,
/// borrowing when there is only one piece.
pub(crate) fn push_text<'a>(acc: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
    match acc {
        None => *acc = Some(piece),
        Some(existing) => existing.to_mut().push_str(&piece),
    }
}

/// Builds problems with the reader's position.
pub(crate) fn problem(kind: ProblemKind, offset: u64, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        offset,
        message: message.into(),
    }
}

/// The local part of a qualified name: `Motion` for `x:Motion`.
pub(crate) fn local_part(name: &str) -> &str {
    match name.bytes().rposition(|b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// The prefix of a qualified name: `Some("x")` for `x:Motion`.
pub(crate) fn prefix_part(name: &str) -> Option<&str> {
    name.bytes().position(|b| b == b':').map(|i| &name[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_attributes() {
        let raw = br#" a="1"  b = '2&amp;' c="" x:d="q'q""#;
        let got: Vec<_> = RawAttributes::new(raw)
            .map(|a| {
                a.map(|(k, r)| {
                    (
                        String::from_utf8(k.to_vec()).unwrap(),
                        attr_text(Some(raw), raw, r).unwrap().into_owned(),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .unwrap();
        let want = [("a", "1"), ("b", "2&"), ("c", ""), ("x:d", "q'q")];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
        for bad in [&b" a"[..], b" a=1", b" a=\"1", b" =\"1\""] {
            let r: Vec<_> = RawAttributes::new(bad).collect();
            assert_eq!(r, vec![Err(())], "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_u64(b" 42 "), Some(42));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert!(is_whole_number(b" 18446744073709551616 "));
        assert!(!is_whole_number(b"-1") && !is_whole_number(b"") && !is_whole_number(b"1e3"));
        assert_eq!(parse_u64(b"4x"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn rebase_only_inside() {
        let input = b"hello world".as_slice();
        assert_eq!(rebase(input, &input[6..]), Some(b"world".as_slice()));
        let other = b"world".to_vec();
        assert_eq!(rebase(input, &other), None);
    }
}

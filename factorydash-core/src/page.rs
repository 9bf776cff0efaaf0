//! Keyset pagination: a page of items and an opaque cursor for the next one.
//!
//! No `OFFSET` anywhere: a page after cursor `c` is "the first `limit` items whose key is
//! greater than the key in `c`", which costs the same for page 1 and page 500 given an
//! index on the key (Winand, *SQL Performance Explained*, "Paging Through Results").

use serde::{Deserialize, Serialize};

/// The most items a page may hold; larger requests are clamped to it.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// An opaque position in a keyset-ordered listing: the key of the last item of a page.
///
/// Encoded as lowercase hex of the key parts joined by U+001F, so it is safe in a URL
/// query without escaping. Clients must treat it as opaque.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

/// A cursor string that is not one this crate wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid page cursor")]
pub struct InvalidCursor;

const SEPARATOR: char = '\u{1f}';

impl Cursor {
    /// The cursor for a key made of string parts.
    pub fn from_key<S: AsRef<str>>(parts: &[S]) -> Self {
        let mut hex = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                push_hex(&mut hex, SEPARATOR as u8);
            }
            for b in part.as_ref().bytes() {
                push_hex(&mut hex, b);
            }
        }
        Cursor(hex)
    }

    /// Wraps a cursor string received from a client; checked when decoded with [`Cursor::key`].
    pub fn from_string(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }

    /// The cursor as a string, for a URL or a JSON answer.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key parts this cursor holds.
    ///
    /// # Errors
    /// [`InvalidCursor`] when the string is not hex of UTF-8 text.
    pub fn key(&self) -> Result<Vec<String>, InvalidCursor> {
        let s = self.0.as_bytes();
        if s.len() % 2 != 0 {
            return Err(InvalidCursor);
        }
        let bytes = s
            .chunks(2)
            .map(|pair| {
                let hi = (pair[0] as char).to_digit(16).ok_or(InvalidCursor)?;
                let lo = (pair[1] as char).to_digit(16).ok_or(InvalidCursor)?;
                Ok((hi * 16 + lo) as u8)
            })
            .collect::<Result<Vec<u8>, InvalidCursor>>()?;
        let text = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        Ok(text.split(SEPARATOR).map(str::to_owned).collect())
    }
}

fn push_hex(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(DIGITS[(b >> 4) as usize] as char);
    out.push(DIGITS[(b & 0xf) as usize] as char);
}

/// A request for one page: the items after `after` (from the start when `None`), at most
/// `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Where the previous page ended.
    pub after: Option<Cursor>,
    /// The most items wanted; 0 means the default of 100; clamped to [`MAX_PAGE_LIMIT`].
    pub limit: usize,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }

    /// The number of items to return: `limit`, or 100 when 0, at most [`MAX_PAGE_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => 100,
            n => n.min(MAX_PAGE_LIMIT),
        }
    }
}

/// One page of a keyset-ordered listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items, in key order.
    pub items: Vec<T>,
    /// The cursor of the next page, or `None` when this is the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items fetched in key order: when there are
    /// more than `limit`, the extra one is dropped and the cursor points after the last
    /// kept item, computed by `key`.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> Cursor) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(key)
        } else {
            None
        };
        Page { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_any_text() {
        let key = ["Mazak03", "dtop_1 \u{e9}&?=/"];
        let c = Cursor::from_key(&key);
        assert!(c.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(c.key().unwrap(), key);
        assert_eq!(Cursor::from_string("zz").key(), Err(InvalidCursor));
        assert_eq!(Cursor::from_string("abc").key(), Err(InvalidCursor));
        assert_eq!(Cursor::from_string("ff").key(), Err(InvalidCursor));
    }

    #[test]
    fn overfetch_sets_the_next_cursor_only_when_more_exist() {
        let key = |n: &i32| Cursor::from_key(&[n.to_string()]);
        let p = Page::from_overfetch(vec![1, 2, 3], 2, key);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next.unwrap().key().unwrap(), vec!["2"]);
        let p = Page::from_overfetch(vec![1, 2], 2, key);
        assert!(p.next.is_none());
    }

    #[test]
    fn limits_are_clamped() {
        assert_eq!(PageRequest::first(0).effective_limit(), 100);
        assert_eq!(PageRequest::first(5).effective_limit(), 5);
        assert_eq!(
            PageRequest::first(1_000_000).effective_limit(),
            MAX_PAGE_LIMIT
        );
    }
}

//! Number parsing for Sample values: what `f64::from_str` reads, told quickly for the plain
//! decimals agents write.
//!
//! Both functions are called once per Sample by the state machine, from another module
//! since the split of `streams.rs`: they are `#[inline]` so that they stay inlinable there.

/// What [`plain_decimal`] made of a text.
pub(super) enum Decimal {
    /// A plain decimal, read as `f64::from_str` reads it.
    Number(f64),
    /// Whitespace inside: `f64::from_str` refuses it (a vector, or not a number).
    Spaced,
    /// `f64::from_str` must decide.
    Unknown,
}

/// `text` as `f64::from_str` reads it, when that is quick to tell: a plain decimal
/// (`[+-]?digits[.digits]`) of at most 19 digits whose digits as a whole number are at most
/// 2^53, with at most 22 after the point (what agents write), is read as that number
/// divided by a power of ten. Both are exact in an f64, so the one rounding of the
/// division gives the correctly rounded value `from_str` gives (Clinger, "How to read
/// floating point numbers accurately", PLDI 1990: the fast path).
#[inline]
pub(super) fn plain_decimal(text: &[u8]) -> Decimal {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (negative, rest) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mut whole, mut digits, mut after_point, mut point) = (0u64, 0, 0, false);
    for &b in rest {
        match b {
            b'0'..=b'9' if digits < 19 => {
                whole = whole * 10 + u64::from(b - b'0');
                digits += 1;
                after_point += usize::from(point);
            }
            b'.' if !point => point = true,
            b if b.is_ascii_whitespace() => return Decimal::Spaced,
            _ => return Decimal::Unknown,
        }
    }
    if digits == 0 || whole > 1 << 53 || after_point >= POWERS.len() {
        return Decimal::Unknown;
    }
    let n = whole as f64 / POWERS[after_point];
    Decimal::Number(if negative { -n } else { n })
}

/// Whether every whitespace-separated token of `text` is a number as `f64::from_str` reads
/// it (a vector such as `PathPosition`'s `x y z`, a time series). Plain decimals (`-12.5`,
/// `7`, `.5`: what agents write) are recognised in one pass over the bytes; at the first
/// other byte the tokens are given to `from_str`.
#[inline]
pub(super) fn all_numbers(text: &str) -> bool {
    let slow = || {
        text.split_ascii_whitespace()
            .all(|t| t.parse::<f64>().is_ok())
    };
    // The current token: its length, digits and points.
    let (mut len, mut digits, mut points) = (0, 0, 0);
    for &b in text.as_bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            b'-' | b'+' if len == 0 => {}
            b if b.is_ascii_whitespace() => {
                if len > 0 && (digits == 0 || points > 1) {
                    return slow();
                }
                (len, digits, points) = (0, 0, 0);
                continue;
            }
            _ => return slow(),
        }
        len += 1;
    }
    (len == 0 || (digits > 0 && points <= 1)) || slow()
}

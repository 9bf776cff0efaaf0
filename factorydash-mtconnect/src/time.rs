//! MTConnect timestamps: MTConnect Part 1, "Timestamps" (ISO 8601 / RFC 3339, UTC).
//!
//! Real agents send `2016-05-02T14:43:13.544496Z`, the same without the `Z` (the NIST agent
//! since 2020), 0 to 9 fractional digits, and in old Headers numeric offsets such as
//! `+00:00` or `-07:00`. All are accepted and converted to UTC.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

/// A parsed timestamp and whether its zone designator was missing (then taken as UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// The instant, in UTC.
    pub utc: DateTime<Utc>,
    /// `true` when the text had neither `Z` nor an offset.
    pub zone_missing: bool,
}

/// Parses an MTConnect timestamp.
///
/// Accepts `YYYY-MM-DDTHH:MM:SS`, optionally followed by `.` and 0 to 9 digits (more are
/// truncated to nanoseconds), optionally followed by `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or
/// `+HH`. Surrounding ASCII whitespace is ignored. Returns `None` for anything else.
///
/// ```
/// use factorydash_mtconnect::time::parse_timestamp;
/// let t = parse_timestamp("2016-05-02T14:43:13.5444Z").unwrap();
/// assert_eq!(t.utc.to_rfc3339(), "2016-05-02T14:43:13.544400+00:00");
/// let t = parse_timestamp("2016-05-02T07:43:13-07:00").unwrap();
/// assert_eq!(t.utc.to_rfc3339(), "2016-05-02T14:43:13+00:00");
/// assert!(parse_timestamp("2021-02-11T21:32:35.123").unwrap().zone_missing);
/// ```
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    parse_timestamp_cached(text.as_bytes(), &mut DateCache::default())
}

/// The last date and minute seen (`YYYY-MM-DDTHH:MM`, the date and the minute's seconds
/// from midnight): consecutive observations nearly always share them, and this skips the
/// calendar arithmetic and the checks of those fields for them.
#[derive(Debug, Default, Clone)]
pub(crate) struct DateCache(Option<([u8; 16], NaiveDate, u32)>);

/// Powers of ten that scale `n` fraction digits to nanoseconds: `SCALE[9 - n]`.
const SCALE: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// [`parse_timestamp`] over bytes, with a date cache.
pub(crate) fn parse_timestamp_cached(text: &[u8], cache: &mut DateCache) -> Option<Timestamp> {
    let s = text.trim_ascii();
    if s.len() < 19 || s[16] != b':' {
        return None;
    }
    let (date, minute) = match &cache.0 {
        Some((key, date, minute)) if key[..] == s[..16] => (*date, *minute),
        cached => {
            if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':'
            {
                return None;
            }
            let hour = digits(&s[11..13])?;
            let minute = digits(&s[14..16])?;
            if hour > 23 || minute > 59 {
                return None;
            }
            let date = match cached {
                // Another minute of the same day (a `/current`'s observations).
                Some((key, date, _)) if key[..10] == s[..10] => *date,
                _ => {
                    let year = digits(&s[0..4])?;
                    let month = digits(&s[5..7])?;
                    let day = digits(&s[8..10])?;
                    NaiveDate::from_ymd_opt(year as i32, month, day)?
                }
            };
            let mut key = [0u8; 16];
            key.copy_from_slice(&s[..16]);
            let minute = hour * 3600 + minute * 60;
            cache.0 = Some((key, date, minute));
            (date, minute)
        }
    };
    let second = digits(&s[17..19])?;
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some((b'.', tail)) = rest.split_first() {
        // Digits past the ninth are below a nanosecond: truncated.
        let mut n = 0;
        while let Some(&d) = tail.get(n).filter(|d| d.is_ascii_digit()) {
            if n < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            n += 1;
        }
        if n == 0 {
            return None;
        }
        nanos *= SCALE[9 - n.min(9)];
        rest = &tail[n..];
    }
    let (offset_seconds, zone_missing) = match rest {
        [] => (0i64, true),
        [b'Z' | b'z'] => (0, false),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (h, m) = match tail {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            (if *sign == b'-' { -off } else { off }, false)
        }
        _ => return None,
    };
    // A leap second (:60) is folded into the last nanosecond of :59, as chrono represents it.
    let (second, nanos) = match second {
        0..=59 => (second, nanos),
        60 => (59, 1_000_000_000 + nanos.min(999_999_999)),
        _ => return None,
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt(minute + second, nanos)?;
    let utc = date.and_time(time).and_utc();
    let utc = if offset_seconds == 0 {
        utc
    } else {
        utc - TimeDelta::seconds(offset_seconds)
    };
    Some(Timestamp { utc, zone_missing })
}

fn digits(s: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(b - b'0');
    }
    Some(n)
}

/// Formats a UTC instant the way MTConnect agents do: `YYYY-MM-DDTHH:MM:SS.ffffffZ`
/// (microseconds, `Z`).
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_shapes() {
        let cases = [
            (
                "2016-05-02T14:43:13.544496Z",
                "2016-05-02T14:43:13.544496Z",
                false,
            ),
            (
                "2021-02-11T21:32:35.1234",
                "2021-02-11T21:32:35.123400Z",
                true,
            ),
            (
                "2021-02-11T21:32:35.1234567",
                "2021-02-11T21:32:35.123456Z",
                true,
            ),
            (
                "2021-02-11T21:32:35.123456789Z",
                "2021-02-11T21:32:35.123456Z",
                false,
            ),
            (
                "2021-02-11T21:32:35.1234567891Z",
                "2021-02-11T21:32:35.123456Z",
                false,
            ),
            (
                "2010-03-04T18:44:40+00:00",
                "2010-03-04T18:44:40.000000Z",
                false,
            ),
            (
                "2010-03-04T11:44:40-07:00",
                "2010-03-04T18:44:40.000000Z",
                false,
            ),
            (
                "2010-03-04T20:44:40+0200",
                "2010-03-04T18:44:40.000000Z",
                false,
            ),
            (
                " 2010-03-04T18:44:40Z\n",
                "2010-03-04T18:44:40.000000Z",
                false,
            ),
        ];
        // One cache across all of them, as a document's observations share one, with the
        // date and minute repeated and changed: the same results as parsing each alone.
        let mut cache = DateCache::default();
        for (text, _, _) in cases.iter().chain(&cases).chain(&cases[..2]) {
            let cached = parse_timestamp_cached(text.as_bytes(), &mut cache);
            assert_eq!(cached, parse_timestamp(text), "{text}");
        }
        let mut cache = DateCache::default();
        for text in [
            "2016-05-02T23:59:59Z",
            "2016-05-02T23:59:60.5Z",
            "2016-05-02T23:59:61Z",
        ] {
            let cached = parse_timestamp_cached(text.as_bytes(), &mut cache);
            assert_eq!(cached, parse_timestamp(text), "{text}");
        }
        assert_eq!(
            format_timestamp(parse_timestamp("2016-12-31T23:59:60.5Z").unwrap().utc),
            "2016-12-31T23:59:60.500000Z"
        );
        for (text, want, missing) in cases {
            let t = parse_timestamp(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(format_timestamp(t.utc), want, "{text}");
            assert_eq!(t.zone_missing, missing, "{text}");
        }
    }

    #[test]
    fn garbage_is_none() {
        for bad in [
            "",
            "20014:23:40",
            "2016-05-02",
            "2016-13-02T00:00:00Z",
            "2016-05-02T25:00:00Z",
            "2016-05-02T00:00:00.Z",
            "2016-05-02T00:00:00Q",
            "2016-05-02T00:00:00+99:00",
            "２016-05-02T00:00:00Z",
            "2016-05-02T00:60:00Z",
            "2016-05-02T00:00:61Z",
            "2016-05-02T00:00:0xZ",
            "2016-05-02X00:00:00Z",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }
}

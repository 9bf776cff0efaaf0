//! Credentials in agent URLs, hidden wherever they are shown.
//!
//! An agent URL may carry a user and password (`http://user:pass@host:5000`). The agent's
//! identity is its URL without them ([`crate::supervisor::identity`]: in the store, in
//! `followed`, in what is shown), and they go to the HTTP client only; redaction is the
//! second line: whatever is shown is redacted all the same (pages, JSON answers,
//! `/metrics` labels, the live protocol's health messages and the log), so that a URL
//! that comes another way (an error quoting the URL as given) shows none. A password
//! becomes `***`
//! (`http://user:***@host`); a user without a password becomes `***` too
//! (`http://***@host`), since a lone user name is often a token.
//!
//! The authority ends at the first `/`, `\`, `?` or `#` after `://` (RFC 3986 section
//! 3.2, and the WHATWG URL Standard, which also ends it at `\` for `http` and `https`);
//! the user information is what comes before its last `@`. This holds for every scheme
//! (`mysql://`, `POSTGRES://`, `sqlite://`, …): a database URL given by mistake is
//! redacted as well as an agent's.
//!
//! In free text (errors, log lines) a `password=VALUE` (libpq's `key=value` connection
//! strings, a URL's `?password=`; any case, blanks around `=`, a value in single quotes
//! with `\'` escapes as libpq reads it) is hidden too, up to the next blank.

use std::borrow::Cow;
use std::io::Write;

/// What a password (or a lone user name) is shown as.
const HIDDEN: &str = "***";

/// `url` with its password (or lone user name) replaced by `***`; unchanged (borrowed)
/// when it holds no credentials.
///
/// ```text
/// http://user:pass@host:5000/x  →  http://user:***@host:5000/x
/// http://token@host             →  http://***@host
/// http://host/a@b               →  http://host/a@b
/// ```
pub fn redacted(url: &str) -> Cow<'_, str> {
    redact_urls(url, |b| matches!(b, b'/' | b'\\' | b'?' | b'#'))
}

/// `text` (an error message, a log line) with every URL in it redacted as [`redacted`]
/// does, and every `password=VALUE` (of a `key=value` connection string or a URL's query)
/// as `password=***`; in free text an authority also ends at white space, a quote or
/// `<`/`>`.
pub fn redacted_in(text: &str) -> Cow<'_, str> {
    let urls = redact_urls(text, |b| {
        matches!(
            b,
            b'/' | b'\\' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`'
        ) || b.is_ascii_whitespace()
    });
    match redact_passwords(&urls) {
        Cow::Borrowed(_) => urls,
        Cow::Owned(o) => Cow::Owned(o),
    }
}

/// `text` with the value of every `password=` (any case, blanks around `=`) replaced by
/// `***`: a value in single quotes up to its closing quote (`\'` and `\\` escaped, as
/// libpq reads `key=value` strings), any other up to the next blank (more than a URL's
/// query parameter, never less).
fn redact_passwords(text: &str) -> Cow<'_, str> {
    const KEY: &[u8] = b"password";
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + KEY.len() <= bytes.len() {
        if !bytes[i..i + KEY.len()].eq_ignore_ascii_case(KEY) {
            i += 1;
            continue;
        }
        let mut j = i + KEY.len();
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            i += KEY.len();
            continue;
        }
        j += 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t') {
            j += 1;
        }
        let start = j;
        if bytes.get(j) == Some(&b'\'') {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        if j > start {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            o.push_str(HIDDEN);
            copied = j;
        }
        i = j.max(i + KEY.len());
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Ends the process for an error met at start (or later, returned from `main`): the error
/// and its sources on standard error, redacted as [`redacted_in`] (a database URL or a
/// connection string quoted in it keeps no password), and exit status 1.
pub fn exit_with(error: &anyhow::Error) -> ! {
    eprintln!("Error: {}", redacted_in(&format!("{error:#}")));
    std::process::exit(1)
}

/// Ends the process for a command line clap refused (its message redacted as
/// [`redacted_in`]: a refused value is quoted in it), or prints the help or the version
/// asked for, with clap's exit status.
pub fn exit_clap(error: clap::Error) -> ! {
    if !error.use_stderr() {
        error.exit()
    }
    eprint!("{}", redacted_in(&error.render().to_string()));
    std::process::exit(error.exit_code())
}

fn redact_urls(text: &str, ends_authority: impl Fn(u8) -> bool) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Copied to `out` up to here.
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| ends_authority(b))
            .map_or(bytes.len(), |n| start + n);
        from = end.max(start);
        let Some(at) = text[start..end].rfind('@') else {
            continue;
        };
        let userinfo = &text[start..start + at];
        let shown = match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{HIDDEN}"),
            None => HIDDEN.to_owned(),
        };
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[copied..start]);
        o.push_str(&shown);
        copied = start + at;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Serialises a URL redacted (`#[serde(serialize_with = "...")]`).
pub fn serialize_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted(url))
}

/// Serialises a message that may quote URLs, redacted.
pub fn serialize_text<S: serde::Serializer>(
    text: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => s.serialize_some(&*redacted_in(t)),
        None => s.serialize_none(),
    }
}

/// Standard error, with URL credentials redacted from every log line, and line breaks
/// inside a line (an agent URL or an agent's message may hold some) written `\n` and `\r`
/// so that no text can forge a log line. Each tracing event is formatted whole, then
/// written at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedStderr;

/// `line` (ending with a line feed or not) with its credentials redacted and its inner
/// line breaks escaped.
fn log_line(line: &str) -> String {
    let (body, end) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    let mut out = redacted_in(body).replace('\r', "\\r").replace('\n', "\\n");
    out.push_str(end);
    out
}

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(log_line(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr
    }
}

#[cfg(test)]
mod tests {
    use super::{log_line, redacted, redacted_in};

    #[test]
    fn passwords_and_lone_users_are_hidden() {
        assert_eq!(
            redacted("http://user:pass@host:5000/x"),
            "http://user:***@host:5000/x"
        );
        assert_eq!(redacted("http://token@host"), "http://***@host");
        assert_eq!(redacted("http://u:p@ss@host"), "http://u:***@host");
        assert_eq!(redacted("https://host/a@b?c@d"), "https://host/a@b?c@d");
        assert_eq!(redacted("http://u:p@h\\@evil"), "http://u:***@h\\@evil");
        assert_eq!(redacted("replay:/data/rec"), "replay:/data/rec");
        assert!(matches!(
            redacted("http://host:5000"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn every_url_in_a_text() {
        assert_eq!(
            redacted_in("error sending request for url (http://a:b@h/sample?x=1): refused; also https://c@d"),
            "error sending request for url (http://a:***@h/sample?x=1): refused; also https://***@d"
        );
        assert_eq!(
            redacted_in("agent=\"http://a:b@h\" x"),
            "agent=\"http://a:***@h\" x"
        );
        assert_eq!(redacted_in("no urls: a@b"), "no urls: a@b");
    }

    #[test]
    fn database_urls_of_any_scheme_and_key_value_passwords() {
        for (given, shown) in [
            ("POSTGRES://u:PW@h/db", "POSTGRES://u:***@h/db"),
            ("mysql://u:PW@h/db", "mysql://u:***@h/db"),
            ("sqlite://u:PW@h/db", "sqlite://u:***@h/db"),
            ("host=h password=PW user=u", "host=h password=*** user=u"),
            (
                "host=h PASSWORD = 'P W\\'X' user=u",
                "host=h PASSWORD = *** user=u",
            ),
            (
                "postgres://h/db?password=PW&x=1 y",
                "postgres://h/db?password=*** y",
            ),
            ("the password file is open", "the password file is open"),
            ("password=", "password="),
        ] {
            assert_eq!(redacted_in(given), shown, "{given}");
        }
    }

    #[test]
    fn one_event_one_log_line() {
        assert_eq!(
            log_line("WARN agent=http://u:p@h/x\n# forged line\r\n"),
            "WARN agent=http://u:***@h/x\\n# forged line\\r\n"
        );
    }
}

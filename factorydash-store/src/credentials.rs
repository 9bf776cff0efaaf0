//! An agent URL's credentials (`http://user:password@host`), kept apart from the URL.
//!
//! An agent is known by its URL without user information (what [`Batch::agent`],
//! [`ResumePoint::agent`] and [`DeviceKey::agent`] hold, what every store keeps in its
//! `url` columns and what is shown); the user and password of an agent added at run time
//! are stored apart ([`Store::agent_credentials`]) and read back only to connect to it.
//!
//! [`Batch::agent`]: factorydash_core::Batch::agent
//! [`ResumePoint::agent`]: factorydash_core::ResumePoint::agent
//! [`DeviceKey::agent`]: factorydash_core::DeviceKey::agent
//! [`Store::agent_credentials`]: crate::Store::agent_credentials

use std::borrow::Cow;

/// The user information of an agent URL: a user name and, usually, a password, each as it
/// is written in the URL (percent-encoded, as a normalised URL writes them: `%40` for an
/// `@`). Its [`Debug`] form hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    /// Credentials of a user name and password, both as written in a URL
    /// (percent-encoded).
    pub fn new(username: impl Into<String>, password: Option<String>) -> Self {
        Credentials {
            username: username.into(),
            password,
        }
    }

    /// The user name, percent-encoded as in the URL.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, percent-encoded as in the URL; `None` when the URL had a user name
    /// alone (`http://token@host`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `url` (a URL without user information) with these credentials in it: the URL to
    /// connect with. A URL without `://` is returned as it is.
    ///
    /// ```
    /// use factorydash_store::{split_credentials, Credentials};
    /// let c = Credentials::new("user", Some("p%40ss".into()));
    /// assert_eq!(c.in_url("http://host:5000/x"), "http://user:p%40ss@host:5000/x");
    /// let (bare, back) = split_credentials("http://user:p%40ss@host:5000/x");
    /// assert_eq!((bare.as_ref(), back), ("http://host:5000/x", Some(c)));
    /// ```
    pub fn in_url(&self, url: &str) -> String {
        let Some(at) = url.find("://") else {
            return url.to_owned();
        };
        let (scheme, rest) = url.split_at(at + 3);
        match &self.password {
            Some(p) => format!("{scheme}{}:{p}@{rest}", self.username),
            None => format!("{scheme}{}@{rest}", self.username),
        }
    }
}

/// `url` without its user information, and that information: the agent as it is known
/// and stored, and what is needed to connect to it. The authority ends at the first `/`,
/// `\`, `?` or `#` after `://` (RFC 3986 section 3.2; the WHATWG URL Standard also ends it
/// at `\` for `http` and `https`); the user information is what comes before its last
/// `@`, its user name what comes before the first `:` in it. Borrowed when `url` holds
/// none.
///
/// ```
/// use factorydash_store::split_credentials;
/// let (bare, credentials) = split_credentials("http://user:secret@host:5000/vds");
/// assert_eq!(bare, "http://host:5000/vds");
/// let credentials = credentials.unwrap();
/// assert_eq!((credentials.username(), credentials.password()), ("user", Some("secret")));
/// assert_eq!(split_credentials("http://host/a@b").1, None);
/// ```
pub fn split_credentials(url: &str) -> (Cow<'_, str>, Option<Credentials>) {
    let Some(found) = url.find("://") else {
        return (Cow::Borrowed(url), None);
    };
    let start = found + 3;
    let end = url[start..]
        .find(['/', '\\', '?', '#'])
        .map_or(url.len(), |n| start + n);
    let Some(at) = url[start..end].rfind('@') else {
        return (Cow::Borrowed(url), None);
    };
    let userinfo = &url[start..start + at];
    let credentials = match userinfo.split_once(':') {
        Some((user, password)) => Credentials::new(user, Some(password.to_owned())),
        None => Credentials::new(userinfo, None),
    };
    let bare = format!("{}{}", &url[..start], &url[start + at + 1..]);
    (Cow::Owned(bare), Some(credentials))
}

#[cfg(test)]
mod tests {
    use super::split_credentials;

    #[test]
    fn splits_and_puts_back() {
        for (url, bare, user, password) in [
            ("http://u:p@h:5000/x", "http://h:5000/x", "u", Some("p")),
            ("http://token@h", "http://h", "token", None),
            ("http://u:p:q@h", "http://h", "u", Some("p:q")),
            ("http://u:p@ss@h", "http://h", "u", Some("p@ss")),
            ("https://u:@h?x@y", "https://h?x@y", "u", Some("")),
        ] {
            let (b, c) = split_credentials(url);
            let c = c.unwrap();
            assert_eq!(
                (b.as_ref(), c.username(), c.password()),
                (bare, user, password)
            );
            assert_eq!(c.in_url(&b), url);
            assert!(!format!("{c:?}").contains("p@ss"));
        }
        for url in [
            "http://h/a@b",
            "http://h\\@x",
            "replay:/data/r@x",
            "http://h#@",
        ] {
            assert_eq!(split_credentials(url), (url.into(), None));
        }
    }
}

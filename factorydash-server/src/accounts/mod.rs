//! Accounts on the server: who a request comes from ([`Principal`]), what it may see
//! ([`Scope`]), and the sign-in that makes sessions.
//!
//! A request is one of ([`Auth::principal`], first that applies):
//! 1. a user named by the auth proxy's header (`--auth-proxy-header`), taken only from the
//!    proxy's addresses (`--auth-proxy-from`): the user is made on first sight, in the
//!    default group (`--auth-proxy-group`);
//! 2. `Authorization: Bearer`: a fixed token of the command line (`--token ROLE:SECRET`,
//!    every device, its role) or a user's personal API token (`fd_…`);
//! 3. the session cookie a sign-in set (`factorydash_session`, `__Host-factorydash_session`
//!    over HTTPS);
//! 4. the fixed token's cookie (`/?token=` once in a browser);
//! 5. nobody; on an open dashboard (no fixed token and no user), that is [`Role::Admin`]
//!    over every device, as before accounts.
//!
//! Sessions and tokens are 32 random bytes; the store keeps only their SHA-256. A session
//! ends at logout, after `--session-idle` without use, after `--session-lifetime` whatever
//! its use, and at once when its user is disabled or removed (each request reads its
//! credential and user from the store).

pub mod limiter;
pub mod pages;
pub mod password;
pub mod scope;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use factorydash_core::accounts::{
    check_name, Access, AuditEntry, Credential, CredentialKind, Group, Role, User,
};

use factorydash_store::{Store, StoreError};
use warp::http::HeaderMap;

use crate::auth::Tokens;
pub use scope::Scope;

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "factorydash_session";
/// The session cookie's name over HTTPS (the `__Host-` prefix: set only with `Secure`,
/// `Path=/` and no `Domain`, so no other host can plant it; RFC 6265bis section 4.1.3.2).
pub const SECURE_SESSION_COOKIE: &str = "__Host-factorydash_session";
/// The prefix of a personal API token.
pub const TOKEN_PREFIX: &str = "fd_";

/// How sessions and the auth proxy work (`serve`'s options).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// A session unused this long is over.
    pub session_idle: Duration,
    /// A session is over this long after sign-in, whatever its use.
    pub session_lifetime: Duration,
    /// Served over HTTPS: cookies are `Secure` (and `__Host-`).
    pub https: bool,
    /// The auth proxy, if one signs users in.
    pub proxy: Option<ProxySettings>,
    /// Audit entries older than this are removed (every hour).
    pub audit_retention: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_idle: Duration::from_secs(12 * 3600),
            session_lifetime: Duration::from_secs(30 * 24 * 3600),
            audit_retention: Duration::from_secs(365 * 24 * 3600),
            https: false,
            proxy: None,
        }
    }
}

/// A reverse proxy that signs users in (oauth2-proxy, Keycloak's gatekeeper, Authelia…)
/// and names them in a header, as Grafana's auth proxy takes it.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The header (e.g. `X-Forwarded-User`), lower-cased.
    pub header: String,
    /// The proxy's addresses: the header is taken only from a connection from one of
    /// them; from anywhere else the request is refused.
    pub from: Vec<IpNet>,
    /// The group a user seen first through the proxy is put in, if any.
    pub group: Option<String>,
}

/// An address or a network (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an address or ADDRESS/PREFIX"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': a prefix is 0 to {max}"))?,
            None => max,
        };
        Ok(IpNet { address, prefix })
    }
}

impl IpNet {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Nothing: the dashboard is open (no fixed token, no user).
    Open,
    /// A fixed token of the command line.
    FixedToken,
    /// A session; its digest (to end it at logout).
    Session(String),
    /// A personal API token.
    ApiToken,
    /// The auth proxy's header.
    Proxy,
}

/// Who a request comes from and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user's name; `token:ROLE` for a fixed token; `open` on an open dashboard.
    pub actor: String,
    /// The name to show (the user's display name, else their name).
    pub shown: String,
    /// How it was proved.
    pub via: Via,
    /// The user's rights (the union of their groups').
    pub access: Arc<Access>,
}

impl Principal {
    /// Whether this is a user (with a session, a personal token or through the proxy):
    /// the account pages are theirs.
    pub fn is_user(&self) -> bool {
        matches!(self.via, Via::Session(_) | Via::ApiToken | Via::Proxy)
    }
}

/// A request that cannot be taken as anyone's, and why (answered 403, not 401: sending
/// other credentials does not help).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The auth proxy's header from an address that is not the proxy's.
    ProxyHeaderFromElsewhere,
    /// The auth proxy's header naming a user who is disabled, or a name that cannot be
    /// one.
    ProxyUserRefused,
}

/// The groups as last read, for at most [`GROUPS_FRESH`].
#[derive(Default)]
struct GroupsCopy {
    read: Option<(Instant, Arc<Vec<Group>>)>,
}

/// How long a copy of the groups is used before it is read again (a change made by this
/// process is seen at once; by another process sharing PostgreSQL, within this).
const GROUPS_FRESH: Duration = Duration::from_secs(2);

/// Sign-in, credentials and rights: shared by the gate, the routes and the account pages.
pub struct Auth {
    /// The fixed tokens of the command line.
    pub tokens: Tokens,
    /// Where users, groups and credentials are kept.
    pub store: Arc<dyn Store>,
    /// The device records and the plant's layout with their cells (for `cell:` and
    /// `line:` scope rules).
    pub records: Arc<crate::records::RecordBoard>,
    /// Sessions and the proxy.
    pub settings: AuthSettings,
    /// Sign-in attempts.
    pub limiter: limiter::LoginLimiter,
    groups: Mutex<GroupsCopy>,
    /// Whether any user exists (then nobody is let in without credentials):
    /// [`USERS_UNKNOWN`] until the store has answered once, then [`USERS_NONE`] or
    /// [`USERS_SOME`].
    users_exist: AtomicU8,
}

/// The users could not be read yet: the dashboard is closed (never open by default).
const USERS_UNKNOWN: u8 = 0;
/// No user exists.
const USERS_NONE: u8 = 1;
/// At least one user exists.
const USERS_SOME: u8 = 2;

impl Auth {
    /// Sign-in over `store`, with the fixed `tokens`.
    pub fn new(
        tokens: Tokens,
        store: Arc<dyn Store>,
        records: Arc<crate::records::RecordBoard>,
        settings: AuthSettings,
    ) -> Arc<Self> {
        Arc::new(Auth {
            tokens,
            store,
            records,
            settings,
            limiter: limiter::LoginLimiter::default(),
            groups: Mutex::default(),
            users_exist: AtomicU8::new(USERS_UNKNOWN),
        })
    }

    /// Reads whether users exist (at start, and every few seconds, [`Auth::run`]).
    ///
    /// # Errors
    /// The store's.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let any = !self.store.users().await?.is_empty();
        let state = if any { USERS_SOME } else { USERS_NONE };
        self.users_exist.store(state, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps [`Auth::refresh`] current, forgets idle rate-limit keys and stale
    /// credentials (every minute) and audit entries older than
    /// [`AuthSettings::audit_retention`] (every hour), for as long as `self` lives
    /// elsewhere.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n = 0u64;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::debug!(error = %e, "cannot read the users");
            }
            n += 1;
            if n % 12 == 0 {
                self.limiter.forget_idle();
                let now = Utc::now();
                let idle = chrono::Duration::from_std(self.settings.session_idle)
                    .unwrap_or(chrono::Duration::hours(12));
                if let Err(e) = self.store.remove_stale_credentials(now, now - idle).await {
                    tracing::debug!(error = %e, "cannot remove stale credentials");
                }
            }
            if n % 720 == 1 {
                let keep = chrono::Duration::from_std(self.settings.audit_retention)
                    .unwrap_or(chrono::Duration::days(365));
                match self.store.prune_audit(Utc::now() - keep).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "old audit entries removed"),
                    Err(e) => tracing::debug!(error = %e, "cannot prune the audit log"),
                }
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    /// Says that a user was made or removed here.
    pub fn users_changed(&self, any: bool) {
        if any {
            self.users_exist.store(USERS_SOME, Ordering::Relaxed);
        }
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).read = None;
    }

    /// Whether the store has not said yet whether users exist.
    pub fn users_unknown(&self) -> bool {
        self.users_exist.load(Ordering::Relaxed) == USERS_UNKNOWN
    }

    /// Whether users exist (or may: the store has not said yet).
    pub fn has_users(&self) -> bool {
        self.users_exist.load(Ordering::Relaxed) != USERS_NONE
    }

    /// Whether the dashboard is open: no fixed token, and the store has said that no user
    /// exists (while it cannot say, nobody is let in without credentials).
    pub fn is_open(&self) -> bool {
        self.tokens.is_open() && self.users_exist.load(Ordering::Relaxed) == USERS_NONE
    }

    /// The name of the session cookie.
    pub fn session_cookie(&self) -> &'static str {
        if self.settings.https {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The `Set-Cookie` value that gives a browser the session `secret`.
    pub fn session_set_cookie(&self, secret: &str) -> String {
        let secure = if self.settings.https { "; Secure" } else { "" };
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.session_cookie(),
            self.settings.session_lifetime.as_secs()
        )
    }

    /// The `Set-Cookie` value that takes the session cookie away.
    pub fn session_clear_cookie(&self) -> String {
        let secure = if self.settings.https { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            self.session_cookie()
        )
    }

    /// Every group, read from the store at most every [`GROUPS_FRESH`].
    ///
    /// # Errors
    /// The store's.
    pub async fn groups(&self) -> Result<Arc<Vec<Group>>, StoreError> {
        {
            let copy = self.groups.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, groups)) = &copy.read {
                if at.elapsed() < GROUPS_FRESH {
                    return Ok(groups.clone());
                }
            }
        }
        let groups = Arc::new(self.store.groups().await?);
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).read =
            Some((Instant::now(), groups.clone()));
        Ok(groups)
    }

    /// The rights of user `name`: the union of the groups they are a member of.
    ///
    /// # Errors
    /// The store's.
    pub async fn access_of(&self, name: &str) -> Result<Access, StoreError> {
        let groups = self.groups().await?;
        Ok(Access::of_groups(
            groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name)),
        ))
    }

    async fn user_principal(&self, user: &User, via: Via) -> Result<Principal, StoreError> {
        Ok(Principal {
            actor: user.name.clone(),
            shown: if user.display_name.is_empty() {
                user.name.clone()
            } else {
                user.display_name.clone()
            },
            via,
            access: Arc::new(self.access_of(&user.name).await?),
        })
    }

    /// The credential of `secret` of `kind`, if it is valid now (not expired, not idle
    /// too long for a session), and its user if enabled; touches it when last used more
    /// than a minute ago.
    async fn credential_user(
        &self,
        secret: &str,
        kind: CredentialKind,
    ) -> Result<Option<(Credential, User)>, StoreError> {
        let digest = digest(secret);
        let Some(c) = self.store.credential(&digest).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let idle = chrono::Duration::from_std(self.settings.session_idle)
            .unwrap_or(chrono::Duration::hours(12));
        if c.kind != kind
            || c.expires_at <= now
            || (kind == CredentialKind::Session && c.last_used_at + idle <= now)
        {
            return Ok(None);
        }
        let Some(user) = self.store.user(&c.user).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        if now - c.last_used_at > chrono::Duration::minutes(1) {
            self.store.touch_credential(&c.digest, now).await?;
        }
        Ok(Some((c, user)))
    }

    /// Who the request with `headers`, from `peer`, comes from (see the module's
    /// documentation); `Ok(None)` when nobody (and the dashboard is not open).
    ///
    /// # Errors
    /// `Err(Ok(refusal))` when it must be refused whatever it sends; `Err(Err(e))` when
    /// the store cannot be read.
    pub async fn principal(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Option<Principal>, Result<Refusal, StoreError>> {
        if let Some(proxy) = &self.settings.proxy {
            if let Some(value) = headers.get(proxy.header.as_str()) {
                let from_proxy = peer.is_some_and(|p| proxy.from.iter().any(|n| n.contains(p)));
                if !from_proxy {
                    return Err(Ok(Refusal::ProxyHeaderFromElsewhere));
                }
                // Two values: a proxy that appends rather than replaces let the client's
                // own header through; which one is the proxy's cannot be told.
                if headers
                    .get_all(proxy.header.as_str())
                    .iter()
                    .nth(1)
                    .is_some()
                {
                    return Err(Ok(Refusal::ProxyUserRefused));
                }
                let name = value.to_str().unwrap_or("").trim();
                if check_name("user", name).is_err() {
                    return Err(Ok(Refusal::ProxyUserRefused));
                }
                let user = self.proxy_user(name, proxy).await.map_err(Err)?;
                if user.disabled {
                    return Err(Ok(Refusal::ProxyUserRefused));
                }
                return self
                    .user_principal(&user, Via::Proxy)
                    .await
                    .map(Some)
                    .map_err(Err);
            }
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(secret) = bearer {
            if let Some(role) = self.tokens.role(secret) {
                return Ok(Some(fixed(role)));
            }
            if secret.starts_with(TOKEN_PREFIX) {
                if let Some((_, user)) = self
                    .credential_user(secret, CredentialKind::Token)
                    .await
                    .map_err(Err)?
                {
                    return self
                        .user_principal(&user, Via::ApiToken)
                        .await
                        .map(Some)
                        .map_err(Err);
                }
            }
            // An unknown bearer token is refused, except by an open dashboard, which
            // takes every request as it takes one without credentials.
            if !self.is_open() {
                return Ok(None);
            }
        }
        if let Some(secret) = cookie(headers, self.session_cookie()) {
            if let Some((c, user)) = self
                .credential_user(secret, CredentialKind::Session)
                .await
                .map_err(Err)?
            {
                return self
                    .user_principal(&user, Via::Session(c.digest))
                    .await
                    .map(Some)
                    .map_err(Err);
            }
        }
        if let Some(role) = cookie(headers, crate::auth::COOKIE).and_then(|s| self.tokens.role(s)) {
            return Ok(Some(fixed(role)));
        }
        if self.is_open() {
            return Ok(Some(Principal {
                actor: "open".into(),
                shown: "open dashboard".into(),
                via: Via::Open,
                access: Arc::new(Access::everything(Role::Admin)),
            }));
        }
        Ok(None)
    }

    /// The user `name` named by the auth proxy, made on first sight (without a password,
    /// in the proxy's default group).
    async fn proxy_user(&self, name: &str, proxy: &ProxySettings) -> Result<User, StoreError> {
        if let Some(user) = self.store.user(name).await? {
            return Ok(user);
        }
        let user = User {
            name: name.to_owned(),
            display_name: String::new(),
            password_hash: None,
            disabled: false,
            created_at: Utc::now(),
        };
        self.store.put_user(&user).await?;
        if let Some(group) = &proxy.group {
            let groups = self.store.groups().await?;
            if let Some(mut g) = groups.iter().find(|g| &g.name == group).cloned() {
                if !g.members.iter().any(|m| m == name) {
                    g.members.push(name.to_owned());
                    self.store.put_group(&g).await?;
                }
            } else {
                tracing::warn!(
                    group,
                    "the auth proxy's default group does not exist: the new user is in no group"
                );
            }
        }
        self.users_changed(true);
        self.audit(AuditEntry {
            actor: name.to_owned(),
            action: "user-added".into(),
            target: name.to_owned(),
            detail: format!(
                "first seen through the auth proxy{}",
                proxy
                    .group
                    .as_ref()
                    .map_or(String::new(), |g| format!("; put in group {g}"))
            ),
            ..AuditEntry::new("")
        })
        .await;
        Ok(user)
    }

    /// Makes a session for `user` (a new id, whatever the browser sent: no session is
    /// fixed from outside) and returns its secret, for the cookie.
    ///
    /// # Errors
    /// The store's.
    pub async fn start_session(&self, user: &str, from: &str) -> Result<String, StoreError> {
        let secret = new_secret("");
        let now = Utc::now();
        let lifetime = chrono::Duration::from_std(self.settings.session_lifetime)
            .unwrap_or(chrono::Duration::days(30));
        self.store
            .put_credential(&Credential {
                digest: digest(&secret),
                kind: CredentialKind::Session,
                user: user.to_owned(),
                name: from.chars().take(100).collect(),
                created_at: now,
                expires_at: now + lifetime,
                last_used_at: now,
            })
            .await?;
        Ok(secret)
    }

    /// Appends `entry` to the audit log (its time now); a failure is logged, not
    /// returned: what it records has happened.
    pub async fn audit(&self, mut entry: AuditEntry) {
        entry.at = Utc::now();
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::warn!(error = %e, action = entry.action, "cannot write the audit log");
        }
    }
}

/// The principal of a fixed token of `role`.
fn fixed(role: crate::auth::Role) -> Principal {
    let role = match role {
        crate::auth::Role::Viewer => Role::Viewer,
        crate::auth::Role::Admin => Role::Admin,
    };
    Principal {
        actor: format!("token:{role}"),
        shown: format!("{role} token"),
        via: Via::FixedToken,
        access: Arc::new(Access::everything(role)),
    }
}

/// A new secret: `prefix` then 32 random bytes in hexadecimal.
pub fn new_secret(prefix: &str) -> String {
    use std::fmt::Write;
    let bytes: [u8; 32] = rand::random();
    let mut s = String::with_capacity(prefix.len() + 64);
    s.push_str(prefix);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of `secret`, in lower-case hexadecimal: what the store keeps.
pub fn digest(secret: &str) -> String {
    use std::fmt::Write;
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The value of the cookie `name` among `headers`' `Cookie` headers, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name).then(|| value.trim())
        })
}

/// The request's client address: the connection's peer (warp's, or that which
/// [`crate::tls`] puts in the request's extensions).
pub fn peer(
) -> impl warp::Filter<Extract = (Option<IpAddr>,), Error = std::convert::Infallible> + Clone {
    use warp::Filter;
    warp::addr::remote().and(warp::ext::optional::<Peer>()).map(
        |remote: Option<SocketAddr>, peer: Option<Peer>| {
            remote.or(peer.map(|p| p.0)).map(|a| a.ip())
        },
    )
}

/// Who makes a change, for the audit log: the request's principal and address.
#[derive(Clone)]
pub struct Actor {
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
}

impl Actor {
    /// Writes `action` on `target` to the audit log, as this actor's.
    pub async fn audit(&self, action: &str, target: &str, detail: &str) {
        self.auth
            .audit(AuditEntry {
                actor: self
                    .principal
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |p| p.actor.clone()),
                action: action.to_owned(),
                target: target.to_owned(),
                detail: detail.to_owned(),
                ..AuditEntry::new(
                    &self
                        .peer
                        .map_or_else(|| "unknown".into(), |p| p.to_string()),
                )
            })
            .await;
    }
}

/// The request's [`Actor`].
pub fn actor(
    auth: Arc<Auth>,
) -> impl warp::Filter<Extract = (Actor,), Error = std::convert::Infallible> + Clone {
    use warp::Filter;
    crate::auth::principal(auth.clone())
        .and(peer())
        .map(move |principal, peer| Actor {
            auth: auth.clone(),
            principal,
            peer,
        })
}

/// What a live client asks at every heartbeat ([`crate::live::socket::Recheck`]): the
/// request's credentials (`headers` from `peer`) read again still give the rights
/// `scope` was made with. A store that cannot be read keeps the client (its credentials
/// cannot be told bad); a fixed token or an open dashboard is asked again too (users
/// made since close an open dashboard).
pub fn recheck(
    auth: Arc<Auth>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    scope: &Scope,
) -> crate::live::socket::Recheck {
    let access = scope.access().clone();
    let headers = Arc::new(headers);
    Box::new(move || {
        let auth = auth.clone();
        let headers = headers.clone();
        let access = access.clone();
        Box::pin(async move {
            match auth.principal(&headers, peer).await {
                Ok(Some(p)) => p.access == access,
                Ok(None) | Err(Ok(_)) => false,
                Err(Err(_)) => true,
            }
        })
    })
}

/// The peer of a connection that warp did not accept itself (HTTPS, [`crate::tls`]).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_hold_their_addresses() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("host".parse::<IpNet>().is_err());
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn secrets_are_random_and_kept_as_digests() {
        let a = new_secret(TOKEN_PREFIX);
        assert!(a.starts_with("fd_") && a.len() == 67);
        assert_ne!(a, new_secret(TOKEN_PREFIX));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

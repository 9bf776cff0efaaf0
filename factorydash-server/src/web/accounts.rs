//! The account routes: sign-in and sign-out (`/login`, `/logout`), a user's own account
//! (`/account`, `/api/tokens`) and the administration (`/admin`, `/api/users`,
//! `/api/groups`, `/api/audit`). The pages post plain HTML forms, each with the form
//! token (a double-submit cookie, [`FORM_COOKIE`]) on top of the origin checks every
//! change passes ([`crate::csrf`]); the JSON API takes what the forms take.
//!
//! Every change, sign-in and failed sign-in is written to the audit log (never a secret:
//! no password, token or session id).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use factorydash_core::accounts::{
    check_name, AuditEntry, AuditQuery, CredentialKind, Group, Role, ScopeRule, User,
    MAX_DISPLAY_NAME_LEN,
};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use crate::accounts::pages::{self, Notice};
use crate::accounts::{digest, new_secret, password, Auth, Principal, Via, TOKEN_PREFIX};
use crate::auth::local_path;

/// The form token's cookie (double submit: a page of another origin can neither read it
/// nor set it, so it cannot put it in a form).
pub const FORM_COOKIE: &str = "factorydash_form";

/// How the audit log names a sign-in attempt for a user who does not exist.
pub const UNKNOWN_USER: &str = "(unknown user)";

/// The largest form a page posts, in bytes.
pub const MAX_FORM: u64 = 16 * 1024;

/// The most days a personal token lasts.
pub const MAX_TOKEN_DAYS: i64 = 365;

/// A form's fields by name (the last of a repeated one).
pub type Form = HashMap<String, String>;

pub(crate) fn field<'f>(form: &'f Form, name: &str) -> &'f str {
    form.get(name).map_or("", String::as_str)
}

/// The request's form token and, when it has none yet, the `Set-Cookie` that gives it one.
pub(crate) fn form_token(auth: &Auth, headers: &HeaderMap) -> (String, Option<String>) {
    if let Some(t) = crate::accounts::cookie(headers, FORM_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return (t.to_owned(), None);
    }
    let t = new_secret("");
    let secure = if auth.settings.https { "; Secure" } else { "" };
    let cookie = format!("{FORM_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{secure}");
    (t, Some(cookie))
}

/// The form's `csrf` field is the request's form token, else a `403`.
pub(crate) fn check_form(headers: &HeaderMap, form: &Form) -> Result<(), ApiError> {
    if form_token_ok(headers, form) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "the form did not come from this server's page",
        ))
    }
}

/// Whether the form's `csrf` field is the request's form token.
fn form_token_ok(headers: &HeaderMap, form: &Form) -> bool {
    let sent = field(form, "csrf");
    crate::accounts::cookie(headers, FORM_COOKIE)
        .is_some_and(|t| !t.is_empty() && bool::from(t.as_bytes().ct_eq(sent.as_bytes())))
}

pub(crate) fn html(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    let mut r = reply::with_status(reply::html(body), status).into_response();
    if let Some(c) = cookie {
        if let Ok(v) = c.parse() {
            r.headers_mut().append("set-cookie", v);
        }
    }
    r
}

pub(crate) fn see_other(to: &str) -> Response {
    reply::with_header(StatusCode::SEE_OTHER, "location", to).into_response()
}

fn address(peer: Option<IpAddr>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// An audit entry of `p` from `peer`.
pub(crate) fn entry(
    p: &Principal,
    peer: Option<IpAddr>,
    action: &str,
    target: &str,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        actor: p.actor.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        ..AuditEntry::new(&address(peer))
    }
}

/// What `/login` is asked with.
#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the sign-in page (a signed-in user is sent on to `next`).
pub async fn login_page(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: LoginQuery,
) -> Response {
    let next = local_path(q.next.as_deref().unwrap_or("/")).to_owned();
    if principal.is_some_and(|p| p.is_user()) {
        return see_other(&next);
    }
    let (csrf, cookie) = form_token(&auth, &headers);
    html(
        StatusCode::OK,
        pages::login(&next, &csrf, &Notice::None, auth.settings.proxy.is_some()),
        cookie,
    )
}

/// `POST /login`: checks the name and password (rate-limited, as long whether the user
/// exists or not), and on success starts a new session and sends the browser to `next`.
pub async fn login(
    auth: Arc<Auth>,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    form: Form,
) -> Response {
    let next = local_path(field(&form, "next")).to_owned();
    let (csrf, cookie) = form_token(&auth, &headers);
    let again = |status: StatusCode, message: &str| {
        html(
            status,
            pages::login(
                &next,
                &csrf,
                &Notice::Error(message),
                auth.settings.proxy.is_some(),
            ),
            cookie.clone(),
        )
    };
    if !form_token_ok(&headers, &form) {
        return again(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this page: sign in again.",
        );
    }
    let name = field(&form, "user").trim();
    // The audit log names a user who exists only: what was typed as a name may be a
    // password typed in the wrong field.
    let known = |user: Option<&User>| -> String {
        user.map_or_else(|| UNKNOWN_USER.to_owned(), |u| u.name.clone())
    };
    if let Err(wait) = auth.limiter.attempt(name, peer) {
        // Noted once a minute per address: asking on past the limit writes nothing.
        if auth.limiter.note_refusal(peer) {
            let user = match check_name("user", name) {
                Ok(()) => auth.store.user(name).await.ok().flatten(),
                Err(_) => None,
            };
            let shown_name = known(user.as_ref());
            auth.audit(AuditEntry {
                actor: shown_name.clone(),
                action: "login-limited".into(),
                target: shown_name,
                detail: "too many sign-in attempts: refused without checking (noted once a minute per address)".into(),
                ..AuditEntry::new(&address(peer))
            })
            .await;
        }
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts: wait a minute before trying again.",
        );
        if let Ok(v) = (wait.as_secs() + 1).to_string().parse() {
            r.headers_mut().insert("retry-after", v);
        }
        return r;
    }
    let user = match auth.store.user(name).await {
        Ok(user) => user.filter(|_| check_name("user", name).is_ok()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the user to sign in");
            return again(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store cannot be read just now: try again shortly.",
            );
        }
    };
    // The hash is checked whatever the user: unknown, disabled and password-less users
    // take as long as a wrong password.
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let Ok(ok) = password::verify(hash, field(&form, "password").to_owned()).await else {
        return again(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins at once: try again in a moment.",
        );
    };
    let shown_name = known(user.as_ref());
    let Some(user) = user.filter(|_| ok) else {
        auth.audit(AuditEntry {
            actor: shown_name.clone(),
            action: "login-failed".into(),
            target: shown_name,
            detail: "wrong name or password, or a disabled user".into(),
            ..AuditEntry::new(&address(peer))
        })
        .await;
        return again(StatusCode::UNAUTHORIZED, "Wrong name or password.");
    };
    let secret = match auth.start_session(&user.name, &address(peer)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a session");
            return again(
                StatusCode::SERVICE_UNAVAILABLE,
                "The store cannot be written just now: try again shortly.",
            );
        }
    };
    auth.audit(AuditEntry {
        actor: user.name.clone(),
        action: "login".into(),
        target: user.name.clone(),
        detail: "signed in with a password".into(),
        ..AuditEntry::new(&address(peer))
    })
    .await;
    let mut r = see_other(&next);
    if let Ok(v) = auth.session_set_cookie(&secret).parse() {
        r.headers_mut().append("set-cookie", v);
    }
    r
}

/// `POST /logout`: ends this session (`everywhere=1`: every session of the user) and
/// forgets the fixed token's cookie.
pub async fn logout(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Response {
    if !form_token_ok(&headers, &form) {
        return ApiError::forbidden("the sign-out form did not come from this server's page")
            .into_response();
    }
    if let Some(p) = &principal {
        let everywhere = field(&form, "everywhere") == "1";
        let ended = match (&p.via, everywhere) {
            (Via::Session(_) | Via::Proxy | Via::ApiToken, true) => auth
                .store
                .remove_credentials_of(&p.actor, CredentialKind::Session)
                .await
                .map(|n| format!("{n} session(s) ended")),
            (Via::Session(digest), false) => auth
                .store
                .remove_credential(&p.actor, digest)
                .await
                .map(|_| "this session ended".to_owned()),
            _ => Ok("the browser's token cookie forgotten".to_owned()),
        };
        match ended {
            Ok(detail) => auth.audit(entry(p, peer, "logout", &p.actor, detail)).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot end a session");
                return ApiError::from(e).into_response();
            }
        }
    }
    let mut r = see_other("/login");
    for c in [
        auth.session_clear_cookie(),
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            crate::auth::COOKIE
        ),
    ] {
        if let Ok(v) = c.parse() {
            r.headers_mut().append("set-cookie", v);
        }
    }
    r
}

/// The user behind `p`, for the account pages and `/api/tokens` (a fixed token or an open
/// dashboard has no account).
/// A personal token cannot make tokens: one stolen would otherwise outlive its expiry
/// and its revocation by making others.
fn refuse_token_minting(p: &Principal) -> Result<(), ApiError> {
    if matches!(p.via, Via::ApiToken) {
        return Err(ApiError::forbidden(
            "a personal token cannot make tokens: sign in to make one",
        ));
    }
    Ok(())
}

async fn own_user(auth: &Auth, p: Option<&Principal>) -> Result<User, ApiError> {
    let p = p
        .filter(|p| p.is_user())
        .ok_or_else(|| ApiError::bad_request("this is a user's own page: sign in as a user (a fixed token or an open dashboard has no account)"))?;
    auth.store
        .user(&p.actor)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))
}

async fn account_answer(
    auth: &Auth,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    notice: Notice<'_>,
    new_token: Option<&str>,
) -> Result<Response, ApiError> {
    let user = own_user(auth, Some(p)).await?;
    let groups = auth.groups().await?;
    let tokens = auth
        .store
        .credentials_of(&user.name, CredentialKind::Token)
        .await?;
    let sessions = auth
        .store
        .credentials_of(&user.name, CredentialKind::Session)
        .await?
        .len();
    let (csrf, cookie) = form_token(auth, headers);
    let page = pages::account(&pages::AccountPage {
        user: &user,
        groups: groups
            .iter()
            .filter(|g| g.members.contains(&user.name))
            .collect(),
        tokens: &tokens,
        sessions,
        new_token,
        csrf: &csrf,
        admin: p.access.is_admin(),
        notice,
    });
    Ok(html(status, page, cookie))
}

/// What the account and administration pages are asked with.
#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    done: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
}

/// The words of a `?done=` code (only these: nothing from the address is shown).
fn done_text(code: Option<&str>) -> Notice<'static> {
    match code {
        Some("revoked") => Notice::Done("Token revoked."),
        Some("password") => Notice::Done("Password changed; your other sessions are signed out."),
        Some("user") => Notice::Done("User saved."),
        Some("user-state") => Notice::Done("User changed."),
        Some("user-removed") => Notice::Done("User removed, with their sessions and tokens."),
        Some("group") => Notice::Done("Group saved."),
        Some("group-removed") => Notice::Done("Group removed."),
        _ => Notice::None,
    }
}

/// `GET /account`.
pub async fn account_page(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    if !p.is_user() {
        return Ok(html(
            StatusCode::OK,
            "<!DOCTYPE html><title>Account</title><p>Signed in with a fixed token or on an open dashboard: there is no account here. <a href=\"/\">Back to the board</a></p>".into(),
            None,
        ));
    }
    account_answer(
        &auth,
        &headers,
        &p,
        StatusCode::OK,
        done_text(q.done.as_deref()),
        None,
    )
    .await
}

/// Makes a personal token for `user`: the secret (shown once) and its id (digest).
async fn make_token(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    name: &str,
    days: i64,
) -> Result<(String, String, DateTime<Utc>), ApiError> {
    check_name("token", name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "a token lasts 1 to {MAX_TOKEN_DAYS} days"
        )));
    }
    let user = own_user(auth, Some(p)).await?;
    let existing = auth
        .store
        .credentials_of(&user.name, CredentialKind::Token)
        .await?;
    if existing.len() >= 50 {
        return Err(ApiError::conflict(
            "a user has at most 50 tokens: revoke one first",
        ));
    }
    let secret = new_secret(TOKEN_PREFIX);
    let now = Utc::now();
    let credential = factorydash_core::accounts::Credential {
        digest: digest(&secret),
        kind: CredentialKind::Token,
        user: user.name.clone(),
        name: name.to_owned(),
        created_at: now,
        expires_at: now + chrono::Duration::days(days),
        last_used_at: now,
    };
    auth.store.put_credential(&credential).await?;
    auth.audit(entry(
        p,
        peer,
        "token-added",
        name,
        format!("expires {}", credential.expires_at.format("%Y-%m-%d")),
    ))
    .await;
    Ok((secret, credential.digest, credential.expires_at))
}

/// `POST /account/tokens` (form: `name`, `days`): makes a token and shows it once.
pub async fn account_token(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    refuse_token_minting(&p)?;
    check_form(&headers, &form)?;
    let days = field(&form, "days").trim().parse::<i64>().unwrap_or(0);
    match make_token(&auth, &p, peer, field(&form, "name").trim(), days).await {
        Ok((secret, ..)) => {
            account_answer(
                &auth,
                &headers,
                &p,
                StatusCode::OK,
                Notice::Done("Token made."),
                Some(&secret),
            )
            .await
        }
        Err(e) => {
            let text = e.message().to_owned();
            account_answer(&auth, &headers, &p, e.status(), Notice::Error(&text), None).await
        }
    }
}

/// `POST /account/tokens/revoke` (form: `id`).
pub async fn account_revoke(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    check_form(&headers, &form)?;
    revoke(&auth, &p, peer, field(&form, "id")).await?;
    Ok(see_other("/account?done=revoked"))
}

async fn revoke(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    id: &str,
) -> Result<(), ApiError> {
    let user = own_user(auth, Some(p)).await?;
    let tokens = auth
        .store
        .credentials_of(&user.name, CredentialKind::Token)
        .await?;
    let Some(t) = tokens.iter().find(|t| t.digest == id) else {
        return Err(ApiError::not_found("no such token of yours"));
    };
    auth.store.remove_credential(&user.name, id).await?;
    auth.audit(entry(p, peer, "token-revoked", &t.name, String::new()))
        .await;
    Ok(())
}

/// `POST /account/password` (form: `current`, `new`): the current password is checked
/// (rate-limited as a sign-in); the user's other sessions and this one end, and a new
/// session starts.
pub async fn account_password(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    check_form(&headers, &form)?;
    let mut user = own_user(&auth, Some(&p)).await?;
    let fail = |status, text: String| {
        let auth = auth.clone();
        let headers = headers.clone();
        let p = p.clone();
        async move { account_answer(&auth, &headers, &p, status, Notice::Error(&text), None).await }
    };
    if auth.limiter.attempt(&user.name, peer).is_err() {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts: wait a minute.".into(),
        )
        .await;
    }
    let Ok(current_ok) = password::verify(
        user.password_hash.clone(),
        field(&form, "current").to_owned(),
    )
    .await
    else {
        return fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many password checks at once: try again in a moment.".into(),
        )
        .await;
    };
    if !current_ok {
        auth.audit(entry(
            &p,
            peer,
            "password-change-failed",
            &user.name,
            "wrong current password".into(),
        ))
        .await;
        return fail(
            StatusCode::UNAUTHORIZED,
            "The current password is wrong.".into(),
        )
        .await;
    }
    let new = field(&form, "new");
    if let Err(e) = password::check_new(&user.name, new) {
        return fail(StatusCode::BAD_REQUEST, format!("{e}.")).await;
    }
    user.password_hash = Some(
        password::hash(new.to_owned())
            .await
            .map_err(|e| ApiError::unavailable(format!("cannot hash the password: {e}")))?,
    );
    auth.store.put_user(&user).await?;
    auth.store
        .remove_credentials_of(&user.name, CredentialKind::Session)
        .await?;
    auth.audit(entry(
        &p,
        peer,
        "password-changed",
        &user.name,
        "every session ended".into(),
    ))
    .await;
    let secret = auth.start_session(&user.name, &address(peer)).await?;
    let mut r = see_other("/account?done=password");
    if let Ok(v) = auth.session_set_cookie(&secret).parse() {
        r.headers_mut().append("set-cookie", v);
    }
    Ok(r)
}

/// What `POST /api/tokens` takes.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    name: String,
    /// How many days it lasts (1 to [`MAX_TOKEN_DAYS`]; default 90).
    days: Option<i64>,
}

/// `GET /api/tokens`: the user's tokens (never their secrets).
pub async fn tokens_list(
    auth: Arc<Auth>,
    principal: Option<Principal>,
) -> Result<Response, ApiError> {
    let user = own_user(&auth, principal.as_ref()).await?;
    let tokens = auth
        .store
        .credentials_of(&user.name, CredentialKind::Token)
        .await?;
    let list: Vec<_> = tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.digest, "name": t.name, "createdAt": t.created_at,
                "expiresAt": t.expires_at, "lastUsedAt": t.last_used_at,
            })
        })
        .collect();
    Ok(reply::json(&json!({ "tokens": list })).into_response())
}

/// `POST /api/tokens` `{"name": …, "days": …}`: `{"token": SECRET, "id": …,
/// "expiresAt": …}`, the secret shown this once.
pub async fn tokens_add(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    body: NewToken,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    refuse_token_minting(&p)?;
    let (secret, id, expires) =
        make_token(&auth, &p, peer, body.name.trim(), body.days.unwrap_or(90)).await?;
    Ok(reply::with_status(
        reply::json(&json!({ "token": secret, "id": id, "expiresAt": expires })),
        StatusCode::CREATED,
    )
    .into_response())
}

/// What `DELETE /api/tokens` takes.
#[derive(Debug, Deserialize)]
pub struct TokenId {
    id: String,
}

/// `DELETE /api/tokens?id=`: revokes one of the user's tokens.
pub async fn tokens_remove(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    q: TokenId,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    revoke(&auth, &p, peer, &q.id).await?;
    Ok(reply::json(&json!({ "revoked": q.id })).into_response())
}

// ----- Administration -----

pub(crate) fn require_admin(p: Option<&Principal>) -> Result<&Principal, ApiError> {
    p.filter(|p| p.access.is_admin())
        .ok_or_else(|| ApiError::forbidden("this needs an admin"))
}

/// A user as the administration gives them (no hash).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInput {
    name: String,
    display_name: Option<String>,
    /// A new password (checked against the rules); absent: unchanged (a new user then
    /// signs in through the proxy only).
    password: Option<String>,
    disabled: Option<bool>,
}

/// Adds or changes a user; the done code.
async fn save_user(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    input: UserInput,
) -> Result<(), ApiError> {
    let name = input.name.trim();
    check_name("user", name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let existing = auth.store.user(name).await?;
    let mut changes = Vec::new();
    let mut user = existing.clone().unwrap_or_else(|| User {
        name: name.to_owned(),
        display_name: String::new(),
        password_hash: None,
        disabled: false,
        created_at: Utc::now(),
    });
    if let Some(display) = input.display_name {
        let display = display.trim();
        if display.len() > MAX_DISPLAY_NAME_LEN || display.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "a display name has at most {MAX_DISPLAY_NAME_LEN} bytes and no control characters"
            )));
        }
        if display != user.display_name {
            user.display_name = display.to_owned();
            changes.push("display name");
        }
    }
    if let Some(pw) = input.password.filter(|pw| !pw.is_empty()) {
        password::check_new(name, &pw).map_err(|e| ApiError::bad_request(e.to_string()))?;
        user.password_hash = Some(
            password::hash(pw)
                .await
                .map_err(|e| ApiError::unavailable(format!("cannot hash the password: {e}")))?,
        );
        changes.push("password");
    }
    if let Some(disabled) = input.disabled {
        if disabled != user.disabled {
            if disabled && name == p.actor {
                return Err(ApiError::conflict("you cannot disable yourself"));
            }
            user.disabled = disabled;
            changes.push(if disabled { "disabled" } else { "enabled" });
        }
    }
    auth.store.put_user(&user).await?;
    if user.disabled || changes.contains(&"password") {
        // Out at once: sessions and tokens.
        auth.store
            .remove_credentials_of(name, CredentialKind::Session)
            .await?;
        if user.disabled {
            auth.store
                .remove_credentials_of(name, CredentialKind::Token)
                .await?;
        }
    }
    auth.users_changed(true);
    let action = if existing.is_some() {
        "user-changed"
    } else {
        "user-added"
    };
    auth.audit(entry(p, peer, action, name, changes.join(", ")))
        .await;
    Ok(())
}

async fn remove_user(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    name: &str,
) -> Result<(), ApiError> {
    if name == p.actor {
        return Err(ApiError::conflict("you cannot remove yourself"));
    }
    if !auth.store.remove_user(name).await? {
        return Err(ApiError::not_found("no such user"));
    }
    auth.users_changed(false);
    auth.audit(entry(p, peer, "user-removed", name, String::new()))
        .await;
    Ok(())
}

/// A group as the administration gives it.
#[derive(Debug, Deserialize)]
pub struct GroupInput {
    name: String,
    role: String,
    /// Scope rules ([`ScopeRule`]'s text forms).
    scope: Vec<String>,
    members: Vec<String>,
}

async fn save_group(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    input: GroupInput,
) -> Result<(), ApiError> {
    let bad = |e: factorydash_core::accounts::AccountError| ApiError::bad_request(e.to_string());
    let role: Role = input.role.trim().parse().map_err(bad)?;
    let scope = input
        .scope
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::parse::<ScopeRule>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let mut members: Vec<String> = input
        .members
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    members.sort();
    members.dedup();
    let group = Group {
        name: input.name.trim().to_owned(),
        role,
        scope,
        members,
    };
    group.check().map_err(bad)?;
    let groups = auth.groups().await?;
    let before = groups.iter().find(|g| g.name == group.name);
    // An admin may not take their own administration away by mistake.
    if before.is_some_and(|b| b.role == Role::Admin && b.members.contains(&p.actor))
        && (group.role != Role::Admin || !group.members.contains(&p.actor))
        && !groups
            .iter()
            .any(|g| g.name != group.name && g.role == Role::Admin && g.members.contains(&p.actor))
        && p.is_user()
    {
        return Err(ApiError::conflict(
            "this would take your own admin role away: another admin must do it",
        ));
    }
    let action = if before.is_some() {
        "group-changed"
    } else {
        "group-added"
    };
    auth.store.put_group(&group).await?;
    auth.users_changed(false);
    auth.audit(entry(
        p,
        peer,
        action,
        &group.name,
        format!(
            "role {}; scope {}; members {}",
            group.role,
            group
                .scope
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            group.members.join(" ")
        ),
    ))
    .await;
    Ok(())
}

async fn remove_group(
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    name: &str,
) -> Result<(), ApiError> {
    if !auth.store.remove_group(name).await? {
        return Err(ApiError::not_found("no such group"));
    }
    auth.users_changed(false);
    auth.audit(entry(p, peer, "group-removed", name, String::new()))
        .await;
    Ok(())
}

fn audit_query(
    actor: Option<&str>,
    action: Option<&str>,
    before: Option<i64>,
    limit: usize,
) -> AuditQuery {
    let text = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(80).collect())
    };
    AuditQuery {
        before,
        actor: text(actor),
        action: text(action),
        since: None,
        limit,
    }
}

/// How many audit entries a page shows.
const AUDIT_PAGE: usize = 100;

/// `GET /admin`: users, groups and the audit log (`?actor=&action=&before=`).
pub async fn admin_page(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: PageQuery,
) -> Result<Response, ApiError> {
    admin_answer(
        &auth,
        &headers,
        principal.as_ref(),
        &q,
        StatusCode::OK,
        done_text(q.done.as_deref()),
    )
    .await
}

async fn admin_answer(
    auth: &Auth,
    headers: &HeaderMap,
    principal: Option<&Principal>,
    q: &PageQuery,
    status: StatusCode,
    notice: Notice<'_>,
) -> Result<Response, ApiError> {
    let p = require_admin(principal)?;
    let users = auth.store.users().await?;
    let groups = auth.store.groups().await?;
    let audit = auth
        .store
        .audit(&audit_query(
            q.actor.as_deref(),
            q.action.as_deref(),
            q.before,
            AUDIT_PAGE,
        ))
        .await?;
    let audit_next = (audit.len() == AUDIT_PAGE).then(|| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(a) = &q.actor {
            s.append_pair("actor", a);
        }
        if let Some(a) = &q.action {
            s.append_pair("action", a);
        }
        s.append_pair("before", &audit.last().map_or(0, |e| e.id).to_string());
        format!("/admin?{}#audit", s.finish())
    });
    let (csrf, cookie) = form_token(auth, headers);
    let page = pages::admin(&pages::AdminPage {
        who: &p.shown,
        users: &users,
        groups: &groups,
        audit: &audit,
        audit_actor: q.actor.as_deref().unwrap_or(""),
        audit_action: q.action.as_deref().unwrap_or(""),
        audit_next,
        csrf: &csrf,
        notice,
    });
    Ok(html(status, page, cookie))
}

/// Which administration form was posted.
#[derive(Debug, Clone, Copy)]
pub enum AdminForm {
    /// `/admin/users`: add or change a user.
    SaveUser,
    /// `/admin/users/state`: enable or disable.
    UserState,
    /// `/admin/users/remove`.
    RemoveUser,
    /// `/admin/groups`: add or change a group.
    SaveGroup,
    /// `/admin/groups/remove`.
    RemoveGroup,
}

/// `POST /admin/…`: the administration's forms; back to `/admin` with what was done, or
/// the page again with what is wrong.
pub async fn admin_form(
    which: AdminForm,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    check_form(&headers, &form)?;
    let lines = |name: &str| {
        field(&form, name)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let name = field(&form, "name").to_owned();
    let (done, result) = match which {
        AdminForm::SaveUser => (
            "user",
            save_user(
                &auth,
                p,
                peer,
                UserInput {
                    name,
                    display_name: Some(field(&form, "display_name").to_owned()),
                    password: Some(field(&form, "password").to_owned()),
                    disabled: None,
                },
            )
            .await,
        ),
        AdminForm::UserState => (
            "user-state",
            save_user(
                &auth,
                p,
                peer,
                UserInput {
                    name,
                    display_name: None,
                    password: None,
                    disabled: Some(field(&form, "disabled") == "1"),
                },
            )
            .await,
        ),
        AdminForm::RemoveUser => ("user-removed", remove_user(&auth, p, peer, &name).await),
        AdminForm::SaveGroup => (
            "group",
            save_group(
                &auth,
                p,
                peer,
                GroupInput {
                    name,
                    role: field(&form, "role").to_owned(),
                    scope: lines("scope"),
                    members: lines("members"),
                },
            )
            .await,
        ),
        AdminForm::RemoveGroup => ("group-removed", remove_group(&auth, p, peer, &name).await),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/admin?done={done}"))),
        Err(e) => {
            let text = e.message().to_owned();
            admin_answer(
                &auth,
                &headers,
                Some(p),
                &PageQuery::default(),
                e.status(),
                Notice::Error(&text),
            )
            .await
        }
    }
}

/// `GET /api/users`: every user (no hashes), with their groups.
pub async fn users_list(
    auth: Arc<Auth>,
    principal: Option<Principal>,
) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let users = auth.store.users().await?;
    let groups = auth.store.groups().await?;
    let list: Vec<_> = users
        .iter()
        .map(|u| {
            json!({
                "name": u.name, "displayName": u.display_name, "disabled": u.disabled,
                "password": u.password_hash.is_some(), "createdAt": u.created_at,
                "groups": groups.iter().filter(|g| g.members.contains(&u.name)).map(|g| &g.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(reply::json(&json!({ "users": list })).into_response())
}

/// `POST /api/users` `{"name", "displayName"?, "password"?, "disabled"?}`.
pub async fn users_save(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    body: UserInput,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    let name = body.name.trim().to_owned();
    save_user(&auth, p, peer, body).await?;
    Ok(reply::json(&json!({ "saved": name })).into_response())
}

/// What `DELETE /api/users` and `/api/groups` take.
#[derive(Debug, Deserialize)]
pub struct Named {
    name: String,
}

/// `DELETE /api/users?name=`.
pub async fn users_remove(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    q: Named,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    remove_user(&auth, p, peer, &q.name).await?;
    Ok(reply::json(&json!({ "removed": q.name })).into_response())
}

/// `GET /api/groups`.
pub async fn groups_list(
    auth: Arc<Auth>,
    principal: Option<Principal>,
) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let groups = auth.store.groups().await?;
    let list: Vec<_> = groups
        .iter()
        .map(|g| {
            json!({
                "name": g.name, "role": g.role.as_str(),
                "scope": g.scope.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "members": g.members,
            })
        })
        .collect();
    Ok(reply::json(&json!({ "groups": list })).into_response())
}

/// `POST /api/groups` `{"name", "role", "scope": [RULE…], "members": [NAME…]}`.
pub async fn groups_save(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    body: GroupInput,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    let name = body.name.trim().to_owned();
    save_group(&auth, p, peer, body).await?;
    Ok(reply::json(&json!({ "saved": name })).into_response())
}

/// `DELETE /api/groups?name=`.
pub async fn groups_remove(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    q: Named,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    remove_group(&auth, p, peer, &q.name).await?;
    Ok(reply::json(&json!({ "removed": q.name })).into_response())
}

/// What `/api/audit` is asked with.
#[derive(Debug, Deserialize)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `GET /api/audit?actor=&action=&before=&limit=&format=csv|json`: newest first, keyset
/// pages (`before`: the last id seen); CSV is every entry that matches, a page at a time.
pub async fn audit(
    auth: Arc<Auth>,
    principal: Option<Principal>,
    q: AuditParams,
) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::bad_request("format is json or csv")),
    };
    let limit = q
        .limit
        .unwrap_or(100)
        .clamp(1, factorydash_store::MAX_AUDIT_PAGE);
    if !csv {
        let entries = auth
            .store
            .audit(&audit_query(
                q.actor.as_deref(),
                q.action.as_deref(),
                q.before,
                limit,
            ))
            .await?;
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.id))
            .flatten();
        let list: Vec<_> = entries.iter().map(audit_json).collect();
        return Ok(reply::json(&json!({ "entries": list, "nextBefore": next })).into_response());
    }
    // CSV: at most 100,000 entries, read a page at a time.
    let mut out = csv::Writer::from_writer(Vec::new());
    let _ = out.write_record(["id", "at", "actor", "address", "action", "target", "detail"]);
    let mut before = q.before;
    let mut written = 0usize;
    loop {
        let page = auth
            .store
            .audit(&audit_query(
                q.actor.as_deref(),
                q.action.as_deref(),
                before,
                factorydash_store::MAX_AUDIT_PAGE,
            ))
            .await?;
        for e in &page {
            let _ = out.write_record([
                e.id.to_string(),
                e.at.to_rfc3339(),
                csv_safe(&e.actor),
                csv_safe(&e.address),
                csv_safe(&e.action),
                csv_safe(&e.target),
                csv_safe(&e.detail),
            ]);
        }
        written += page.len();
        if page.len() < factorydash_store::MAX_AUDIT_PAGE || written >= 100_000 {
            break;
        }
        before = page.last().map(|e| e.id);
    }
    let body = out.into_inner().unwrap_or_default();
    Ok(reply::with_header(
        reply::with_header(body, "content-type", "text/csv; charset=utf-8"),
        "content-disposition",
        "attachment; filename=\"factorydash-audit.csv\"",
    )
    .into_response())
}

/// A text a spreadsheet would not run as a formula (OWASP CSV injection): a leading `=`,
/// `+`, `-`, `@`, tab or carriage return gets a `'` before it.
fn csv_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn audit_json(e: &AuditEntry) -> serde_json::Value {
    json!({
        "id": e.id, "at": e.at, "actor": e.actor, "address": e.address,
        "action": e.action, "target": e.target, "detail": e.detail,
    })
}

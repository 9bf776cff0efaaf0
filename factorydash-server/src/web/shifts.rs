//! The shifts page (`/admin/shifts`, admins only, a form that works without
//! JavaScript): the shift calendar in effect as TOML text, saved in the store
//! ([`report::CALENDAR_SETTING`]) and in effect at once, in place of the configuration
//! file's (which "Use the configuration file's" puts back). Each change is checked as
//! the configuration file is ([`crate::config::calendar_text`]) and written to the audit
//! log.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{Duration, Utc};
use factorydash_store::Setting;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::accounts::{check_form, entry, field, form_token, html, require_admin, see_other, Form};
use super::errors::ApiError;
use crate::accounts::pages::{self, Notice};
use crate::accounts::{Auth, Principal};
use crate::report::{self, CalendarSource};
use crate::state::App;

/// How many days ahead the page shows as planned.
const DAYS_SHOWN: i64 = 7;

/// `GET /admin/shifts`: the shifts page.
pub async fn page(
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: super::params::DoneQuery,
) -> Result<Response, ApiError> {
    let notice = match q.done.as_deref() {
        Some("shifts-saved") => Notice::Done("Shift calendar saved: in effect now."),
        Some("shifts-reset") => Notice::Done("The configuration file's calendar is in effect."),
        _ => Notice::None,
    };
    let text = crate::config::calendar_toml(&report::calendar());
    answer(
        &auth,
        &headers,
        principal.as_ref(),
        StatusCode::OK,
        &text,
        notice,
    )
}

fn answer(
    auth: &Auth,
    headers: &HeaderMap,
    principal: Option<&Principal>,
    status: StatusCode,
    text: &str,
    notice: Notice<'_>,
) -> Result<Response, ApiError> {
    let p = require_admin(principal)?;
    let (calendar, source) = report::calendar_and_source();
    let tz = calendar.time_zone();
    let source = match source {
        CalendarSource::Configuration if calendar.has_shifts() => {
            "the configuration file's".to_owned()
        }
        CalendarSource::Configuration => "none: every minute is planned".to_owned(),
        CalendarSource::Page { by, at } => format!(
            "saved on this page by {by} at {}",
            at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        ),
    };
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let instances = calendar.instances(now - Duration::days(1), now + Duration::days(DAYS_SHOWN));
    let days: Vec<(String, Vec<pages::PlannedShift>)> = (0..DAYS_SHOWN)
        .map(|i| {
            let day = today + Duration::days(i);
            let shifts = instances
                .iter()
                .filter(|s| s.date == day)
                .map(|s| {
                    (
                        s.name.clone(),
                        s.from.with_timezone(&tz).format("%H:%M").to_string(),
                        s.to.with_timezone(&tz).format("%H:%M").to_string(),
                        s.planned.iter().map(|r| r.seconds()).sum::<i64>() / 60,
                    )
                })
                .collect();
            (day.format("%a %Y-%m-%d").to_string(), shifts)
        })
        .collect();
    let (csrf, cookie) = form_token(auth, headers);
    let body = pages::shifts(&pages::ShiftsPage {
        who: &p.shown,
        text,
        source: &source,
        time_zone: tz.name(),
        days: &days,
        csrf: &csrf,
        notice,
    });
    Ok(html(status, body, cookie))
}

/// `POST /admin/shifts`: the form (`csrf`, `action` = `save` with `calendar`, or
/// `reset`); back to the page, or the page again with what is wrong and the text sent.
pub async fn form(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    check_form(&headers, &form)?;
    if field(&form, "action") == "reset" {
        app.store
            .put_setting(report::CALENDAR_SETTING, None)
            .await?;
        let configured = report::configured_calendar();
        report::set_calendar((*configured).clone(), CalendarSource::Configuration);
        auth.audit(entry(
            p,
            peer,
            "shifts-changed",
            "the shift calendar",
            "the configuration file's".into(),
        ))
        .await;
        return Ok(see_other("/admin/shifts?done=shifts-reset"));
    }
    let text = field(&form, "calendar").replace("\r\n", "\n");
    let calendar = match report::calendar_of_text(&text) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("{e:#}");
            return answer(
                &auth,
                &headers,
                Some(p),
                StatusCode::BAD_REQUEST,
                &text,
                Notice::Error(&message),
            );
        }
    };
    let setting = Setting {
        value: text,
        updated_at: Utc::now(),
        updated_by: p.actor.clone(),
    };
    app.store
        .put_setting(report::CALENDAR_SETTING, Some(&setting))
        .await?;
    let shifts = calendar.shifts().len();
    let holidays = calendar.holidays().count();
    report::set_calendar(
        calendar,
        CalendarSource::Page {
            by: setting.updated_by.clone(),
            at: setting.updated_at,
        },
    );
    auth.audit(entry(
        p,
        peer,
        "shifts-changed",
        "the shift calendar",
        format!("{shifts} shifts, {holidays} holidays"),
    ))
    .await;
    Ok(see_other("/admin/shifts?done=shifts-saved"))
}

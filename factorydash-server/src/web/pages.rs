//! The HTML pages: the dashboard (`/`), a device (`/device?name=`) and the agents
//! (`/agents`). Each reads the store and hands its view model to [`crate::page`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use factorydash_core::{DeviceStatus, Page, PageRequest};
use factorydash_store::{LatestFilter, StoreError};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::{self, FromQuery};
use crate::error_chain::error_chain;
use crate::page;
use crate::state::App;

/// What the client sent to a latest-values route (`/` and `/api/latest`).
#[derive(Debug, Deserialize)]
pub struct RawLatestQuery {
    limit: Option<String>,
    cursor: Option<String>,
    device: Option<String>,
    #[serde(rename = "componentId")]
    component_id: Option<String>,
    category: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    at: Option<String>,
}

/// `?device=&componentId=&category=&type=&q=&at=&cursor=&limit=`: a page of latest values
/// (or of the values as of `at`), `DEFAULT_LIMIT` rows unless `limit` says (at most
/// [`factorydash_core::page::MAX_PAGE_LIMIT`]).
#[derive(Debug)]
pub struct LatestQuery<const DEFAULT_LIMIT: usize> {
    /// Which values.
    pub filter: LatestFilter,
    /// Which page of them.
    pub request: PageRequest,
    /// The values as of this instant (UTC) rather than the latest.
    pub at: Option<DateTime<Utc>>,
}

impl<const DEFAULT_LIMIT: usize> FromQuery for LatestQuery<DEFAULT_LIMIT> {
    type Raw = RawLatestQuery;

    fn validate(q: RawLatestQuery) -> Result<Self, ApiError> {
        let limit = params::number(
            q.limit,
            "limit",
            1..=factorydash_core::page::MAX_PAGE_LIMIT,
            DEFAULT_LIMIT,
        )?;
        let after = params::text(q.cursor).map(factorydash_core::Cursor::from_string);
        let category = match params::text(q.category) {
            None => None,
            Some(c) => Some(c.to_ascii_uppercase().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "category must be SAMPLE, EVENT or CONDITION, got '{c}'"
                ))
            })?),
        };
        let filter = LatestFilter {
            device: params::text(q.device),
            component_id: params::text(q.component_id),
            category,
            kind: params::text(q.kind),
            search: params::text(q.q),
        };
        Ok(LatestQuery {
            filter,
            request: PageRequest { after, limit },
            at: params::time(q.at, "at")?,
        })
    }
}

impl<const DEFAULT_LIMIT: usize> LatestQuery<DEFAULT_LIMIT> {
    /// The page of values this asks for.
    pub async fn read(&self, app: &App) -> Result<Page<factorydash_core::Observation>, StoreError> {
        match self.at {
            Some(at) => app.store.as_of(&self.filter, at, &self.request).await,
            None => app.store.latest(&self.filter, &self.request).await,
        }
    }
}

/// `/`: the dashboard.
pub async fn dashboard(
    app: Arc<App>,
    q: LatestQuery<{ page::PAGE_SIZE }>,
) -> Result<Response, ApiError> {
    // When the store cannot be read, the page still comes, empty, saying why.
    let read = async {
        let devices = app.store.devices().await?;
        let statuses = crate::devices::statuses(&*app.store, &devices).await?;
        let latest = q.read(&app).await?;
        Ok::<_, StoreError>((devices, statuses, latest))
    }
    .await;
    let (devices, statuses, latest, store_error) = match read {
        Ok((d, s, l)) => (d, s, l, None),
        Err(e @ StoreError::InvalidCursor(_)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot read the store for the page");
            let empty = Page {
                items: Vec::new(),
                next: None,
            };
            (Vec::new(), Vec::new(), empty, Some(error_chain(&e)))
        }
    };
    let html = page::render(&page::Dashboard {
        store_kind: app.store_kind,
        store_error: store_error.as_deref(),
        sources: &app.health.all(),
        devices: &devices,
        statuses: &statuses,
        rows: &page::rows(latest.items, &devices),
        next: latest.next.as_ref(),
        filter: &q.filter,
        at: q.at,
        first_page: q.request.after.is_none(),
        limit: q.request.limit,
        now: Utc::now(),
    });
    Ok(reply::html(html).into_response())
}

/// What the client sent to `/device`.
#[derive(Debug, Deserialize)]
pub struct RawDeviceQuery {
    name: Option<String>,
}

/// `/device?name=`.
#[derive(Debug)]
pub struct DeviceQuery {
    name: String,
}

impl FromQuery for DeviceQuery {
    type Raw = RawDeviceQuery;

    fn validate(q: RawDeviceQuery) -> Result<Self, ApiError> {
        Ok(DeviceQuery {
            name: params::required(q.name, "name")?,
        })
    }
}

/// `/device?name=`: one device, its status and every latest value.
pub async fn device(app: Arc<App>, q: DeviceQuery) -> Result<Response, ApiError> {
    let name = q.name;
    let devices = app.store.devices().await?;
    let Some(device) = devices.iter().find(|d| d.name == name) else {
        return Ok(reply::with_status(
            reply::html(format!(
                "<!DOCTYPE html><p>No device named {}. <a href=\"/\">All devices</a></p>",
                maud::html! { (name) }.into_string()
            )),
            StatusCode::NOT_FOUND,
        )
        .into_response());
    };
    let latest = crate::devices::device_latest(&*app.store, &name).await?;
    let status = DeviceStatus::from_latest(&name, &latest);
    let html = page::render_device(&page::DevicePage {
        device,
        status: &status,
        latest: &latest,
        sources: &app.health.all(),
    });
    Ok(reply::html(html).into_response())
}

/// `/agents`: every source's health and the recorded gaps.
pub async fn agents(app: Arc<App>) -> Result<Response, ApiError> {
    let gaps = app.store.gaps().await?;
    Ok(reply::html(page::render_agents(&app.health.all(), &gaps)).into_response())
}

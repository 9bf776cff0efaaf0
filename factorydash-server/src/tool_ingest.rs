//! Reading each followed agent's cutting tools onto the [`ToolBoard`](crate::tools::ToolBoard):
//! its `/assets?type=CuttingTool&count=` (MTConnect Part 4 CuttingTool assets), beside the
//! agent's ingest ([`crate::ingest::install`] runs both in one task).
//!
//! An agent's tools are read once its device model is known (to place each tool on its
//! device), then every [`REFRESH`], and when an `AssetChanged` or `AssetRemoved`
//! observation of the agent passes through [`App::publish`]
//! ([`ToolBoard::observed`](crate::tools::ToolBoard::observed)), at most once per
//! [`DEBOUNCE`]. An agent that serves no assets (HTTP 404, or an MTConnectError) has no
//! tools: that is logged once, and it is asked again at the next refresh only, whatever it
//! publishes. Any other failure keeps the tools last read, is logged once and retried
//! after [`RETRY`]. A change of a device's tools near their limit re-sends its tile
//! ([`crate::live::LiveHub::refresh`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use factorydash_core::{DeviceInfo, DeviceKey};
use factorydash_mtconnect::client::AgentClient;
use tokio::time::{sleep, sleep_until, Instant};

use crate::error_chain::error_chain;
use crate::redact::redacted;
use crate::state::App;
use crate::tools::{place, ToolsState};

/// How often an agent's tools are read when nothing says they changed.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);

/// The shortest time between two reads of an agent's tools: `AssetChanged` observations
/// (a tool change per cycle on a busy machine) wake the reader at most this often.
pub const DEBOUNCE: Duration = Duration::from_secs(10);

/// When a read failed (not a refusal: the agent unreachable, an answer cut short), the
/// wait before the next.
pub const RETRY: Duration = Duration::from_secs(30);

/// How many CuttingTool assets are asked for (`count`): the reference agent keeps 1,024
/// assets by default; demo.mtconnect.org serves 66 tools.
pub const COUNT: u32 = 1000;

/// How often the reader looks for the agent's device model before its first read.
const MODEL_POLL: Duration = Duration::from_secs(1);

/// Reads the CuttingTool assets of the agent at `connect` (its URL with any credentials)
/// for as long as it runs (see the module's docs), with answers of at most
/// `max_document` bytes. Run beside the agent's ingest, and dropped with it.
pub async fn follow_tools(app: Arc<App>, connect: String, max_document: usize) {
    let Ok(client) = AgentClient::new(&connect) else {
        // Ingest says why.
        return;
    };
    let client = client.with_max_document(max_document);
    let agent = client.base_url().to_owned();
    let shown = redacted(&agent).into_owned();
    let registration = app.tools.register(&agent);
    // What was last logged of a failure, so that each is logged once.
    let mut logged: Option<String> = None;
    let mut last_read: Option<DateTime<Utc>> = None;
    loop {
        let devices = model(&app, &agent).await;
        registration.take_changed();
        let started = Instant::now();
        let result = client.assets("CuttingTool", COUNT).await;
        // An agent that refused is asked again at the next refresh only, whatever it says.
        let mut hear_changes = true;
        let wait = match result {
            Ok(parsed) => {
                for p in &parsed.problems {
                    tracing::debug!(agent = %shown, problem = %p, "assets");
                }
                let devices: Vec<&DeviceInfo> =
                    devices.iter().filter(|d| d.agent == agent).collect();
                let total = parsed.value.cutting_tools.len();
                let (by_device, nowhere) = place(parsed.value.cutting_tools, &devices);
                if logged.take().is_some() || last_read.is_none() {
                    tracing::info!(agent = %shown, tools = total, of_no_device = nowhere, "read the agent's CuttingTool assets");
                }
                let now = Utc::now();
                last_read = Some(now);
                app.alarms.tools(&agent, &by_device);
                let changed = app
                    .tools
                    .set(&agent, Some(by_device), ToolsState::Read(now));
                for device in changed {
                    app.live.refresh(DeviceKey::new(&agent, &device));
                }
                REFRESH
            }
            Err(e) if e.is_refusal() => {
                let error = redacted_error(&e);
                if logged.as_deref() != Some(&error) {
                    tracing::info!(agent = %shown, %error, "the agent serves no CuttingTool assets; asking again every 5 minutes");
                    logged = Some(error);
                }
                app.alarms.tools(&agent, &HashMap::new());
                let changed = app
                    .tools
                    .set(&agent, Some(HashMap::new()), ToolsState::NotServed);
                for device in changed {
                    app.live.refresh(DeviceKey::new(&agent, &device));
                }
                hear_changes = false;
                REFRESH
            }
            Err(e) => {
                let error = redacted_error(&e);
                if logged.as_deref() != Some(&error) {
                    tracing::warn!(agent = %shown, %error, retry_in = ?RETRY, "cannot read the agent's CuttingTool assets");
                    logged = Some(error.clone());
                }
                app.tools.set(
                    &agent,
                    None,
                    ToolsState::Failed {
                        read: last_read,
                        error,
                    },
                );
                RETRY
            }
        };
        // The next read: after `wait`, or once the assets changed, at most every DEBOUNCE.
        let next = started + wait;
        if hear_changes {
            tokio::select! {
                () = sleep_until(next) => {}
                () = registration.changed() => sleep_until((started + DEBOUNCE).min(next)).await,
            }
        } else {
            sleep_until(next).await;
        }
    }
}

/// An error as one line, the agent's credentials redacted.
fn redacted_error(e: &factorydash_mtconnect::client::ClientError) -> String {
    crate::redact::redacted_in(&error_chain(e)).into_owned()
}

/// Every agent's device models once `agent` has one in the store (polled every second:
/// ingest stores it after its first `/probe`).
async fn model(app: &App, agent: &str) -> Arc<Vec<DeviceInfo>> {
    loop {
        match app.devices().await {
            Ok(devices) if devices.iter().any(|d| d.agent == agent) => return devices,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(agent = %redacted(agent), error = %e, "cannot read the device models for the tools")
            }
        }
        sleep(MODEL_POLL).await;
    }
}

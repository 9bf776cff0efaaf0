//! What the store says of devices: which device a request names, every latest value of
//! one, and its status.

use factorydash_core::{DeviceInfo, DeviceKey, DeviceStatus, Observation, PageRequest};
use factorydash_store::{LatestFilter, Store, StoreError};

use crate::redact::redacted;

/// Why a device name (and agent) given by a user names no single device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// No agent serves a device of that name (with that agent, if one was given).
    #[error("no device named '{name}'{}", agent.as_ref().map(|a| format!(" at agent {a}")).unwrap_or_default())]
    Unknown {
        /// The name asked for.
        name: String,
        /// The agent asked for, if any.
        agent: Option<String>,
    },
    /// Several agents serve a device of that name and none was chosen.
    #[error("{} agents serve a device named '{name}': {}; say which with agent=", agents.len(), agents.join(", "))]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// The agents serving one, their credentials redacted, in the store's order.
        agents: Vec<String>,
    },
}

/// Whether `given`, an agent as a user wrote it, is `url` as the server shows it
/// (credentials redacted, [`redacted`]), a trailing `/` or not. Only the shown form is
/// compared: accepting the URL itself would let a reader test guesses of its password.
pub fn is_agent(url: &str, given: &str) -> bool {
    redacted(url).trim_end_matches('/') == given.trim_end_matches('/')
}

/// The device a user names: by `name` when one agent serves a device of that name, or by
/// `name` and `agent` (its base URL as the server shows it, [`redacted`]) when several do
/// (MTConnect names are unique only within an agent; see [`DeviceKey`]). Where several
/// agents have a device of that name but only one of them is followed now (`followed`
/// says which; the others' device models stay in the store after an agent is removed or
/// its URL changed), the name means that one.
///
/// # Errors
/// [`Unresolved`]: no such device, or several and no agent given.
pub fn resolve<'d>(
    devices: &'d [DeviceInfo],
    name: &str,
    agent: Option<&str>,
    followed: impl Fn(&str) -> bool,
) -> Result<&'d DeviceInfo, Unresolved> {
    let found: Vec<&DeviceInfo> = matching(devices, Some(name), agent).collect();
    match found.as_slice() {
        [d] => Ok(d),
        [] => Err(Unresolved::Unknown {
            name: name.to_owned(),
            agent: agent.map(str::to_owned),
        }),
        several => {
            let mut live = several.iter().filter(|d| followed(&d.agent));
            match (live.next(), live.next()) {
                (Some(d), None) => Ok(d),
                _ => Err(Unresolved::Ambiguous {
                    name: name.to_owned(),
                    agents: several
                        .iter()
                        .map(|d| redacted(&d.agent).into_owned())
                        .collect(),
                }),
            }
        }
    }
}

/// The devices of `name` (every name when `None`) at `agent` (as the server shows it;
/// every agent when `None`): what a listing filtered by name and agent covers.
pub fn matching<'d, 'q>(
    devices: &'d [DeviceInfo],
    name: Option<&'q str>,
    agent: Option<&'q str>,
) -> impl Iterator<Item = &'d DeviceInfo> + use<'d, 'q> {
    devices.iter().filter(move |d| {
        name.is_none_or(|n| d.name == n) && agent.is_none_or(|a| is_agent(&d.agent, a))
    })
}

/// The latest observation of every data item of `device`.
pub async fn device_latest(
    store: &dyn Store,
    device: &DeviceKey,
) -> Result<Vec<Observation>, StoreError> {
    let filter = LatestFilter::device(device);
    let mut request = PageRequest::first(factorydash_core::page::MAX_PAGE_LIMIT);
    let mut out = Vec::new();
    loop {
        let page = store.latest(&filter, &request).await?;
        out.extend(page.items.into_iter().map(|o| o.observation));
        match page.next {
            Some(next) => request.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A device's status from `latest`, its latest values, with its agent shown as the
/// server shows agents (credentials redacted).
pub fn status_of(device: &DeviceKey, latest: &[Observation]) -> DeviceStatus {
    DeviceStatus::from_latest(&device.device, &redacted(&device.agent), latest)
}

/// A device's status from its latest values.
pub async fn device_status(
    store: &dyn Store,
    device: &DeviceKey,
) -> Result<DeviceStatus, StoreError> {
    Ok(status_of(device, &device_latest(store, device).await?))
}

/// The statuses of `devices`, in their order: from `live` where the live publisher holds
/// the device's (kept current with what it publishes: [`crate::live::LiveHub::status`]),
/// else from the store.
pub async fn statuses(
    store: &dyn Store,
    live: &crate::live::LiveHub,
    devices: &[DeviceInfo],
) -> Result<Vec<DeviceStatus>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        let key = d.key();
        match live.status(&key) {
            Some(status) => out.push(status),
            None => out.push(device_status(store, &key).await?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(agent: &str, name: &str) -> DeviceInfo {
        DeviceInfo {
            agent: agent.into(),
            name: name.into(),
            uuid: None,
            id: name.into(),
            data_items: Vec::new(),
        }
    }

    #[test]
    fn a_name_resolves_when_unique_and_names_the_agents_when_not() {
        let devices = [
            device("http://a:5000/", "Mazak"),
            device("http://user:secret@b:5000/", "Mazak"),
            device("http://a:5000/", "Hurco"),
        ];
        let all = |_: &str| true;
        let agent_of = |name, agent| resolve(&devices, name, agent, all).map(|d| &d.agent);
        assert_eq!(agent_of("Hurco", None).unwrap(), "http://a:5000/");
        let Err(Unresolved::Ambiguous { agents, .. }) = agent_of("Mazak", None) else {
            panic!("two agents serve Mazak");
        };
        assert_eq!(agents.len(), 2);
        assert!(agents.iter().all(|a| !a.contains("secret")), "{agents:?}");
        // By the URL as shown (redacted), with or without the trailing slash.
        let shown = agents[1].trim_end_matches('/').to_owned();
        assert_eq!(
            agent_of("Mazak", Some(&shown)).unwrap(),
            "http://user:secret@b:5000/"
        );
        assert_eq!(
            agent_of("Mazak", Some("http://a:5000")).unwrap(),
            "http://a:5000/"
        );
        // Never by the URL with its credentials: no password guessing.
        for unknown in [
            agent_of("Mazak", Some("http://user:secret@b:5000/")),
            agent_of("Mazak", Some("http://c:5000/")),
            agent_of("Okuma", None),
        ] {
            assert!(
                matches!(unknown, Err(Unresolved::Unknown { .. })),
                "{unknown:?}"
            );
        }
        // An agent no longer followed leaves the name to the one that is.
        let followed = |a: &str| a == "http://a:5000/";
        assert_eq!(
            resolve(&devices, "Mazak", None, followed).unwrap().agent,
            "http://a:5000/"
        );
    }
}

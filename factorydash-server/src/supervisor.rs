//! The agent supervisor: which agents are followed now (start, pause, resume, remove), the
//! tasks that store what was read, and the process's stop.
//!
//! It knows nothing of how an agent is followed: `serve` gives it a starter
//! ([`Supervisor::set_starter`], given by ingest's `install`) that spawns the task.
//!
//! An agent is its URL without credentials ([`identity`]): what it is followed, paused,
//! removed, stored and shown by. One agent per URL: a second agent whose URL differs only
//! by its credentials is refused ([`Conflict`]). The URL with its credentials (what to
//! connect with) is kept here, in memory, for each agent started, so that it resumes
//! with them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns the task that follows an agent, given its URL to connect with (credentials and
/// all).
pub type Starter = Box<dyn Fn(&str) -> AbortHandle + Send + Sync>;

/// The agent at `url`: the URL without credentials (`http://user:pw@host` is
/// `http://host`), what it is known by everywhere.
pub fn identity(url: &str) -> String {
    factorydash_store::split_credentials(url).0.into_owned()
}

/// An agent refused because one of the same URL without credentials is known with other
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the agent {agent} is known already with other credentials (one agent per URL without its credentials)")]
pub struct Conflict {
    /// The agent (its URL without credentials).
    pub agent: String,
}

/// `urls` (agents given together, on the command line or in the configuration file)
/// name each agent once: an agent given twice with other credentials is refused; given
/// twice alike, it is one.
///
/// # Errors
/// [`Conflict`] naming the first agent given twice with other credentials.
pub fn one_per_url(urls: &[String]) -> Result<(), Conflict> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for url in urls {
        let agent = identity(url);
        match seen.get(&agent) {
            Some(other) if *other != url.as_str() => return Err(Conflict { agent }),
            _ => {
                seen.insert(agent, url);
            }
        }
    }
    Ok(())
}

/// The agents followed now, with their tasks.
#[derive(Default)]
pub struct Supervisor {
    starter: OnceLock<Starter>,
    /// By identity.
    followed: Mutex<HashMap<String, AbortHandle>>,
    /// The URL to connect with (credentials and all) of every agent started, by identity,
    /// kept while it is paused.
    connect: Mutex<HashMap<String, String>>,
    /// Cancelled when the process is asked to stop (SIGTERM, Ctrl-C): WebSocket clients
    /// are closed with a close frame and the server stops accepting connections.
    pub stopping: CancellationToken,
    /// The tasks that store what was read (one per followed agent): a clean stop waits for
    /// them to store what waits in their queues.
    pub writers: TaskTracker,
}

impl Supervisor {
    /// How agents are followed, set once when `serve` follows agents (never for a replay).
    pub fn set_starter(&self, starter: Starter) {
        let _ = self.starter.set(starter);
    }

    /// Whether this process follows agents (it does not when it plays a recording).
    pub fn follows_agents(&self) -> bool {
        self.starter.get().is_some()
    }

    /// Starts following the agent at `url` (its URL to connect with, credentials and all).
    /// `Ok(false)` when it is followed already or this process follows no agents.
    ///
    /// # Errors
    /// [`Conflict`] when the agent (`url` without credentials) was started with other
    /// credentials (followed now or paused).
    pub fn start(&self, url: &str) -> Result<bool, Conflict> {
        let Some(starter) = self.starter.get() else {
            return Ok(false);
        };
        let agent = identity(url);
        let mut connect = self.connect.lock().unwrap_or_else(|p| p.into_inner());
        if connect.get(&agent).is_some_and(|known| known != url) {
            return Err(Conflict { agent });
        }
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if followed.contains_key(&agent) {
            return Ok(false);
        }
        tracing::info!(%agent, "following");
        followed.insert(agent.clone(), starter(url));
        connect.insert(agent, url.to_owned());
        Ok(true)
    }

    /// The URL to connect with (credentials and all) of `agent` (its identity), if it was
    /// started by this process.
    pub fn url_to_connect(&self, agent: &str) -> Option<String> {
        self.connect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent)
            .cloned()
    }

    /// Stops following `agent` (its identity) and forgets how to connect to it. `false`
    /// when it was not followed.
    pub fn forget(&self, agent: &str) -> bool {
        self.connect
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(agent);
        self.stop(agent)
    }

    /// Stops following `url` (an agent's identity; what was read is still stored).
    /// `false` when it was not followed.
    pub fn stop(&self, url: &str) -> bool {
        let task = self
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(url);
        match task {
            Some(task) => {
                task.abort();
                tracing::info!(agent = %url, "no longer following");
                true
            }
            None => false,
        }
    }

    /// Stops following every agent, for a clean stop: the readers end at once, and each
    /// writer stores what waits in its queue (see [`Supervisor::writers`]).
    pub fn stop_all(&self) {
        let followed: Vec<_> = self
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (url, task) in followed {
            task.abort();
            tracing::info!(agent = %url, "stopped reading");
        }
    }

    /// The agents followed now (their identities).
    pub fn followed(&self) -> Vec<String> {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_url_without_credentials() {
        let urls = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(one_per_url(&urls(&[
            "http://a:1@h:5000",
            "http://a:1@h:5000",
            "http://k"
        ]))
        .is_ok());
        assert_eq!(
            one_per_url(&urls(&[
                "http://k",
                "http://a:1@h:5000",
                "http://a:2@h:5000"
            ])),
            Err(Conflict {
                agent: "http://h:5000".into()
            })
        );
        assert!(one_per_url(&urls(&["http://h:5000", "http://a:1@h:5000"])).is_err());
    }
}

//! The agent supervisor: which agents are followed now (start, pause, resume, remove), the
//! tasks that store what was read, and the process's stop.
//!
//! It knows nothing of how an agent is followed: `serve` gives it a starter
//! ([`Supervisor::set_starter`], given by ingest's `install`) that spawns the task.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns the task that follows an agent, given its URL.
pub type Starter = Box<dyn Fn(&str) -> AbortHandle + Send + Sync>;

/// The agents followed now, with their tasks.
#[derive(Default)]
pub struct Supervisor {
    starter: OnceLock<Starter>,
    followed: Mutex<HashMap<String, AbortHandle>>,
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

    /// Starts following `url`. `false` when it is followed already or this process
    /// follows no agents.
    pub fn start(&self, url: &str) -> bool {
        let Some(starter) = self.starter.get() else {
            return false;
        };
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        if followed.contains_key(url) {
            return false;
        }
        tracing::info!(agent = %url, "following");
        followed.insert(url.to_owned(), starter(url));
        true
    }

    /// Stops following `url` (what was read is still stored). `false` when it was not
    /// followed.
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

    /// The URLs of the agents followed now.
    pub fn followed(&self) -> Vec<String> {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

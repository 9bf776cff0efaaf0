//! [`Scope`]: which devices a request may see. Every route that lets a device's data out
//! takes one (its handler cannot be called without), made once per request by
//! `crate::auth::scope` from the request's [`super::Principal`]; the one place that
//! decides is [`Scope::sees`].

use std::sync::Arc;

use factorydash_core::accounts::Access;
use factorydash_core::layout::Layout;
use factorydash_core::{DeviceInfo, DeviceKey};

/// The devices a request may see, and with which role.
#[derive(Debug, Clone)]
pub struct Scope {
    access: Arc<Access>,
    layout: Arc<Layout>,
    user: Option<Arc<str>>,
}

impl Scope {
    /// The scope of `access`, cells and lines placed by `layout`.
    pub fn new(access: Arc<Access>, layout: Arc<Layout>) -> Self {
        Scope {
            access,
            layout,
            user: None,
        }
    }

    /// This scope, of the signed-in user shown as `name` (the pages link to their
    /// account).
    pub fn of_user(mut self, name: &str) -> Self {
        self.user = Some(name.into());
        self
    }

    /// The signed-in user's name as shown, if the request is a user's (not a fixed
    /// token's or an open dashboard's).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Who the pages' header names (see [`crate::page::Who`]).
    pub fn who(&self) -> crate::page::Who<'_> {
        crate::page::Who {
            user: self.user(),
            admin: self.is_admin(),
        }
    }

    /// Every device, viewing only: the server's own questions (the shift's figures
    /// every tile shows, each filtered by the viewer's scope before it is shown).
    pub fn everything() -> Self {
        Scope::new(
            Arc::new(Access::everything(factorydash_core::accounts::Role::Viewer)),
            Arc::new(Layout::default()),
        )
    }

    /// No device at all (a request let in without a principal: never, but closed).
    pub fn nothing() -> Self {
        Scope::new(Arc::new(Access::nothing()), Arc::new(Layout::default()))
    }

    /// Whether device `device` of `agent` (its base URL as shown) is in scope.
    pub fn sees(&self, agent: &str, device: &str) -> bool {
        self.access.sees(agent, device, &self.layout)
    }

    /// The highest role this scope gives over device `device` of `agent`; `None` when it
    /// is out of scope.
    pub fn role_for(&self, agent: &str, device: &str) -> Option<factorydash_core::accounts::Role> {
        self.access.role_for(agent, device, &self.layout)
    }

    /// The rights it was made of.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// Whether every device is in scope (no listing needs filtering).
    pub fn sees_everything(&self) -> bool {
        self.access.sees_everything()
    }

    /// Whether this request administers the server.
    pub fn is_admin(&self) -> bool {
        self.access.is_admin()
    }

    /// `devices` in scope only.
    pub fn filter<'d>(&self, devices: &'d [DeviceInfo]) -> Vec<&'d DeviceInfo> {
        devices
            .iter()
            .filter(|d| self.sees(&d.agent, &d.name))
            .collect()
    }

    /// The allow-list of the store's filters: `None` when every device is in scope, else
    /// the keys of `devices` in scope.
    pub fn allow_list(&self, devices: &[DeviceInfo]) -> Option<Vec<DeviceKey>> {
        if self.sees_everything() {
            return None;
        }
        Some(
            self.filter(devices)
                .into_iter()
                .map(|d| DeviceKey::new(&d.agent, &d.name))
                .collect(),
        )
    }

    /// Whether an agent (its base URL as shown) has a device in scope among `devices`
    /// (its sources' health and gaps are shown then), or every device is in scope.
    pub fn sees_agent(&self, agent: &str, devices: &[DeviceInfo]) -> bool {
        self.sees_everything()
            || devices
                .iter()
                .any(|d| d.agent == agent && self.sees(&d.agent, &d.name))
    }
}

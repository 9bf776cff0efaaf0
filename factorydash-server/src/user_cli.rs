//! `factorydash user`: users made and changed from the command line (the first admin
//! before anyone can sign in; afterwards the administration page does the same). The
//! password comes from a prompt without echo on a terminal, or one line of standard
//! input otherwise: never from an argument, which `ps` shows.

use std::io::{BufRead, IsTerminal, Read};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use factorydash_core::accounts::{
    check_name, AuditEntry, CredentialKind, Group, Role, ScopeRule, User,
};
use factorydash_store::Store;

use crate::accounts::password;

/// What `factorydash user` does.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Make a user (or set the password of one who exists), with a password.
    Add {
        /// The name they sign in with (letters, digits, . _ - @; at most 64).
        name: String,
        /// Also put them in the group `admins` (role admin over every device; made if
        /// missing).
        #[arg(long)]
        admin: bool,
        /// Put them in this group too (which must exist); repeat for several.
        #[arg(long, value_name = "GROUP")]
        group: Vec<String>,
        /// The name shown.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
    },
    /// Set a user's password (every session of theirs ends).
    Passwd {
        /// The user.
        name: String,
    },
    /// Disable a user: they cannot sign in, and their sessions and tokens end.
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user.
        name: String,
    },
    /// List the users and their groups.
    List,
}

/// The group `user add --admin` puts a user in.
pub const ADMINS: &str = "admins";

/// Reads a new password: twice at a prompt on a terminal, else one line of standard input
/// (at most 1 KiB), and checks it against the rules.
fn read_password(user: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {user}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::BufReader::new(std::io::stdin().lock().take(1024))
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    password::check_new(user, &password)?;
    Ok(password)
}

fn cli_audit(action: &str, target: &str, detail: String) -> AuditEntry {
    AuditEntry {
        actor: format!("cli:{}", whoami()),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        ..AuditEntry::new("local")
    }
}

fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
        .chars()
        .take(40)
        .collect()
}

/// Runs `action` on `store`.
///
/// # Errors
/// A name or password refused, a group missing, the store's errors.
pub async fn run(store: Arc<dyn Store>, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            name,
            admin,
            group,
            display_name,
        } => {
            check_name("user", &name)?;
            let mut groups = store.groups().await?;
            for g in &group {
                anyhow::ensure!(
                    groups.iter().any(|x| &x.name == g),
                    "there is no group '{g}': make it on the administration page first"
                );
            }
            let existing = store.user(&name).await?;
            anyhow::ensure!(
                existing.is_none(),
                "the user '{name}' exists: `factorydash user passwd {name}` sets a new password, `factorydash user enable {name}` lets them in again"
            );
            let password = read_password(&name)?;
            let user = User {
                name: name.clone(),
                display_name: display_name
                    .or_else(|| existing.as_ref().map(|u| u.display_name.clone()))
                    .unwrap_or_default(),
                password_hash: Some(password::hash(password).await?),
                disabled: false,
                created_at: existing.as_ref().map_or_else(Utc::now, |u| u.created_at),
            };
            store.put_user(&user).await?;
            if existing.is_some() {
                store
                    .remove_credentials_of(&name, CredentialKind::Session)
                    .await?;
            }
            let mut wanted = group;
            if admin {
                if !groups.iter().any(|g| g.name == ADMINS) {
                    groups.push(Group {
                        name: ADMINS.into(),
                        role: Role::Admin,
                        scope: vec![ScopeRule::All],
                        members: Vec::new(),
                    });
                }
                wanted.push(ADMINS.into());
            }
            for g in groups.iter_mut().filter(|g| wanted.contains(&g.name)) {
                if !g.members.contains(&name) {
                    g.members.push(name.clone());
                }
                store.put_group(g).await?;
            }
            store
                .append_audit(&cli_audit(
                    if existing.is_some() {
                        "user-changed"
                    } else {
                        "user-added"
                    },
                    &name,
                    format!("password set; groups: {}", wanted.join(", ")),
                ))
                .await?;
            println!(
                "{} {name}{}",
                if existing.is_some() {
                    "updated"
                } else {
                    "added"
                },
                if wanted.is_empty() {
                    " (in no group: they see no machine until an admin puts them in one)".to_owned()
                } else {
                    format!(", in {}", wanted.join(", "))
                }
            );
        }
        UserAction::Passwd { name } => {
            let mut user = store
                .user(&name)
                .await?
                .with_context(|| format!("no user '{name}'"))?;
            user.password_hash = Some(password::hash(read_password(&name)?).await?);
            store.put_user(&user).await?;
            let ended = store
                .remove_credentials_of(&name, CredentialKind::Session)
                .await?;
            store
                .append_audit(&cli_audit(
                    "password-changed",
                    &name,
                    format!("{ended} session(s) ended"),
                ))
                .await?;
            println!("password of {name} set; {ended} session(s) ended");
        }
        UserAction::Disable { name } => set_disabled(&*store, &name, true).await?,
        UserAction::Enable { name } => set_disabled(&*store, &name, false).await?,
        UserAction::List => {
            let groups = store.groups().await?;
            for u in store.users().await? {
                let of: Vec<&str> = groups
                    .iter()
                    .filter(|g| g.members.contains(&u.name))
                    .map(|g| g.name.as_str())
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    u.name,
                    if u.disabled { "disabled" } else { "active" },
                    if u.password_hash.is_some() {
                        "password"
                    } else {
                        "single sign-on"
                    },
                    of.join(",")
                );
            }
        }
    }
    Ok(())
}

async fn set_disabled(store: &dyn Store, name: &str, disabled: bool) -> anyhow::Result<()> {
    let mut user = store
        .user(name)
        .await?
        .with_context(|| format!("no user '{name}'"))?;
    user.disabled = disabled;
    store.put_user(&user).await?;
    if disabled {
        store
            .remove_credentials_of(name, CredentialKind::Session)
            .await?;
        store
            .remove_credentials_of(name, CredentialKind::Token)
            .await?;
    }
    let action = if disabled {
        "user-disabled"
    } else {
        "user-enabled"
    };
    store
        .append_audit(&cli_audit(action, name, String::new()))
        .await?;
    println!(
        "{name} {}",
        if disabled {
            "disabled; their sessions and tokens ended"
        } else {
            "enabled"
        }
    );
    Ok(())
}

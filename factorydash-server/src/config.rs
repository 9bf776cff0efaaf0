//! Configuration from a TOML file, beneath environment variables and flags.
//!
//! The file's keys are `serve`'s long options, with `-` or `_` (`listen`, `agent` or
//! `agents`, `database-url`, `store`, `data-dir`, `retention`, `buffer`, `memory-limit`, `count`,
//! `poll-interval`, `interval`, `heartbeat`, `no-stream`, `max-document`, `replay`, `speed`,
//! `allowed-host` or `allowed-hosts`, …); its values
//! become those options' defaults, so a flag beats an environment variable, which beats the
//! file, which beats the built-in default:
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! agents = ["https://smstestbed.nist.gov/vds", "http://10.0.0.5:5000"]
//! database-url = "postgres://postgres@127.0.0.1:5432/factorydash"
//! retention = "30d"
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The environment variable naming the configuration file (as `--config` does).
pub const CONFIG_VAR: &str = "FACTORYDASH_CONFIG";

/// The largest configuration file read: 1 MiB (a real one is a few hundred bytes).
pub const CONFIG_FILE_LIMIT: usize = 1 << 20;

/// The largest token file read (`--token-file`): 64 KiB, about a thousand tokens.
pub const TOKEN_FILE_LIMIT: usize = 64 << 10;

/// The text of the file at `path` (`what` names it in errors, e.g. `the token file`),
/// refused as soon as it passes `limit` bytes: never more than `limit` + 1 bytes are held,
/// so `/dev/zero`, a FIFO that never ends or a huge file cost no more memory than that.
///
/// # Errors
/// The file cannot be opened or read, is larger than `limit` bytes, or is not UTF-8; each
/// message names the file.
pub fn read_bounded(path: &Path, limit: usize, what: &str) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take((limit as u64).saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() > limit {
        bail!(
            "{what} {} is larger than {} KiB; refused",
            path.display(),
            limit >> 10
        );
    }
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// The configuration file named by `--config PATH` (or `--config=PATH`) among `args`, or
/// else by [`CONFIG_VAR`].
pub fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os(CONFIG_VAR).map(PathBuf::from)
}

/// `cmd` with the values of the TOML file at `path` as the defaults of `serve`'s options,
/// both at the top level and under the `serve` subcommand.
///
/// # Errors
/// The file cannot be read, is larger than [`CONFIG_FILE_LIMIT`] or is not TOML; a key is not one of `serve`'s options; a value
/// is neither a string, a number, a boolean nor an array of strings.
pub fn apply(cmd: clap::Command, path: &Path) -> anyhow::Result<clap::Command> {
    let text = read_bounded(path, CONFIG_FILE_LIMIT, "the configuration file")?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut defaults: Vec<(String, Vec<String>)> = Vec::new();
    let serve = cmd
        .find_subcommand("serve")
        .context("the serve command")?
        .clone();
    for (key, value) in &table {
        let wanted = key.replace('_', "-");
        let Some(arg) = serve.get_arguments().find(|a| {
            a.get_long() == Some(wanted.as_str()) || a.get_id().as_str().replace('_', "-") == wanted
        }) else {
            let known: Vec<String> = serve
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .filter(|l| l != "config" && l != "help")
                .collect();
            bail!(
                "{}: unknown key '{key}'; the keys are serve's options: {}",
                path.display(),
                known.join(", ")
            );
        };
        let values = match value {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Integer(i) => vec![i.to_string()],
            toml::Value::Float(f) => vec![f.to_string()],
            toml::Value::Boolean(b) => vec![b.to_string()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "{}: '{key}' holds a {}, not a string",
                        path.display(),
                        other.type_str()
                    ),
                })
                .collect::<anyhow::Result<_>>()?,
            other => bail!(
                "{}: '{key}' cannot be a {}",
                path.display(),
                other.type_str()
            ),
        };
        defaults.push((arg.get_id().to_string(), values));
    }
    let set = move |mut c: clap::Command| {
        for (id, values) in &defaults {
            // Defaults live as long as the process: leaked once, at start.
            let values: Vec<&'static str> = values
                .iter()
                .map(|v| &*Box::leak(v.clone().into_boxed_str()))
                .collect();
            c = c.mut_arg(id.as_str(), |a| a.default_values(values));
        }
        c
    };
    let set_top = set.clone();
    Ok(set_top(cmd).mut_subcommand("serve", set))
}

#[cfg(test)]
mod tests {
    use super::config_path;

    #[test]
    fn the_config_flag_in_both_spellings() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["factorydash", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_path(&args(&["factorydash", "--config=b.toml"])),
            Some("b.toml".into())
        );
    }
}

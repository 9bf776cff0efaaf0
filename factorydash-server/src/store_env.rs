//! The store's configuration from the environment variables that container images and
//! compose files already use: `DATABASE_URL` (as `FACTORYDASH_DATABASE_URL`), and the
//! official PostgreSQL image's `POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`,
//! `POSTGRES_PASSWORD` (or `POSTGRES_PASSWORD_FILE`, the Docker secrets convention) and
//! `POSTGRES_DB`, taken as libpq's `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and
//! `PGDATABASE` are. A `PG*` variable that is set wins over its `POSTGRES_*` one.
//!
//! A variable that is set must be usable: a `DATABASE_URL` of another scheme, an empty
//! `POSTGRES_*`, both `POSTGRES_PASSWORD` and `POSTGRES_PASSWORD_FILE`, or a password file
//! that cannot be read is an error at start, never a silent fall back to SQLite.

use std::collections::HashMap;
use std::path::Path;

/// The `POSTGRES_*` variables and the libpq variable each stands for.
const POSTGRES_VARS: [(&str, &str); 5] = [
    ("POSTGRES_HOST", "PGHOST"),
    ("POSTGRES_PORT", "PGPORT"),
    ("POSTGRES_USER", "PGUSER"),
    ("POSTGRES_PASSWORD", "PGPASSWORD"),
    ("POSTGRES_DB", "PGDATABASE"),
];

/// The largest `POSTGRES_PASSWORD_FILE` read, in bytes.
const PASSWORD_FILE_LIMIT: usize = 4096;

/// What the environment says of the store.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StoreEnv {
    /// `DATABASE_URL`, when set.
    pub database_url: Option<String>,
    /// The variables for libpq ([`factorydash_store::postgres::PgConfig::resolve`]): the
    /// process's `PG*` ones with the `POSTGRES_*` ones added where their `PG*` is unset.
    pub pg: HashMap<String, String>,
    /// The `POSTGRES_*` variables that were taken (names, for the log).
    pub postgres_vars: Vec<&'static str>,
}

/// Reads the store's variables from `env` (the process's, as
/// [`factorydash_store::postgres::PgConfig::process_env`] gives them plus the ones named
/// here), reading `POSTGRES_PASSWORD_FILE` with `read_file`.
///
/// # Errors
/// A variable set but unusable (see the module's docs); the message names it and never
/// quotes a password.
pub fn store_env(
    env: &HashMap<String, String>,
    read_file: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> anyhow::Result<StoreEnv> {
    let mut out = StoreEnv {
        pg: env.clone(),
        ..StoreEnv::default()
    };
    if let Some(url) = env.get("DATABASE_URL") {
        if url.trim().is_empty() {
            anyhow::bail!(
                "DATABASE_URL is set but empty: unset it, or give a postgres:// or sqlite: URL"
            );
        }
        out.database_url = Some(url.clone());
    }
    let set = |name: &'static str, pg: &str, value: String, out: &mut StoreEnv| {
        if !env.contains_key(pg) {
            out.pg.insert(pg.to_owned(), value);
            out.postgres_vars.push(name);
        }
    };
    for (name, pg) in POSTGRES_VARS {
        if let Some(value) = env.get(name) {
            if value.is_empty() {
                anyhow::bail!("{name} is set but empty: unset it or give it a value");
            }
            set(name, pg, value.clone(), &mut out);
        }
    }
    if let Some(path) = env.get("POSTGRES_PASSWORD_FILE") {
        if env.contains_key("POSTGRES_PASSWORD") {
            anyhow::bail!("both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set: give one");
        }
        let bytes = read_file(Path::new(path))
            .map_err(|e| anyhow::anyhow!("POSTGRES_PASSWORD_FILE {path}: {e}"))?;
        if bytes.len() > PASSWORD_FILE_LIMIT {
            anyhow::bail!("POSTGRES_PASSWORD_FILE {path}: larger than {PASSWORD_FILE_LIMIT} bytes: not a password file");
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("POSTGRES_PASSWORD_FILE {path}: not UTF-8"))?;
        // A secret file usually ends with a newline that is not part of the password.
        let password = text.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            anyhow::bail!("POSTGRES_PASSWORD_FILE {path} is empty");
        }
        set(
            "POSTGRES_PASSWORD_FILE",
            "PGPASSWORD",
            password.to_owned(),
            &mut out,
        );
    }
    Ok(out)
}

/// Reads `path` up to `PASSWORD_FILE_LIMIT` + 1 bytes (enough to tell it is too large).
pub fn read_small_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(PASSWORD_FILE_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The variables [`store_env`] reads besides libpq's.
pub const READ_VARS: [&str; 7] = [
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_PASSWORD_FILE",
    "POSTGRES_DB",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_file(_: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    #[test]
    fn postgres_variables_become_libpq_ones_unless_those_are_set() {
        let got = store_env(
            &env(&[
                ("POSTGRES_HOST", "db"),
                ("POSTGRES_PORT", "5433"),
                ("POSTGRES_USER", "fd"),
                ("POSTGRES_PASSWORD", "pw"),
                ("POSTGRES_DB", "plant"),
                ("PGHOST", "explicit"),
            ]),
            no_file,
        )
        .unwrap();
        assert_eq!(got.pg["PGHOST"], "explicit", "a PG* variable wins");
        assert_eq!(got.pg["PGPORT"], "5433");
        assert_eq!(got.pg["PGUSER"], "fd");
        assert_eq!(got.pg["PGPASSWORD"], "pw");
        assert_eq!(got.pg["PGDATABASE"], "plant");
        assert_eq!(
            got.postgres_vars,
            [
                "POSTGRES_PORT",
                "POSTGRES_USER",
                "POSTGRES_PASSWORD",
                "POSTGRES_DB"
            ]
        );
        assert_eq!(got.database_url, None);
    }

    #[test]
    fn the_password_file_is_read_without_its_final_newline() {
        let got = store_env(
            &env(&[("POSTGRES_PASSWORD_FILE", "/run/secrets/pg")]),
            |p: &Path| {
                assert_eq!(p, Path::new("/run/secrets/pg"));
                Ok(b"s3cret\n".to_vec())
            },
        )
        .unwrap();
        assert_eq!(got.pg["PGPASSWORD"], "s3cret");
    }

    #[test]
    fn variables_set_but_unusable_are_errors_that_quote_no_password() {
        let cases: &[&[(&str, &str)]] = &[
            &[("DATABASE_URL", " ")],
            &[("POSTGRES_HOST", "")],
            &[
                ("POSTGRES_PASSWORD", "pw"),
                ("POSTGRES_PASSWORD_FILE", "/x"),
            ],
            &[("POSTGRES_PASSWORD_FILE", "/missing")],
        ];
        for case in cases {
            let e = store_env(&env(case), no_file).unwrap_err().to_string();
            assert!(!e.contains("pw"), "{e}");
        }
        let e = store_env(&env(&[("POSTGRES_PASSWORD_FILE", "/big")]), |_: &Path| {
            Ok(vec![b'x'; 5000])
        })
        .unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let e = store_env(&env(&[("POSTGRES_PASSWORD_FILE", "/empty")]), |_: &Path| {
            Ok(b"\n".to_vec())
        })
        .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn database_url_is_taken() {
        let got = store_env(&env(&[("DATABASE_URL", "postgres://db/x")]), no_file).unwrap();
        assert_eq!(got.database_url.as_deref(), Some("postgres://db/x"));
    }
}

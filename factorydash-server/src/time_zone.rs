//! The plant's time zone: the IANA name (`Europe/Berlin`) in which the pages show times
//! (`--time-zone`, by default the server's own zone). The server keeps every time in
//! UTC; the name goes to the browser (`<body data-tz>`), which formats times in that zone
//! with its own tz database (`Intl.DateTimeFormat`) and labels them with the zone. A
//! viewer may switch to the browser's own zone instead.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The zone `serve` was given, set once at start ([`set_plant`]).
static PLANT: OnceLock<PlantTimeZone> = OnceLock::new();

/// Sets the plant's time zone for every page of this process; a second call is ignored
/// (the zone is a start-up setting, like the log format).
pub fn set_plant(zone: PlantTimeZone) {
    let _ = PLANT.set(zone);
}

/// The plant's time zone: the one [`set_plant`] set, else `UTC`.
pub fn plant() -> &'static PlantTimeZone {
    PLANT.get_or_init(PlantTimeZone::default)
}

/// An IANA time zone name known to the tz database (`Europe/Berlin`, `UTC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantTimeZone(String);

impl PlantTimeZone {
    /// The zone's IANA name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The server's own time zone (the `TZ` variable, else `/etc/localtime`), or `UTC`
    /// when it cannot be told or is not an IANA name (a container without a zone).
    pub fn system() -> Self {
        std::env::var("TZ")
            .ok()
            .map(|tz| tz.trim_start_matches(':').to_owned())
            .or_else(|| iana_time_zone::get_timezone().ok())
            .and_then(|name| name.parse().ok())
            .unwrap_or_else(|| PlantTimeZone("UTC".to_owned()))
    }
}

impl Default for PlantTimeZone {
    fn default() -> Self {
        PlantTimeZone("UTC".to_owned())
    }
}

impl FromStr for PlantTimeZone {
    type Err = String;

    /// `name` if the tz database knows it (case as the database spells it: `europe/berlin`
    /// is refused, with the right spelling suggested where one exists).
    fn from_str(name: &str) -> Result<Self, String> {
        match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => Ok(PlantTimeZone(tz.name().to_owned())),
            Err(_) => {
                let hint = chrono_tz::TZ_VARIANTS
                    .iter()
                    .find(|tz| tz.name().eq_ignore_ascii_case(name))
                    .map(|tz| format!(" (did you mean {}?)", tz.name()))
                    .unwrap_or_default();
                Err(format!(
                    "'{name}' is not a time zone of the IANA tz database, e.g. Europe/Berlin or UTC{hint}"
                ))
            }
        }
    }
}

impl fmt::Display for PlantTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PlantTimeZone;

    #[test]
    fn iana_names_are_taken_and_others_refused_with_a_hint() {
        assert_eq!(
            "Europe/Berlin".parse::<PlantTimeZone>().unwrap().name(),
            "Europe/Berlin"
        );
        assert_eq!("UTC".parse::<PlantTimeZone>().unwrap().name(), "UTC");
        let e = "europe/berlin".parse::<PlantTimeZone>().unwrap_err();
        assert!(e.contains("did you mean Europe/Berlin?"), "{e}");
        let e = "Mars/Olympus".parse::<PlantTimeZone>().unwrap_err();
        assert!(e.contains("not a time zone"), "{e}");
        // Whatever the machine says, the default is a zone the database knows.
        assert!(PlantTimeZone::system()
            .name()
            .parse::<PlantTimeZone>()
            .is_ok());
    }
}

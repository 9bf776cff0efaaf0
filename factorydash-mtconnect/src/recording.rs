//! Recordings of an agent: a directory holding its Devices document and consecutive
//! Streams pages, which `factorydash replay` serves and `serve --replay` plays.
//!
//! Layout: `probe.xml` (or `probe.xml.gz`) and any number of `*.xml` / `*.xml.gz` Streams
//! pages (answers to `/sample`), taken in file-name order. Pages may overlap: an observation
//! is identified by its sequence and kept once.
//!
//! Or, as the reference agent's simulator does, recorded SHDR adapter logs: one per device,
//! named after it (`GFAgie01.shdr.txt`, `.shdr`, optionally `.gz`), decoded with the probe's
//! device model ([`crate::shdr`]). Each log is moved in time to start when the earliest one
//! starts, the logs are merged by timestamp and numbered from sequence 1.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use factorydash_core::Observation;
use flate2::read::GzDecoder;

use crate::devices::{parse_devices, Devices};
use crate::header::Header;
use crate::problem::Problem;
use crate::streams::parse_streams;
use crate::ParseOptions;

/// A recording loaded into memory.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The Devices document's bytes, as recorded.
    pub probe: Vec<u8>,
    /// The parsed device model.
    pub devices: Devices,
    /// The Header of the last page (its `instanceId`, `sender`, `version`, `bufferSize`).
    pub header: Header,
    /// Every observation of every page, in sequence order, each sequence once.
    pub observations: Vec<Observation>,
    /// Problems met in the probe and the pages, each prefixed with its file.
    pub problems: Vec<String>,
}

/// Why a recording could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The directory has no `probe.xml` or `probe.xml.gz`.
    #[error("{0} has no probe.xml or probe.xml.gz")]
    NoProbe(PathBuf),
    /// The directory has no Streams pages and no SHDR logs.
    #[error("{0} has no Streams pages (*.xml or *.xml.gz besides the probe) and no SHDR logs (*.shdr, *.shdr.txt)")]
    NoPages(PathBuf),
    /// An SHDR log is named after no device of the probe.
    #[error("{path}: the probe has no device `{device}` (SHDR logs are named after their device)")]
    UnknownDevice {
        /// The log.
        path: PathBuf,
        /// The device its name gives.
        device: String,
    },
    /// A document is not the MTConnect document expected.
    #[error("{path} is not usable")]
    Document {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<crate::Error>,
    },
}

/// Reads a file, gunzipping it when its name ends in `.gz`, up to the default document
/// limit ([`ParseOptions::max_document_bytes`]); see [`read_limited`].
///
/// # Errors
/// As [`read_limited`].
pub fn read_maybe_gzipped(path: &Path) -> std::io::Result<Vec<u8>> {
    read_limited(path, ParseOptions::default().max_document_bytes)
}

/// Reads a file, gunzipping it when its name ends in `.gz`, refusing it as soon as it (or
/// what it inflates to) passes `limit` bytes: never more than `limit` bytes are held, so a
/// file such as `/dev/zero` or a gzip bomb costs no more memory than that.
///
/// # Errors
/// The I/O or decompression error; an error of kind [`std::io::ErrorKind::FileTooLarge`]
/// when the content passes `limit`.
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let file = fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        read_to_limit(GzDecoder::new(std::io::BufReader::new(file)), limit)
    } else {
        read_to_limit(file, limit)
    }
}

/// Reads `reader` to its end, refusing it as soon as it passes `limit` bytes.
///
/// # Errors
/// The I/O error; [`std::io::ErrorKind::FileTooLarge`] past `limit`.
pub fn read_to_limit(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the document limit of {limit} bytes"),
        ));
    }
    Ok(out)
}

impl Recording {
    /// Loads the recording in `dir`.
    ///
    /// # Errors
    /// See [`RecordingError`]. A page whose XML breaks off is kept up to the break, and
    /// the problem is listed in [`Recording::problems`].
    pub fn load(dir: &Path) -> Result<Recording, RecordingError> {
        Self::load_with(dir, &ParseOptions::default())
    }

    /// Loads the recording in `dir`, each file (or what it inflates to) refused past
    /// `options.max_document_bytes`.
    ///
    /// # Errors
    /// As [`Recording::load`]; [`RecordingError::Io`] of kind
    /// [`std::io::ErrorKind::FileTooLarge`] for a file past the limit.
    pub fn load_with(dir: &Path, options: &ParseOptions) -> Result<Recording, RecordingError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| RecordingError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            paths.push(entry.map_err(io(dir))?.path());
        }
        let limit = options.max_document_bytes;
        assemble(dir, paths, &|path: &Path| read_limited(path, limit))
    }

    /// Loads a recording from files held in memory (e.g. built into a binary with
    /// `include_bytes!`): `(file name, content)` pairs laid out as a recording directory
    /// (see [the module's docs](self)), gzipped where the name ends in `.gz`. `label`
    /// names the recording in errors and problems. Each file (or what it inflates to) is
    /// refused past `options.max_document_bytes`.
    ///
    /// # Errors
    /// As [`Recording::load_with`].
    pub fn from_files(
        label: &Path,
        files: &[(&str, &[u8])],
        options: &ParseOptions,
    ) -> Result<Recording, RecordingError> {
        let limit = options.max_document_bytes;
        let paths = files.iter().map(|(name, _)| label.join(name)).collect();
        assemble(label, paths, &|path: &Path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some((_, bytes)) = files.iter().find(|(n, _)| *n == name) else {
                return Err(std::io::ErrorKind::NotFound.into());
            };
            if name.ends_with(".gz") {
                read_to_limit(GzDecoder::new(*bytes), limit)
            } else {
                read_to_limit(*bytes, limit)
            }
        })
    }
}

/// A recording from the files at `paths` (of the recording `dir`), each read with `read`.
fn assemble(
    dir: &Path,
    paths: Vec<PathBuf>,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Recording, RecordingError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RecordingError::Io { path, source }
    };
    let mut probe_path = None;
    let mut pages = Vec::new();
    let mut logs = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "probe.xml" || name == "probe.xml.gz" {
            probe_path = Some(path);
        } else if name.ends_with(".xml") || name.ends_with(".xml.gz") {
            pages.push(path);
        } else if [".shdr", ".shdr.gz", ".shdr.txt", ".shdr.txt.gz"]
            .iter()
            .any(|e| name.ends_with(e))
        {
            logs.push(path);
        }
    }
    let probe_path = probe_path.ok_or_else(|| RecordingError::NoProbe(dir.to_owned()))?;
    if pages.is_empty() && logs.is_empty() {
        return Err(RecordingError::NoPages(dir.to_owned()));
    }
    pages.sort();
    logs.sort();
    let probe = read(&probe_path).map_err(io(&probe_path))?;
    let parsed = parse_devices(&probe).map_err(|source| RecordingError::Document {
        path: probe_path.clone(),
        source: Box::new(source),
    })?;
    let mut problems: Vec<String> = parsed
        .problems
        .iter()
        .map(|p| format!("{}: {p}", probe_path.display()))
        .collect();
    let devices = parsed.value;
    let mut header = Header::default();
    let mut observations = Vec::new();
    for page in &pages {
        let bytes = read(page).map_err(io(page))?;
        let parsed = parse_streams(&bytes).map_err(|source| RecordingError::Document {
            path: page.clone(),
            source: Box::new(source),
        })?;
        problems.extend(report(page, &parsed.problems));
        header = parsed.value.header.clone();
        observations.extend(parsed.value.to_observations());
    }
    observations.sort_by_key(|o| o.sequence);
    observations.dedup_by_key(|o| o.sequence);
    if !logs.is_empty() {
        let first = observations.last().map_or(1, |o| o.sequence + 1);
        let (shdr, start) = shdr_observations(&devices, &logs, first, read, &mut problems)?;
        if pages.is_empty() {
            header = Header {
                instance_id: start.timestamp().max(0) as u64,
                sender: "factorydash-shdr".into(),
                version: "1.3.0".into(),
                ..Header::default()
            };
        }
        observations.extend(shdr);
    }
    Ok(Recording {
        probe,
        devices,
        header,
        observations,
        problems,
    })
}

/// The observations of SHDR `logs` (one per device, each read with `read`), aligned to a
/// common start, merged by timestamp and numbered from `first`; and that start.
fn shdr_observations(
    devices: &Devices,
    logs: &[PathBuf],
    first: u64,
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    problems: &mut Vec<String>,
) -> Result<(Vec<Observation>, chrono::DateTime<chrono::Utc>), RecordingError> {
    let mut decoded = Vec::new();
    for path in logs {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let device = name.split('.').next().unwrap_or("").to_owned();
        let mut decoder = crate::shdr::ShdrDecoder::new(devices, &device).ok_or_else(|| {
            RecordingError::UnknownDevice {
                path: path.clone(),
                device: device.clone(),
            }
        })?;
        let bytes = read(path).map_err(|source| RecordingError::Io {
            path: path.clone(),
            source,
        })?;
        let mut found = Vec::new();
        let lines =
            crate::shdr::decode_log(&mut decoder, &String::from_utf8_lossy(&bytes), &mut found);
        problems.extend(report(path, &found));
        decoded.push(lines);
    }
    let start = decoded
        .iter()
        .filter_map(|lines| lines.first().map(|l| l.timestamp))
        .min()
        .unwrap_or_else(chrono::Utc::now);
    let mut merged: Vec<(chrono::DateTime<chrono::Utc>, usize, usize, Observation)> = Vec::new();
    for (log, lines) in decoded.into_iter().enumerate() {
        let Some(shift) = lines.first().map(|l| l.timestamp - start) else {
            continue;
        };
        for (i, line) in lines.into_iter().enumerate() {
            for mut o in line.observations {
                o.timestamp -= shift;
                merged.push((o.timestamp, log, i, o));
            }
        }
    }
    merged.sort_by_key(|m| (m.0, m.1, m.2));
    let observations = merged
        .into_iter()
        .zip(first..)
        .map(|((.., mut o), sequence)| {
            o.sequence = sequence;
            o
        })
        .collect();
    Ok((observations, start))
}

fn report<'p>(path: &'p Path, problems: &'p [Problem]) -> impl Iterator<Item = String> + 'p {
    problems
        .iter()
        .map(move |p| format!("{}: {p}", path.display()))
}

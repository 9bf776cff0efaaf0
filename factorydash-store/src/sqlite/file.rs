//! The database file before SQLite opens it: its directory, its permissions and the lock
//! that keeps a second factorydash off it.
//!
//! The lock is an exclusive `flock(2)` on the database file itself (its inode), so that
//! a second path to the same file (a hard link, a symbolic link, `dir/../dir/file`) meets
//! the same lock. `flock` locks and the `fcntl` locks SQLite takes are independent of each
//! other on Linux and the BSDs (not on NFS, where Linux emulates `flock` with `fcntl`:
//! keep the file on a local file system, as SQLite itself asks).
//!
//! POSIX (`fcntl`) locks belong to a process and an inode: closing *any* descriptor of the
//! file in the process drops every one of them, SQLite's included. So a second store of
//! the same file in this process must never open the file at all: the files this
//! process holds are listed by device and inode ([`HELD`]) and a second open is refused
//! before a descriptor is made.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::StoreError;

/// Permissions of a directory the store creates for its file: its owner's only.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Permissions of the database file (SQLite gives its `-wal` and `-shm` files the
/// database file's permissions): its owner's only.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// The files the stores of this process hold, by (device, inode).
static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// The lock on a database file: held while it lives, released (and the file's entry in
/// [`HELD`] removed) when dropped.
pub(super) struct FileLock {
    /// The locked descriptor; dropped after every SQLite connection of the store.
    _file: File,
    id: (u64, u64),
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|id| *id != self.id);
    }
}

/// The sidecar lock file `<path>.lock` that earlier factorydash builds made next to the
/// database file at `path`; no longer made (the database file itself is locked), and
/// removed when found by a store that holds the database (see [`SqliteStore::open`](super::SqliteStore::open)).
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Prepares the database file at `path` for SQLite and locks it: creates its directory
/// (owner only) and the file (owner only) if missing, takes the owner-only permissions
/// back from an existing file, `-wal` or `-shm` that others may read (with a warning),
/// locks the file and removes a stale lock file of an older version.
pub(super) fn prepare(path: &Path) -> Result<FileLock, StoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::ReadOnly { path: path.clone() }
            }
            _ => StoreError::Io {
                path: path.clone(),
                source,
            },
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_dir(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
        } else {
            warn_if_open(dir);
        }
    }
    // Held while the file is looked at, opened and locked: one store of this process
    // at a time does it.
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    // Another store of this process on the same file: refused before a descriptor of the
    // file is opened (closing it would drop that store's SQLite locks, see the module
    // docs). A file not there yet cannot be held.
    if std::fs::metadata(path).is_ok_and(|m| held.contains(&id_of(&m))) {
        return Err(StoreError::Locked {
            path: path.to_owned(),
        });
    }
    let file = open_file(path).map_err(io(path))?;
    let meta = file.metadata().map_err(io(path))?;
    let id = id_of(&meta);
    if held.contains(&id) {
        // The path was changed to name a held file between the look and the open: the
        // descriptor is leaked rather than closed, which would release the other store's
        // SQLite locks.
        std::mem::forget(file);
        return Err(StoreError::Locked {
            path: path.to_owned(),
        });
    }
    match file.try_lock() {
        Ok(()) => held.push(id),
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Locked {
                path: path.to_owned(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
    }
    drop(held);
    let lock = FileLock { _file: file, id };
    tighten(path, &meta)?;
    remove_stale_lock_file(path)?;
    Ok(lock)
}

#[cfg(unix)]
fn id_of(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn id_of(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Warns when an existing data directory lets other users in: the files in it are its
/// owner's only, but others can see their names, and where they may write, replace them.
/// The directory is left as its owner chose.
#[cfg(unix)]
fn warn_if_open(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{:o}", mode & 0o7777),
                "the data directory is open to other users (the files in it are not); `chmod 700` it unless it is shared on purpose"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open(_dir: &Path) {}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Opens (creating it owner-only if missing) the database file, read and write.
fn open_file(path: &Path) -> std::io::Result<File> {
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path)
}

/// Takes group and other permissions away from the database file and its `-wal` and
/// `-shm` files where they have any, saying so.
#[cfg(unix)]
fn tighten(path: &Path, meta: &std::fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![(path.to_owned(), Some(meta.permissions().mode()))];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push((PathBuf::from(name), None));
    }
    for (file, mode) in files {
        let mode = match mode {
            Some(m) => m,
            None => match std::fs::metadata(&file) {
                Ok(m) => m.permissions().mode(),
                Err(_) => continue,
            },
        };
        if mode & 0o077 == 0 {
            continue;
        }
        let tightened = mode & 0o7700;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(tightened)).map_err(
            |source| StoreError::Io {
                path: file.clone(),
                source,
            },
        )?;
        tracing::warn!(
            file = %file.display(),
            was = format_args!("{:o}", mode & 0o7777),
            now = format_args!("{:o}", tightened),
            "the store's file was readable by other users; now its owner's only"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), StoreError> {
    Ok(())
}

/// Removes `<path>.lock`, the lock file of an older version, once that older version is
/// known not to run: when its lock is free. Held, the file is in use by that version.
fn remove_stale_lock_file(path: &Path) -> Result<(), StoreError> {
    let stale = lock_path(path);
    if !std::fs::symlink_metadata(&stale).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let io = |source| StoreError::Io {
        path: stale.clone(),
        source,
    };
    let old = File::options().write(true).open(&stale).map_err(io)?;
    match old.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Locked {
                path: path.to_owned(),
            })
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    std::fs::remove_file(&stale).map_err(io)?;
    Ok(())
}

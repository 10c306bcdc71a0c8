//! The state store: one directory per container under the runtime root.
//!
//! ```text
//! <root>/<id>/state.json   the container's record, replaced atomically
//! <root>/<id>/exec.fifo    present between create and start
//! ```
//! Every operation on one container holds an exclusive `flock(2)` on its
//! directory for its whole duration, so concurrent `start`/`kill`/`delete`
//! calls on the same id are serialised, while different ids never contend.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::state::Record;

/// Why the state of a container could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The id is empty, too long, or has characters other than `[A-Za-z0-9_+.-]`.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The refused id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// A container with this id already exists.
    #[error("container {0} already exists")]
    Exists(String),
    /// No container with this id exists.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A file of the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// state.json is not what rcrun wrote.
    #[error("{path}: corrupt state: {msg}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        msg: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` as JSON to `path` atomically: a hidden temporary file
/// (mode 0600) in the same directory, renamed over it. No fsync: the
/// state lives on tmpfs, and a torn file is never visible.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let data = serde_json::to_vec(value).expect("plain data serializes");
    let mut f = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&data)?;
    fs::rename(&tmp, path)
}

/// Checks a container id the way runc does.
///
/// # Errors
/// [`StoreError::InvalidId`] with the reason.
///
/// ```
/// assert!(rcrun::validate_id("web-1.prod").is_ok());
/// assert!(rcrun::validate_id("../etc").is_err());
/// assert!(rcrun::validate_id("").is_err());
/// ```
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id == "." || id == ".." {
        return bad("it is a path component");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits, '_', '+', '-' and '.' are allowed");
    }
    Ok(())
}

/// The runtime root: a directory holding one sub-directory per container.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A container's directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct Entry {
    id: String,
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Store {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(id: &str, dir: PathBuf) -> Result<Entry, StoreError> {
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StoreError::NotFound(id.to_string())
                } else {
                    io(&dir)(e)
                }
            })?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| io(&dir)(std::io::Error::from(e)))?;
        Ok(Entry {
            id: id.to_string(),
            dir,
            _lock: lock,
        })
    }

    /// Reserves `id`: creates and locks its directory.
    ///
    /// # Errors
    /// [`StoreError::Exists`] when the id is taken, [`StoreError::InvalidId`].
    pub fn create(&self, id: &str) -> Result<Entry, StoreError> {
        validate_id(id)?;
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o711);
        b.create(&self.root).map_err(io(&self.root))?;
        let dir = self.root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(id.to_string()))
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        Self::lock(id, dir)
    }

    /// Opens and locks the directory of an existing container.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such container.
    pub fn open(&self, id: &str) -> Result<Entry, StoreError> {
        validate_id(id)?;
        let e = Self::lock(id, self.root.join(id))?;
        // It may have been deleted while we waited for the lock.
        if !e.state_path().exists() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(e)
    }

    /// The ids of all containers, sorted.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the root cannot be read.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&self.root)(e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl Entry {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Path of the exec fifo that holds the init process until `start`.
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Reads the container's record.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn read(&self) -> Result<Record, StoreError> {
        let p = self.state_path();
        let data = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotFound(self.id.clone())
            } else {
                io(&p)(e)
            }
        })?;
        serde_json::from_slice(&data).map_err(|e| StoreError::Corrupt {
            path: p,
            msg: e.to_string(),
        })
    }

    /// Replaces the record atomically (temporary file, fsync-free rename:
    /// the store lives on tmpfs and a torn file is never visible).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn write(&self, rec: &Record) -> Result<(), StoreError> {
        write_json(&self.state_path(), rec).map_err(io(&self.state_path()))
    }

    /// Removes the container's directory (the lock goes with it).
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn remove(self) -> Result<(), StoreError> {
        fs::remove_dir_all(&self.dir).map_err(io(&self.dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "A-b_c.d+e", "0123456789abcdef"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ä", &"x".repeat(1025)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_and_missing() {
        let d = std::env::temp_dir().join(format!("rcrun-store-{}", std::process::id()));
        let s = Store::new(&d);
        let e = s.create("one").unwrap();
        assert!(matches!(s.create("one"), Err(StoreError::Exists(_))));
        drop(e);
        // No state.json yet: open reports it missing.
        assert!(matches!(s.open("one"), Err(StoreError::NotFound(_))));
        assert!(matches!(s.open("two"), Err(StoreError::NotFound(_))));
        fs::remove_dir_all(&d).unwrap();
    }
}

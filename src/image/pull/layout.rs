//! The layout side of a pull: `oci-layout`, `blobs/sha256/`, and blobs
//! written to a temporary file and renamed to their digest.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::{Descriptor, PullError};

/// Creates the layout's `oci-layout` and `blobs/sha256/` when missing;
/// returns the latter.
pub(super) fn prepare_layout(dir: &Path) -> Result<PathBuf, PullError> {
    let blobs = dir.join("blobs").join("sha256");
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PullError::Layout { path, source }
    };
    fs::create_dir_all(&blobs).map_err(err(&blobs))?;
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        let tmp = dir.join(format!(".oci-layout.{}", std::process::id()));
        fs::write(&tmp, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err(&tmp))?;
        fs::rename(&tmp, &marker).map_err(err(&marker))?;
    }
    Ok(blobs)
}

/// The hex of a `sha256:` digest, refused unless it is 64 lowercase hex
/// digits (it becomes a file name).
pub(super) fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// `sha256:` and the hex of a finished hash.
pub(super) fn sha256_of(hasher: Sha256) -> String {
    let mut s = String::from("sha256:");
    for b in hasher.finalize() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A blob being written: `blobs/sha256/.HEX.tmp-PID-N`, removed on drop
/// unless persisted under `HEX`.
pub(super) struct TempBlob {
    file: File,
    path: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl TempBlob {
    pub(super) fn create(blobs: &Path, d: &Descriptor) -> Result<Self, PullError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let hex = digest_hex(&d.digest).unwrap_or_default();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = blobs.join(format!(".{hex}.tmp-{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| PullError::Layout {
                path: path.clone(),
                source,
            })?;
        Ok(TempBlob {
            file,
            dest: blobs.join(hex),
            path,
            done: false,
        })
    }

    pub(super) fn write(&mut self, data: &[u8]) -> Result<(), PullError> {
        self.file
            .write_all(data)
            .map_err(|source| PullError::Layout {
                path: self.path.clone(),
                source,
            })
    }

    /// Flushes the file to disk and renames it to its digest.
    pub(super) fn persist(mut self) -> Result<(), PullError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PullError::Layout { path, source }
        };
        self.file.sync_all().map_err(err(&self.path))?;
        fs::rename(&self.path, &self.dest).map_err(err(&self.dest))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes the renames into `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), PullError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| PullError::Layout {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let hex = "a".repeat(64);
        assert_eq!(digest_hex(&format!("sha256:{hex}")), Some(hex.as_str()));
        assert_eq!(digest_hex(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(digest_hex("sha256:../../etc/passwd"), None);
        assert_eq!(digest_hex(&format!("sha512:{hex}")), None);
        let empty = sha256_of(Sha256::new());
        assert_eq!(
            empty,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn temp_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = prepare_layout(dir.path()).unwrap();
        assert!(dir.path().join("oci-layout").is_file());
        let d = Descriptor {
            media_type: "text/plain".into(),
            digest: sha256_of(Sha256::new_with_prefix(b"x")),
            size: 1,
        };
        let mut t = TempBlob::create(&blobs, &d).unwrap();
        t.write(b"x").unwrap();
        drop(t); // not persisted: removed
        assert_eq!(fs::read_dir(&blobs).unwrap().count(), 0);
        let mut t = TempBlob::create(&blobs, &d).unwrap();
        t.write(b"x").unwrap();
        t.persist().unwrap();
        let names: Vec<_> = fs::read_dir(&blobs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [&d.digest[7..]]);
    }
}

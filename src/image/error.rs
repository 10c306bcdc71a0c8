//! What can go wrong with images, naming the blob, member or path at fault.

use std::path::PathBuf;

/// An image could not be read, verified, unpacked or stored.
///
/// ```
/// let e = rcrun::image::Source::parse("oci:").unwrap_err();
/// assert!(matches!(e, rcrun::image::ImageError::Reference { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A reference or source string could not be understood.
    #[error("image reference {reference:?}: {why}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// Why it is refused.
        why: String,
    },
    /// No image of that name (or no manifest for that platform).
    #[error("image {0}: not found")]
    NotFound(String),
    /// A blob's content does not match its descriptor.
    #[error("blob {digest}: {what} is {actual}, the descriptor says {expected}")]
    Mismatch {
        /// The blob's digest as the descriptor gives it.
        digest: String,
        /// "sha256", "size" or "diffID".
        what: &'static str,
        /// What the descriptor (or the image config) says.
        expected: String,
        /// What the content is.
        actual: String,
    },
    /// A manifest, index or config is malformed or not supported.
    #[error("{what}: {why}")]
    Invalid {
        /// Which document ("manifest sha256:...", "index.json", ...).
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// A layer member is refused (hostile or malformed).
    #[error("layer {layer}: member {member:?}: {why}")]
    Member {
        /// The layer's digest.
        layer: String,
        /// The member's path as the tar gives it.
        member: String,
        /// Why it is refused.
        why: String,
    },
    /// The layer's tar stream is malformed.
    #[error("layer {layer}: {source}")]
    Tar {
        /// The layer's digest.
        layer: String,
        /// The tar reader's error.
        source: std::io::Error,
    },
    /// An image or layer is still used.
    #[error("{what} is in use by {by}")]
    InUse {
        /// The image or layer.
        what: String,
        /// Who uses it.
        by: String,
    },
    /// The overlay rootfs could not be mounted or unmounted.
    #[error("overlay rootfs {path}: {why}")]
    Overlay {
        /// The mount point.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// Pulling from a registry failed.
    #[error("pull {reference}: {why}")]
    Pull {
        /// The reference being pulled.
        reference: String,
        /// What failed.
        why: String,
    },
}

impl ImageError {
    /// `map_err` helper for I/O on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { path, source }
    }

    pub(crate) fn invalid(what: impl Into<String>, why: impl std::fmt::Display) -> ImageError {
        ImageError::Invalid {
            what: what.into(),
            why: why.to_string(),
        }
    }
}

//! Images: OCI and Docker image layers unpacked, verified and safely,
//! into bundles; a content-addressed layer store whose containers get an
//! overlay rootfs; and, with the cargo feature `pull`, registry pulls.
//!
//! Sources are named as skopeo names them:
//!
//! | source | what |
//! |---|---|
//! | `oci:DIR[:TAG]` | an OCI image layout directory |
//! | `oci-archive:FILE[:TAG]` | the same, packed as a tar |
//! | `docker-archive:FILE[:NAME:TAG]` | a `docker save` archive |
//! | `NAME[:TAG]` | an image in the [`ImageStore`] |
//!
//! Every blob is checked against its descriptor's sha256 and size, and
//! every layer against its diffID, while it streams; a layer is unpacked
//! into a temporary directory and renamed into place only once verified.
//! Layer members are resolved inside the target with
//! `openat2(RESOLVE_IN_ROOT)` and created without following a final
//! symlink: no member, however hostile, writes outside it.
//!
//! ```no_run
//! use rcrun::image::{ImageStore, Source};
//! # fn main() -> Result<(), rcrun::image::ImageError> {
//! // A bundle with a flattened rootfs, for any runtime.
//! rcrun::image::unpack(&Source::parse("oci:/srv/images/busybox:latest")?, "/srv/bundle".as_ref(), &Default::default())?;
//!
//! // Or the store: layers unpacked once, an overlay rootfs per container.
//! let store = ImageStore::open("/var/lib/rcrun")?;
//! store.import(&Source::parse("oci:/srv/images/busybox:latest")?, Some("busybox:latest"))?;
//! let prepared = store.prepare("busybox:latest", "web", &Default::default())?;
//! // rcrun::Runtime::create(..., prepared.bundle(), ...), then on delete:
//! prepared.release()?;
//! # Ok(()) }
//! ```

mod bundle;
mod digest;
mod error;
mod headers;
mod layer;
mod progress;
mod source;
mod store;
mod unpack;

#[cfg(feature = "pull")]
pub mod pull;

use std::path::{Path, PathBuf};

pub use digest::Digest;
pub use error::ImageError;
pub use source::host_platform;
pub use store::{ImageInfo, ImageStore, Prepared, PruneReport, DEFAULT_ROOT};

use layer::Whiteouts;
use source::{Files, Resolved};

/// Where an image comes from (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An OCI image layout directory, and the tag or digest in it.
    OciDir(PathBuf, Option<String>),
    /// An OCI image layout packed as a tar.
    OciArchive(PathBuf, Option<String>),
    /// A `docker save` archive, and the `NAME:TAG` in it.
    DockerArchive(PathBuf, Option<String>),
    /// An image in the store, by `NAME[:TAG]` (`:latest` by default).
    Stored(String),
}

impl Source {
    /// Parses a source as in the [module docs](self).
    ///
    /// ```
    /// use rcrun::image::Source;
    /// assert_eq!(
    ///     Source::parse("oci:/srv/img:v1")?,
    ///     Source::OciDir("/srv/img".into(), Some("v1".into()))
    /// );
    /// assert_eq!(Source::parse("busybox")?, Source::Stored("busybox:latest".into()));
    /// assert_eq!(
    ///     Source::parse("oci:/srv/img@sha256:abc")?,
    ///     Source::OciDir("/srv/img".into(), Some("sha256:abc".into()))
    /// );
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::Reference`] for an empty path or name.
    pub fn parse(s: &str) -> Result<Source, ImageError> {
        let bad = |why: &str| ImageError::Reference {
            reference: s.to_string(),
            why: why.to_string(),
        };
        let split = |rest: &str, docker: bool| -> (PathBuf, Option<String>) {
            if Path::new(rest).exists() {
                return (rest.into(), None);
            }
            // oci:DIR@sha256:HEX names a manifest by digest.
            if let Some((p, d)) = rest.split_once("@sha256:") {
                return (p.into(), Some(format!("sha256:{d}")));
            }
            // docker-archive:FILE:NAME:TAG: the path ends at the first
            // colon after which the path exists no more.
            let cut = if docker {
                rest.find(':')
            } else {
                rest.rfind(':')
            };
            match cut {
                Some(i) if !rest[i + 1..].contains('/') || docker => {
                    (rest[..i].into(), Some(rest[i + 1..].to_string()))
                }
                _ => (rest.into(), None),
            }
        };
        let (kind, rest) = s.split_once(':').unwrap_or(("", s));
        let src = match kind {
            "oci" => {
                let (p, t) = split(rest, false);
                Source::OciDir(p, t)
            }
            "oci-archive" => {
                let (p, t) = split(rest, false);
                Source::OciArchive(p, t)
            }
            "docker-archive" => {
                let (p, t) = split(rest, true);
                Source::DockerArchive(p, t)
            }
            _ => Source::Stored(store::normalize_name(s).map_err(|w| bad(&w))?),
        };
        match &src {
            Source::OciDir(p, _) | Source::OciArchive(p, _) | Source::DockerArchive(p, _)
                if p.as_os_str().is_empty() =>
            {
                Err(bad("no path"))
            }
            _ => Ok(src),
        }
    }

    /// The name an imported image gets: the source's own, where a bare
    /// OCI tag (`v1`) is prefixed with the layout's file name
    /// (`busybox:v1` for `oci:/srv/busybox:v1`).
    pub(crate) fn default_name(&self, given: Option<&str>) -> Option<String> {
        let given = given?;
        match self {
            Source::OciDir(p, _) | Source::OciArchive(p, _) if !given.contains([':', '/']) => {
                let stem = p.file_stem()?.to_string_lossy().to_ascii_lowercase();
                Some(format!("{stem}:{given}"))
            }
            _ => Some(given.to_string()),
        }
    }

    /// Opens the source and finds the image in it.
    pub(crate) fn resolve(&self, platform: &str) -> Result<(Files, Resolved), ImageError> {
        let (files, tag, docker) = match self {
            Source::OciDir(p, t) => (Files::dir(p), t, false),
            Source::OciArchive(p, t) => (Files::tar(p)?, t, false),
            Source::DockerArchive(p, t) => {
                let f = Files::tar(p)?;
                // Docker 25 writes an OCI layout too; prefer it.
                let docker = !f.exists("index.json");
                (f, t, docker)
            }
            Source::Stored(_) => {
                return Err(ImageError::invalid(
                    "source",
                    "a stored image is read through ImageStore",
                ))
            }
        };
        let r = if docker {
            source::resolve_docker(&files, tag.as_deref())?
        } else {
            source::resolve_layout(&files, tag.as_deref(), platform)?
        };
        Ok((files, r))
    }
}

/// How to unpack or prepare an image.
///
/// ```
/// let mut o = rcrun::image::UnpackOptions::new();
/// o.platform = Some("linux/arm64".into());
/// o.terminal = true;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// `os/arch[/variant]` to pick from a multi-platform index; the
    /// host's by default.
    pub platform: Option<String>,
    /// The process runs on a terminal (`process.terminal`).
    pub terminal: bool,
    /// Replaces the image's Cmd (its Entrypoint stays).
    pub args: Vec<String>,
    /// Show progress on stderr when it is a terminal.
    pub progress: bool,
}

impl UnpackOptions {
    /// Default options: the host's platform, no terminal, the image's
    /// own command, no progress.
    ///
    /// ```
    /// let mut o = rcrun::image::UnpackOptions::new();
    /// o.args = vec!["sh".into()];
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn overrides(&self) -> bundle::Overrides {
        bundle::Overrides {
            args: self.args.clone(),
            terminal: self.terminal,
        }
    }

    pub(crate) fn platform(&self) -> String {
        self.platform.clone().unwrap_or_else(host_platform)
    }
}

/// What an unpack did.
///
/// ```no_run
/// let src = rcrun::image::Source::parse("oci:/srv/busybox")?;
/// let u = rcrun::image::unpack(&src, "/tmp/b".as_ref(), &Default::default())?;
/// println!("{} layers, {} files, {} bytes", u.layers, u.entries, u.bytes);
/// # Ok::<(), rcrun::image::ImageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unpacked {
    /// Layers applied.
    pub layers: usize,
    /// Tar members applied.
    pub entries: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// Writes `bundle/rootfs` (the layers flattened, whiteouts applied) and
/// `bundle/config.json` (the image config on top of rcrun's default
/// spec). The rootfs is built in `bundle/.rootfs.tmp` and renamed into
/// place once every layer is verified; on error nothing is left.
///
/// ```no_run
/// let src = rcrun::image::Source::parse("docker-archive:/tmp/busybox.tar")?;
/// rcrun::image::unpack(&src, "/tmp/bundle".as_ref(), &Default::default())?;
/// # Ok::<(), rcrun::image::ImageError>(())
/// ```
///
/// # Errors
/// [`ImageError`] naming the blob, layer member or path at fault; an
/// existing `bundle/rootfs` or `bundle/config.json` is refused.
pub fn unpack(
    source: &Source,
    bundle: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, ImageError> {
    if let Source::Stored(name) = source {
        return ImageStore::open(store::DEFAULT_ROOT)?.unpack(name, bundle, opts);
    }
    let (files, r) = source.resolve(&opts.platform())?;
    flatten(&files, &r, bundle, opts)
}

/// Flattens resolved image `r` into `bundle`.
pub(crate) fn flatten(
    files: &Files,
    r: &Resolved,
    bundle: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, ImageError> {
    let rootfs = bundle.join("rootfs");
    let config = bundle.join("config.json");
    for p in [&rootfs, &config] {
        if p.symlink_metadata().is_ok() {
            return Err(ImageError::Io {
                path: p.clone(),
                source: std::io::ErrorKind::AlreadyExists.into(),
            });
        }
    }
    std::fs::create_dir_all(bundle).map_err(ImageError::io(bundle))?;
    let tmp = bundle.join(".rootfs.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(ImageError::io(&tmp))?;
    let res = (|| {
        let mut done = Unpacked {
            layers: 0,
            entries: 0,
            bytes: 0,
        };
        let bar = progress::Bar::new(opts.progress, r.layers.len());
        for (i, l) in r.layers.iter().enumerate() {
            let size = l.blob.as_ref().map(|b| b.1);
            let (c, _, _) = unpack::unpack_layer(
                files,
                l,
                &tmp,
                Whiteouts::Apply,
                None,
                Some(&bar.layer(i, size)),
            )?;
            done.layers += 1;
            done.entries += c.entries;
            done.bytes += c.bytes;
        }
        bar.finish();
        // Root of the rootfs: 0755 root, whatever the layers said.
        let spec = bundle::spec_for(&r.config, &tmp, &opts.overrides())?;
        let text = serde_json::to_string_pretty(&spec).expect("a spec serializes");
        std::fs::write(&config, text + "\n").map_err(ImageError::io(&config))?;
        std::fs::rename(&tmp, &rootfs).map_err(ImageError::io(&rootfs))?;
        Ok(done)
    })();
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_file(&config);
    }
    res
}

//! Where images come from: an OCI image layout (a directory, or packed
//! as a tar) or a `docker save` archive. Each is read in place: a packed
//! archive is indexed once and its members read at their offsets.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::digest::{verify, Digest};
use super::ImageError;

/// The OCI annotation that names an image in a layout's index.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Manifests, indexes and configs are small; a bigger one is hostile.
const MAX_DOC: u64 = 8 << 20;

/// A layout's files: a directory, or the members of a tar.
pub(crate) enum Files {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

impl Files {
    pub(crate) fn dir(path: &Path) -> Files {
        Files::Dir(path.to_path_buf())
    }

    /// Indexes a tar's regular members (name -> offset, size).
    pub(crate) fn tar(path: &Path) -> Result<Files, ImageError> {
        let f = File::open(path).map_err(ImageError::io(path))?;
        let mut ar = tar::Archive::new(f);
        let mut members = HashMap::new();
        let entries = ar.entries().map_err(ImageError::io(path))?;
        for e in entries {
            let e = e.map_err(ImageError::io(path))?;
            if e.header().entry_type().is_file() {
                let name = e.path().map_err(ImageError::io(path))?;
                let name = name.to_string_lossy();
                let name = name.trim_start_matches("./").to_string();
                members.insert(name, (e.raw_file_position(), e.size()));
            }
        }
        Ok(Files::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    fn where_(&self, name: &str) -> PathBuf {
        match self {
            Files::Dir(d) => d.join(name),
            Files::Tar { path, .. } => path.join(name),
        }
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        match self {
            Files::Dir(d) => d.join(name).is_file(),
            Files::Tar { members, .. } => members.contains_key(name),
        }
    }

    /// Opens member `name` (a relative path without `..`).
    pub(crate) fn open(&self, name: &str) -> Result<(Box<dyn Read + Send>, u64), ImageError> {
        if name.split('/').any(|c| c == "..") || name.starts_with('/') {
            return Err(ImageError::invalid(name, "path leaves the image"));
        }
        let missing = || ImageError::Io {
            path: self.where_(name),
            source: std::io::ErrorKind::NotFound.into(),
        };
        match self {
            Files::Dir(d) => {
                // Beneath the layout, through no symlink, a regular file:
                // a blob cannot be /dev/zero or a host file.
                let p = d.join(name);
                let dir = nix::fcntl::open(
                    d,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ImageError::io(d)(e.into()))?;
                let how = OpenHow::new()
                    .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                let f =
                    File::from(openat2(&dir, name, how).map_err(|e| ImageError::io(&p)(e.into()))?);
                let m = f.metadata().map_err(ImageError::io(&p))?;
                if !m.is_file() {
                    return Err(ImageError::invalid(
                        p.display().to_string(),
                        "not a regular file",
                    ));
                }
                Ok((Box::new(f), m.len()))
            }
            Files::Tar { path, members } => {
                let &(off, n) = members.get(name).ok_or_else(missing)?;
                let mut f = File::open(path).map_err(ImageError::io(path))?;
                f.seek(SeekFrom::Start(off)).map_err(ImageError::io(path))?;
                Ok((Box::new(f.take(n)), n))
            }
        }
    }

    /// Reads a small document whole.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let (r, n) = self.open(name)?;
        if n > MAX_DOC {
            return Err(ImageError::invalid(
                name,
                format!("{n} bytes, over {MAX_DOC}"),
            ));
        }
        let mut v = Vec::with_capacity(n as usize);
        r.take(MAX_DOC)
            .read_to_end(&mut v)
            .map_err(ImageError::io(self.where_(name)))?;
        Ok(v)
    }

    /// Reads blob `digest` of a layout whole, checked against it.
    pub(crate) fn read_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, ImageError> {
        let v = self.read(&blob_path(digest))?;
        verify(digest, Some(size), &Digest::of(&v), v.len() as u64)?;
        Ok(v)
    }
}

pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// One layer to apply: where its bytes are and what they must hash to.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    /// The member holding it.
    pub member: String,
    /// The blob's own digest and size (docker archives have none: their
    /// layers are the uncompressed tars, checked by diffID alone).
    pub blob: Option<(Digest, u64)>,
    /// The uncompressed tar's digest, from the image config.
    pub diff_id: Digest,
}

impl Layer {
    /// The name used in errors: the blob's digest, else its diffID.
    pub(crate) fn name(&self) -> String {
        self.blob
            .as_ref()
            .map_or(self.diff_id.to_string(), |b| b.0.to_string())
    }
}

/// An image found in a source: its documents, checked, and its layers.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The name the source gives it (a layout's ref.name, a RepoTag).
    pub name: Option<String>,
    /// The manifest as stored (absent for docker archives).
    pub manifest: Option<(Digest, Vec<u8>)>,
    pub config_digest: Digest,
    pub config: Vec<u8>,
    pub layers: Vec<Layer>,
}

/// The host's platform in OCI's words (`linux/amd64`).
///
/// ```
/// assert!(rcrun::image::host_platform().starts_with("linux/"));
/// ```
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    };
    format!("linux/{arch}")
}

fn is_index(m: &MediaType) -> bool {
    matches!(m, MediaType::ImageIndex)
        || m.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Picks the image named `tag` (or the only one) from an OCI layout, and
/// within an index the manifest for `platform`.
pub(crate) fn resolve_layout(
    files: &Files,
    tag: Option<&str>,
    platform: &str,
) -> Result<Resolved, ImageError> {
    let index: ImageIndex = serde_json::from_slice(&files.read("index.json")?)
        .map_err(|e| ImageError::invalid("index.json", e))?;
    let named = |d: &oci_spec::image::Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
    };
    let picked: Vec<_> = match tag {
        Some(t) if t.starts_with("sha256:") => index
            .manifests()
            .iter()
            .filter(|d| d.digest().to_string() == t)
            .collect(),
        Some(t) => {
            let exact: Vec<_> = index
                .manifests()
                .iter()
                .filter(|d| named(d).is_some_and(|n| n == t))
                .collect();
            if exact.is_empty() {
                index
                    .manifests()
                    .iter()
                    .filter(|d| named(d).is_some_and(|n| n.ends_with(&format!(":{t}"))))
                    .collect()
            } else {
                exact
            }
        }
        None => index.manifests().iter().collect(),
    };
    let mut desc = match picked.as_slice() {
        [d] => (*d).clone(),
        [] => return Err(ImageError::NotFound(tag.unwrap_or("(any)").to_string())),
        _ if tag.is_none() => {
            return Err(ImageError::invalid(
                "index.json",
                "holds several images: name one (oci:DIR:TAG)",
            ))
        }
        [d, ..] => (*d).clone(),
    };
    let name = named(&desc);
    // Descend through indexes to the platform's manifest.
    for _ in 0..4 {
        if !is_index(desc.media_type()) {
            break;
        }
        let d = Digest::from_oci(desc.digest())?;
        let idx: ImageIndex = serde_json::from_slice(&files.read_blob(&d, desc.size())?)
            .map_err(|e| ImageError::invalid(format!("index {d}"), e))?;
        desc = idx
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    let os_arch = format!("{}/{}", p.os(), p.architecture());
                    match p.variant() {
                        Some(v) => platform == os_arch || platform == format!("{os_arch}/{v}"),
                        None => platform == os_arch,
                    }
                })
            })
            .cloned()
            .ok_or_else(|| {
                ImageError::NotFound(format!(
                    "{} for {platform}",
                    name.as_deref().unwrap_or(tag.unwrap_or("image"))
                ))
            })?;
    }
    let md = Digest::from_oci(desc.digest())?;
    resolve_manifest(files, &md, desc.size(), name)
}

/// The image whose manifest is blob `md` of a layout.
pub(crate) fn resolve_manifest(
    files: &Files,
    md: &Digest,
    size: u64,
    name: Option<String>,
) -> Result<Resolved, ImageError> {
    let md = md.clone();
    let raw = files.read_blob(&md, size)?;
    let manifest: ImageManifest = serde_json::from_slice(&raw)
        .map_err(|e| ImageError::invalid(format!("manifest {md}"), e))?;
    let cd = Digest::from_oci(manifest.config().digest())?;
    let config = files.read_blob(&cd, manifest.config().size())?;
    let diff_ids = diff_ids(&cd, &config)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::invalid(
            format!("manifest {md}"),
            format!(
                "{} layers, but its config lists {} diffIDs",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| {
            let d = Digest::from_oci(l.digest())?;
            Ok(Layer {
                member: blob_path(&d),
                blob: Some((d, l.size())),
                diff_id,
            })
        })
        .collect::<Result<_, ImageError>>()?;
    Ok(Resolved {
        name,
        manifest: Some((md, raw)),
        config_digest: cd,
        config,
        layers,
    })
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(cd: &Digest, config: &[u8]) -> Result<Vec<Digest>, ImageError> {
    #[derive(serde::Deserialize)]
    struct Cfg {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    let c: Cfg = serde_json::from_slice(config)
        .map_err(|e| ImageError::invalid(format!("config {cd}"), e))?;
    c.rootfs.diff_ids.iter().map(|d| Digest::parse(d)).collect()
}

/// `docker save`'s manifest.json: picks the image tagged `tag` (or the
/// only one). Docker's layers are the uncompressed tars (or, since
/// Docker 25, blobs named by digest), checked by their diffIDs.
pub(crate) fn resolve_docker(files: &Files, tag: Option<&str>) -> Result<Resolved, ImageError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(&files.read("manifest.json")?)
        .map_err(|e| ImageError::invalid("manifest.json", e))?;
    let tags = |e: &Entry| e.repo_tags.clone().unwrap_or_default();
    let e = match tag {
        Some(t) => entries.iter().find(|e| {
            tags(e)
                .iter()
                .any(|n| n == t || n.ends_with(&format!("/{t}")) || n.split(':').next() == Some(t))
        }),
        None if entries.len() == 1 => entries.first(),
        None => {
            return Err(ImageError::invalid(
                "manifest.json",
                "holds several images: name one (docker-archive:FILE:NAME:TAG)",
            ))
        }
    }
    .ok_or_else(|| ImageError::NotFound(tag.unwrap_or("(any)").to_string()))?;
    let config = files.read(&e.config)?;
    let cd = Digest::of(&config);
    let diff_ids = diff_ids(&cd, &config)?;
    if diff_ids.len() != e.layers.len() {
        return Err(ImageError::invalid(
            "manifest.json",
            format!(
                "{} layers, but the config lists {} diffIDs",
                e.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let layers = e
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(m, diff_id)| Layer {
            member: m.clone(),
            blob: None,
            diff_id,
        })
        .collect();
    Ok(Resolved {
        name: tags(e).first().cloned(),
        manifest: None,
        config_digest: cd,
        config,
        layers,
    })
}

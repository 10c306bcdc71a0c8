//! The layer store: an OCI image layout (blobs, and an index naming the
//! images) plus each layer unpacked once, in overlayfs form, and one
//! directory per container holding its overlay rootfs.
//!
//! ```text
//! ROOT/oci-layout, index.json, blobs/sha256/<hex>   the images
//! ROOT/layers/<diffID hex>/                          unpacked layers
//! ROOT/containers/<id>/{config.json,rootfs,upper,work,image.json}
//! ROOT/lock, ROOT/index.lock, ROOT/layers/<hex>.lock
//! ```
//!
//! Locks (flock): importing, preparing and releasing hold `lock` shared,
//! pruning holds it exclusive; `index.json` is rewritten under
//! `index.lock`; a layer is unpacked under its own lock, so concurrent
//! imports of one layer unpack it once.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{ImageIndex, ImageManifest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::digest::Digest;
use super::layer::Whiteouts;
use super::source::{blob_path, resolve_layout, Files, Layer, Resolved, REF_NAME};
use super::{bundle, progress, unpack, ImageError, Source, UnpackOptions, Unpacked};

/// The store's default root: persistent, unlike the state root in /run.
pub const DEFAULT_ROOT: &str = "/var/lib/rcrun";

/// A content-addressed image and layer store (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

/// An image in the store, as `rcrun image ls` shows it.
///
/// ```no_run
/// let s = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
/// let names: Vec<String> = s.list()?.into_iter().map(|i| i.name).collect();
/// # Ok::<(), rcrun::image::ImageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImageInfo {
    /// `NAME:TAG`.
    pub name: String,
    /// The manifest's digest.
    pub digest: String,
    /// The layers' diffIDs, bottom first.
    pub layers: Vec<String>,
    /// The layers' stored size in bytes.
    pub size: u64,
    /// When the image was built (its config's `created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// What [`ImageStore::prune`] removed.
///
/// ```no_run
/// let r = rcrun::image::ImageStore::open("/var/lib/rcrun")?.prune()?;
/// assert!(r.blobs >= r.layers || r.layers > 0);
/// # Ok::<(), rcrun::image::ImageError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Blobs removed.
    pub blobs: usize,
    /// Unpacked layers removed.
    pub layers: usize,
}

/// A container's bundle made from a stored image: `config.json` and an
/// overlay `rootfs`. Pass it in [`crate::CreateOptions::image`]: rcrun
/// records it with the container and [`crate::Runtime::delete`]
/// releases it.
///
/// ```no_run
/// let store = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
/// let p = store.prepare("busybox:latest", "web", &Default::default())?;
/// let rt = rcrun::Runtime::new("/run/my-agent");
/// let mut opts = rcrun::CreateOptions::default();
/// opts.image = Some(p.clone());
/// if let Err(e) = rt.create("web", p.bundle(), opts) {
///     p.release()?; // create failed: still ours
///     return Err(e.into());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    dir: PathBuf,
    image: String,
}

/// What a container's directory records (for prune).
#[derive(Serialize, Deserialize)]
struct Uses {
    image: String,
    layers: Vec<String>,
}

/// `NAME[:TAG|@DIGEST]` with `:latest` by default; the characters of
/// registry references only, and no `..`.
pub(crate) fn normalize_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
        && !s.split('/').any(|c| c == ".." || c == "." || c.is_empty());
    if !ok {
        return Err("not an image name (NAME[:TAG] of [A-Za-z0-9._-/:@])".into());
    }
    let last = s.rsplit('/').next().unwrap_or(s);
    let (tagged, digest) = last.split_once('@').unwrap_or((last, ""));
    if tagged.matches(':').count() > 1
        || (!digest.is_empty() && super::Digest::parse(digest).is_err())
    {
        return Err("NAME[:TAG] or NAME@sha256:<hex>: one tag at most".into());
    }
    Ok(if last.contains(':') || last.contains('@') {
        s.to_string()
    } else {
        format!("{s}:latest")
    })
}

fn lock(path: &Path, arg: FlockArg) -> Result<Flock<File>, ImageError> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(ImageError::io(path))?;
    Flock::lock(f, arg).map_err(|(_, e)| ImageError::io(path)(e.into()))
}

/// A name for a temporary sibling, unique across processes and threads.
fn tmp_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        ".tmp-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(tmp_name("w"));
    let mut f = File::create(&tmp).map_err(ImageError::io(&tmp))?;
    f.write_all(bytes).map_err(ImageError::io(&tmp))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ImageError::io(path)(e)
    })
}

impl ImageStore {
    /// Opens (creating it if needed) the store at `root`.
    ///
    /// ```no_run
    /// let store = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::Io`] when the directories cannot be made;
    /// [`ImageError::Reference`] for a root whose path has `:` or `,`
    /// (overlayfs mount options could not name it).
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore, ImageError> {
        let root = std::path::absolute(root.as_ref()).map_err(ImageError::io(root.as_ref()))?;
        let s = root.to_string_lossy();
        if s.contains(':') || s.contains(',') {
            return Err(ImageError::Reference {
                reference: s.into_owned(),
                why: "an image root cannot contain ':' or ','".into(),
            });
        }
        // Root's alone: stored layers hold set-id files, file
        // capabilities and device nodes, which no other user may reach.
        fs::create_dir_all(&root).map_err(ImageError::io(&root))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700))
            .map_err(ImageError::io(&root))?;
        for d in ["blobs/sha256", "layers", "containers"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(ImageError::io(&p))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomic(&index, br#"{"schemaVersion":2,"manifests":[]}"#)?;
        }
        Ok(ImageStore { root })
    }

    /// The store's root directory.
    ///
    /// ```no_run
    /// let s = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// assert!(s.root().ends_with("rcrun"));
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shared(&self) -> Result<Flock<File>, ImageError> {
        lock(&self.root.join("lock"), FlockArg::LockShared)
    }

    /// Copies the image from `source` into the store under `name` (by
    /// default the name the source gives it), unpacking each layer not
    /// yet there once, verified.
    ///
    /// ```no_run
    /// use rcrun::image::{ImageStore, Source};
    /// let store = ImageStore::open("/var/lib/rcrun")?;
    /// let info = store.import(&Source::parse("docker-archive:/tmp/app.tar")?, Some("app:1"))?;
    /// println!("{} {}", info.name, info.digest);
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError`] naming the blob or member at fault; nothing partial
    /// is kept.
    pub fn import(&self, source: &Source, name: Option<&str>) -> Result<ImageInfo, ImageError> {
        self.import_with(source, name, &UnpackOptions::default())
    }

    /// [`ImageStore::import`] with options (platform, progress).
    ///
    /// ```no_run
    /// use rcrun::image::{ImageStore, Source, UnpackOptions};
    /// let mut o = UnpackOptions::new();
    /// o.platform = Some("linux/arm64".into());
    /// ImageStore::open("/var/lib/rcrun")?.import_with(&Source::parse("oci:/srv/multi")?, None, &o)?;
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// As [`ImageStore::import`].
    pub fn import_with(
        &self,
        source: &Source,
        name: Option<&str>,
        opts: &UnpackOptions,
    ) -> Result<ImageInfo, ImageError> {
        let _l = self.shared()?;
        let (files, r) = source.resolve(&opts.platform())?;
        let name = match name
            .map(String::from)
            .or_else(|| source.default_name(r.name.as_deref()))
        {
            Some(n) => {
                normalize_name(&n).map_err(|why| ImageError::Reference { reference: n, why })?
            }
            None => {
                return Err(ImageError::invalid(
                    "import",
                    "the source names no image: give a name",
                ))
            }
        };
        let bar = progress::Bar::new(opts.progress, r.layers.len());
        let mut blobs = Vec::new();
        for (i, l) in r.layers.iter().enumerate() {
            blobs.push(self.ensure_layer(
                &files,
                l,
                Some(&bar.layer(i, l.blob.as_ref().map(|b| b.1))),
            )?);
        }
        bar.finish();
        self.put_blob(&r.config_digest, &r.config)?;
        let (md, raw) = match &r.manifest {
            Some((d, raw)) => (d.clone(), raw.clone()),
            None => {
                // A docker archive: an OCI manifest of the stored blobs.
                let layers: Vec<_> = blobs
                    .iter()
                    .map(|(d, n)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": n}))
                    .collect();
                let m = json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": r.config_digest.as_str(), "size": r.config.len()},
                    "layers": layers,
                });
                let raw = serde_json::to_vec(&m).expect("json");
                (Digest::of(&raw), raw)
            }
        };
        self.put_blob(&md, &raw)?;
        self.set_ref(&name, &md, raw.len() as u64)?;
        self.info(&name, &md, &raw)
    }

    /// Pulls `reference` (`REGISTRY[:PORT]/REPO[:TAG|@DIGEST]`) into the
    /// store, verified, and unpacks its layers (cargo feature `pull`).
    ///
    /// ```no_run
    /// use rcrun::image::{pull::PullOptions, ImageStore};
    /// let store = ImageStore::open("/var/lib/rcrun")?;
    /// let info = store.pull("ghcr.io/acme/app:1.0", &PullOptions::new())?;
    /// println!("{} {}", info.name, info.digest);
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::Pull`] with the registry's or the transfer's error;
    /// as [`ImageStore::import`] for the layers.
    #[cfg(feature = "pull")]
    pub fn pull(
        &self,
        reference: &str,
        opts: &super::pull::PullOptions,
    ) -> Result<ImageInfo, ImageError> {
        let name = normalize_name(reference).map_err(|why| ImageError::Reference {
            reference: reference.into(),
            why,
        })?;
        let _l = self.shared()?;
        let p = super::pull::pull(reference, &self.root, opts).map_err(|e| ImageError::Pull {
            reference: reference.into(),
            why: e.to_string(),
        })?;
        let files = Files::dir(&self.root);
        let md = Digest::parse(&p.manifest.digest)?;
        let r = super::source::resolve_manifest(&files, &md, p.manifest.size, Some(name.clone()))?;
        for l in &r.layers {
            self.ensure_layer(&files, l, None)?;
        }
        self.set_ref(&name, &md, p.manifest.size)?;
        let raw = files.read_blob(&md, p.manifest.size)?;
        self.info(&name, &md, &raw)
    }

    fn put_blob(&self, d: &Digest, bytes: &[u8]) -> Result<(), ImageError> {
        let p = self.root.join(blob_path(d));
        if p.exists() {
            return Ok(());
        }
        write_atomic(&p, bytes)
    }

    /// Unpacks layer `l` into `layers/<diffID>` (and its blob into
    /// `blobs/`) unless there already; returns the stored blob.
    fn ensure_layer(
        &self,
        files: &Files,
        l: &Layer,
        progress: Option<unpack::Progress<'_>>,
    ) -> Result<(Digest, u64), ImageError> {
        let hex = l.diff_id.hex();
        let dir = self.root.join("layers").join(hex);
        let _l = lock(
            &self.root.join("layers").join(format!("{hex}.lock")),
            FlockArg::LockExclusive,
        )?;
        let blob_d = l.blob.as_ref().map_or(l.diff_id.clone(), |b| b.0.clone());
        let blob = self.root.join(blob_path(&blob_d));
        if dir.is_dir() {
            if let Ok(m) = blob.metadata() {
                return Ok((blob_d, m.len()));
            }
        }
        let tmp = self.root.join("layers").join(tmp_name(hex));
        let tmp_blob = self.root.join("blobs/sha256").join(tmp_name(hex));
        // A pulled blob is in the store already: it is read, not copied.
        let have_blob = blob.is_file();
        let res = (|| {
            fs::create_dir(&tmp).map_err(ImageError::io(&tmp))?;
            let mut f = match have_blob {
                true => None,
                false => Some(File::create(&tmp_blob).map_err(ImageError::io(&tmp_blob))?),
            };
            let (_, got, n) =
                unpack::unpack_layer(files, l, &tmp, Whiteouts::Overlay, f.as_mut(), progress)?;
            if f.is_some() {
                // Named by its own digest, which a docker archive's
                // compressed layer does not share with its diffID.
                let to = self.root.join(blob_path(&got));
                fs::rename(&tmp_blob, &to).map_err(ImageError::io(&to))?;
            }
            if dir.is_dir() {
                let _ = fs::remove_dir_all(&tmp); // blob was missing only
            } else {
                fs::rename(&tmp, &dir).map_err(ImageError::io(&dir))?;
            }
            Ok((got, n))
        })();
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
            let _ = fs::remove_file(&tmp_blob);
        }
        res
    }

    fn read_index(&self) -> Result<ImageIndex, ImageError> {
        let p = self.root.join("index.json");
        let raw = fs::read(&p).map_err(ImageError::io(&p))?;
        serde_json::from_slice(&raw).map_err(|e| ImageError::invalid(p.display().to_string(), e))
    }

    /// Rewrites index.json under its lock with `edit` applied.
    fn edit_index(
        &self,
        edit: impl FnOnce(&mut Vec<serde_json::Value>) -> Result<(), ImageError>,
    ) -> Result<(), ImageError> {
        let _l = lock(&self.root.join("index.lock"), FlockArg::LockExclusive)?;
        let p = self.root.join("index.json");
        let raw = fs::read(&p).map_err(ImageError::io(&p))?;
        let mut v: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| ImageError::invalid("index.json", e))?;
        let mut list = v["manifests"].as_array().cloned().unwrap_or_default();
        edit(&mut list)?;
        v["manifests"] = json!(list);
        write_atomic(&p, &serde_json::to_vec_pretty(&v).expect("json"))
    }

    fn set_ref(&self, name: &str, md: &Digest, size: u64) -> Result<(), ImageError> {
        self.edit_index(|list| {
            list.retain(|m| m["annotations"][REF_NAME] != name);
            list.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md.as_str(),
                "size": size,
                "annotations": {REF_NAME: name},
            }));
            Ok(())
        })
    }

    fn info(&self, name: &str, md: &Digest, raw: &[u8]) -> Result<ImageInfo, ImageError> {
        let m: ImageManifest = serde_json::from_slice(raw)
            .map_err(|e| ImageError::invalid(format!("manifest {md}"), e))?;
        let cd = Digest::from_oci(m.config().digest())?;
        let files = Files::dir(&self.root);
        let config = files.read_blob(&cd, m.config().size())?;
        #[derive(Deserialize)]
        struct C {
            created: Option<String>,
            rootfs: R,
        }
        #[derive(Deserialize)]
        struct R {
            diff_ids: Vec<String>,
        }
        let c: C = serde_json::from_slice(&config)
            .map_err(|e| ImageError::invalid(format!("config {cd}"), e))?;
        Ok(ImageInfo {
            name: name.to_string(),
            digest: md.to_string(),
            layers: c.rootfs.diff_ids,
            size: m.layers().iter().map(|l| l.size()).sum(),
            created: c.created,
        })
    }

    fn resolve(&self, name: &str) -> Result<(Files, Resolved), ImageError> {
        let name = normalize_name(name).map_err(|why| ImageError::Reference {
            reference: name.into(),
            why,
        })?;
        let files = Files::dir(&self.root);
        // Exactly that name: no tag-suffix match inside the store.
        let named = self
            .read_index()?
            .manifests()
            .iter()
            .any(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) == Some(&name));
        if !named {
            return Err(ImageError::NotFound(name));
        }
        let r = resolve_layout(&files, Some(&name), "")?;
        Ok((files, r))
    }

    /// The images in the store, by name.
    ///
    /// ```no_run
    /// for i in rcrun::image::ImageStore::open("/var/lib/rcrun")?.list()? {
    ///     println!("{} {} {} bytes", i.name, i.digest, i.size);
    /// }
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError`] when index.json or a manifest cannot be read.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let idx = self.read_index()?;
        let files = Files::dir(&self.root);
        let mut out = Vec::new();
        for d in idx.manifests() {
            let Some(name) = d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) else {
                continue;
            };
            let md = Digest::from_oci(d.digest())?;
            let raw = files.read_blob(&md, d.size())?;
            out.push(self.info(name, &md, &raw)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the name `name`; its blobs and layers stay until
    /// [`ImageStore::prune`] (containers may still use them).
    ///
    /// ```no_run
    /// rcrun::image::ImageStore::open("/var/lib/rcrun")?.remove("busybox:latest")?;
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::NotFound`] when no image has that name.
    pub fn remove(&self, name: &str) -> Result<(), ImageError> {
        let name = normalize_name(name).map_err(|why| ImageError::Reference {
            reference: name.into(),
            why,
        })?;
        let _l = self.shared()?;
        self.edit_index(|list| {
            let before = list.len();
            list.retain(|m| m["annotations"][REF_NAME] != name.as_str());
            if list.len() == before {
                return Err(ImageError::NotFound(name.clone()));
            }
            Ok(())
        })
    }

    /// Removes every blob no named image reaches and every unpacked
    /// layer that neither a named image nor a container uses.
    ///
    /// ```no_run
    /// let r = rcrun::image::ImageStore::open("/var/lib/rcrun")?.prune()?;
    /// println!("removed {} blobs, {} layers", r.blobs, r.layers);
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError`] when the index or a container's record cannot be read.
    pub fn prune(&self) -> Result<PruneReport, ImageError> {
        let _l = lock(&self.root.join("lock"), FlockArg::LockExclusive)?;
        let files = Files::dir(&self.root);
        let mut blobs = std::collections::HashSet::new();
        let mut layers = std::collections::HashSet::new();
        for d in self.read_index()?.manifests() {
            let md = Digest::from_oci(d.digest())?;
            let m: ImageManifest = serde_json::from_slice(&files.read_blob(&md, d.size())?)
                .map_err(|e| ImageError::invalid(format!("manifest {md}"), e))?;
            blobs.insert(md.hex().to_string());
            blobs.insert(Digest::from_oci(m.config().digest())?.hex().to_string());
            for l in m.layers() {
                blobs.insert(Digest::from_oci(l.digest())?.hex().to_string());
            }
            let name = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
                .unwrap_or_default();
            layers.extend(
                self.info(&name, &md, &files.read_blob(&md, d.size())?)?
                    .layers
                    .iter()
                    .filter_map(|l| Digest::parse(l).ok())
                    .map(|d| d.hex().to_string()),
            );
        }
        let cdir = self.root.join("containers");
        for e in fs::read_dir(&cdir)
            .map_err(ImageError::io(&cdir))?
            .flatten()
        {
            let p = e.path().join("image.json");
            if let Ok(raw) = fs::read(&p) {
                let u: Uses = serde_json::from_slice(&raw)
                    .map_err(|e| ImageError::invalid(p.display().to_string(), e))?;
                layers.extend(
                    u.layers
                        .iter()
                        .filter_map(|l| Digest::parse(l).ok())
                        .map(|d| d.hex().to_string()),
                );
            }
            // Without image.json: a prepare that crashed before it wrote
            // it (none runs now: prune holds the lock alone); it uses no
            // layer.
        }
        let mut report = PruneReport::default();
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir)
            .map_err(ImageError::io(&bdir))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&n) {
                fs::remove_file(e.path()).map_err(ImageError::io(e.path()))?;
                report.blobs += 1;
            }
        }
        let ldir = self.root.join("layers");
        for e in fs::read_dir(&ldir)
            .map_err(ImageError::io(&ldir))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            let hex = n.trim_end_matches(".lock");
            if layers.contains(hex) {
                continue;
            }
            if n.ends_with(".lock") {
                let _ = fs::remove_file(e.path());
            } else {
                fs::remove_dir_all(e.path()).map_err(ImageError::io(e.path()))?;
                if !n.starts_with(".tmp-") {
                    report.layers += 1;
                }
            }
        }
        Ok(report)
    }

    /// Writes a flattened bundle of stored image `name` (see [`super::unpack`]).
    ///
    /// ```no_run
    /// let s = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// s.unpack("busybox:latest", "/tmp/bundle".as_ref(), &Default::default())?;
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// As [`super::unpack`].
    pub fn unpack(
        &self,
        name: &str,
        bundle: &Path,
        opts: &UnpackOptions,
    ) -> Result<Unpacked, ImageError> {
        let _l = self.shared()?;
        let (files, r) = self.resolve(name)?;
        super::flatten(&files, &r, bundle, opts)
    }

    /// Makes `containers/<id>`: an overlay rootfs of the image's stored
    /// layers with the container's own upper and work directories, and a
    /// config.json from the image config. Nothing is copied: this is one
    /// mount.
    ///
    /// ```no_run
    /// let s = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// let p = s.prepare("busybox:latest", "web", &Default::default())?;
    /// println!("bundle at {}", p.bundle().display());
    /// # Ok::<(), rcrun::image::ImageError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImageError::NotFound`] for an unknown image; a container
    /// directory that exists already; the overlay mount's failure. On
    /// error nothing is left.
    pub fn prepare(
        &self,
        name: &str,
        id: &str,
        opts: &UnpackOptions,
    ) -> Result<Prepared, ImageError> {
        crate::store::validate_id(id).map_err(|e| ImageError::Reference {
            reference: id.into(),
            why: e.to_string(),
        })?;
        let _l = self.shared()?;
        let (files, r) = self.resolve(name)?;
        let mut lowers = Vec::new();
        for l in &r.layers {
            self.ensure_layer(&files, l, None)?;
            lowers.push(self.root.join("layers").join(l.diff_id.hex()));
        }
        let dir = self.root.join("containers").join(id);
        fs::create_dir(&dir).map_err(ImageError::io(&dir))?;
        let p = Prepared {
            dir: dir.clone(),
            image: r.name.clone().unwrap_or_else(|| name.to_string()),
        };
        let uses = Uses {
            image: p.image.clone(),
            layers: r.layers.iter().map(|l| l.diff_id.to_string()).collect(),
        };
        // First: it marks the directory as prepare's (see release).
        if let Err(e) = write_atomic(
            &dir.join("image.json"),
            &serde_json::to_vec(&uses).expect("json"),
        ) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        let res = (|| {
            for d in ["upper", "work", "rootfs"] {
                fs::create_dir(dir.join(d)).map_err(ImageError::io(dir.join(d)))?;
            }
            mount_overlay(&dir, &lowers)?;
            let spec = bundle::spec_for(&r.config, &dir.join("rootfs"), &opts.overrides())?;
            let text = serde_json::to_string_pretty(&spec).expect("a spec serializes");
            write_atomic(&dir.join("config.json"), (text + "\n").as_bytes())
        })();
        match res {
            Ok(()) => Ok(p),
            Err(e) => {
                let _ = p.release();
                Err(e)
            }
        }
    }
}

/// Mounts `dir/rootfs`: overlayfs of `lowers` (bottom first) under
/// `dir/upper`.
fn mount_overlay(dir: &Path, lowers: &[PathBuf]) -> Result<(), ImageError> {
    let rootfs = dir.join("rootfs");
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    // The kernel takes one page of mount options.
    if data.len() >= 4096 {
        return Err(ImageError::Overlay {
            path: rootfs,
            why: format!(
                "{} layers do not fit in one overlay mount's options",
                lowers.len()
            ),
        });
    }
    let dirs = if lowers.is_empty() {
        // overlayfs needs a lower layer: an empty image gets an empty one.
        let empty = dir.join("empty");
        fs::create_dir_all(&empty).map_err(ImageError::io(&empty))?;
        format!(
            "lowerdir={},upperdir={},workdir={}",
            empty.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        )
    } else {
        data
    };
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(dirs.as_str()),
    )
    .map_err(|e| ImageError::Overlay {
        path: rootfs.clone(),
        why: format!("mount: {e}"),
    })
}

impl Prepared {
    /// The bundle directory (config.json and rootfs).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), rcrun::image::ImageError> {
    /// let store = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// let p = store.prepare("busybox:latest", "web", &Default::default())?;
    /// let config = p.bundle().join("config.json");
    /// # Ok(()) }
    /// ```
    pub fn bundle(&self) -> &Path {
        &self.dir
    }

    /// The stored image's name.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), rcrun::image::ImageError> {
    /// let store = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// let p = store.prepare("busybox:latest", "web", &Default::default())?;
    /// println!("from {}", p.image());
    /// # Ok(()) }
    /// ```
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Unmounts the rootfs and removes the container's directory (upper
    /// layer included). Safe to call again after a crash or a failure.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), rcrun::image::ImageError> {
    /// let store = rcrun::image::ImageStore::open("/var/lib/rcrun")?;
    /// let p = store.prepare("busybox:latest", "web", &Default::default())?;
    /// p.release()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ImageError::Overlay`] when the rootfs stays mounted (nothing is
    /// removed then: removing through the mount would reach the layers).
    pub fn release(&self) -> Result<(), ImageError> {
        // Only ever a container directory of a store: `.../containers/<id>`
        // (a record is data; it must not name any directory to remove).
        let id = self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let in_store = self.dir.parent().and_then(Path::file_name) == Some("containers".as_ref())
            && crate::store::validate_id(id).is_ok()
            && self.dir.is_absolute();
        if !in_store {
            return Err(ImageError::Overlay {
                path: self.dir.clone(),
                why: "not a container directory of an image store".into(),
            });
        }
        if self.dir.symlink_metadata().is_ok() && !self.dir.join("image.json").is_file() {
            return Err(ImageError::Overlay {
                path: self.dir.clone(),
                why: "no image.json: not made by prepare".into(),
            });
        }
        let rootfs = self.dir.join("rootfs");
        match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(ImageError::Overlay {
                    path: rootfs,
                    why: format!("umount: {e}"),
                })
            }
        }
        let (Ok(a), Ok(b)) = (
            fs::symlink_metadata(&self.dir),
            fs::symlink_metadata(&rootfs),
        ) else {
            // Already gone, or never made.
            return match fs::remove_dir_all(&self.dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ImageError::io(&self.dir)(e)),
            };
        };
        if a.dev() != b.dev() {
            return Err(ImageError::Overlay {
                path: rootfs,
                why: "still mounted".into(),
            });
        }
        fs::remove_dir_all(&self.dir).map_err(ImageError::io(&self.dir))
    }
}

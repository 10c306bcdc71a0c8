//! Pulling an image from a registry into an OCI image layout, over the OCI
//! distribution API (cargo feature `pull`).
//!
//! [`pull`] fetches a reference's manifest (the one for the host's platform,
//! or [`PullOptions::platform`]'s, when the reference names an index), its
//! config and its layers into `LAYOUT/blobs/sha256/`. Every blob is written
//! to a temporary file beside its final name and renamed into place only
//! once its sha256 and size match its descriptor; a blob already there is
//! not fetched again. The layout's `index.json` is left to the caller, who
//! records the returned [`Pulled`] as it sees fit.
//!
//! ```no_run
//! use rcrun::image::pull::{pull, PullOptions};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let opts = PullOptions::new().basic_auth("alice", "secret");
//!     let pulled = pull("registry.example:5000/tools/busybox:1.36", "/var/lib/images".as_ref(), &opts)?;
//!     println!("{} is {}", pulled.reference, pulled.manifest.digest);
//!     Ok(())
//! }
//! ```
//!
//! The registry protocol (authentication challenges, bearer tokens,
//! redirects) is `oci-client`'s, over `reqwest` and `rustls`; [`pull`] runs
//! it on a current-thread tokio runtime of its own, so it must be called
//! from synchronous code (from async code: `tokio::task::spawn_blocking`).

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

mod layout;
mod platform;
use layout::{digest_hex, prepare_layout, sha256_of, sync_dir, TempBlob};
use platform::{Platform, WirePlatform};

/// OCI image manifest media type.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest (schema 2) media type.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What the manifest requests accept.
const ACCEPT: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
/// Manifests and indexes larger than this are refused (the distribution
/// spec lets registries refuse those over 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;
/// [`PullOptions::concurrency`]'s default.
const DEFAULT_CONCURRENCY: usize = 3;

/// How [`pull`] reaches the registry and what it shows.
///
/// ```
/// use rcrun::image::pull::PullOptions;
///
/// let opts = PullOptions::new()
///     .basic_auth("alice", "secret")
///     .ca_cert("/etc/my-registry/ca.pem")
///     .platform("linux/arm64")
///     .concurrency(4)
///     .quiet(true);
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct PullOptions {
    credentials: Option<(String, String)>,
    ca_certs: Vec<PathBuf>,
    insecure_http: bool,
    platform: Option<String>,
    quiet: bool,
    concurrency: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            credentials: None,
            ca_certs: Vec::new(),
            insecure_http: false,
            platform: None,
            quiet: false,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("ca_certs", &self.ca_certs)
            .field("insecure_http", &self.insecure_http)
            .field("platform", &self.platform)
            .field("quiet", &self.quiet)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl PullOptions {
    /// Anonymous, over HTTPS with the system's roots, for the host's
    /// platform, with progress bars on a terminal, 3 blobs at a time.
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new();
    /// # let _ = opts;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Credentials for HTTP basic authentication: sent to the registry when
    /// it asks for basic, or to its token realm when it asks for a bearer
    /// token (without them the token is asked for anonymously).
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().basic_auth("alice", "secret");
    /// # let _ = opts;
    /// ```
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Trusts the certificates of a PEM file as roots too, besides the
    /// system's (repeatable; read when [`pull`] starts).
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().ca_cert("/etc/my-registry/ca.pem");
    /// # let _ = opts;
    /// ```
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certs.push(path.into());
        self
    }

    /// Talks plain HTTP to the registry (for a registry on 127.0.0.1 in
    /// tests); credentials then travel in the clear.
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().insecure_http(true);
    /// # let _ = opts;
    /// ```
    pub fn insecure_http(mut self, yes: bool) -> Self {
        self.insecure_http = yes;
        self
    }

    /// The platform to pick from an index, `OS/ARCH` or `OS/ARCH/VARIANT`
    /// in OCI's names (`linux/arm64`, `linux/arm/v7`); the default is
    /// linux on the host's architecture.
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().platform("linux/arm64");
    /// # let _ = opts;
    /// ```
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = Some(platform.into());
        self
    }

    /// No progress bars, even on a terminal (there are none when stderr is
    /// not a terminal anyway).
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().quiet(true);
    /// # let _ = opts;
    /// ```
    pub fn quiet(mut self, yes: bool) -> Self {
        self.quiet = yes;
        self
    }

    /// How many blobs are fetched at once (default 3; 0 counts as 1).
    ///
    /// ```
    /// let opts = rcrun::image::pull::PullOptions::new().concurrency(6);
    /// # let _ = opts;
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
}

/// A content descriptor: what a blob is, its digest and its size.
///
/// ```
/// use rcrun::image::pull::Descriptor;
///
/// let d = Descriptor {
///     media_type: "application/vnd.oci.image.manifest.v1+json".into(),
///     digest: format!("sha256:{}", "0".repeat(64)),
///     size: 512,
/// };
/// assert!(d.digest.starts_with("sha256:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// The blob's media type, e.g. `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: String,
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    /// The blob's length in bytes.
    pub size: u64,
}

/// What [`pull`] stored.
///
/// ```no_run
/// # use rcrun::image::pull::{pull, PullOptions};
/// # fn main() -> Result<(), rcrun::image::pull::PullError> {
/// let pulled = pull("127.0.0.1:5000/app:1", "/srv/layout".as_ref(), &PullOptions::new())?;
/// let hex = pulled.manifest.digest.trim_start_matches("sha256:");
/// assert!(std::path::Path::new("/srv/layout/blobs/sha256").join(hex).exists());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image manifest (the platform's, when the reference named an
    /// index), stored in the layout with its config and layers.
    pub manifest: Descriptor,
    /// The reference as pulled, in full: `REGISTRY/REPO:TAG`,
    /// `REGISTRY/REPO@DIGEST` or both (docker.io's defaults filled in).
    pub reference: String,
}

/// Why [`pull`] failed. Every message names the reference, blob digest,
/// URL or path at fault.
///
/// ```no_run
/// use rcrun::image::pull::{pull, PullError, PullOptions};
///
/// match pull("127.0.0.1:5000/app:1", "/srv/layout".as_ref(), &PullOptions::new()) {
///     Err(PullError::DigestMismatch { digest, .. }) => eprintln!("corrupt blob {digest}"),
///     Err(e) => eprintln!("{e}"),
///     Ok(p) => println!("{}", p.manifest.digest),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The reference does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference given.
        reference: String,
        /// Why it does not parse.
        reason: String,
    },
    /// [`PullOptions::platform`] is not `OS/ARCH[/VARIANT]`.
    #[error("invalid platform {platform:?} (want OS/ARCH or OS/ARCH/VARIANT)")]
    InvalidPlatform {
        /// The platform given.
        platform: String,
    },
    /// A [`PullOptions::ca_cert`] file cannot be read or holds no certificate.
    #[error("CA certificate {}: {reason}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The layout directory (or a file in it) cannot be created or written.
    #[error("OCI layout {}: {source}", path.display())]
    Layout {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The HTTP client or the async runtime cannot be set up.
    #[error("setting up the registry client for {reference}: {reason}")]
    Setup {
        /// The reference being pulled.
        reference: String,
        /// What failed.
        reason: String,
    },
    /// The registry (or its token realm) refused the credentials, or asked
    /// for some when there were none.
    #[error("registry refused access to {reference}: {reason}")]
    Unauthorized {
        /// The reference being pulled.
        reference: String,
        /// The registry's or realm's answer, with the URL.
        reason: String,
    },
    /// A manifest or index could not be fetched.
    #[error("fetching the manifest of {reference}: {reason}")]
    Manifest {
        /// The reference (by digest for a platform's manifest).
        reference: String,
        /// What failed, with the URL.
        reason: String,
    },
    /// A manifest or index is not one [`pull`] understands.
    #[error("manifest {digest} of {reference}: {reason}")]
    BadManifest {
        /// The reference being pulled.
        reference: String,
        /// The manifest's digest.
        digest: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The index has no manifest for the platform.
    #[error("{reference}: no manifest for {platform} in index {digest} (it has: {available})")]
    NoPlatform {
        /// The reference being pulled.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// The index's digest.
        digest: String,
        /// The platforms it has, comma-separated.
        available: String,
    },
    /// A blob could not be fetched.
    #[error("fetching blob {digest} from {url}: {reason}")]
    Blob {
        /// The blob's digest.
        digest: String,
        /// Where it was fetched from.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The registry served other content than the digest names; the blob
    /// was not stored.
    #[error("blob {digest} from {url} is corrupt: its content hashes to {actual}; refused")]
    DigestMismatch {
        /// The digest wanted.
        digest: String,
        /// Where it was fetched from.
        url: String,
        /// The digest of what was served.
        actual: String,
    },
    /// The registry served another size than the descriptor's; the blob
    /// was not stored.
    #[error("blob {digest} from {url}: the descriptor says {expected} bytes, the registry served {actual}; refused")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// Where it was fetched from.
        url: String,
        /// The descriptor's size.
        expected: u64,
        /// How many bytes were served (at least; the fetch stops past the expected size).
        actual: u64,
    },
}

/// Pulls `reference` (`REGISTRY[:PORT]/REPO[:TAG|@sha256:DIGEST]`) into the
/// OCI image layout `layout_dir` and returns the stored manifest's
/// descriptor.
///
/// Creates `layout_dir`, its `oci-layout` file and `blobs/sha256/` when
/// missing; never writes `index.json`. When the reference names an index
/// (or a Docker manifest list), the index is stored too and the manifest
/// for the platform is picked ([`PullOptions::platform`], by default linux
/// on the host's architecture). Blobs are stored contents first (config and
/// layers, [`PullOptions::concurrency`] at a time), then the manifest, then
/// the index, so a stored manifest's blobs are all there.
///
/// Authentication: anonymous, HTTP basic, or the bearer-token challenge
/// (`WWW-Authenticate: Bearer realm=...`), with [`PullOptions::basic_auth`]'s
/// credentials sent to the realm when given.
///
/// Must not be called from within an async runtime (it runs one).
///
/// ```no_run
/// use rcrun::image::pull::{pull, PullOptions};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let opts = PullOptions::new().insecure_http(true).quiet(true);
///     let pulled = pull("127.0.0.1:5000/busybox:latest", "/tmp/layout".as_ref(), &opts)?;
///     println!("{} {} bytes", pulled.manifest.digest, pulled.manifest.size);
///     Ok(())
/// }
/// ```
pub fn pull(reference: &str, layout_dir: &Path, opts: &PullOptions) -> Result<Pulled, PullError> {
    let image: Reference =
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| PullError::InvalidReference {
                reference: reference.to_string(),
                reason: e.to_string(),
            })?;
    let platform = match &opts.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let blobs = prepare_layout(layout_dir)?;
    let client = make_client(&image, opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PullError::Setup {
            reference: image.whole(),
            reason: format!("tokio runtime: {e}"),
        })?;
    let puller = Puller {
        client,
        image,
        auth: match &opts.credentials {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        },
        blobs,
        scheme: if opts.insecure_http { "http" } else { "https" },
        progress: if !opts.quiet && std::io::stderr().is_terminal() {
            Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            None
        },
        concurrency: opts.concurrency,
    };
    let manifest = rt.block_on(puller.run(&platform))?;
    sync_dir(&puller.blobs)?;
    Ok(Pulled {
        manifest,
        reference: puller.image.whole(),
    })
}

/// The oci-client for `opts`.
fn make_client(image: &Reference, opts: &PullOptions) -> Result<Client, PullError> {
    let mut extra_root_certificates = Vec::new();
    for path in &opts.ca_certs {
        let certs = read_pem_certs(path)?;
        extra_root_certificates.extend(certs.into_iter().map(|data| Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        }));
    }
    let config = ClientConfig {
        protocol: if opts.insecure_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates,
        // We pick from indexes ourselves (and store them).
        platform_resolver: None,
        max_concurrent_download: opts.concurrency,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(300)),
        user_agent: concat!("rcrun/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    // Client::new would fall back to a default client on a bad certificate.
    Client::try_from(config).map_err(|e| PullError::Setup {
        reference: image.whole(),
        reason: chain(&e),
    })
}

/// The certificates of a PEM file, one PEM block each (reqwest reads one
/// certificate from each).
fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, PullError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = fs::read_to_string(path).map_err(|e| PullError::CaCert {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut certs = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        certs.push(format!("{}\n", &rest[start..end]).into_bytes());
        rest = &rest[end..];
    }
    if certs.is_empty() {
        return Err(PullError::CaCert {
            path: path.to_path_buf(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The parts of a manifest or index that a pull reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    manifests: Option<Vec<WireDescriptor>>,
    config: Option<WireDescriptor>,
    layers: Option<Vec<WireDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<WirePlatform>,
}

impl WireDescriptor {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

/// One pull's state.
struct Puller {
    client: Client,
    image: Reference,
    auth: RegistryAuth,
    blobs: PathBuf,
    scheme: &'static str,
    progress: Option<MultiProgress>,
    concurrency: usize,
}

impl Puller {
    async fn run(&self, platform: &Platform) -> Result<Descriptor, PullError> {
        // The challenge first: a refused token request is an error here,
        // where oci-client's later requests would go on without a token.
        self.client
            .auth(&self.image, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.manifest_error(&self.image, e))?;

        let (top, top_desc, top_bytes) = self.fetch_manifest(&self.image, None).await?;
        let (manifest, desc, bytes, index) = if top.manifests.is_some() {
            let entry = self.pick(&top, &top_desc, platform)?;
            let want = entry.descriptor();
            let by_digest = self.image.clone_with_digest(want.digest.clone());
            let (m, d, b) = self.fetch_manifest(&by_digest, Some(&want)).await?;
            if m.manifests.is_some() {
                return Err(self.bad(&d, "an index inside an index is not supported"));
            }
            (m, d, b, Some((top_desc, top_bytes)))
        } else {
            (top, top_desc, top_bytes, None)
        };

        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| self.bad(&desc, "no config"))?;
        let mut wanted = vec![config.descriptor()];
        wanted.extend(manifest.layers.iter().flatten().map(|l| l.descriptor()));
        let mut seen = HashSet::new();
        wanted.retain(|d| seen.insert(d.digest.clone()));
        for d in &wanted {
            if digest_hex(&d.digest).is_none() {
                return Err(self.bad(&desc, &format!("unsupported blob digest {:?}", d.digest)));
            }
        }
        let missing: Vec<Descriptor> = wanted.into_iter().filter(|d| !self.present(d)).collect();
        let mut fetches = futures_util::stream::iter(missing.iter().map(|d| self.fetch_blob(d)))
            .buffer_unordered(self.concurrency);
        while let Some(r) = fetches.next().await {
            r?;
        }
        drop(fetches);

        self.store_bytes(&desc, &bytes)?;
        if let Some((index_desc, index_bytes)) = index {
            self.store_bytes(&index_desc, &index_bytes)?;
        }
        Ok(desc)
    }

    /// Fetches and parses a manifest or index; checks it against `want`
    /// (an index's entry) or against the reference's digest.
    async fn fetch_manifest(
        &self,
        image: &Reference,
        want: Option<&Descriptor>,
    ) -> Result<(WireManifest, Descriptor, Vec<u8>), PullError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(image, &self.auth, ACCEPT)
            .await
            .map_err(|e| self.manifest_error(image, e))?;
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        let digest = sha256_of(hasher);
        let url = self.manifest_url(image);
        if let Some(expected) = want.map(|w| w.digest.as_str()).or(image.digest()) {
            if digest != expected {
                return Err(PullError::DigestMismatch {
                    digest: expected.to_string(),
                    url,
                    actual: digest,
                });
            }
        }
        if let Some(w) = want {
            if w.size != bytes.len() as u64 {
                return Err(PullError::SizeMismatch {
                    digest: w.digest.clone(),
                    url,
                    expected: w.size,
                    actual: bytes.len() as u64,
                });
            }
        }
        let bad = |reason: String| PullError::BadManifest {
            reference: image.whole(),
            digest: digest.clone(),
            reason,
        };
        if bytes.len() > MAX_MANIFEST {
            return Err(bad(format!("{} bytes, over the 4 MiB limit", bytes.len())));
        }
        let m: WireManifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
        if m.schema_version != Some(2) {
            return Err(bad(format!(
                "schema version {:?} (only 2 is supported)",
                m.schema_version
            )));
        }
        let media_type = match (&m.media_type, want) {
            (Some(t), _) => t.clone(),
            (None, Some(w)) => w.media_type.clone(),
            (None, None) if m.manifests.is_some() => OCI_INDEX.to_string(),
            (None, None) => OCI_MANIFEST.to_string(),
        };
        if !ACCEPT.contains(&media_type.as_str()) {
            return Err(bad(format!("unsupported media type {media_type}")));
        }
        let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
        if is_index != m.manifests.is_some() {
            return Err(bad(format!("a {media_type} without its fields")));
        }
        let desc = Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
        };
        Ok((m, desc, bytes.to_vec()))
    }

    /// The index entry for `platform`.
    fn pick<'a>(
        &self,
        index: &'a WireManifest,
        index_desc: &Descriptor,
        platform: &Platform,
    ) -> Result<&'a WireDescriptor, PullError> {
        let entries = index.manifests.as_deref().unwrap_or_default();
        entries
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| PullError::NoPlatform {
                reference: self.image.whole(),
                platform: platform.to_string(),
                digest: index_desc.digest.clone(),
                available: entries
                    .iter()
                    .filter_map(|e| e.platform.as_ref())
                    .map(|p| match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether the blob is stored already (with the right size).
    fn present(&self, d: &Descriptor) -> bool {
        let hex = digest_hex(&d.digest).unwrap_or_default();
        fs::metadata(self.blobs.join(hex)).is_ok_and(|m| m.is_file() && m.len() == d.size)
    }

    /// Fetches one blob into a temporary file beside its final name and
    /// renames it into place once its digest and size are right.
    async fn fetch_blob(&self, d: &Descriptor) -> Result<(), PullError> {
        let url = format!(
            "{}://{}/v2/{}/blobs/{}",
            self.scheme,
            self.image.resolve_registry(),
            self.image.repository(),
            d.digest
        );
        let blob_err = |reason: String| PullError::Blob {
            digest: d.digest.clone(),
            url: url.clone(),
            reason,
        };
        let layer = OciDescriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size as i64,
            ..OciDescriptor::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.image, &layer)
            .await
            .map_err(|e| match e {
                OciDistributionError::UnauthorizedError { url } => PullError::Unauthorized {
                    reference: self.image.whole(),
                    reason: format!("HTTP 401 at {url}"),
                },
                e => blob_err(chain(&e)),
            })?;
        let bar = self.progress.as_ref().map(|mp| {
            let bar = mp.add(ProgressBar::new(d.size));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(d.digest[7..19].to_string());
            bar
        });
        let mut tmp = TempBlob::create(&self.blobs, d)?;
        let mut hasher = Sha256::new();
        let mut got: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                // oci-client verifies the digest too, at the end of the stream.
                if let Some(DigestError::VerificationError { actual, .. }) =
                    e.get_ref().and_then(|i| i.downcast_ref::<DigestError>())
                {
                    PullError::DigestMismatch {
                        digest: d.digest.clone(),
                        url: url.clone(),
                        actual: actual.clone(),
                    }
                } else {
                    blob_err(chain(&e))
                }
            })?;
            got += chunk.len() as u64;
            if got > d.size {
                return Err(PullError::SizeMismatch {
                    digest: d.digest.clone(),
                    url,
                    expected: d.size,
                    actual: got,
                });
            }
            hasher.update(&chunk);
            tmp.write(&chunk)?;
            if let Some(bar) = &bar {
                bar.set_position(got);
            }
        }
        if let Some(bar) = &bar {
            bar.finish();
        }
        if got != d.size {
            return Err(PullError::SizeMismatch {
                digest: d.digest.clone(),
                url,
                expected: d.size,
                actual: got,
            });
        }
        let actual = sha256_of(hasher);
        if actual != d.digest {
            return Err(PullError::DigestMismatch {
                digest: d.digest.clone(),
                url,
                actual,
            });
        }
        tmp.persist()
    }

    /// Stores a manifest or index already fetched (and checked).
    fn store_bytes(&self, d: &Descriptor, bytes: &[u8]) -> Result<(), PullError> {
        if self.present(d) {
            return Ok(());
        }
        let mut tmp = TempBlob::create(&self.blobs, d)?;
        tmp.write(bytes)?;
        tmp.persist()
    }

    fn manifest_url(&self, image: &Reference) -> String {
        format!(
            "{}://{}/v2/{}/manifests/{}",
            self.scheme,
            image.resolve_registry(),
            image.repository(),
            image.digest().or(image.tag()).unwrap_or("latest")
        )
    }

    fn manifest_error(&self, image: &Reference, e: OciDistributionError) -> PullError {
        match e {
            OciDistributionError::UnauthorizedError { url } => PullError::Unauthorized {
                reference: image.whole(),
                reason: format!("HTTP 401 at {url} (wrong or missing credentials)"),
            },
            OciDistributionError::AuthenticationFailure(reason) => PullError::Unauthorized {
                reference: image.whole(),
                reason: format!("the token realm said: {}", reason.trim()),
            },
            OciDistributionError::RequestError(e) => PullError::Manifest {
                reference: image.whole(),
                reason: chain(&e),
            },
            e => PullError::Manifest {
                reference: image.whole(),
                reason: format!("{} ({})", chain(&e), self.manifest_url(image)),
            },
        }
    }

    fn bad(&self, d: &Descriptor, reason: &str) -> PullError {
        PullError::BadManifest {
            reference: self.image.whole(),
            digest: d.digest.clone(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        let block = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        fs::write(&p, format!("junk\n{block}{block}")).unwrap();
        assert_eq!(read_pem_certs(&p).unwrap().len(), 2);
        fs::write(&p, "nothing").unwrap();
        assert!(read_pem_certs(&p)
            .unwrap_err()
            .to_string()
            .contains("ca.pem"));
    }
}

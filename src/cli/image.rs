use std::path::PathBuf;

use clap::{Args, Subcommand};
use rcrun::image::{ImageStore, Source, UnpackOptions};

use super::{anyhow_lite::Result, list::Format, Global};

/// `rcrun image ...` as the shared command line knows it: the arguments,
/// for `rcrun` to hand over to `rcrun-image`, which parses them with
/// [`ImageCli`]. So the image commands' definitions are not in `rcrun`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct Forward {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<std::ffi::OsString>,
}

/// rcrun-image's parser for `image` (see [`Forward`]).
#[derive(Debug, clap::Parser)]
#[command(
    name = "rcrun",
    bin_name = "rcrun",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct ImageCli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: ImageTop,
}

#[derive(Debug, Subcommand)]
pub enum ImageTop {
    /// Unpack images into bundles, and manage the image store
    Image(Image),
}

/// The image command unpacks OCI and Docker images into bundles, and keeps
/// a store of images whose layers are unpacked once and shared by the
/// containers that "rcrun run --image" starts, each on an overlay rootfs.
///
/// Images are named as skopeo names them: oci:DIR[:TAG],
/// oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], or NAME[:TAG]
/// for an image in the store.
#[derive(Debug, Args)]
pub struct Image {
    /// The image store's root directory
    #[arg(long, value_name = "DIR", default_value = rcrun::image::DEFAULT_ROOT, global = true)]
    pub image_root: PathBuf,
    /// No progress output
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub cmd: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write BUNDLE/rootfs and BUNDLE/config.json from an image
    Unpack {
        /// The image
        image: String,
        /// The bundle directory to write
        bundle: PathBuf,
        /// Platform to pick from a multi-platform image (os/arch[/variant])
        #[arg(long)]
        platform: Option<String>,
        /// Run the process on a terminal (process.terminal)
        #[arg(short, long)]
        tty: bool,
    },
    /// Copy an image into the store (and unpack its layers)
    Import {
        /// The image (oci:, oci-archive: or docker-archive:)
        image: String,
        /// The name to store it under (default: the name the source gives)
        #[arg(long)]
        name: Option<String>,
        /// Platform to pick from a multi-platform image (os/arch[/variant])
        #[arg(long)]
        platform: Option<String>,
    },
    /// List the images in the store
    #[command(alias = "list")]
    Ls {
        /// Select one of: table or json
        #[arg(short, long, value_name = "FORMAT", default_value = "table")]
        format: Format,
    },
    /// Remove image names from the store (their layers go with prune)
    Rm {
        /// The images
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the blobs and layers no image or container uses
    Prune,
    /// Pull an image from a registry into the store (built with --features pull)
    Pull(Pull),
}

/// `rcrun image pull`'s flags.
#[derive(Debug, Args)]
pub struct Pull {
    /// REGISTRY[:PORT]/REPO[:TAG|@sha256:DIGEST]
    pub reference: String,
    /// Credentials for the registry (USER:PASSWORD)
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// A PEM file of extra root certificates to trust (repeatable)
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// Speak plain HTTP to the registry (for a registry on localhost)
    #[arg(long)]
    pub insecure_http: bool,
    /// Platform to pick from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
}

impl Pull {
    #[cfg(feature = "pull")]
    fn run(self, store: &ImageStore, quiet: bool) -> Result<rcrun::image::ImageInfo> {
        let mut o = rcrun::image::pull::PullOptions::new()
            .insecure_http(self.insecure_http)
            .quiet(quiet);
        if let Some(c) = &self.creds {
            let (u, p) = c.split_once(':').ok_or_else(|| {
                super::anyhow_lite::Error("--creds: expected USER:PASSWORD".into())
            })?;
            o = o.basic_auth(u, p);
        }
        for c in self.ca_cert {
            o = o.ca_cert(c);
        }
        if let Some(p) = self.platform {
            o = o.platform(p);
        }
        Ok(store.pull(&self.reference, &o)?)
    }

    #[cfg(not(feature = "pull"))]
    fn run(self, _store: &ImageStore, _quiet: bool) -> Result<rcrun::image::ImageInfo> {
        Err(
            rcrun::Error::Unsupported("image pull in this build (cargo build --features pull)")
                .into(),
        )
    }
}

impl Image {
    pub fn run(self, _g: &Global) -> Result<i32> {
        // Opened only by the commands that use it: unpacking an oci: or
        // docker-archive: source touches no store.
        let root = self.image_root.clone();
        let store = move || ImageStore::open(&root);
        let mut opts = UnpackOptions::new();
        opts.progress = !self.quiet;
        match self.cmd {
            ImageCommand::Unpack {
                image,
                bundle,
                platform,
                tty,
            } => {
                opts.platform = platform;
                opts.terminal = tty;
                let u = match Source::parse(&image)? {
                    Source::Stored(n) => store()?.unpack(&n, &bundle, &opts)?,
                    src => rcrun::image::unpack(&src, &bundle, &opts)?,
                };
                ::log::debug!(
                    "{} layers, {} members, {} bytes",
                    u.layers,
                    u.entries,
                    u.bytes
                );
            }
            ImageCommand::Import {
                image,
                name,
                platform,
            } => {
                opts.platform = platform;
                let i = store()?.import_with(&Source::parse(&image)?, name.as_deref(), &opts)?;
                outln!("{} {}", i.name, i.digest);
            }
            ImageCommand::Ls { format } => {
                let all = store()?.list()?;
                match format {
                    Format::Json => outln!("{}", serde_json::to_string(&all)?),
                    Format::Table => {
                        outln!(
                            "{:<40} {:<20} {:>7} {:>12}",
                            "NAME",
                            "DIGEST",
                            "LAYERS",
                            "SIZE"
                        );
                        for i in all {
                            let short = i.digest.get(7..19).unwrap_or(&i.digest).to_string();
                            outln!(
                                "{:<40} {:<20} {:>7} {:>12}",
                                i.name,
                                short,
                                i.layers.len(),
                                i.size
                            );
                        }
                    }
                }
            }
            ImageCommand::Rm { names } => {
                let store = store()?;
                for n in names {
                    store.remove(&n)?;
                }
            }
            ImageCommand::Pull(p) => {
                let i = p.run(&store()?, self.quiet)?;
                outln!("{} {}", i.name, i.digest);
            }
            ImageCommand::Prune => {
                let r = store()?.prune()?;
                outln!("removed {} blobs and {} layers", r.blobs, r.layers);
            }
        }
        Ok(0)
    }
}

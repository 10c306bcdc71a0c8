//! The command line: flags as runc spells them, one file per subcommand,
//! each a thin call into the library.

/// println! that ends the program quietly when stdout is closed (a
/// reader such as `head` went away), instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod create;
mod delete;
mod early;
mod entry;
mod events;
mod exec;
mod features;
mod image;
mod kill;
mod list;
pub mod log;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use entry::main;

/// `rcrun --version`, in runc's format (dockerd and containerd parse it).
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("RCRUN_COMMIT"),
    // oci_spec::runtime::VERSION, which concat! cannot take.
    "\nspec: 1.1.0"
);

/// rcrun - a fast, runc-compatible OCI container runtime
///
/// rcrun is a command line client for running applications packaged
/// according to the Open Container Initiative (OCI) format. It takes the
/// same commands and flags as runc, so container engines can use it in
/// place of runc.
///
/// Containers are configured using bundles. A bundle for a container is a
/// directory that includes a specification file named "config.json" and a
/// root filesystem. The root filesystem contains the contents of the
/// container.
///
/// To start a new instance of a container:
///
///     # rcrun run [ -b bundle ] <container-id>
///
/// Where "<container-id>" is your name for the instance of the container
/// that you are starting. The name you provide for the container instance
/// must be unique on your host. Providing the bundle directory using "-b"
/// is optional. The default value for "bundle" is the current directory.
#[derive(Debug, Parser)]
#[command(
    name = "rcrun",
    version = VERSION,
    disable_version_flag = true,
    verbatim_doc_comment,
    max_term_width = 100
)]
pub struct Cli {
    /// Print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

// Flags that go before the subcommand (a plain comment: a doc comment
// here would replace the program's description in --help).
#[derive(Debug, Args)]
pub struct Global {
    /// Root directory for storage of container state (this should be
    /// located in tmpfs) [default: /run/rcrun, or $XDG_RUNTIME_DIR/rcrun
    /// for a non-root user]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Set the log file to write rcrun logs to (default is stderr)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Set the log format ('text' (default), or 'json')
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: log::Format,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Enable systemd cgroup support: cgroupsPath is slice:prefix:name
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// Turns the systemd cgroup driver on in a runtime: set by the binary
    /// that has it (`rcrun-image`; `rcrun` hands `--systemd-cgroup` over),
    /// so that `rcrun` links no D-Bus client (see entry.rs).
    #[arg(skip)]
    pub systemd_driver: Option<fn(rcrun::Runtime) -> rcrun::Runtime>,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, value_name = "VALUE", default_value = "auto",
          value_parser = ["true", "false", "auto"], num_args = 0..=1, default_missing_value = "true")]
    pub rootless: String,
}

impl Global {
    /// The state root: --root, or runc's default for this user.
    pub fn root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        if !nix::unistd::geteuid().is_root() {
            if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
                return PathBuf::from(x).join("rcrun");
            }
        }
        PathBuf::from("/run/rcrun")
    }

    pub fn runtime(&self) -> rcrun::Runtime {
        let rootless = match self.rootless.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let rt = rcrun::Runtime::new(self.root()).with_rootless(rootless);
        match self.systemd_driver {
            Some(on) => on(rt),
            None => rt,
        }
    }
}

// The subcommands. `defer`: each one's flags are built only when it is
// the one being run (or its help is shown); building all of them cost
// every `run` about 50 page faults of help text it never prints.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container
    Create(create::Create),
    /// Delete any resources held by the container, often used with detached containers
    Delete(delete::Delete),
    /// Display container events such as OOM notifications and resource usage statistics
    Events(events::Events),
    /// Execute new process inside the container
    Exec(Box<exec::Exec>),
    /// Show the enabled features
    Features(features::Features),
    /// Unpack images into bundles, and manage the image store
    Image(image::Forward),
    /// Kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(kill::Kill),
    /// Lists containers started by rcrun with the given root
    List(list::List),
    /// Pause suspends all processes inside the container
    Pause(pause::Pause),
    /// Displays the processes running inside a container
    Ps(ps::Ps),
    /// Resumes all processes that have been previously paused
    Resume(pause::Resume),
    /// Create and run a container
    Run(run::Run),
    /// Create a new specification file
    Spec(spec::Spec),
    /// Executes the user defined process in a created container
    Start(start::Start),
    /// Output the state of a container
    State(state::State),
    /// Update container resource constraints
    Update(Box<update::Update>),
}

impl Command {
    /// `exec` re-executes from a sealed view of the binary first
    /// (`create` and `run` only when the container needs it).
    pub fn needs_seal(&self) -> bool {
        matches!(self, Command::Exec(_))
    }

    /// The exit status of a failure: 255 for `exec` (its own status
    /// cannot be told from the runtime's otherwise), 1 for the rest, as
    /// runc.
    pub fn failure_status(&self) -> i32 {
        if matches!(self, Command::Exec(_)) {
            255
        } else {
            1
        }
    }

    pub fn run<const IMAGES: bool>(self, g: &Global) -> anyhow_lite::Result<i32> {
        // The systemd cgroup driver (D-Bus) is in rcrun-image only.
        let systemd = matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Update(_) | Command::Delete(_)
        );
        if !IMAGES && g.systemd_cgroup && systemd {
            return forward_to_images();
        }
        match self {
            Command::Create(c) => c.run(g),
            Command::Delete(c) => c.run(g),
            Command::Events(c) => c.run(g),
            Command::Exec(c) => c.run(g),
            Command::Pause(c) => c.run(g),
            Command::Ps(c) => c.run(g),
            Command::Resume(c) => c.run(g),
            Command::Update(c) => c.run(g),
            Command::Features(c) => c.run(g),
            Command::Image(_) if !IMAGES => forward_to_images(),
            Command::Image(_) => {
                // rcrun-image parses `image` with its own parser (entry.rs).
                use clap::Parser;
                let cli = image::ImageCli::parse();
                let image::ImageTop::Image(c) = cli.command;
                c.run(&cli.global)
            }
            Command::Kill(c) => c.run(g),
            Command::List(c) => c.run(g),
            Command::Run(c) if c.image.is_some() && !IMAGES => forward_to_images(),
            Command::Run(c) => c.run::<IMAGES>(g),
            Command::Spec(c) => c.run(g),
            Command::Start(c) => c.run(g),
            Command::State(c) => c.run(g),
        }
    }
}

/// Hands the command line as it is to `rcrun-image` (the image commands,
/// `--systemd-cgroup`), next to this binary or on PATH (see main.rs).
fn forward_to_images() -> anyhow_lite::Result<i32> {
    use std::os::unix::process::CommandExt;
    const NAME: &str = "rcrun-image";
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join(NAME)))
        .filter(|p| p.is_file());
    let path = beside.or_else(|| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| std::path::Path::new(d).join(NAME))
            .find(|p| p.is_file())
    });
    let Some(path) = path else {
        return Err(anyhow_lite::Error(format!(
            "the image commands and the systemd cgroup driver are in {NAME}, which is neither next to rcrun nor on PATH"
        )));
    };
    let e = std::process::Command::new(&path)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(anyhow_lite::Error(format!("{}: {e}", path.display())))
}

/// The CLI's error: a library error or a message of its own.
pub mod anyhow_lite {
    /// One line for the user.
    #[derive(Debug)]
    pub struct Error(pub String);
    impl<E: std::fmt::Display> From<E> for Error {
        fn from(e: E) -> Self {
            Error(e.to_string())
        }
    }
    /// Result of a subcommand: its exit code.
    pub type Result<T> = std::result::Result<T, Error>;
}

/// The result of `create` or `run`; when the container needs the runtime
/// itself sealed ([`rcrun::Error::Unsealed`]: the exec trampoline does not
/// cover it), rcrun re-executes itself from a sealed view of its binary
/// and the new image runs the same command again. Nothing was done yet.
pub(crate) fn or_reseal<T>(r: rcrun::Result<T>) -> anyhow_lite::Result<T> {
    if let Err(rcrun::Error::Unsealed { id, reason }) = &r {
        ::log::debug!("container {id}: {reason}: re-executing sealed");
        rcrun::seal::ensure_sealed().map_err(|e| {
            anyhow_lite::Error(format!("cannot re-execute from a sealed copy: {e}"))
        })?;
    }
    Ok(r?)
}

/// The `create`/`run` flags they share.
#[derive(Debug, Args)]
pub struct CreateFlags {
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive a file descriptor
    /// referencing the master end of the console's pseudoterminal
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs. This should be
    /// used whenever the rootfs is on top of a ramdisk
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container. This will
    /// cause the container to inherit the calling processes session key
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio +
    /// $LISTEN_FDS + N in total)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: i32,
    /// The container id
    pub id: String,
}

impl CreateFlags {
    pub fn options(&self) -> rcrun::CreateOptions {
        // Like runc, also pass the fds systemd socket activation handed us.
        let listen = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0);
        rcrun::CreateOptions {
            console_socket: self.console_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds + listen,
            ..Default::default()
        }
    }
}

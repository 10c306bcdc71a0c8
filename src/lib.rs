//! rcrun: a minimal, fast, runc-compatible OCI container runtime.
//!
//! The path from a bundle to a running process:
//!
//! 1. [`spec`] loads and validates `config.json` (oci-spec types);
//! 2. `store` reserves the id and keeps the state under the root;
//! 3. [`cgroups`] creates the container's cgroup;
//! 4. `process::plan` prepares everything the init needs: `namespaces`,
//!    `rootfs` mounts and devices, user, capabilities, rlimits, `hooks`;
//! 5. `process::spawn` clones the init, born in the cgroup, which sets
//!    itself up and waits on the exec fifo;
//! 6. [`Runtime::start`] releases it: it execs the user's program.
//!    ([`Runtime::run`] does 1 to 6 in one call, without the fifo.)
//!
//! The [`Runtime`] type is the library's entry point; the `rcrun` binary
//! is a thin command line over it.
//!
//! ```no_run
//! use rcrun::{CreateOptions, Runtime};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Before any thread starts: keep our binary out of the container's
//!     // reach for every container and for exec (without it, create uses
//!     // the exec trampoline where that suffices; see rcrun::seal).
//!     rcrun::seal::ensure_sealed()?;
//!     let rt = Runtime::new("/run/my-agent");
//!     let c = rt.create("job-1", "/var/lib/my-agent/bundles/job-1".as_ref(), CreateOptions::default())?;
//!     rt.start(c.id())?;
//!     println!("job-1 exited with {}", c.wait()?);
//!     rt.delete("job-1", false)?;
//!     Ok(())
//! }
//! ```
//!
//! # Supervising
//!
//! - Standard streams: [`Stdio`] in [`CreateOptions`] and [`ExecOptions`]
//!   (pipes, fifos, files; EOF on stdin when the caller closes its end).
//! - Exits: [`Container::wait`] and [`Container::try_wait`] give an
//!   [`ExitStatus`], read through a pidfd and recorded in the container's
//!   state ([`State::exit`]); a caller that reaps with `waitpid(-1)` hands
//!   the statuses over through a [`Reaper`].
//! - Another process's containers: [`Runtime::open`].
//! - Many containers from one thread: [`events::Events`] (exits, OOM
//!   kills, statistics on one epoll fd).
//!
//! # From async code (tokio)
//!
//! Seal in a plain `fn main`, before the async runtime starts its threads
//! (sealing may re-execute the program), then build the tokio runtime:
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     rcrun::seal::ensure_sealed()?; // one thread still
//!     let tokio = tokio::runtime::Runtime::new()?;
//!     let rt = rcrun::Runtime::new("/run/my-agent");
//!     tokio.block_on(async move {
//!         let rt2 = rt.clone();
//!         let c = tokio::task::spawn_blocking(move || {
//!             rt2.run("job", "/srv/bundles/job".as_ref(), Default::default())
//!         })
//!         .await??;
//!         println!("job: init {}", c.pid());
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Every [`Runtime`] call blocks its thread: `create` and `run` for the
//! container's set-up (a few milliseconds, longer with slow hooks or a
//! seccomp agent), `start`, `kill`, `state`, `list` and `delete` briefly
//! (delete waits for the processes it kills), `exec` until the process
//! has executed its program; [`Container::wait`] until the exit. Run them
//! with `spawn_blocking`, and wait for exits with the cargo feature
//! `tokio`'s `events::AsyncEvents`, which never blocks a worker
//! (tests/library_tokio.rs).

#![warn(missing_docs)]

pub mod cgroups;
pub mod console;
mod container;
mod error;
pub mod events;
mod exit;
mod failure;
#[doc(hidden)]
pub mod features; // for the CLI's `features`
mod hooks;
/// Container images (`--features pull`: [`image::pull`], a registry pull).
pub mod image;
mod namespaces;
mod process;
#[doc(hidden)]
pub mod rootfs; // mount-option parsing, for fuzz/
pub mod seal;
mod seccomp;
#[doc(hidden)]
pub mod signal; // signal names, for the CLI
#[doc(hidden)]
pub mod spec; // config.json parsing and validation, for the CLI and fuzz/
mod state;
mod store;
mod sys;

pub use container::{Container, CreateOptions, ExecOptions, ExecState, Runtime, Stdio};
pub use error::{Error, Result};
pub use exit::{ExitStatus, Reaper};
pub use failure::{InitError, Stage};
pub use hooks::HookError;
pub use oci_spec;
pub use spec::SpecError;
#[doc(hidden)]
pub use state::Record;
pub use state::{State, Status};
pub use store::{validate_id, StoreError};

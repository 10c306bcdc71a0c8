//! rcrun: a minimal, fast, runc-compatible OCI container runtime.
//!
//! The path from a bundle to a running process:
//!
//! 1. [`spec`] loads and validates `config.json` (oci-spec types);
//! 2. [`store`] reserves the id and keeps the state under the root;
//! 3. [`cgroups`] creates the container's cgroup;
//! 4. `process::plan` prepares everything the init needs: [`namespaces`],
//!    [`rootfs`] mounts and devices, user, capabilities, rlimits, [`hooks`];
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

#![warn(missing_docs)]

pub mod cgroups;
pub mod console;
mod container;
mod error;
pub mod events;
mod exit;
pub mod features;
pub mod hooks;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seal;
mod seccomp;
pub mod signal;
pub mod spec;
mod state;
pub mod store;

pub use container::{Container, CreateOptions, ExecOptions, Runtime, Stdio};
pub use error::{Error, Result};
pub use exit::{ExitStatus, Reaper};
pub use oci_spec;
pub use state::{Record, State, Status};

//! The crate-wide error type.
//!
//! Each module has its own error enum naming the field, path or id at
//! fault; [`Error`] aggregates them so that a caller can match on the
//! stage that failed while the CLI prints one line.

use crate::cgroups::CgroupError;
use crate::failure::InitError;
use crate::hooks::HookError;
use crate::spec::SpecError;
use crate::store::StoreError;

/// Everything that can go wrong in an rcrun operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json could not be read, parsed or validated.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The state directory of a container is missing, locked or corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cgroup could not be created, joined or removed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A lifecycle hook failed or timed out.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// The container's init process failed while setting up the container.
    #[error(transparent)]
    Init(#[from] InitError),
    /// An image could not be read, unpacked, stored or released.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// The operation is not allowed in the container's current status.
    #[error("container {id} is {status}: cannot {op} it{hint}")]
    InvalidStatus {
        /// The container id.
        id: String,
        /// Its current status.
        status: crate::Status,
        /// The refused operation.
        op: &'static str,
        /// An extra hint such as " (use --force)".
        hint: &'static str,
    },
    /// A signal name or number was not recognised.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// The container needs the runtime itself to run sealed
    /// ([`crate::seal::ensure_sealed`]): the exec trampoline does not
    /// protect it (the reason why), and the calling process is not sealed.
    /// The CLI re-executes itself sealed and tries again.
    #[error("container {id}: {reason}: the runtime must run sealed (rcrun::seal::ensure_sealed)")]
    Unsealed {
        /// The container id.
        id: String,
        /// Why the exec trampoline is not enough for this container.
        reason: &'static str,
    },
    /// The container's init was not this process's child and nobody
    /// recorded how it ended.
    #[error("container {id}: exit status unknown (not our child, and not recorded)")]
    ExitUnknown {
        /// The container id.
        id: String,
    },
    /// No exec process of the container has this id.
    #[error("container {id}: no exec process {exec_id}")]
    ExecNotFound {
        /// The container id.
        id: String,
        /// The exec id.
        exec_id: String,
    },
    /// An exec process with this id still runs.
    #[error("container {id}: exec id {exec_id} is in use")]
    ExecInUse {
        /// The container id.
        id: String,
        /// The exec id.
        exec_id: String,
    },
    /// A feature rcrun does not implement (yet) was requested.
    #[error("{0} is not supported by rcrun")]
    Unsupported(&'static str),
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or object.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// The result type of every public rcrun operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

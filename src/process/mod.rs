//! Starting the container's init process: from a prepared plan to a
//! process that waits, inside every namespace and the new root, for
//! `start`.
//!
//! # Spawn design
//!
//! rcrun clones the init process directly from the calling process with
//! every piece of data it needs prepared beforehand (`plan`): C strings,
//! argument and environment arrays, resolved mount and device lists,
//! capability masks. Between `clone(2)` and `execve(2)` the child
//! (`child`) makes only system calls on that data: no allocation, no
//! locks, no logging, so it is safe even when the caller is a
//! multithreaded program (a tokio node agent) whose other threads held the
//! allocator's lock at the moment of the clone. We chose this over a
//! re-exec of a helper binary (runc's `runc init`) because it costs no
//! second exec and no re-parsing of the config, and over a zygote because
//! it needs no long-lived process; the price is that the child's code is
//! restricted, which this module keeps small and audited.
//!
//! The runtime binary never becomes the program of a process that runs
//! the container's code (CVE-2019-5736): the init is non-dumpable until
//! it execs, and it execs the user's program through a 1 KB trampoline
//! run from a sealed memfd (`trampoline`), so that even a program that
//! resolves to "the executing binary" (`#!/proc/self/exe`) gets the
//! sealed trampoline. Containers the trampoline does not cover as well
//! are created by a runtime that runs sealed itself ([`crate::seal`]).
//!
//! The child reports progress and failures to the runtime over a
//! `SOCK_SEQPACKET` socket pair as fixed-size messages; a failure names
//! the stage and the index of the entry (mount, device, rlimit) at fault,
//! and the runtime turns it into an [`InitError`] (the types are in
//! `crate::failure`, a leaf module that every layer may use).

pub(crate) mod affinity;
pub(crate) mod child;
pub(crate) mod fds;
pub(crate) mod plan;
pub(crate) mod pty;
pub(crate) mod spawn;
pub(crate) mod trampoline;
pub(crate) mod wiring;

pub(crate) use crate::failure::{At, Fail};
pub use crate::failure::{InitError, Stage};
pub(crate) use crate::sys;

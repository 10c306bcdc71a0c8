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
//! and the runtime turns it into an [`InitError`].

pub(crate) mod affinity;
pub(crate) mod child;
pub(crate) mod fds;
pub(crate) mod plan;
pub(crate) mod pty;
pub(crate) mod spawn;
pub(crate) mod sys;
pub(crate) mod trampoline;

use std::fmt;

/// Declares [`Stage`] and its decoding from the wire in one list.
macro_rules! stages {
    ($($name:ident),+ $(,)?) => {
        /// A step of the init process's set-up, for error messages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        #[allow(missing_docs)]
        pub enum Stage {
            $($name),+
        }

        impl Stage {
            const ALL: &'static [Stage] = &[$(Stage::$name),+];

            pub(crate) fn from_u32(v: u32) -> Option<Stage> {
                Self::ALL.get(v as usize).copied()
            }
        }
    };
}

stages! {
    Sync, CgroupJoin, Setns, Unshare, Fork, TimeOffsets, RootPropagation, RootBind, MountTarget, Mount,
    Remount, Device, DevSymlink, CreateContainerHook, PivotRoot, Chroot, ReadonlyPath,
    MaskedPath, ReadonlyRoot, Hostname, Domainname, Sysctl, OomScoreAdj, Keyring, Rlimit,
    Console, Cwd, Bounding, Groups, Setgid, Setuid, Capabilities, Ambient, NoNewPrivs,
    Executable, StartContainerHook, Exec, Seccomp, AppArmor, Personality, MemoryPolicy,
    PseudoTarget, Stdio,
}

/// A failure inside the init process: the stage, the index of the entry
/// at fault, and the errno (or a hook's exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail {
    pub stage: Stage,
    pub index: u32,
    pub errno: i32,
}

/// Attaches a stage and index to a raw errno result.
pub(crate) trait At<T> {
    fn at(self, stage: Stage, index: u32) -> Result<T, Fail>;
}

impl<T> At<T> for Result<T, sys::Errno> {
    fn at(self, stage: Stage, index: u32) -> Result<T, Fail> {
        self.map_err(|errno| Fail {
            stage,
            index,
            errno,
        })
    }
}

/// The container's init process failed during set-up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A set-up step failed; `what` names the config entry.
    #[error("container init: {what}: {reason}")]
    Step {
        /// The step.
        stage: Stage,
        /// The config entry or object at fault, e.g. `mounts[2] /proc: mount`.
        what: String,
        /// The system's reason.
        reason: String,
    },
    /// The init process died without reporting why.
    #[error("container init exited unexpectedly ({0})")]
    Died(String),
    /// The runtime could not create or talk to the init process.
    #[error("cannot start container init: {0}")]
    Spawn(std::io::Error),
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn stages_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_u32(*s as u32), Some(*s));
        }
        assert_eq!(Stage::from_u32(999), None);
    }
}

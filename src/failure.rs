//! The init process's failures: the stage of its set-up and the index of
//! the config entry at fault ([`Stage`], `Fail`), as it reports them over
//! its sync socket, and the [`InitError`] the runtime makes of them. A
//! leaf module (it uses only `sys`), so that the container layer, the
//! init's code, rootfs, hooks and seccomp all use it without importing
//! one another.

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

impl<T> At<T> for Result<T, crate::sys::Errno> {
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

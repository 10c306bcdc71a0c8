//! Linux namespaces: which to create, which to join, and how.
//!
//! The common case (only new namespaces) is one `clone(2)` with every
//! `CLONE_NEW*` flag: the child is the container's init. Joining a
//! namespace by path, or creating a time namespace, takes the general
//! route: the child `setns(2)`s into each joined namespace (user first, so
//! that new namespaces are owned by it), `unshare(2)`s the new ones, and
//! forks once more when the pid or time namespace only applies to its
//! children; that grandchild is created with `CLONE_PARENT` so that the
//! runtime stays its parent.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use libc::c_int;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::spec::SpecError;

/// The namespace work of one container.
#[derive(Debug, Default)]
pub(crate) struct NamespacePlan {
    /// Flags for clone(2) on the fast path.
    pub clone_flags: c_int,
    /// Namespaces to join, with their `CLONE_NEW*` type (user first).
    pub joins: Vec<(OwnedFd, c_int)>,
    /// New namespaces to unshare after joining (general path).
    pub unshare_flags: c_int,
    /// Fork again after joining/unsharing (pid or time namespace).
    pub fork: bool,
    /// A new user namespace (the runtime writes its id maps).
    pub new_user: bool,
    /// A user namespace joined by path.
    pub joins_user: bool,
    /// A new cgroup namespace, unshared only once the runtime has moved
    /// the init into its cgroup (the namespace's root is the cgroup at
    /// the time of unsharing).
    pub new_cgroup: bool,
    /// Every namespace the container gets that is new.
    pub new: c_int,
}

impl NamespacePlan {
    pub(crate) fn build(spec: &Spec) -> Result<NamespacePlan, SpecError> {
        let mut plan = NamespacePlan::default();
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut joined_pid = false;
        for (i, ns) in nss.iter().enumerate() {
            let flag = ns.typ() as c_int;
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    let f = File::open(p).map_err(|e| SpecError::Invalid {
                        field: format!("linux.namespaces[{i}].path"),
                        reason: format!("cannot open {}: {e}", p.display()),
                    })?;
                    if ns.typ() == LinuxNamespaceType::Pid {
                        joined_pid = true;
                    }
                    let fd = OwnedFd::from(f);
                    if ns.typ() == LinuxNamespaceType::User {
                        plan.joins_user = true;
                        plan.joins.insert(0, (fd, flag));
                    } else {
                        plan.joins.push((fd, flag));
                    }
                }
                _ => plan.new |= flag,
            }
        }
        if nss.iter().all(|n| n.typ() != LinuxNamespaceType::Mount) {
            return Err(SpecError::Invalid {
                field: "linux.namespaces".into(),
                reason: "rcrun needs a mount namespace to set up the rootfs".into(),
            });
        }
        plan.new_user = plan.new & libc::CLONE_NEWUSER != 0;
        plan.new_cgroup = plan.new & libc::CLONE_NEWCGROUP != 0;
        let early = plan.new & !libc::CLONE_NEWCGROUP;
        let new_time = plan.new & libc::CLONE_NEWTIME != 0;
        if plan.joins.is_empty() && !new_time {
            plan.clone_flags = early;
        } else {
            plan.unshare_flags = early;
            plan.fork = joined_pid || new_time || plan.new & libc::CLONE_NEWPID != 0;
        }
        Ok(plan)
    }

    /// The joined namespaces as raw fds for the init process.
    pub(crate) fn join_fds(&self) -> Vec<(RawFd, c_int)> {
        self.joins
            .iter()
            .map(|(f, t)| (f.as_raw_fd(), *t))
            .collect()
    }
}

/// The namespaces `exec` joins, user first and mount last (joining the
/// mount namespace moves the caller to the container's root).
const EXEC_NAMESPACES: &[(&str, c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

impl NamespacePlan {
    /// Joins every namespace of process `pid` that differs from ours (a
    /// process cannot setns into its own user namespace). A namespace
    /// file of `pid` that cannot be opened, where this kernel has the
    /// type, is an error: skipping it would leave the process in the
    /// runtime's namespace (the host's), as when `pid` has exited. The
    /// caller checks that `pid` was the container's init all along
    /// ([`crate::container`]'s exec, with a pidfd).
    pub(crate) fn join_all(pid: i32) -> std::io::Result<NamespacePlan> {
        use std::os::unix::fs::MetadataExt;
        let mut plan = NamespacePlan::default();
        for (name, flag) in EXEC_NAMESPACES {
            let Ok(ours) = std::fs::metadata(format!("/proc/self/ns/{name}")) else {
                continue; // a namespace type this kernel lacks
            };
            let theirs = format!("/proc/{pid}/ns/{name}");
            let f = File::open(&theirs)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{theirs}: {e}")))?;
            let md = f.metadata()?;
            if (md.dev(), md.ino()) == (ours.dev(), ours.ino()) {
                continue;
            }
            plan.joins.push((OwnedFd::from(f), *flag));
            match *flag {
                libc::CLONE_NEWUSER => plan.joins_user = true,
                libc::CLONE_NEWPID => plan.fork = true,
                _ => {}
            }
        }
        Ok(plan)
    }
}

/// The content of `uid_map`/`gid_map` for a list of mappings.
pub(crate) fn id_map(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The content of `/proc/self/timens_offsets`.
pub(crate) fn time_offsets(spec: &Spec) -> Option<String> {
    let offs = spec.linux().as_ref()?.time_offsets().as_ref()?;
    let s: String = offs
        .iter()
        .filter_map(|(clock, o)| {
            let id = match clock.as_str() {
                "monotonic" => libc::CLOCK_MONOTONIC,
                "boottime" => libc::CLOCK_BOOTTIME,
                _ => return None,
            };
            Some(format!(
                "{id} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            ))
        })
        .collect();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ns: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "r"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": ns}
        }))
        .unwrap()
    }

    #[test]
    fn fast_path_for_new_namespaces() {
        let p = NamespacePlan::build(&spec(serde_json::json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "user"}
        ])))
        .unwrap();
        assert_eq!(
            p.clone_flags,
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUSER
        );
        assert!(p.new_user && !p.fork);
    }

    #[test]
    fn join_path_and_time() {
        let p = NamespacePlan::build(&spec(serde_json::json!([
            {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}, {"type": "pid"}
        ])))
        .unwrap();
        assert_eq!(p.clone_flags, 0);
        assert_eq!(p.unshare_flags, libc::CLONE_NEWNS | libc::CLONE_NEWPID);
        assert_eq!(p.joins.len(), 1);
        assert!(p.fork);
        let p = NamespacePlan::build(&spec(
            serde_json::json!([{"type": "mount"}, {"type": "time"}]),
        ))
        .unwrap();
        assert!(p.fork && p.clone_flags == 0);
    }

    #[test]
    fn missing_ns_path_names_the_field() {
        let e = NamespacePlan::build(&spec(serde_json::json!([
            {"type": "mount"}, {"type": "ipc", "path": "/nonexistent/ns"}
        ])))
        .unwrap_err();
        assert!(e.to_string().contains("linux.namespaces[1].path"), "{e}");
    }

    #[test]
    fn mount_namespace_required() {
        assert!(NamespacePlan::build(&spec(serde_json::json!([{"type": "pid"}]))).is_err());
    }
}

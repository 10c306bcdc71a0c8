//! Everything the init process needs, prepared by the runtime before the
//! clone so that the child never allocates.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::str::FromStr;

use libc::{c_int, gid_t, mode_t};
use oci_spec::runtime::{Capability as OciCap, LinuxNamespaceType, Spec};

use crate::hooks::{CStrings, HookExec};
use crate::namespaces::{self, NamespacePlan};
use crate::rootfs::plan::Host;
use crate::rootfs::plan::{cstr, PathPlan, RootfsPlan};
use crate::spec::{Bundle, SpecError};

/// Capability sets as bit masks (bit N = capability N).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The user process: what to exec, as whom, with which limits.
#[derive(Debug)]
pub(crate) struct ProcessPlan {
    /// False when the bundle has no `process`.
    pub has_process: bool,
    pub argv: CStrings,
    pub envp: CStrings,
    /// Where `args[0]` may be, in PATH order (searched inside the container).
    pub candidates: Vec<CString>,
    pub arg0: String,
    pub cwd: PathPlan,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<gid_t>,
    pub set_groups: bool,
    pub umask: Option<mode_t>,
    pub rlimits: Vec<(c_int, libc::rlimit64)>,
    pub rlimit_names: Vec<String>,
    pub caps: Option<CapPlan>,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub terminal: bool,
    pub console_size: Option<libc::winsize>,
    pub preserve_fds: c_int,
    /// `exec PROFILE` for /proc/thread-self/attr/apparmor/exec.
    pub apparmor: Option<CString>,
}

/// All of the init process's work.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub ns: NamespacePlan,
    pub join_fds: Vec<(RawFd, c_int)>,
    pub time_offsets: Option<CString>,
    /// The container's filesystem; None for `exec` (it exists already).
    pub rootfs: Option<RootfsPlan>,
    pub process: ProcessPlan,
    /// The runtime must run prestart/createRuntime hooks before pivot_root.
    pub runtime_hooks: bool,
    pub create_container: Vec<HookExec>,
    pub start_container: Vec<HookExec>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub sysctls: Vec<(CString, CString)>,
    pub sysctl_names: Vec<String>,
    pub oom_score_adj: Option<CString>,
    pub keyring: Option<CString>,
    /// `linux.personality`, as personality(2)'s argument.
    pub personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy`, for set_mempolicy(2).
    pub mem_policy: Option<super::affinity::MemPolicy>,
    /// The compiled `linux.seccomp` filter.
    pub seccomp: Option<crate::seccomp::Filter>,
    /// The runtime's side: fds, flags and buffers the spawner sets
    /// (not from the config).
    pub wiring: super::wiring::Wiring,
}

/// Options of `create` that shape the plan.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PlanOptions {
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: c_int,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(name: &str) -> Option<c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as c_int)
}

fn cap_mask(
    field: &str,
    caps: Option<&std::collections::HashSet<OciCap>>,
) -> Result<u64, SpecError> {
    let mut m = 0u64;
    for c in caps.into_iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = caps::Capability::from_str(&name).map_err(|_| SpecError::Invalid {
            field: format!("process.capabilities.{field}"),
            reason: format!("unknown capability {name}"),
        })?;
        m |= cap.bitmask();
    }
    Ok(m)
}

/// The capabilities this process can hand on: its bounding set, and in
/// its own user namespace also only what it holds (in a new user
/// namespace the init holds every capability the bounding set allows).
fn grantable(new_userns: bool) -> u64 {
    let mask = |set| {
        caps::read(None, set)
            .map(|s| s.iter().fold(0u64, |m, c| m | c.bitmask()))
            .unwrap_or(u64::MAX)
    };
    let bounding = mask(caps::CapSet::Bounding);
    if new_userns {
        bounding
    } else {
        bounding & mask(caps::CapSet::Permitted)
    }
}

fn cap_names(mask: u64) -> String {
    let mut v: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v.join(", ")
}

/// The highest capability number the kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

impl ChildPlan {
    /// Whether the init must stop once in its namespaces (see
    /// `ns_handshake`), the cgroup2 fallback aside.
    pub(crate) fn needs_ns_handshake(&self) -> bool {
        self.ns.new_user
            || self.ns.fork
            || !self.create_container.is_empty()
            || !self.start_container.is_empty()
    }

    /// Has the init start the user's program through the trampoline in
    /// `memfd` ([`super::trampoline`]).
    pub(crate) fn use_trampoline(&mut self, memfd: std::os::fd::OwnedFd) {
        let mut argv = vec![std::ptr::null(); 2];
        argv.extend_from_slice(self.process.argv.ptrs());
        self.wiring.trampoline_argv = argv;
        self.wiring.trampoline = Some(memfd);
    }

    /// Whether the init can join its v1 cgroups late: it builds a rootfs
    /// and talks to the runtime about nothing else before it is in its
    /// cgroups (see `late_cgroups`).
    pub(crate) fn can_join_cgroups_late(&self) -> bool {
        self.rootfs.is_some() && !self.needs_ns_handshake()
    }

    pub(crate) fn build(
        b: &Bundle,
        id: &str,
        opts: PlanOptions,
        host: &Host<'_>,
    ) -> Result<ChildPlan, SpecError> {
        let spec: &Spec = &b.spec;
        let linux = spec.linux().as_ref().expect("validated");
        // Without `process` the init only waits for start and exits.
        let blank;
        let p = match spec.process() {
            Some(p) => p,
            None => {
                blank = oci_spec::runtime::ProcessBuilder::default()
                    .args(Vec::<String>::new())
                    .cwd("/")
                    .build()
                    .expect("a blank process builds");
                &blank
            }
        };
        let ns = NamespacePlan::build(spec)?;
        let has_new = |t: LinuxNamespaceType| ns.new & (t as c_int) != 0;
        let rootfs = RootfsPlan::build(
            spec,
            &b.path,
            &b.rootfs,
            opts.no_pivot,
            has_new(LinuxNamespaceType::User),
            has_new(LinuxNamespaceType::Cgroup),
            host,
        )?;

        let process = ProcessPlan::build(
            p,
            spec.process().is_some(),
            has_new(LinuxNamespaceType::User),
            opts.preserve_fds,
        )?;

        let hooks = spec.hooks().as_ref();
        let execs = |v: Option<&Vec<oci_spec::runtime::Hook>>, env: &[String]| -> Vec<HookExec> {
            v.into_iter()
                .flatten()
                .map(|h| HookExec::new(h, env))
                .collect()
        };
        let process_env = p.env().clone().unwrap_or_default();
        let runtime_hooks = hooks.is_some_and(|h| {
            #[allow(deprecated)]
            let pre = h.prestart().as_ref().is_some_and(|v| !v.is_empty());
            pre || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
        });
        let mut sysctls = Vec::new();
        let mut sysctl_names = Vec::new();
        for (k, v) in linux.sysctl().iter().flatten() {
            sysctls.push((
                cstr(format!("sys/{}", k.replace('.', "/"))),
                cstr(v.as_str()),
            ));
            sysctl_names.push(k.clone());
        }
        Ok(ChildPlan {
            time_offsets: namespaces::time_offsets(spec).map(cstr),
            personality: linux
                .personality()
                .as_ref()
                .map(super::affinity::personality)
                .transpose()?,
            mem_policy: linux
                .memory_policy()
                .as_ref()
                .map(super::affinity::mem_policy)
                .transpose()?,
            rootfs: Some(rootfs),
            runtime_hooks,
            create_container: execs(hooks.and_then(|h| h.create_container().as_ref()), &[]),
            start_container: execs(
                hooks.and_then(|h| h.start_container().as_ref()),
                &process_env,
            ),
            hostname: spec
                .hostname()
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(cstr),
            domainname: spec
                .domainname()
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(cstr),
            sysctls,
            sysctl_names,
            oom_score_adj: p.oom_score_adj().map(|v| cstr(v.to_string())),
            keyring: (!opts.no_new_keyring).then(|| cstr(id.as_bytes())),
            seccomp: linux
                .seccomp()
                .as_ref()
                .map(crate::seccomp::compile)
                .transpose()?,
            ..ChildPlan::bare(ns, process)
        })
    }

    /// Moves the plan's own fds (namespaces to join, bind sources cloned
    /// for a user namespace) to numbers >= `min`: one below would be taken
    /// for stdio (a caller with 0-2 closed) or for a preserved fd, and
    /// reach the container.
    pub(crate) fn raise_fds(&mut self, min: RawFd) -> Result<(), crate::Error> {
        use std::os::fd::AsRawFd;
        if self.ns.joins.iter().any(|(fd, _)| fd.as_raw_fd() < min) {
            let joins = std::mem::take(&mut self.ns.joins);
            for (fd, t) in joins {
                self.ns.joins.push((super::spawn::raise_fd(fd, min)?, t));
            }
            self.join_fds = self.ns.join_fds();
        }
        if let Some(r) = &mut self.rootfs {
            for f in std::mem::take(&mut r.source_fds) {
                let old = f.as_raw_fd();
                let new = super::spawn::raise_fd(f, min)?;
                for m in r.mounts.iter_mut().filter(|m| m.source_fd == old) {
                    m.source_fd = new.as_raw_fd();
                }
                r.source_fds.push(new);
            }
        }
        Ok(())
    }

    /// A plan that only runs `process` in the namespaces of `ns`; the
    /// spawner's fds are filled in later.
    fn bare(ns: NamespacePlan, process: ProcessPlan) -> ChildPlan {
        ChildPlan {
            join_fds: ns.join_fds(),
            time_offsets: None,
            personality: None,
            mem_policy: None,
            ns,
            rootfs: None,
            process,
            runtime_hooks: false,
            create_container: Vec::new(),
            start_container: Vec::new(),
            hostname: None,
            domainname: None,
            sysctls: Vec::new(),
            sysctl_names: Vec::new(),
            oom_score_adj: None,
            keyring: None,
            seccomp: None,
            wiring: super::wiring::Wiring::default(),
        }
    }

    /// The plan of `exec`: join the namespaces of the container's init
    /// `pid`, then set up and run `p` as the init does (no rootfs work,
    /// no hooks).
    pub(crate) fn build_exec(
        p: &oci_spec::runtime::Process,
        seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
        pid: i32,
        preserve_fds: c_int,
    ) -> Result<ChildPlan, crate::Error> {
        let ns = NamespacePlan::join_all(pid)
            .map_err(|e| crate::Error::io(format!("joining the namespaces of pid {pid}"), e))?;
        let process = ProcessPlan::build(p, true, ns.joins_user, preserve_fds)?;
        Ok(ChildPlan {
            seccomp: seccomp.map(crate::seccomp::compile).transpose()?,
            ..ChildPlan::bare(ns, process)
        })
    }

    /// The candidate path list as text (for the not-found error).
    pub(crate) fn search_path(&self) -> String {
        self.process
            .candidates
            .iter()
            .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl ProcessPlan {
    /// Prepares `p` for exec. `userns`: the process runs in a user
    /// namespace (capabilities are then bounded by the bounding set only).
    pub(crate) fn build(
        p: &oci_spec::runtime::Process,
        has_process: bool,
        userns: bool,
        preserve_fds: c_int,
    ) -> Result<ProcessPlan, SpecError> {
        let args = p.args().clone().unwrap_or_default();
        let env = p.env().clone().unwrap_or_default();
        let arg0 = args.first().cloned().unwrap_or_default();
        let candidates = if arg0.is_empty() {
            Vec::new()
        } else if arg0.contains('/') {
            vec![cstr(arg0.as_str())]
        } else {
            let path = env
                .iter()
                .rev()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| cstr(format!("{d}/{arg0}")))
                .collect()
        };

        let user = p.user();
        let groups: Vec<gid_t> = user.additional_gids().clone().unwrap_or_default();
        let mut rlimits = Vec::new();
        let mut rlimit_names = Vec::new();
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            let name = r.typ().to_string();
            let res = rlimit_resource(&name).ok_or_else(|| SpecError::Invalid {
                field: format!("process.rlimits[{i}].type"),
                reason: format!("unknown rlimit {name}"),
            })?;
            rlimits.push((
                res,
                libc::rlimit64 {
                    rlim_cur: r.soft(),
                    rlim_max: r.hard(),
                },
            ));
            rlimit_names.push(name);
        }
        let caps = match p.capabilities() {
            Some(c) => {
                // config.md: capabilities that cannot be granted are
                // logged as warnings, not a failure.
                let limit = grantable(userns);
                let m = |set: &str, v| -> Result<u64, SpecError> {
                    let want = cap_mask(set, v)?;
                    if want & !limit != 0 {
                        log::warn!(
                            "process.capabilities.{set}: cannot grant {} here; dropped",
                            cap_names(want & !limit)
                        );
                    }
                    Ok(want & limit)
                };
                let (inh, prm) = (
                    m("inheritable", c.inheritable().as_ref())?,
                    m("permitted", c.permitted().as_ref())?,
                );
                Some(CapPlan {
                    bounding: m("bounding", c.bounding().as_ref())?,
                    effective: m("effective", c.effective().as_ref())?,
                    permitted: prm,
                    inheritable: inh,
                    // The kernel raises an ambient cap only if it is also
                    // permitted and inheritable.
                    ambient: m("ambient", c.ambient().as_ref())? & prm & inh,
                })
            }
            None => None,
        };
        let console_size = p.console_size().map(|b| libc::winsize {
            ws_row: b.height() as u16,
            ws_col: b.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        Ok(ProcessPlan {
            has_process,
            argv: CStrings::new(args.iter().map(|s| s.as_bytes())),
            envp: CStrings::new(env.iter().map(|s| s.as_bytes())),
            candidates,
            arg0,
            cwd: PathPlan::new(p.cwd()),
            uid: user.uid(),
            gid: user.gid(),
            // In a user namespace set up by an unprivileged user,
            // setgroups(2) is denied; without extra groups, skip it.
            set_groups: !groups.is_empty() || !userns || nix::unistd::geteuid().is_root(),
            groups,
            umask: user.umask().map(|u| u as mode_t),
            rlimits,
            rlimit_names,
            caps,
            last_cap: last_cap(),
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            terminal: p.terminal().unwrap_or(false),
            console_size,
            preserve_fds,
            apparmor: p
                .apparmor_profile()
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| CString::new(format!("exec {s}")))
                .transpose()
                .map_err(|_| SpecError::Invalid {
                    field: "process.apparmorProfile".into(),
                    reason: "contains a NUL byte".into(),
                })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimit_names_map() {
        assert_eq!(
            rlimit_resource("RLIMIT_NOFILE"),
            Some(libc::RLIMIT_NOFILE as c_int)
        );
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }

    #[test]
    fn capability_masks() {
        let set: std::collections::HashSet<OciCap> = [OciCap::Chown, OciCap::SysAdmin].into();
        let m = cap_mask("bounding", Some(&set)).unwrap();
        assert_eq!(m, 1 | (1 << 21)); // CAP_CHOWN = 0, CAP_SYS_ADMIN = 21
    }
}

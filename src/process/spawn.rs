//! The runtime's side of starting the init process.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::child::{self, msg, Msg};
use super::plan::ChildPlan;
use super::{sys, InitError, Stage};
use crate::cgroups::{CgroupSet, Part};
use crate::Error;

/// Callbacks into the container layer while the init sets up.
pub(crate) struct Callbacks<'a> {
    /// uid_map and gid_map contents for a new user namespace.
    pub id_maps: Option<(String, String)>,
    /// The state JSON for hooks, given the init's pid and the status.
    pub state: &'a dyn Fn(i32, crate::Status) -> Vec<u8>,
    /// Runs prestart and createRuntime hooks.
    pub runtime_hooks: &'a dyn Fn(i32) -> Result<(), Error>,
    /// How the runtime waits for the processes it makes.
    pub waiter: &'a crate::exit::Waiter,
}

/// A started init process, waiting for `start` (or about to exec).
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: i32,
    /// Our end of the sync socket: EOF once the init has exec'd.
    pub sync: OwnedFd,
}

fn io_err(e: sys::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

/// Moves `fd` to a number >= `min` (so that it cannot collide with a
/// preserved fd) and returns the new owned fd.
pub(crate) fn raise_fd(fd: OwnedFd, min: RawFd) -> Result<OwnedFd, Error> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    // SAFETY: duplicating an fd we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if n < 0 {
        return Err(Error::io("dup", std::io::Error::last_os_error()));
    }
    // SAFETY: fcntl returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

pub(crate) fn send_go(fd: RawFd, payload: &[u8]) -> Result<(), Error> {
    let mut m = Vec::with_capacity(4 + payload.len());
    m.extend_from_slice(&msg::GO.to_ne_bytes());
    m.extend_from_slice(payload);
    // SAFETY: m is a valid buffer.
    let r = unsafe { libc::send(fd, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Err(InitError::Spawn(std::io::Error::last_os_error()).into());
    }
    Ok(())
}

/// Receives one message, and the fd that may ride along with it.
fn recv_with_fd(fd: RawFd) -> Result<Option<(Msg, Option<OwnedFd>)>, Error> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut m = Msg::default();
    // SAFETY: m is a plain repr(C) value; any bytes are a valid Msg.
    let buf = unsafe {
        std::slice::from_raw_parts_mut(
            (&mut m as *mut Msg).cast::<u8>(),
            std::mem::size_of::<Msg>(),
        )
    };
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(RawFd);
    let mut reset = false;
    let (n, passed) = loop {
        match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(nix::errno::Errno::EINTR) => continue,
            // An init that failed before reading what we sent (its
            // cgroups) and exited resets the socket; the kernel reports
            // that before the messages still queued for us (its FAIL).
            // The error is reported once: read on.
            Err(nix::errno::Errno::ECONNRESET) if !reset => {
                reset = true;
                continue;
            }
            Err(e) => return Err(InitError::Spawn(e.into()).into()),
            Ok(r) => {
                let mut passed = None;
                for c in r.cmsgs().map_err(|e| InitError::Spawn(e.into()))? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // SAFETY: the kernel installed this fd for us.
                            passed = Some(unsafe { OwnedFd::from_raw_fd(f) });
                        }
                    }
                }
                break (r.bytes, passed);
            }
        }
    };
    Ok((n == std::mem::size_of::<Msg>()).then_some((m, passed)))
}

fn recv(fd: RawFd) -> Result<Option<Msg>, Error> {
    Ok(recv_with_fd(fd)?.map(|(m, _)| m))
}

fn write_id_maps(pid: i32, (uid, gid): &(String, String)) -> Result<(), Error> {
    let p = |f: &str| format!("/proc/{pid}/{f}");
    if !nix::unistd::geteuid().is_root() {
        std::fs::write(p("setgroups"), "deny").map_err(|e| Error::io(p("setgroups"), e))?;
    }
    std::fs::write(p("uid_map"), uid)
        .map_err(|e| Error::io(format!("{}: linux.uidMappings", p("uid_map")), e))?;
    std::fs::write(p("gid_map"), gid)
        .map_err(|e| Error::io(format!("{}: linux.gidMappings", p("gid_map")), e))?;
    Ok(())
}

/// Whether an init on this host may join its v1 cgroups late (made
/// while it mounts): on cgroup v1 with no more hierarchies than it can
/// take `tasks` files of.
pub(crate) fn may_join_late(h: &crate::cgroups::Hierarchy) -> bool {
    matches!(h, crate::cgroups::Hierarchy::Legacy(m) if m.len() <= super::child::MAX_LATE_CGROUPS)
}

/// Clones the init process and drives it through set-up. On failure the
/// init is killed and reaped before the error is returned.
pub(crate) fn spawn(
    plan: &mut ChildPlan,
    cgroups: &CgroupSet,
    cb: &Callbacks<'_>,
) -> Result<Spawned, Error> {
    clone_init(plan, cgroups, cb)?.drive(plan, cb)
}

/// An init process just cloned, before the runtime drives its set-up.
/// Dropping it without [`Cloned::drive`] kills and reaps the init.
#[derive(Debug)]
pub(crate) struct Cloned {
    pid: i32,
    ours: Option<OwnedFd>,
    /// cgroup2 leaves CLONE_INTO_CGROUP could not join.
    late_join: Vec<std::path::PathBuf>,
    waiter: crate::exit::Waiter,
}

/// Clones the init process. It joins `cgroups` at birth (the cgroup it
/// joins before it does anything else), all of them unless it joins the
/// v1 ones late (`plan.wiring.late_cgroups`, see [`Cloned::send_cgroups`]).
pub(crate) fn clone_init(
    plan: &mut ChildPlan,
    cgroups: &CgroupSet,
    cb: &Callbacks<'_>,
) -> Result<Cloned, Error> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| InitError::Spawn(e.into()))?;
    let min = 3 + plan.process.preserve_fds;
    plan.raise_fds(min)?;
    let theirs = raise_fd(theirs, min)?;
    plan.wiring.sync_fd = theirs.as_raw_fd();
    // Room for the two state documents with any pid.
    let room = 4 + state_payload(plan, cb, i32::MAX).len() + 64;
    plan.wiring.msg_buf = vec![0u8; room];

    // Join the cgroup at birth (CgroupSet::open_join): v1 through the
    // init's own write to `tasks`, cgroup2 through CLONE_INTO_CGROUP.
    let part = if plan.wiring.late_cgroups {
        Part::Unified
    } else {
        Part::All
    };
    let join = match plan.wiring.placed_by_runtime {
        true => crate::cgroups::Join::default(),
        false => cgroups.open_join(part)?,
    };
    let mut task_fds = Vec::with_capacity(join.tasks.len());
    for (fd, path) in join.tasks {
        task_fds.push(raise_fd(fd, min)?);
        plan.wiring
            .cgroup_task_paths
            .push(path.display().to_string());
    }
    plan.wiring.cgroup_tasks = task_fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut late_join = Vec::new();
    plan.wiring.ns_handshake = plan.needs_ns_handshake() || plan.wiring.placed_by_runtime;
    let forked = match &join.unified {
        Some((dir, path)) => match sys::fork_into(plan.ns.clone_flags, dir.as_raw_fd()) {
            // Old kernel, or a cgroup CLONE_INTO_CGROUP refuses: the
            // runtime moves the init there after the clone, before the
            // init goes on (a new cgroup namespace is rooted where it is).
            Err(_) => {
                late_join.push(path.clone());
                plan.wiring.ns_handshake = true;
                sys::fork(plan.ns.clone_flags)
            }
            r => r,
        },
        None => sys::fork(plan.ns.clone_flags),
    };
    let pid = match forked {
        Ok(0) => {
            // SAFETY (of what follows): the child only runs child::run,
            // which is async-signal-safe; it closes our end first.
            sys::close(ours.as_raw_fd());
            child::run(plan)
        }
        Ok(pid) => pid,
        Err(e) => return Err(InitError::Spawn(io_err(e)).into()),
    };
    drop((theirs, task_fds, join.unified));
    Ok(Cloned {
        pid,
        ours: Some(ours),
        late_join,
        waiter: cb.waiter.clone(),
    })
}

impl Cloned {
    /// The cloned process: the container's init, unless it forks into a
    /// pid or time namespace (`ns.fork`).
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// For an init that joins its v1 cgroups late
    /// (`Wiring::late_cgroups`): makes them while it mounts (on the other
    /// CPU), applies `apply` to them, and hands it their `tasks` files.
    pub(crate) fn make_late_cgroups(
        &self,
        plan: &mut ChildPlan,
        cg: &mut CgroupSet,
        inner: &std::path::Path,
        apply: &dyn Fn(&CgroupSet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        cg.make(inner, Part::Legacy)?;
        apply(cg)?;
        self.send_cgroups(plan, cg.open_join(Part::Legacy)?.tasks);
        Ok(())
    }

    /// Hands an init that joins its v1 cgroups late the `tasks` files to
    /// write itself to (see `ChildPlan::late_cgroups`). A failure here is
    /// not reported: the init then fails, and [`Cloned::drive`] says why.
    fn send_cgroups(&self, plan: &mut ChildPlan, tasks: Vec<(OwnedFd, std::path::PathBuf)>) {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let Some(ours) = &self.ours else { return };
        let fds: Vec<RawFd> = tasks.iter().map(|(f, _)| f.as_raw_fd()).collect();
        plan.wiring.cgroup_task_paths =
            tasks.iter().map(|(_, p)| p.display().to_string()).collect();
        let kind = msg::CGROUPS.to_ne_bytes();
        let iov = [std::io::IoSlice::new(&kind)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let r = sendmsg::<()>(ours.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None);
        if let Err(e) = r {
            log::debug!("init {}: handing over the cgroup files: {e}", self.pid);
        }
    }

    /// Drives the init through its set-up until it is ready.
    pub(crate) fn drive(mut self, plan: &ChildPlan, cb: &Callbacks<'_>) -> Result<Spawned, Error> {
        let pid = self.pid;
        let ours = self.ours.take().expect("driven once");
        let mut init_pid = pid;
        let mut reaped = false;
        let res = crate::cgroups::join_paths(&self.late_join, pid)
            .map_err(Error::from)
            .and_then(|()| drive(plan, cb, ours.as_raw_fd(), pid, &mut init_pid, &mut reaped));
        if reaped {
            // Waited for already: Drop must not wait again (with a
            // caller's reaper, a second wait would never end).
            self.pid = 0;
        }
        match res {
            Ok(()) => {
                self.pid = 0;
                Ok(Spawned {
                    pid: init_pid,
                    sync: ours,
                })
            }
            Err(e) => {
                if init_pid != pid {
                    // The intermediate's child: ours only if we are its
                    // subreaper, so it is not waited for through the
                    // caller's reaper (which may never see it).
                    self.waiter.kill_and_try_reap(init_pid);
                }
                Err(e)
            }
        }
    }
}

impl Drop for Cloned {
    fn drop(&mut self) {
        if self.pid > 0 {
            self.waiter.kill_and_reap(self.pid);
        }
    }
}

fn drive(
    plan: &ChildPlan,
    cb: &Callbacks<'_>,
    fd: RawFd,
    pid: i32,
    init_pid: &mut i32,
    reaped: &mut bool,
) -> Result<(), Error> {
    loop {
        let Some((m, passed)) = recv_with_fd(fd)? else {
            *reaped = true;
            let how = match cb.waiter.wait(pid) {
                Ok(st) => crate::ExitStatus::from_wait_status(st, std::time::SystemTime::now())
                    .to_string(),
                Err(e) => format!("exit status unknown ({})", errstr(e)),
            };
            return Err(InitError::Died(how).into());
        };
        match m.kind {
            msg::NS_READY => {
                if let Some(maps) = &cb.id_maps {
                    write_id_maps(pid, maps)?;
                }
                let payload = if plan.ns.fork {
                    Vec::new()
                } else {
                    state_payload(plan, cb, pid)
                };
                send_go(fd, &payload)?;
            }
            msg::PID => {
                *init_pid = m.value;
                *reaped = true;
                let _ = cb.waiter.wait(pid);
                send_go(fd, &state_payload(plan, cb, m.value))?;
            }
            msg::HOOKS => {
                (cb.runtime_hooks)(*init_pid)?;
                send_go(fd, &[])?;
            }
            msg::SECCOMP_FD => {
                let (Some(l), Some(nfd)) = (
                    plan.seccomp.as_ref().and_then(|f| f.listener.as_ref()),
                    passed,
                ) else {
                    return Err(InitError::Spawn(std::io::Error::other(
                        "seccomp listener fd missing",
                    ))
                    .into());
                };
                crate::seccomp::hand_over(
                    l,
                    *init_pid,
                    &(cb.state)(*init_pid, crate::Status::Creating),
                    nfd,
                )?;
                send_go(fd, &[])?;
            }
            msg::READY => return Ok(()),
            msg::FAIL => return Err(describe(plan, m).into()),
            k => {
                return Err(InitError::Spawn(std::io::Error::other(format!(
                    "unexpected message {k}"
                )))
                .into())
            }
        }
    }
}

/// The init's copy of the state: as createContainer hooks see it
/// ("creating"), a NUL, and as startContainer hooks see it ("created").
/// These hooks run in the container's namespaces, so `pid` is the init's
/// pid as the container sees it (runtime.md, State). Empty when the
/// plan has no such hooks (`exec` never has): nothing to read or format.
fn state_payload(plan: &ChildPlan, cb: &Callbacks<'_>, pid: i32) -> Vec<u8> {
    if plan.create_container.is_empty() && plan.start_container.is_empty() {
        return Vec::new();
    }
    let pid = ns_pid(pid);
    let mut v = (cb.state)(pid, crate::Status::Creating);
    v.push(0);
    v.extend_from_slice(&(cb.state)(pid, crate::Status::Created));
    v
}

/// `pid` in its own (innermost) pid namespace, from /proc/PID/status.
fn ns_pid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("NSpid:"))?;
            line.split_whitespace().last()?.parse().ok()
        })
        .unwrap_or(pid)
}

/// A signal as Go's os/exec names it: strsignal(3), lower-cased.
fn signal_words(sig: i32) -> String {
    // SAFETY: strsignal returns a static or thread-local NUL-terminated
    // string for any number; copied at once.
    let s = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig)) };
    let s = s.to_string_lossy();
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

/// After READY from a process that execs at once (`exec`): waits until
/// it has exec'd (the sync socket closes on exec) and reports a failure.
pub(crate) fn confirm_exec(plan: &ChildPlan, s: &Spawned) -> Result<(), Error> {
    match recv(s.sync.as_raw_fd())? {
        Some(m) if m.kind == msg::FAIL => Err(describe(plan, m).into()),
        _ => Ok(()),
    }
}

/// The kernel's reason in Go's words ("permission denied"), as runc
/// prints it: engines match these texts to pick exit codes (docker's 126
/// and 127, podman's 126 and 127).
pub(crate) fn errstr(e: i32) -> String {
    nix::errno::Errno::from_raw(e).desc().to_lowercase()
}

/// The failure the init (or the trampoline) wrote to `path` (the state
/// directory's init.err) after `create` returned, if any.
pub(crate) fn late_failure(path: &std::path::Path, arg0: &str) -> Option<InitError> {
    let data = std::fs::read(path).ok()?;
    if data.len() < std::mem::size_of::<Msg>() {
        return None;
    }
    // SAFETY: Msg is plain repr(C) integers; the length was checked.
    let m: Msg = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    let stage = Stage::from_u32(m.value as u32).unwrap_or(Stage::Exec);
    Some(describe_program(stage, m.index, m.errno, arg0, None))
}

/// A failure of the program's exec or of an in-container hook, the ones
/// the init also reports after `create` has returned (through init.err,
/// for `start`): `index` is the hook's, `code` an errno, a hook's exit
/// status as -status, -1000-signal for a signal, or i32::MIN for a
/// time-out. `search_path` is PATH as searched, when known.
pub(crate) fn describe_program(
    stage: Stage,
    index: u32,
    code: i32,
    arg0: &str,
    search_path: Option<&str>,
) -> InitError {
    if let Stage::CreateContainerHook | Stage::StartContainerHook = stage {
        let kind = if stage == Stage::CreateContainerHook {
            "createContainer"
        } else {
            "startContainer"
        };
        // runc's words ("error running hook #0: signal: bad system
        // call"), which tools match.
        let reason = match code {
            i32::MIN => "timed out".to_string(),
            c if c <= -1000 => format!(
                "error running hook #{index}: signal: {}",
                signal_words(-1000 - c)
            ),
            c if c <= 0 => format!("error running hook #{index}: exit status {}", -c),
            c => errstr(c),
        };
        return InitError::Step {
            stage,
            what: format!("hooks.{kind}[{index}]"),
            reason,
        };
    }
    // runc's wording, which engines parse.
    let a = arg0;
    let reason = match (code, a.contains('/'), search_path) {
        (i32::MIN, _, _) => "timed out".to_string(),
        (libc::ENOENT, false, Some(path)) => {
            format!("exec: {a:?}: executable file not found in $PATH (looked at {path})")
        }
        (libc::ENOENT, true, _) => format!("exec: {a:?}: stat {a}: no such file or directory"),
        (e, _, _) => format!("exec: {a:?}: {}", errstr(e)),
    };
    InitError::Step {
        stage,
        what: "process.args[0]".into(),
        reason,
    }
}

/// Turns a failure report into an error naming the config entry.
pub(crate) fn describe(plan: &ChildPlan, m: Msg) -> InitError {
    let Some(stage) = Stage::from_u32(m.value as u32) else {
        return InitError::Died(format!("unknown failure {}", m.value));
    };
    let i = m.index as usize;
    let cs = |c: &CStr| c.to_string_lossy().into_owned();
    let empty;
    let rootfs = match &plan.rootfs {
        Some(r) => r,
        None => {
            empty = crate::rootfs::plan::RootfsPlan::empty();
            &empty
        }
    };
    let mount = |what: &str| {
        let m = rootfs.mounts.iter().find(|x| x.index == i);
        format!(
            "mounts[{i}] {}: {what}",
            m.map(|m| m.dest.display()).unwrap_or_default()
        )
    };
    let what = match stage {
        Stage::CgroupJoin => format!(
            "cgroup: joining through {}",
            plan.wiring
                .cgroup_task_paths
                .get(i)
                .map(String::as_str)
                .unwrap_or_default()
        ),
        Stage::Setns => format!("linux.namespaces: joining namespace #{i}"),
        Stage::Unshare => "linux.namespaces: unshare".into(),
        Stage::MountTarget => mount("cannot resolve or create the destination inside the rootfs"),
        // runc's words, which its tests match.
        Stage::PseudoTarget => {
            let fs = rootfs
                .mounts
                .iter()
                .find(|x| x.index == i)
                .and_then(|m| m.fstype.as_deref())
                .map(cs)
                .unwrap_or_default();
            mount(&format!(
                "filesystem {fs:?} must be mounted on ordinary directory"
            ))
        }
        Stage::Mount => mount("mount"),
        Stage::Remount => mount("remount with the mount's flags"),
        Stage::Device => format!(
            "linux.devices: {}",
            rootfs
                .devices
                .get(i)
                .map(|d| d.path.display())
                .unwrap_or_default()
        ),
        Stage::DevSymlink => "/dev symlinks and /dev/shm".into(),
        Stage::RootBind | Stage::RootPropagation => {
            format!("root.path {}", cs(&rootfs.rootfs))
        }
        Stage::MaskedPath if m.index == u32::MAX => {
            "linux.maskedPaths: /dev/null is not the null device".into()
        }
        Stage::MaskedPath => format!(
            "linux.maskedPaths: {}",
            rootfs.masked.get(i).map(|c| cs(c)).unwrap_or_default()
        ),
        Stage::ReadonlyPath => format!(
            "linux.readonlyPaths: {}",
            rootfs
                .readonly_paths
                .get(i)
                .map(|c| cs(c))
                .unwrap_or_default()
        ),
        Stage::ReadonlyRoot => "root.readonly: remount / read-only".into(),
        Stage::Hostname => "hostname".into(),
        Stage::Domainname => "domainname".into(),
        Stage::Sysctl => format!(
            "linux.sysctl.{}",
            plan.sysctl_names.get(i).cloned().unwrap_or_default()
        ),
        Stage::OomScoreAdj => "process.oomScoreAdj".into(),
        Stage::Personality => "linux.personality".into(),
        Stage::MemoryPolicy => "linux.memoryPolicy".into(),
        Stage::Rlimit => format!(
            "process.rlimits: {}",
            plan.process
                .rlimit_names
                .get(i)
                .cloned()
                .unwrap_or_default()
        ),
        Stage::Console => "process.terminal: console set-up".into(),
        Stage::Stdio => format!("stdio: placing the given fd at {i}"),
        Stage::Cwd => format!("process.cwd {}", plan.process.cwd.display()),
        Stage::Bounding => format!("process.capabilities.bounding: dropping capability {i}"),
        Stage::Groups => "process.user.additionalGids".into(),
        Stage::Setgid => format!("process.user.gid {i}"),
        Stage::Setuid => format!("process.user.uid {i}"),
        Stage::Capabilities => "process.capabilities".into(),
        Stage::Ambient => format!("process.capabilities.ambient: raising capability {i}"),
        Stage::NoNewPrivs => "process.noNewPrivileges".into(),
        Stage::Executable
        | Stage::Exec
        | Stage::CreateContainerHook
        | Stage::StartContainerHook => {
            let path = plan.search_path();
            return describe_program(stage, m.index, m.errno, &plan.process.arg0, Some(&path));
        }
        Stage::PivotRoot => "pivot_root".into(),
        Stage::Chroot => "chroot (--no-pivot)".into(),
        Stage::Keyring => "session keyring".into(),
        Stage::AppArmor => "process.apparmorProfile: applying the profile".into(),
        Stage::TimeOffsets => "linux.timeOffsets".into(),
        Stage::Fork => "fork into the pid namespace".into(),
        Stage::Sync => "talking to the runtime".into(),
        Stage::Seccomp if i == 1 => "linux.seccomp: passing the listener fd".into(),
        Stage::Seccomp => "linux.seccomp: loading the filter".into(),
    };
    InitError::Step {
        stage,
        what,
        reason: errstr(m.errno),
    }
}

//! The container's init process, from clone to exec.
//!
//! Everything in this file runs in the child of `clone(2)` and must stay
//! async-signal-safe: it may only make system calls on the data of the
//! [`ChildPlan`], which the runtime prepared before the clone. No
//! allocation, no `std::fs`, no formatting, no locks, no glibc wrappers
//! that keep per-thread state (setuid and friends are raw syscalls here,
//! because glibc's versions try to signal threads that only existed in
//! the parent).

use std::os::fd::{AsRawFd, RawFd};
use std::ptr::null;

use super::plan::{CapPlan, ChildPlan};
use super::{At, Fail, Stage};
use crate::hooks::HookFailure;
use crate::rootfs::setup::{self, Create};
use crate::sys::{self, check, close, Errno};

/// Message kinds from the init process to the runtime.
pub(crate) mod msg {
    /// Namespaces are in place: write id maps, then send GO.
    pub const NS_READY: u32 = 1;
    /// The init process forked into the pid/time namespace: `a` is its pid.
    pub const PID: u32 = 2;
    /// Mounts are done: run prestart/createRuntime hooks, then send GO.
    pub const HOOKS: u32 = 3;
    /// Set-up is complete: the init waits for `start`.
    pub const READY: u32 = 4;
    /// Set-up failed: `a` = stage, `b` = index, `c` = errno.
    pub const FAIL: u32 = 5;
    /// Runtime to init: go on (payload: the state JSON for hooks).
    pub const GO: u32 = 6;
    /// A seccomp listener fd rides along (SCM_RIGHTS): hand it to
    /// `listenerPath`, then send GO.
    pub const SECCOMP_FD: u32 = 7;
    /// Runtime to an init that joins its v1 cgroups late: they exist now;
    /// their `tasks` files ride along (SCM_RIGHTS).
    pub const CGROUPS: u32 = 8;
}

/// A fixed-size message from the init process.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Msg {
    /// One of `msg::*`.
    pub kind: u32,
    /// FAIL: the [`Stage`]; PID: the pid.
    pub value: i32,
    /// FAIL: the index of the config entry at fault.
    pub index: u32,
    /// FAIL: the errno, or a hook's status (see `spawn::describe_program`).
    pub errno: i32,
}

fn send(fd: RawFd, m: Msg) -> Result<(), Errno> {
    // SAFETY: m is a plain repr(C) value, valid for its size.
    let r = unsafe {
        libc::send(
            fd,
            (&m as *const Msg).cast(),
            std::mem::size_of::<Msg>(),
            libc::MSG_NOSIGNAL,
        )
    };
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

/// Sends the runtime a message of `kind` with no arguments.
fn tell(p: &ChildPlan, kind: u32) -> Result<(), Fail> {
    send(
        p.wiring.sync_fd,
        Msg {
            kind,
            ..Msg::default()
        },
    )
    .at(Stage::Sync, 0)
}

/// Waits for GO; keeps its payload (the state JSON) in the plan's buffer.
fn wait_go(p: &mut ChildPlan) -> Result<(), Fail> {
    loop {
        // SAFETY: msg_buf is a valid, writable buffer of its length.
        let n = unsafe {
            libc::recv(
                p.wiring.sync_fd,
                p.wiring.msg_buf.as_mut_ptr().cast(),
                p.wiring.msg_buf.len(),
                0,
            )
        };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if n < 4 {
            // The runtime went away: stop quietly.
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(1) };
        }
        let kind = u32::from_ne_bytes([
            p.wiring.msg_buf[0],
            p.wiring.msg_buf[1],
            p.wiring.msg_buf[2],
            p.wiring.msg_buf[3],
        ]);
        if kind != msg::GO {
            return Err(libc::EPROTO).at(Stage::Sync, 0);
        }
        if n > 4 {
            p.wiring.state_len = n as usize - 4;
        }
        return Ok(());
    }
}

/// The state for createContainer hooks (`creating`).
fn state(p: &ChildPlan) -> &[u8] {
    let s = &p.wiring.msg_buf[4..4 + p.wiring.state_len];
    s.split(|&b| b == 0).next().unwrap_or_default()
}

/// The state for startContainer hooks (`created`).
fn start_state(p: &ChildPlan) -> &[u8] {
    let s = &p.wiring.msg_buf[4..4 + p.wiring.state_len];
    s.split(|&b| b == 0).nth(1).unwrap_or_default()
}

/// The entry point of the cloned child. Never returns.
pub(crate) fn run(p: &mut ChildPlan) -> ! {
    let code = match init(p) {
        Ok(()) => 0,
        Err(f) => {
            let m = Msg {
                kind: msg::FAIL,
                value: f.stage as i32,
                index: f.index,
                errno: f.errno,
            };
            // The runtime listens until create returns; after that only
            // `start` can learn of a failure, from the error file.
            let _ = send(p.wiring.sync_fd, m);
            if p.wiring.err_fd >= 0 {
                // SAFETY: writing a plain repr(C) value to our own fd.
                unsafe {
                    libc::pwrite(
                        p.wiring.err_fd,
                        (&m as *const Msg).cast(),
                        std::mem::size_of::<Msg>(),
                        0,
                    )
                };
            }
            1
        }
    };
    // SAFETY: leaving the child without running any destructor or atexit.
    unsafe { libc::_exit(code) }
}

fn set_dumpable(on: bool) {
    // SAFETY: plain prctl with integer arguments; it cannot fail for 0/1.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}

/// Signal dispositions and the mask are inherited through clone and
/// exec; the user process must start with the defaults, whatever the
/// caller had. SIGPIPE stays ignored until exec so that a hook that does
/// not read its stdin cannot kill the init.
fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let h = if sig == libc::SIGPIPE {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: installing SIG_DFL/SIG_IGN; invalid signals just fail.
        unsafe { libc::signal(sig, h) };
    }
    // SAFETY: an empty set and a valid pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn init(p: &mut ChildPlan) -> Result<(), Fail> {
    // Only the fds of the plan (and stdio and the preserved ones) stay
    // open: the runtime's and its caller's (the state directory's lock,
    // a cgroup2 directory, whatever the caller did not mark close-on-exec)
    // must not be reachable through /proc/self/fd by any path lookup made
    // for the container (CVE-2024-21626).
    place_stdio(p)?;
    close_stray_fds(p)?;
    // Join the container's v1 cgroups first, before this process uses
    // any resource: as the calling thread, which takes no host-wide lock.
    for (i, &fd) in p.wiring.cgroup_tasks.iter().enumerate() {
        join_tasks(fd, i as u32)?;
    }
    // Non-dumpable until the exec (which resets it for the user's
    // program): no container process can ptrace this one, or open its
    // /proc/<pid>/fd and exe, while it holds host fds (CVE-2016-9962).
    set_dumpable(false);
    reset_signals();
    enter_namespaces(p)?;
    // The runtime writes our uid_map/gid_map now; /proc/<pid> of a
    // non-dumpable process belongs to root, which a rootless runtime is
    // not (runc opens the same window).
    if p.wiring.ns_handshake {
        if p.ns.new_user {
            set_dumpable(true);
        }
        tell(p, msg::NS_READY)?;
        wait_go(p)?;
        set_dumpable(false);
    }
    // An `exec` into a pid (or time) namespace forks into it only once
    // it is the user's process but for the exec: capabilities dropped,
    // ids switched. Until then it is invisible from the container, so
    // that a process there with CAP_SYS_PTRACE cannot attach to it while
    // it holds the runtime's privileges. The init builds the rootfs
    // inside its pid namespace (its /proc), so it forks first.
    let late_fork = p.ns.fork && p.rootfs.is_none();
    if p.ns.fork && !late_fork {
        fork_into_namespaces(p)?;
    }
    if p.ns.new_user || p.ns.joins_user {
        // Become the namespace's root: until now our ids are the host's,
        // which the new namespace does not map (files we create would get
        // EOVERFLOW). Raw syscalls, see set_user.
        // SAFETY: plain syscalls with integer arguments.
        unsafe {
            if libc::syscall(libc::SYS_setresgid, 0, 0, 0) < 0 {
                return Err(sys::errno()).at(Stage::Setgid, 0);
            }
            if libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0 {
                return Err(sys::errno()).at(Stage::Setuid, 0);
            }
        }
    }
    if p.ns.new_cgroup && !p.wiring.late_cgroups {
        enter_cgroupns()?;
    }
    if p.process.terminal && !late_fork {
        // SAFETY: plain syscall.
        check(unsafe { libc::setsid() }).at(Stage::Console, 0)?;
    }

    // `exec` joins a container that is set up already: no rootfs work.
    // (Moved out and back: a move, not an allocation.)
    if let Some(rootfs) = p.rootfs.take() {
        build_container(p, &rootfs)?;
        p.rootfs = Some(rootfs);
    }
    if !p.process.has_process {
        // Nothing to run: the trampoline (or this process) waits for
        // `start`, which reports the error, and exits.
        if p.wiring.trampoline.is_some() {
            close_on_exec(p);
            exec_through_trampoline(p, None);
            return Err(sys::errno()).at(Stage::Exec, 0);
        }
        ready_then_wait(p)?;
        // SAFETY: leaving the child.
        unsafe { libc::_exit(0) };
    }
    if let Some(name) = &p.keyring {
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a NUL-terminated name.
        let r = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1, /* KEYCTL_JOIN_SESSION_KEYRING */
                name.as_ptr(),
            )
        };
        // Kernels without keyrings, or out of key quota: runc goes on too.
        if r < 0 && !matches!(sys::errno(), libc::ENOSYS | libc::EDQUOT) {
            return Err(sys::errno()).at(Stage::Keyring, 0);
        }
    }
    if p.wiring.console_fd >= 0 && !late_fork {
        super::pty::console(p).at(Stage::Console, 1)?;
    }
    if let Some(rootfs) = &p.rootfs {
        setup::dev_readonly(rootfs)?;
    }
    if !late_fork {
        apparmor_on_exec(p)?;
    }
    set_process_attributes(p)?;
    // Into the working directory while still privileged (as runc), by an
    // fd resolved inside the root: neither a symlink nor `..` nor a magic
    // link can take it out of the container (CVE-2024-21626). One that
    // root may not enter (root_squash NFS) is tried again as the user.
    // Before any seccomp filter: a profile older than openat2 denies it.
    let cwd_as_user = match enter_cwd(p) {
        Err(f) if f.errno == libc::EACCES || f.errno == libc::EPERM => true,
        r => r.map(|()| false)?,
    };
    if !cwd_as_user {
        check_cwd_inside_root()?;
    }
    // seccomp: without no_new_privs, loading needs CAP_SYS_ADMIN, so load
    // before dropping privileges; with it, as late as possible (runc).
    let seccomp_late = p.process.no_new_privs;
    if !seccomp_late {
        load_seccomp(p)?;
    }
    set_user(p)?;
    if p.process.no_new_privs {
        // SAFETY: plain prctl.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
            .at(Stage::NoNewPrivs, 0)?;
    }
    if cwd_as_user {
        enter_cwd(p)?;
        check_cwd_inside_root()?;
    }
    let exe = find_executable(p).at(Stage::Executable, 0)?;
    exec_program(p, exe, late_fork, seccomp_late)
}

/// The process's rlimits, umask, personality and memory policy.
fn set_process_attributes(p: &ChildPlan) -> Result<(), Fail> {
    for (i, (res, lim)) in p.process.rlimits.iter().enumerate() {
        // SAFETY: lim is a valid rlimit64.
        let r = unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                0,
                *res,
                lim as *const libc::rlimit64,
                null::<libc::rlimit64>(),
            )
        };
        if r < 0 {
            return Err(sys::errno()).at(Stage::Rlimit, i as u32);
        }
    }
    if let Some(u) = p.process.umask {
        // SAFETY: cannot fail.
        unsafe { libc::umask(u) };
    }
    if let Some(persona) = p.personality {
        // SAFETY: plain syscall with an integer argument.
        if unsafe { libc::personality(persona) } < 0 {
            return Err(sys::errno()).at(Stage::Personality, 0);
        }
    }
    if let Some(m) = &p.mem_policy {
        // SAFETY: nodes is a valid mask of at least maxnode bits.
        let r =
            unsafe { libc::syscall(libc::SYS_set_mempolicy, m.mode, m.nodes.as_ptr(), m.maxnode) };
        if r < 0 {
            return Err(sys::errno()).at(Stage::MemoryPolicy, 0);
        }
    }
    Ok(())
}

/// The last steps, once the process is the user's: an `exec`'s late fork
/// into the pid namespace, a late seccomp filter, READY and the wait for
/// `start` (by the trampoline itself when it can), startContainer hooks,
/// and the exec of `exe`. Returns only on failure.
fn exec_program(
    p: &mut ChildPlan,
    exe: *const libc::c_char,
    late_fork: bool,
    seccomp_late: bool,
) -> Result<(), Fail> {
    if late_fork {
        fork_into_namespaces(p)?;
        // The terminal's session is the process's own: made here, not in
        // the intermediate process, whose exit would hang it up.
        if p.process.terminal {
            // SAFETY: plain syscall.
            check(unsafe { libc::setsid() }).at(Stage::Console, 0)?;
        }
        if p.wiring.console_fd >= 0 {
            super::pty::console(p).at(Stage::Console, 1)?;
        }
        // Through the container's procfs, where only a process of its pid
        // namespace is (as runc's exec, after the switch to the user).
        apparmor_on_exec(p)?;
    }
    if seccomp_late {
        load_seccomp(p)?;
    }

    if p.wiring.trampoline.is_some() && p.start_container.is_empty() {
        // The trampoline tells the runtime READY and waits for `start`
        // itself: from the moment the container exists, no process in it
        // is the rcrun binary (CVE-2019-5736; see super::trampoline).
        close_on_exec(p);
        exec_through_trampoline(p, Some(exe));
        return Err(sys::errno()).at(Stage::Exec, 0);
    }
    ready_then_wait(p)?;
    for (i, h) in p.start_container.iter().enumerate() {
        h.run(start_state(p))
            .map_err(|e| hook_fail(Stage::StartContainerHook, i, e))?;
    }
    close_on_exec(p);
    if p.wiring.trampoline.is_some() {
        exec_through_trampoline(p, Some(exe));
    } else {
        // SAFETY: exe and both arrays are NUL-terminated and prepared.
        unsafe { libc::execve(exe, p.process.argv.as_ptr(), p.process.envp.as_ptr()) };
    }
    Err(sys::errno()).at(Stage::Exec, 0)
}

/// aa_change_onexec: the profile applies from the next exec. Through
/// the verified procfs only (CVE-2019-16884, CVE-2025-52881).
fn apparmor_on_exec(p: &ChildPlan) -> Result<(), Fail> {
    let Some(profile) = &p.process.apparmor else {
        return Ok(());
    };
    let t = sys::ProcBase::ThreadSelf;
    let attr = sys::write_proc(t, b"attr/apparmor/exec", profile.as_bytes());
    let attr = match attr {
        Err(libc::ENOENT) => sys::write_proc(t, b"attr/exec", profile.as_bytes()),
        r => r,
    };
    attr.at(Stage::AppArmor, 0)
}

/// Forks into the pid (or time) namespace that `setns` made the one of
/// this process's children (CLONE_PARENT: the grandchild becomes the
/// runtime's child, so the runtime can wait for it as for the fast
/// path's init); the intermediate process tells the runtime its pid and
/// exits. Returns in the grandchild, once the runtime answered.
fn fork_into_namespaces(p: &mut ChildPlan) -> Result<(), Fail> {
    let pid = sys::fork(libc::CLONE_PARENT).at(Stage::Fork, 0)?;
    if pid > 0 {
        send(
            p.wiring.sync_fd,
            Msg {
                kind: msg::PID,
                value: pid,
                ..Msg::default()
            },
        )
        .at(Stage::Sync, 0)?;
        // SAFETY: the intermediate process is done.
        unsafe { libc::_exit(0) };
    }
    wait_go(p)
}

/// Every fd but stdio and the preserved ones closes at exec
/// (CVE-2024-21626: no host fd may reach the container); SIGPIPE gets
/// its default back.
fn close_on_exec(p: &ChildPlan) {
    // SAFETY: plain syscalls.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + p.process.preserve_fds,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Puts the caller's stdio fds (raised above the preserved ones by the
/// spawner, so none is at 0-2) at 0, 1 and 2; their originals are closed
/// with the other stray fds.
fn place_stdio(p: &ChildPlan) -> Result<(), Fail> {
    for (i, &fd) in p.wiring.stdio.iter().enumerate() {
        if fd >= 0 {
            // SAFETY: plain dup2 of an fd the plan owns onto a standard one.
            check(unsafe { libc::dup2(fd, i as libc::c_int) }).at(Stage::Stdio, i as u32)?;
        }
    }
    Ok(())
}

/// Closes every fd but stdio, the preserved ones and the plan's own.
fn close_stray_fds(p: &ChildPlan) -> Result<(), Fail> {
    let mut keep = super::fds::Keep::new();
    let mut ok = true;
    for fd in [
        p.wiring.sync_fd,
        p.wiring.err_fd,
        p.wiring.fifo_fd,
        p.wiring.console_fd,
    ] {
        ok &= keep.add(fd);
    }
    if let Some(t) = &p.wiring.trampoline {
        ok &= keep.add(t.as_raw_fd());
    }
    for &(fd, _) in &p.join_fds {
        ok &= keep.add(fd);
    }
    for &fd in &p.wiring.cgroup_tasks {
        ok &= keep.add(fd);
    }
    for f in p.rootfs.iter().flat_map(|r| &r.source_fds) {
        ok &= keep.add(f.as_raw_fd());
    }
    if !ok {
        return Err(libc::EMFILE).at(Stage::Sync, 1);
    }
    keep.close_others(3 + p.process.preserve_fds);
    Ok(())
}

/// The working directory must be inside the root (getcwd does not say
/// "(unreachable)"). Checked before an early seccomp filter, which may
/// deny getcwd (runtime-tools' linux_seccomp does).
fn check_cwd_inside_root() -> Result<(), Fail> {
    if !super::fds::cwd_inside_root() {
        return Err(libc::EXDEV).at(Stage::Cwd, 2);
    }
    Ok(())
}

/// Changes into `process.cwd`, resolved inside this process's root with
/// openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (create made it
/// exist; for `exec` it must).
fn enter_cwd(p: &ChildPlan) -> Result<(), Fail> {
    // SAFETY: constant path.
    let root = check(unsafe {
        libc::open(
            c"/".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })
    .at(Stage::Cwd, 1)?;
    let dir = sys::open_in_root(root, &p.process.cwd.full, libc::O_PATH | libc::O_DIRECTORY);
    close(root);
    let dir = dir.at(Stage::Cwd, 1)?;
    // SAFETY: dir is a directory fd we own.
    let r = check(unsafe { libc::fchdir(dir) });
    close(dir);
    r.at(Stage::Cwd, 1).map(drop)
}

/// Executes the trampoline (see `super::trampoline`), which executes
/// `exe`; returns only if that fails, with errno set. The fds that tell
/// the runtime the program started must stay open through the
/// trampoline's exec: they lose close-on-exec here, and the trampoline
/// sets it again.
fn exec_through_trampoline(p: &mut ChildPlan, exe: Option<*const libc::c_char>) {
    let Some(tfd) = p.wiring.trampoline.as_ref().map(|t| t.as_raw_fd()) else {
        return;
    };
    // It tells the runtime READY and waits for `start` unless this
    // process already did (startContainer hooks ran here).
    let (ready, go) = if p.start_container.is_empty() {
        let go = if p.wiring.fifo_fd < 0 && p.wiring.go_after_ready {
            msg::GO
        } else {
            0
        };
        (msg::READY, go)
    } else {
        (0, 0)
    };
    let fds = [p.wiring.sync_fd, p.wiring.err_fd, p.wiring.fifo_fd];
    for fd in fds.into_iter().filter(|&fd| fd >= 0) {
        // SAFETY: F_SETFD on an fd of ours.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return;
        }
    }
    let [s, e, f] = fds.map(i64::from);
    super::trampoline::header(
        &mut p.wiring.trampoline_header,
        [
            msg::FAIL as i64,
            Stage::Exec as i64,
            s,
            e,
            f,
            ready as i64,
            go as i64,
        ],
    );
    // The argv was sized in the plan: these writes do not allocate. With
    // no program, argv[1] is its end.
    p.wiring.trampoline_argv[0] = p.wiring.trampoline_header.as_ptr().cast();
    p.wiring.trampoline_argv[1] = exe.unwrap_or(null());
    // SAFETY: tfd is the trampoline's memfd; argv and envp are
    // NULL-terminated arrays of NUL-terminated strings.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            tfd,
            c"".as_ptr(),
            p.wiring.trampoline_argv.as_ptr(),
            p.process.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
}

/// The init's own work: the rootfs, the runtime's and createContainer
/// hooks, pivot_root, hostname, sysctls, masked and read-only paths.
fn build_container(
    p: &mut ChildPlan,
    rootfs: &crate::rootfs::plan::RootfsPlan,
) -> Result<(), Fail> {
    let root = setup::prepare(rootfs)?;
    if p.wiring.late_cgroups {
        let (before, after) = rootfs.mounts.split_at(rootfs.cgroup_at);
        setup::mount_some(before, root)?;
        join_cgroups_late(p)?;
        setup::mount_some(after, root)?;
    } else {
        setup::mount_all(rootfs, root)?;
    }
    setup::setup_dev(rootfs, root)?;
    if let Some(v) = &p.oom_score_adj {
        // Before pivot_root: the runtime's /proc, verified all the same.
        sys::write_proc(sys::ProcBase::SelfLink, b"oom_score_adj", v.as_bytes())
            .at(Stage::OomScoreAdj, 0)?;
    }
    if p.runtime_hooks {
        tell(p, msg::HOOKS)?;
        wait_go(p)?;
    }
    // createContainer hooks run in the rootfs, as runc's.
    if !p.create_container.is_empty() {
        // SAFETY: root is a directory fd we own.
        check(unsafe { libc::fchdir(root) }).at(Stage::CreateContainerHook, 0)?;
    }
    for (i, h) in p.create_container.iter().enumerate() {
        h.run(state(p))
            .map_err(|e| hook_fail(Stage::CreateContainerHook, i, e))?;
    }
    let cwd = setup::resolve(root, &p.process.cwd, Create::Dir).at(Stage::Cwd, 0)?;
    close(cwd);
    setup::enter(rootfs, root)?;
    close(root);

    if let Some(h) = &p.hostname {
        // SAFETY: valid buffer and length.
        check(unsafe { libc::sethostname(h.as_ptr(), h.as_bytes().len()) })
            .at(Stage::Hostname, 0)?;
    }
    if let Some(d) = &p.domainname {
        // SAFETY: valid buffer and length.
        check(unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) })
            .at(Stage::Domainname, 0)?;
    }
    for (i, (path, value)) in p.sysctls.iter().enumerate() {
        // `path` is relative to /proc (sys/...): no volume on /proc/sys
        // and no symlink can redirect the write (CVE-2025-52881).
        sys::write_proc(sys::ProcBase::Root, path.as_bytes(), value.as_bytes())
            .at(Stage::Sysctl, i as u32)?;
    }
    setup::finish(rootfs)?;
    Ok(())
}

/// Moves this thread into the cgroup whose `tasks` file is `fd` (the
/// `i`th the init joins), writing `0`: the calling thread alone, which
/// takes no host-wide lock. Closes `fd` either way.
fn join_tasks(fd: RawFd, i: u32) -> Result<(), Fail> {
    let r = sys::write_all(fd, b"0").at(Stage::CgroupJoin, i);
    close(fd);
    r
}

/// A new cgroup namespace, rooted at the cgroups this process is in.
fn enter_cgroupns() -> Result<(), Fail> {
    // SAFETY: plain syscall.
    check(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) })
        .at(Stage::Unshare, 1)
        .map(drop)
}

/// The most `tasks` files msg::CGROUPS carries (the kernel has 14 v1
/// controllers; named and unified hierarchies come on top).
pub(crate) const MAX_LATE_CGROUPS: usize = 32;

/// Late cgroup join (`ChildPlan::late_cgroups`): waits for the runtime's
/// msg::CGROUPS, writes `0` (this thread, which takes no host-wide lock)
/// to each `tasks` file that came with it, then enters the cgroup
/// namespace, which is rooted where the process is at that moment.
fn join_cgroups_late(p: &mut ChildPlan) -> Result<(), Fail> {
    let mut kind = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: kind.as_mut_ptr().cast(),
        iov_len: kind.len(),
    };
    // Room for the control header and MAX_LATE_CGROUPS fds, u64-aligned.
    let mut ctl = [0u64; (MAX_LATE_CGROUPS * 4 + 64) / 8];
    // SAFETY: an all-zero msghdr is valid; the pointers set below point
    // to buffers that outlive the recvmsg call.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.as_mut_ptr().cast();
    mh.msg_controllen = std::mem::size_of_val(&ctl) as _;
    let n = loop {
        // SAFETY: mh describes valid, writable buffers.
        let n = unsafe { libc::recvmsg(p.wiring.sync_fd, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n < 4 {
        // The runtime went away: stop quietly.
        // SAFETY: _exit is always safe.
        unsafe { libc::_exit(1) };
    }
    let mut res =
        if u32::from_ne_bytes(kind) != msg::CGROUPS || mh.msg_flags & libc::MSG_CTRUNC != 0 {
            Err(libc::EPROTO).at(Stage::Sync, 0)
        } else {
            Ok(())
        };
    let mut i = 0u32;
    // SAFETY: the CMSG_* helpers walk the control buffer the kernel
    // filled in, within msg_controllen; the fds in it are ours now.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for k in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(k));
                    if res.is_ok() {
                        res = join_tasks(fd, i);
                    } else {
                        close(fd);
                    }
                    i += 1;
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    res?;
    if p.ns.new_cgroup {
        enter_cgroupns()?;
    }
    Ok(())
}

/// Tells the runtime that set-up is complete, then blocks until `start`
/// (the exec fifo) or, for `run`, the runtime's go on the sync socket.
fn ready_then_wait(p: &mut ChildPlan) -> Result<(), Fail> {
    tell(p, msg::READY)?;
    if p.wiring.fifo_fd >= 0 {
        wait_for_start(p.wiring.fifo_fd);
    } else if p.wiring.go_after_ready {
        wait_go(p)?;
    }
    Ok(())
}

fn hook_fail(stage: Stage, i: usize, e: HookFailure) -> Fail {
    Fail {
        stage,
        index: i as u32,
        errno: match e {
            HookFailure::Errno(e) => e,
            // Exit statuses are reported negated to tell them from errnos.
            HookFailure::Status(s) => -s,
            // Signals below every status: -1000 - signal.
            HookFailure::Signal(s) => -1000 - s,
            HookFailure::Timeout => i32::MIN,
        },
    }
}

fn enter_namespaces(p: &ChildPlan) -> Result<(), Fail> {
    for (i, (fd, typ)) in p.join_fds.iter().enumerate() {
        // SAFETY: fd is a namespace fd opened by the runtime.
        check(unsafe { libc::setns(*fd, *typ) }).at(Stage::Setns, i as u32)?;
    }
    if p.ns.unshare_flags != 0 {
        // SAFETY: plain syscall.
        check(unsafe { libc::unshare(p.ns.unshare_flags) }).at(Stage::Unshare, 0)?;
    }
    if let Some(off) = &p.time_offsets {
        sys::write_file(c"/proc/self/timens_offsets", off.as_bytes()).at(Stage::TimeOffsets, 0)?;
    }
    Ok(())
}

/// Blocks until `start` writes to the exec fifo. The fifo was opened
/// read-only and non-blocking before any writer existed, so poll(2)
/// sleeps until the first writer writes: no polling loop, no timer.
fn wait_for_start(fd: RawFd) {
    let mut b = [0u8; 1];
    loop {
        if sys::poll_in(fd, -1).is_err() {
            // SAFETY: leaving the child.
            unsafe { libc::_exit(1) };
        }
        // SAFETY: b is a valid 1-byte buffer.
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n == 1 {
            return;
        }
        if n == 0 || (n < 0 && sys::errno() != libc::EAGAIN && sys::errno() != libc::EINTR) {
            // A writer came and went without starting us: give up.
            // SAFETY: leaving the child.
            unsafe { libc::_exit(1) };
        }
    }
}

/// Loads the seccomp filter, if any; a notify filter's listener fd goes to
/// the runtime, which hands it to `listenerPath` before we go on.
fn load_seccomp(p: &mut ChildPlan) -> Result<(), Fail> {
    let Some(f) = &p.seccomp else {
        return Ok(());
    };
    let notify = f.listener.is_some();
    let fd = crate::seccomp::load(f).at(Stage::Seccomp, 0)?;
    if notify {
        let m = Msg {
            kind: msg::SECCOMP_FD,
            ..Msg::default()
        };
        // SAFETY: m is a plain repr(C) value; viewed as bytes for its size.
        let bytes = unsafe {
            std::slice::from_raw_parts((&m as *const Msg).cast::<u8>(), std::mem::size_of::<Msg>())
        };
        let sent = sys::send_fd(p.wiring.sync_fd, bytes, fd);
        close(fd);
        sent.at(Stage::Seccomp, 1)?;
        wait_go(p)?;
    }
    Ok(())
}

fn set_user(p: &ChildPlan) -> Result<(), Fail> {
    let pr = &p.process;
    if let Some(c) = &pr.caps {
        for cap in 0..=pr.last_cap.min(63) {
            if c.bounding & (1 << cap) == 0 {
                // SAFETY: plain prctl; EINVAL means the kernel lacks the cap.
                let r =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r < 0 && sys::errno() != libc::EINVAL {
                    return Err(sys::errno()).at(Stage::Bounding, cap);
                }
            }
        }
        // SAFETY: plain prctl: keep the permitted set across setuid.
        check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }).at(Stage::Setuid, 0)?;
    }
    // Raw syscalls: glibc's wrappers would try to synchronise threads that
    // exist only in the parent.
    // SAFETY: valid pointer and length; plain syscalls with integers.
    unsafe {
        if pr.set_groups {
            let r = libc::syscall(libc::SYS_setgroups, pr.groups.len(), pr.groups.as_ptr());
            if r < 0 {
                return Err(sys::errno()).at(Stage::Groups, 0);
            }
        }
        if libc::syscall(libc::SYS_setresgid, pr.gid, pr.gid, pr.gid) < 0 {
            return Err(sys::errno()).at(Stage::Setgid, pr.gid);
        }
        if libc::syscall(libc::SYS_setresuid, pr.uid, pr.uid, pr.uid) < 0 {
            return Err(sys::errno()).at(Stage::Setuid, pr.uid);
        }
    }
    if let Some(c) = &pr.caps {
        capset(c).at(Stage::Capabilities, 0)?;
        for cap in 0..=pr.last_cap.min(63) {
            if c.ambient & (1 << cap) != 0 {
                // SAFETY: plain prctl.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                if r < 0 {
                    return Err(sys::errno()).at(Stage::Ambient, cap);
                }
            }
        }
    }
    Ok(())
}

fn capset(c: &CapPlan) -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let part = |shift: u32| Data {
        effective: (c.effective >> shift) as u32,
        permitted: (c.permitted >> shift) as u32,
        inheritable: (c.inheritable >> shift) as u32,
    };
    let data = [part(0), part(32)];
    // SAFETY: header and a 2-element data array, as capset(2) v3 expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

/// The first candidate that is an executable regular file.
fn find_executable(p: &ChildPlan) -> Result<*const libc::c_char, Errno> {
    let mut last = libc::ENOENT;
    for c in &p.process.candidates {
        // SAFETY: all-zero stat is a valid out-buffer; c is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            last = libc::EACCES;
            continue;
        }
        // SAFETY: as above.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            return Ok(c.as_ptr());
        }
        last = libc::EACCES;
    }
    Err(last)
}

//! The lifecycle operations: create, start, state, kill, delete, list.
//!
//! [`Runtime`] is a cheap handle on a state root; it holds no global
//! state and may be shared between threads. Operations on one container
//! are serialised by a lock on its state directory.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cgroups::{self, CgroupSet, Hierarchy, Part};
use crate::error::{Error, Result};
use crate::hooks;
use crate::namespaces;
use crate::process::child::{self, Msg};
use crate::process::plan::{ChildPlan, PlanOptions};
use crate::process::spawn::{self, raise_fd, Callbacks};
use crate::process::{sys, trampoline, InitError, Stage};
use crate::rootfs::plan::Host;
use crate::spec::{Bundle, SpecError};
use crate::state::{Record, State, Status};
use crate::store::{Entry, Store, StoreError};

/// Options of [`Runtime::create`] (runc's `create` flags).
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--console-socket`: where to send the pty master when
    /// `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// A socket already connected to the pty receiver, used instead of
    /// `console_socket` when the container has a terminal (`run` in the
    /// foreground passes one and proxies; ignored without a terminal).
    pub console: Option<OwnedFd>,
    /// `--pid-file`: write the init's pid there.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`: chroot instead of pivot_root (for a ramfs root).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: pass fds 3 to 3+N-1 to the container.
    pub preserve_fds: i32,
    /// From a process that is not sealed ([`crate::seal`]): exec the
    /// program directly, without the exec trampoline, whatever the
    /// container. Only for callers that accept that a program resolving to
    /// the executing binary (`#!/proc/self/exe`) would run theirs.
    pub allow_unsealed: bool,
}

/// Options of [`Runtime::exec`] (runc's `exec` flags).
#[derive(Debug)]
pub struct ExecOptions {
    /// The process to run (`--process`, or built from the flags).
    pub process: oci_spec::runtime::Process,
    /// `--console-socket` for a process with a terminal.
    pub console_socket: Option<PathBuf>,
    /// A connected socket for the pty instead (foreground `exec -t`).
    pub console: Option<OwnedFd>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds N`.
    pub preserve_fds: i32,
    /// `--ignore-paused`: exec into a paused container.
    pub ignore_paused: bool,
    /// `--cgroup`: join these existing sub-cgroups of the container's
    /// cgroup instead, each for the named v1 controllers (none: all).
    pub sub_cgroups: Vec<(Vec<String>, PathBuf)>,
}

/// A container created by this process: its init is our child, so we can
/// wait for its exit status.
#[derive(Debug)]
pub struct Container {
    id: String,
    pid: i32,
    terminal: bool,
}

impl Container {
    /// The container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the container's init process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container's process has a terminal (`process.terminal`).
    pub fn terminal(&self) -> bool {
        self.terminal
    }

    /// A pidfd of the init process (readable once it exits, a safe
    /// target for signals), or None on kernels without pidfds (< 5.3).
    pub fn pidfd(&self) -> Option<OwnedFd> {
        sys::pidfd(self.pid).ok()
    }

    /// Waits for the init process to exit; returns its exit status, or
    /// 128+N when killed by signal N.
    ///
    /// # Errors
    /// [`Error::Io`] when waitpid fails.
    pub fn wait(&self) -> Result<i32> {
        let st = sys::waitpid(self.pid).map_err(|e| {
            Error::io(
                format!("waiting for {}", self.pid),
                std::io::Error::from_raw_os_error(e),
            )
        })?;
        Ok(exit_code(st))
    }
}

/// A wait status as a shell exit code.
pub(crate) fn exit_code(st: i32) -> i32 {
    if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        libc::WEXITSTATUS(st)
    }
}

/// A runc-compatible runtime rooted at a state directory.
///
/// ```no_run
/// use rcrun::{CreateOptions, Runtime};
/// # fn main() -> rcrun::Result<()> {
/// rcrun::seal::ensure_sealed().expect("seal");
/// let rt = Runtime::new("/run/rcrun");
/// let c = rt.create("web", "/srv/bundles/web".as_ref(), CreateOptions::default())?;
/// rt.start("web")?;
/// let status = c.wait()?;
/// rt.delete("web", false)?;
/// println!("exited with {status}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Runtime {
    store: Store,
    rootless: Option<bool>,
}

fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after
    // its closing parenthesis.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    // Field 22 overall; field 3 is `state`, so 19 more after it.
    let start = f.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Runs `open`, which opens the namespace files of the recorded init's
/// pid, and returns its result only if they are the init's: the status
/// check before is no guarantee, as the init may exit and its pid be
/// reused at any time, and a vanished init would leave exec in the
/// runtime's own (the host's) namespaces. So: a pidfd first (it names
/// that very process from then on), the start time checked against the
/// record, the files opened, and the pidfd polled: not readable means
/// the process it names had not exited when the files were opened. On
/// kernels without pidfds (< 5.3) the start time is checked again after.
fn join_init<T>(id: &str, rec: &Record, open: impl FnOnce() -> Result<T>) -> Result<T> {
    let stopped = || Error::InvalidStatus {
        id: id.into(),
        status: Status::Stopped,
        op: "exec in",
        hint: " (its init process exited)",
    };
    let pidfd = match sys::pidfd(rec.state.pid) {
        Ok(fd) => Some(fd),
        Err(libc::ESRCH) => return Err(stopped()),
        Err(_) => None,
    };
    if !alive(rec) {
        return Err(stopped());
    }
    let r = open();
    let exited = match &pidfd {
        Some(fd) => sys::poll_in(fd.as_raw_fd(), 0).unwrap_or(true),
        None => !alive(rec),
    };
    if exited {
        return Err(stopped());
    }
    r
}

fn alive(rec: &Record) -> bool {
    rec.state.pid > 0
        && matches!(proc_start_time(rec.state.pid), Some((t, s)) if t == rec.init_start_time && s != 'Z' && s != 'X')
}

/// The name of the user owning `path` (the state directory), as runc's
/// `list` and `state` show it. Read from /etc/passwd, not through NSS,
/// which a static binary cannot load; the uid when there is no entry.
fn owner_of(path: &Path) -> String {
    let uid = fs::metadata(path).map(|m| m.uid()).unwrap_or(0);
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid.to_string()).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

impl Runtime {
    /// A runtime whose containers live under `root` (runc: `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
            rootless: None,
        }
    }

    /// Whether cgroup permission errors are tolerated when no limits are
    /// set (runc's `--rootless`); `None` (the default) decides by the
    /// effective uid.
    pub fn with_rootless(mut self, rootless: Option<bool>) -> Runtime {
        self.rootless = rootless;
        self
    }

    fn is_rootless(&self) -> bool {
        self.rootless
            .unwrap_or_else(|| !nix::unistd::geteuid().is_root())
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    fn status_of(&self, id: &str, rec: &Record) -> Status {
        match rec.state.status {
            Status::Stopped => Status::Stopped,
            _ if !alive(rec) => Status::Stopped,
            Status::Creating => Status::Creating,
            _ if self.store.root().join(id).join("exec.fifo").exists() => Status::Created,
            _ if rec.cgroup.is_frozen() => Status::Paused,
            _ => Status::Running,
        }
    }

    /// Opens a container and checks that its status is one of `ok`.
    fn open_in(&self, id: &str, op: &'static str, ok: &[Status]) -> Result<(Entry, Record)> {
        self.open_with_status(id, op, ok).map(|(e, r, _)| (e, r))
    }

    /// [`Self::open_in`], with the status it found.
    fn open_with_status(
        &self,
        id: &str,
        op: &'static str,
        ok: &[Status],
    ) -> Result<(Entry, Record, Status)> {
        let entry = self.store.open(id)?;
        let rec = entry.read()?;
        let status = self.status_of(id, &rec);
        if !ok.contains(&status) {
            return Err(Error::InvalidStatus {
                id: id.into(),
                status,
                op,
                hint: "",
            });
        }
        Ok((entry, rec, status))
    }

    /// Freezes every process of a running container (`runc pause`).
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] unless it is running or created.
    pub fn pause(&self, id: &str) -> Result<()> {
        let (_e, rec) = self.open_in(id, "pause", &[Status::Running, Status::Created])?;
        rec.cgroup.freeze(true)?;
        Ok(())
    }

    /// Thaws a paused container (`runc resume`).
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] unless it is paused.
    pub fn resume(&self, id: &str) -> Result<()> {
        let (_e, rec) = self.open_in(id, "resume", &[Status::Paused])?;
        rec.cgroup.freeze(false)?;
        Ok(())
    }

    /// Runs another process in a created or running container
    /// (`runc exec`): it joins the init's namespaces and cgroup and gets
    /// its own user, capabilities, rlimits and terminal. Returns once the
    /// program runs; [`Container::wait`] gives its exit status.
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] for a stopped or paused container; the
    /// field at fault when the process cannot be set up or exec'd.
    pub fn exec(&self, id: &str, opts: ExecOptions) -> Result<Container> {
        if !crate::seal::is_sealed() {
            return Err(Error::Unsupported(
                "exec from an unsealed process (call rcrun::seal::ensure_sealed() first)",
            ));
        }
        let mut ok = vec![Status::Created, Status::Running];
        if opts.ignore_paused {
            ok.push(Status::Paused);
        }
        let (entry, rec, status) =
            self.open_with_status(id, "exec in", &ok)
                .map_err(|e| match e {
                    Error::InvalidStatus {
                        id,
                        status: Status::Paused,
                        op,
                        ..
                    } => Error::InvalidStatus {
                        id,
                        status: Status::Paused,
                        op,
                        // runc's words, which tools match.
                        hint:
                            " (cannot exec in a paused container; --ignore-paused joins it frozen)",
                    },
                    e => e,
                })?;
        // exec changes no state: do not hold the container's lock while the
        // process starts (it may wait in a frozen cgroup for `resume`).
        drop(entry);
        let p = &opts.process;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(SpecError::Invalid {
                field: "process.args".into(),
                reason: "must name a program".into(),
            }
            .into());
        }
        crate::spec::check_process(p)?;
        let terminal = p.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && opts.console.is_none() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal needs --console-socket when detached".into(),
            }
            .into());
        }
        let mut plan = join_init(id, &rec, || {
            ChildPlan::build_exec(p, rec.seccomp.as_ref(), rec.state.pid, opts.preserve_fds)
        })?;
        let min_fd = 3 + opts.preserve_fds;
        let console = attach_console(
            &mut plan,
            terminal,
            opts.console.as_ref(),
            opts.console_socket.as_deref(),
            min_fd,
        )?;
        let cgroup = rec.cgroup.sub(&opts.sub_cgroups)?;
        // The container's state, for a seccomp agent only (runc's
        // ContainerProcessState of an exec'd process): made when asked.
        let container_state = || {
            let mut st = rec.state.clone();
            st.status = status;
            serde_json::to_vec(&st.to_oci()).expect("state serializes")
        };
        let spawned = spawn::spawn(
            &mut plan,
            &cgroup,
            &Callbacks {
                id_maps: None,
                state: &|_, _| container_state(),
                runtime_hooks: &|_| Ok(()),
            },
        )?;
        drop(console);
        if let Err(e) = spawn::confirm_exec(&plan, &spawned) {
            let _ = sys::waitpid(spawned.pid);
            return Err(e);
        }
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, spawned.pid)?;
        }
        Ok(Container {
            id: id.to_string(),
            pid: spawned.pid,
            terminal,
        })
    }

    /// The process of the container's config (the base of `exec`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn config_process(&self, id: &str) -> Result<Option<oci_spec::runtime::Process>> {
        Ok(self.peek(id)?.process)
    }

    /// Changes the resource limits of a container (`runc update`).
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] for a stopped container; [`crate::cgroups::CgroupError`]
    /// naming the field the kernel refused.
    pub fn update(&self, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let (_e, rec) = self.open_in(
            id,
            "update",
            &[Status::Created, Status::Running, Status::Paused],
        )?;
        if let Some(m) = res.memory() {
            // checkBeforeUpdate: refuse a limit below the current usage.
            if m.check_before_update() == Some(true) {
                let s = rec.cgroup.stats();
                if let Some(l) = m.limit().filter(|l| *l > 0) {
                    if (l as u64) < s.memory.usage.usage {
                        return Err(crate::cgroups::CgroupError::Write {
                            field: "linux.resources.memory.limit".into(),
                            path: rec.cgroup.leaves.first().cloned().unwrap_or_default(),
                            value: l.to_string(),
                            source: std::io::Error::other(format!(
                                "below the current usage {} (checkBeforeUpdate)",
                                s.memory.usage.usage
                            )),
                        }
                        .into());
                    }
                }
            }
        }
        rec.cgroup.apply(res)?;
        Ok(())
    }

    /// Resource usage (`runc events --stats`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn stats(&self, id: &str) -> Result<crate::cgroups::stats::Stats> {
        Ok(self.peek(id)?.cgroup.stats())
    }

    /// Number of OOM kills in the container so far.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn oom_kills(&self, id: &str) -> Result<u64> {
        Ok(self.peek(id)?.cgroup.oom_kills())
    }

    /// The cgroup of a container (for `events` to watch).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn cgroup(&self, id: &str) -> Result<CgroupSet> {
        Ok(self.peek(id)?.cgroup)
    }

    /// The host pids of every process of the container (`runc ps`): none
    /// once it is stopped and its cgroup empty or gone.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; the cgroup's error.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        Ok(self.peek(id)?.cgroup.pids()?)
    }

    fn current(&self, id: &str, mut rec: Record) -> State {
        rec.state.status = self.status_of(id, &rec);
        if rec.state.owner.is_empty() {
            rec.state.owner = owner_of(&self.store.root().join(id));
        }
        if rec.state.status == Status::Stopped {
            rec.state.pid = 0;
        }
        rec.state
    }

    fn peek(&self, id: &str) -> Result<Record> {
        crate::store::validate_id(id)?;
        let p = self.store.root().join(id).join("state.json");
        let data = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::from(StoreError::NotFound(id.into()))
            } else {
                Error::io(p.display().to_string(), e)
            }
        })?;
        serde_json::from_slice(&data).map_err(|e| {
            StoreError::Corrupt {
                path: p,
                msg: e.to_string(),
            }
            .into()
        })
    }

    /// Creates container `id` from the bundle at `bundle`: namespaces,
    /// cgroup, mounts, devices, user and capabilities are in place and the
    /// init process waits for [`Runtime::start`]. On failure nothing is
    /// left behind: no process, state directory or cgroup.
    ///
    /// # Errors
    /// [`Error`] naming the id, file or config field at fault.
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        Ok(self.create_with(id, bundle, opts, false)?.0)
    }

    /// Creates and starts container `id` in one go (runc's `run`, the
    /// foreground part aside): as [`Runtime::create`] then
    /// [`Runtime::start`], but the init is released over its sync socket
    /// rather than through the exec fifo, and reports a failed exec there.
    /// On failure the container is deleted, poststop hooks included.
    ///
    /// # Errors
    /// As [`Runtime::create`] and [`Runtime::start`].
    pub fn run(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        let (c, pending) = self.create_with(id, bundle, opts, true)?;
        let res = pending.release().and_then(|rec| self.started(id, &rec));
        if let Err(e) = res {
            let _ = self.delete(id, true);
            return Err(e);
        }
        Ok(c)
    }

    fn create_with(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        crate::store::validate_id(id)?;
        let b = Bundle::load(bundle)?;
        // Unless this process runs sealed, the init starts the program
        // through the exec trampoline; where that is not enough, the
        // caller must seal first (the CLI does, and calls again).
        if uses_trampoline(&opts) {
            if !trampoline::available() {
                return Err(Error::Unsealed {
                    id: id.into(),
                    reason: "this build has no exec trampoline",
                });
            }
            trampoline::suffices(&b.spec).map_err(|reason| Error::Unsealed {
                id: id.into(),
                reason,
            })?;
        }
        let terminal = b.terminal();
        if terminal && opts.console_socket.is_none() && opts.console.is_none() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal needs --console-socket when the container is detached".into(),
            }
            .into());
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "--console-socket was given but process.terminal is false".into(),
            }
            .into());
        }
        let entry = self.store.create(id)?;
        let mut cg = CgroupSet::default();
        match self.create_in(&entry, &b, &opts, &mut cg, at_once) {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = cg.remove();
                // runtime.md: after a failed prestart, createRuntime or
                // createContainer hook the container is destroyed and the
                // poststop hooks run.
                let hook_failed = matches!(&e, Error::Hook(_))
                    || matches!(
                        &e,
                        Error::Init(InitError::Step {
                            stage: Stage::CreateContainerHook,
                            ..
                        })
                    );
                if hook_failed {
                    let mut st = self.peek(id).map(|r| r.state).ok();
                    if let Some(s) = st.as_mut() {
                        s.status = Status::Stopped;
                        s.pid = 0;
                    }
                    let json = st
                        .map(|s| serde_json::to_vec(&s.to_oci()).expect("state serializes"))
                        .unwrap_or_default();
                    let poststop = b.spec.hooks().as_ref().and_then(|h| h.poststop().as_ref());
                    for h in poststop.into_iter().flatten() {
                        if let Err(e) = hooks::run("poststop", h, &json) {
                            log::warn!("{e}");
                        }
                    }
                }
                let _ = entry.remove();
                Err(e)
            }
        }
    }

    fn create_in(
        &self,
        entry: &Entry,
        b: &Bundle,
        opts: &CreateOptions,
        cg: &mut CgroupSet,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        let id = entry.id();
        let linux = b.spec.linux().as_ref().expect("validated");
        // One read of the mount table: the cgroup layout and the
        // rootfs's parent mount both come from it.
        let mountinfo = cgroups::read_mountinfo()?;
        let hier = Hierarchy::from_mountinfo(&mountinfo);
        let inner = cgroups::inner_path(linux.cgroups_path().as_deref(), id)?;
        // Every new container gets its device rules (a deny-all first),
        // with or without `linux.resources`.
        let apply = |cg: &CgroupSet| -> Result<()> {
            if !cg.leaves.is_empty() {
                let none = oci_spec::runtime::LinuxResources::default();
                cg.apply_all(linux.resources().as_ref().unwrap_or(&none))?;
            }
            Ok(())
        };
        // On a v1 host the init may join late (ChildPlan::late_cgroups):
        // the cgroups are then made while it mounts, once the plan says
        // it can. Otherwise they are made now.
        let maybe_late = !self.is_rootless()
            && matches!(&hier, Hierarchy::Legacy(m) if m.len() <= child::MAX_LATE_CGROUPS);
        *cg = if maybe_late {
            CgroupSet::planned(&hier, &inner)
        } else {
            self.make_cgroups(&hier, &inner, linux)?
        };
        let mut plan = ChildPlan::build(
            b,
            id,
            PlanOptions {
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
            },
            &Host {
                hierarchy: &hier,
                cgroup: cg,
                mountinfo: &mountinfo,
            },
        )?;
        if uses_trampoline(opts) {
            let memfd = trampoline::load().map_err(|e| Error::io("the exec trampoline", e))?;
            plan.use_trampoline(memfd);
        }
        plan.late_cgroups = maybe_late && plan.can_join_cgroups_late();
        if plan.late_cgroups {
            // CLONE_INTO_CGROUP needs the cgroup2 leaf before the clone.
            cg.make(&inner, Part::Unified)?;
        } else {
            if maybe_late {
                cg.make(&inner, Part::All)?;
            }
            apply(cg)?;
        }
        self.create_spawn(entry, b, opts, cg, &inner, plan, apply, at_once)
    }

    /// The container's cgroups, made now (see `create_in`).
    fn make_cgroups(
        &self,
        hier: &Hierarchy,
        inner: &Path,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<CgroupSet> {
        let mut set = CgroupSet::planned(hier, inner);
        Ok(match set.make(inner, Part::All) {
            Ok(()) => set,
            // Rootless, as runc: without a cgroupsPath and without the
            // right to create cgroups, run without one when no limits
            // are asked for (device rules aside: a user namespace cannot
            // create device nodes anyway).
            Err(e) if self.is_rootless() && linux.cgroups_path().is_none() && e.is_permission() => {
                if linux.resources().as_ref().is_some_and(sets_limits) {
                    return Err(crate::cgroups::CgroupError::Rootless(e.to_string()).into());
                }
                log::debug!("rootless: running without a cgroup ({e})");
                CgroupSet::default()
            }
            Err(e) => return Err(e.into()),
        })
    }

    /// Writes `rec` as a created container whose init is `pid`.
    fn write_created(entry: &Entry, rec: &mut Record, state: &State, pid: i32) -> Result<()> {
        rec.state = State {
            pid,
            status: Status::Created,
            ..state.clone()
        };
        rec.init_start_time = proc_start_time(pid).map(|(t, _)| t).unwrap_or(0);
        entry.write(rec)?;
        Ok(())
    }

    /// `create_in` once the plan is made: the state, the init, and (when
    /// it joins late) the v1 cgroups while it mounts.
    #[allow(clippy::too_many_arguments)]
    fn create_spawn(
        &self,
        entry: &Entry,
        b: &Bundle,
        opts: &CreateOptions,
        cg: &mut CgroupSet,
        inner: &Path,
        mut plan: ChildPlan,
        apply: impl Fn(&CgroupSet) -> Result<()>,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        let id = entry.id();
        let linux = b.spec.linux().as_ref().expect("validated");
        let min_fd = 3 + opts.preserve_fds;

        // `start` releases the init through the exec fifo and learns of a
        // later failure (startContainer hook, exec) from init.err; `run`
        // needs neither: it keeps the sync socket (release_at_once).
        let (fifo_fd, err_fd) = if at_once {
            plan.go_after_ready = true;
            (None, None)
        } else {
            let fifo_fd = open_exec_fifo(entry, min_fd)?;
            let err_fd = open_init_err(entry, min_fd)?;
            plan.fifo_fd = fifo_fd.as_raw_fd();
            plan.err_fd = err_fd.as_raw_fd();
            (Some(fifo_fd), Some(err_fd))
        };
        let terminal = b.terminal();
        let console = attach_console(
            &mut plan,
            terminal,
            opts.console.as_ref(),
            opts.console_socket.as_deref(),
            min_fd,
        )?;

        let state = State {
            oci_version: b.spec.version().clone(),
            id: id.to_string(),
            pid: 0,
            status: Status::Creating,
            bundle: b.path.clone(),
            rootfs: b.rootfs.clone(),
            created: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            // Filled in when the state is shown (owner_of).
            owner: String::new(),
            annotations: b.spec.annotations().clone().unwrap_or_default(),
        };
        let mut rec = Record {
            state: state.clone(),
            init_start_time: 0,
            cgroup: cg.clone(),
            hooks: b.spec.hooks().clone(),
            no_process: b.spec.process().is_none(),
            process: b.spec.process().clone(),
            seccomp: linux.seccomp().clone(),
        };
        if !plan.late_cgroups {
            entry.write(&rec)?;
        }

        let new_user = plan.ns.new_user;
        let id_maps = new_user.then(|| {
            (
                namespaces::id_map(linux.uid_mappings().as_deref().unwrap_or_default()),
                namespaces::id_map(linux.gid_mappings().as_deref().unwrap_or_default()),
            )
        });
        let state_json = |pid: i32, status: Status| {
            let mut s = state.clone();
            s.pid = pid;
            s.status = status;
            serde_json::to_vec(&s.to_oci()).expect("state serializes")
        };
        let hooks = b.spec.hooks().as_ref();
        let runtime_hooks = |pid: i32| -> Result<()> {
            let st = state_json(pid, Status::Creating);
            #[allow(deprecated)]
            hooks::run_all("prestart", hooks.and_then(|h| h.prestart().as_ref()), &st)?;
            hooks::run_all(
                "createRuntime",
                hooks.and_then(|h| h.create_runtime().as_ref()),
                &st,
            )?;
            Ok(())
        };
        let callbacks = Callbacks {
            id_maps,
            state: &state_json,
            runtime_hooks: &runtime_hooks,
        };
        let cloned = spawn::clone_init(&mut plan, cg, &callbacks)?;
        if plan.late_cgroups {
            // The init mounts meanwhile (on the other CPU); an error here
            // drops `cloned`, which kills it.
            cg.make(inner, Part::Legacy)?;
            apply(cg)?;
            cloned.send_cgroups(&mut plan, cg.open_join(Part::Legacy)?.tasks);
            rec.cgroup = cg.clone();
        }
        // The record as it stands once the init is ready, written while
        // the init builds the container (off the critical path) when its
        // pid is known already: no fork into a pid or time namespace
        // follows (nor can it with late cgroups). Nobody reads it before
        // `create` returns: every reader takes the entry's lock, which is
        // held until then; on a failure the entry goes. An error here
        // drops `cloned`, which kills it.
        let mut written = 0;
        if !plan.ns.fork {
            written = cloned.pid();
            Self::write_created(entry, &mut rec, &state, written)?;
        }
        let spawned = cloned.drive(&plan, &callbacks)?;
        drop((fifo_fd, err_fd, console));
        let pid = spawned.pid;
        log::debug!(
            "container {id}: init {pid} is waiting for start (cgroup {:?})",
            cg.leaves
        );
        let kill = || spawn::kill_and_reap(pid);
        if pid != written {
            if let Err(e) = Self::write_created(entry, &mut rec, &state, pid) {
                kill();
                return Err(e);
            }
        }
        if let Some(pf) = &opts.pid_file {
            if let Err(e) = write_pid_file(pf, pid) {
                kill();
                return Err(e);
            }
        }
        let c = Container {
            id: id.to_string(),
            pid,
            terminal,
        };
        Ok((c, Pending { plan, spawned, rec }))
    }

    /// Starts the user process of a created container and returns once it
    /// runs, after the poststart hooks. A failing startContainer hook,
    /// exec or poststart hook is an error and leaves the container stopped
    /// (runtime.md, lifecycle steps 7 to 9).
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] unless the container is `created`.
    pub fn start(&self, id: &str) -> Result<()> {
        let entry = self.store.open(id)?;
        let rec = entry.read()?;
        let status = self.status_of(id, &rec);
        if status != Status::Created {
            return Err(Error::InvalidStatus {
                id: id.into(),
                status,
                op: "start",
                hint: "",
            });
        }
        let fifo = entry.fifo_path();
        let f = fs::File::options()
            .write(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENXIO) {
                    Error::io(
                        format!("container {id}: the init process is not waiting"),
                        e,
                    )
                } else {
                    Error::io(fifo.display().to_string(), e)
                }
            })?;
        let _ = fs::remove_file(&fifo);
        wait_for_exec(&f)
            .map_err(|e| Error::io(format!("{}: releasing the init", fifo.display()), e))?;
        drop(f);
        let arg0 = rec
            .process
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .and_then(|a| a.first())
            .map(String::as_str)
            .unwrap_or_default();
        if let Some(e) = init_failure(&entry.dir().join("init.err"), arg0) {
            // The init died before running the program: it is stopped.
            return Err(e.into());
        }
        self.started(id, &rec)
    }

    /// After the init was released and has exec'd: the poststart hooks.
    fn started(&self, id: &str, rec: &Record) -> Result<()> {
        if rec.no_process {
            // The init was released and exits: nothing is left to run.
            return Err(SpecError::Invalid {
                field: "process".into(),
                reason: "is not set: there is no program to start".into(),
            }
            .into());
        }
        log::debug!("container {id}: started");
        // runtime.md: a failing poststart hook is an error and stops the container.
        let Some(poststart) = rec.hooks.as_ref().and_then(|h| h.poststart().as_ref()) else {
            return Ok(());
        };
        let mut st = rec.state.clone();
        st.status = Status::Running;
        let json = serde_json::to_vec(&st.to_oci()).expect("state serializes");
        if let Err(e) = hooks::run_all("poststart", Some(poststart), &json) {
            let _ = kill_and_wait(rec);
            return Err(e.into());
        }
        Ok(())
    }

    /// The container's state, as `runc state` prints it.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn state(&self, id: &str) -> Result<State> {
        let rec = self.peek(id)?;
        Ok(self.current(id, rec))
    }

    /// The state of every container, sorted by id.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the root cannot be read.
    pub fn list(&self) -> Result<Vec<State>> {
        let mut out = Vec::new();
        for id in self.store.ids()? {
            // A container deleted meanwhile is skipped.
            if let Ok(rec) = self.peek(&id) {
                out.push(self.current(&id, rec));
            }
        }
        Ok(out)
    }

    /// Sends `signal` to the container's init, or with `all` to every
    /// process in its cgroup (none, once it is stopped: as runc, that is
    /// no error).
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] for a stopped container, unless `all`.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let entry = self.store.open(id)?;
        let rec = entry.read()?;
        let status = self.status_of(id, &rec);
        if all && status == Status::Stopped {
            return signal_all(&rec, signal);
        }
        if status == Status::Stopped || status == Status::Creating {
            return Err(Error::InvalidStatus {
                id: id.into(),
                status,
                op: "kill",
                hint: "",
            });
        }
        if all {
            signal_all(&rec, signal)
        } else {
            signal_init(&rec, signal)
        }
    }

    /// Deletes a container: runs poststop hooks and removes its cgroup and
    /// state. A container that is not stopped is refused (runtime.md: the
    /// attempt has no effect) unless `force` is set: then every process of
    /// its cgroup gets SIGKILL first.
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] for a running container without `force`.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let entry = self.store.open(id)?;
        let rec = entry.read()?;
        let status = self.status_of(id, &rec);
        match status {
            Status::Stopped => {}
            _ if force => kill_and_wait(&rec)?,
            _ => {
                return Err(Error::InvalidStatus {
                    id: id.into(),
                    status,
                    op: "delete",
                    hint: " (stop it first or use --force)",
                })
            }
        }
        let mut st = rec.state.clone();
        st.status = Status::Stopped;
        // Best effort: kill stragglers that outlived the init (no pid
        // namespace). An empty cgroup (the usual case) needs no freeze.
        if rec.cgroup.pids().is_ok_and(|p| !p.is_empty()) {
            let _ = signal_all(&rec, libc::SIGKILL);
        }
        rec.cgroup.remove()?;
        if status != Status::Creating {
            let json = serde_json::to_vec(&st.to_oci()).expect("state serializes");
            for h in rec
                .hooks
                .as_ref()
                .and_then(|h| h.poststop().as_ref())
                .into_iter()
                .flatten()
            {
                if let Err(e) = hooks::run("poststop", h, &json) {
                    log::warn!("{e}");
                }
            }
        }
        entry.remove()?;
        log::debug!("container {id}: deleted");
        Ok(())
    }
}

/// The failure the init reported after `start`, if any.
/// A failure the init reported after `start` released it; an exec
/// failure in runc's words, as `run` and `exec` report it.
/// Whether a container created with `opts` from this process starts its
/// program through the exec trampoline: unless the process runs sealed
/// itself, or the caller accepts the risk.
fn uses_trampoline(opts: &CreateOptions) -> bool {
    !opts.allow_unsealed && !crate::seal::is_sealed()
}

fn init_failure(path: &Path, arg0: &str) -> Option<InitError> {
    let data = fs::read(path).ok()?;
    if data.len() < std::mem::size_of::<Msg>() {
        return None;
    }
    // SAFETY: Msg is plain repr(C) integers; the length was checked.
    let m: Msg = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    let stage = Stage::from_u32(m.a as u32).unwrap_or(Stage::Exec);
    Some(InitError::Step {
        stage,
        what: match stage {
            Stage::StartContainerHook => format!("hooks.startContainer[{}]", m.b),
            _ => "process.args[0]".into(),
        },
        reason: match (stage, m.c) {
            (_, i32::MIN) => "timed out".into(),
            (Stage::StartContainerHook, c) if c <= 0 => format!("exit status {}", -c),
            (Stage::StartContainerHook, c) => std::io::Error::from_raw_os_error(c).to_string(),
            (_, c) => format!("exec: {arg0:?}: {}", spawn::errstr(c)),
        },
    })
}

/// A container just created. For `run`, its init waits for the go on the
/// sync socket, which also reports a failed exec; `create` drops it (the
/// init waits for `start` on the exec fifo instead).
struct Pending {
    plan: ChildPlan,
    spawned: spawn::Spawned,
    /// The record as written at the end of `create` (`run` needs it
    /// again and need not read it back).
    rec: Record,
}

impl Pending {
    /// Lets the init run the startContainer hooks and exec the program;
    /// returns once it has exec'd (the socket closes) or failed.
    /// Returns the container's record.
    fn release(self) -> Result<Record> {
        spawn::send_go(self.spawned.sync.as_raw_fd(), &[])?;
        let r = spawn::confirm_exec(&self.plan, &self.spawned);
        if r.is_err() {
            // It died before the exec: reap it.
            let _ = sys::waitpid(self.spawned.pid);
        }
        r.map(|()| self.rec)
    }
}

/// The exec fifo the init blocks on until `start` (opened non-blocking
/// for reading before any writer exists; the init polls it).
fn open_exec_fifo(entry: &Entry, min_fd: i32) -> Result<OwnedFd> {
    let fifo = entry.fifo_path();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(fifo.display().to_string(), e))?;
    let ff = fs::File::options()
        .read(true)
        .custom_flags_nonblock()
        .open(&fifo)
        .map_err(|e| Error::io(fifo.display().to_string(), e))?;
    raise_fd(OwnedFd::from(ff), min_fd)
}

/// Where the init reports a failure after `start` (a startContainer hook
/// or the exec itself), for `start` to read.
fn open_init_err(entry: &Entry, min_fd: i32) -> Result<OwnedFd> {
    let errp = entry.dir().join("init.err");
    let ef = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&errp)
        .map_err(|e| Error::io(errp.display().to_string(), e))?;
    raise_fd(OwnedFd::from(ef), min_fd)
}

/// Releases the init waiting on the exec fifo and returns once it has
/// exec'd the user's program (or died), so that poststart hooks run after
/// the program started, as the spec requires.
///
/// The init holds the fifo's only read end, close-on-exec. We fill the
/// pipe, which wakes the init; it reads one byte, leaving the pipe full,
/// so poll(2) cannot report POLLOUT, only POLLERR once the read end is
/// closed by the exec. No polling loop, no timer.
fn wait_for_exec(f: &fs::File) -> std::io::Result<()> {
    use std::io::Write;
    let chunk = [b'0'; 4096];
    loop {
        match (&*f).write(&chunk) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // The reader is already gone: it exec'd (or died) before the pipe filled.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let mut p = libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    loop {
        // SAFETY: p is a valid pollfd array of length 1.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Ok(());
        }
        // Writable again: the init consumed a whole page (it never does);
        // refill and wait on.
        while (&*f).write(&chunk).is_ok() {}
    }
}

fn signal_init(rec: &Record, signal: i32) -> Result<()> {
    let pid = rec.state.pid;
    // pidfd: the signal reaches this process even if the pid is recycled
    // between the liveness check and the kill.
    let pidfd = sys::pidfd(pid)
        .map_err(|e| Error::io(format!("pid {pid}"), std::io::Error::from_raw_os_error(e)))?;
    if !alive(rec) {
        return Err(Error::InvalidStatus {
            id: rec.state.id.clone(),
            status: Status::Stopped,
            op: "kill",
            hint: "",
        });
    }
    // SAFETY: valid pidfd; NULL siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(Error::io(
            format!("kill {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Signals every process of the container's cgroup. The cgroup is frozen
/// meanwhile (when it has a freezer), so that no process can fork a child
/// that escapes the signal; SIGKILLed frozen tasks die on thaw.
fn signal_all(rec: &Record, signal: i32) -> Result<()> {
    if rec.cgroup.leaves.is_empty() || signal == 0 {
        // No cgroup (rootless), or no signal to send: the init alone.
        return if signal == 0 || !alive(rec) {
            Ok(())
        } else {
            signal_init(rec, signal)
        };
    }
    let was_frozen = rec.cgroup.is_frozen();
    let froze = !was_frozen && rec.cgroup.freeze(true).is_ok();
    let mut pids = rec.cgroup.pids()?;
    if pids.is_empty() && alive(rec) {
        pids.push(rec.state.pid);
    }
    for p in pids {
        // SAFETY: plain kill; processes in the container's cgroup.
        unsafe { libc::kill(p, signal) };
    }
    if froze || (was_frozen && signal == libc::SIGKILL) {
        rec.cgroup.freeze(false)?;
    }
    Ok(())
}

/// SIGKILLs the container and waits (on a pidfd: no polling) for the init to exit.
fn kill_and_wait(rec: &Record) -> Result<()> {
    if !alive(rec) {
        return Ok(());
    }
    let pid = rec.state.pid;
    let pidfd = sys::pidfd(pid).ok();
    signal_all(rec, libc::SIGKILL)?;
    if let Some(fd) = pidfd {
        if !sys::poll_in(fd.as_raw_fd(), 10_000).unwrap_or(true) {
            return Err(Error::io(
                format!(
                    "container {}: init {pid} did not die after SIGKILL",
                    rec.state.id
                ),
                std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
            ));
        }
    }
    Ok(())
}

/// Gives `plan` the fd the init sends its pty master to: the caller's
/// connected socket, or a connection to `--console-socket`; none without
/// a terminal. The returned fd must outlive the spawn.
fn attach_console(
    plan: &mut ChildPlan,
    terminal: bool,
    own: Option<&OwnedFd>,
    socket: Option<&Path>,
    min_fd: i32,
) -> Result<Option<OwnedFd>> {
    let fd = match (own, socket) {
        _ if !terminal => None,
        (Some(fd), _) => Some(fd.try_clone().map_err(|e| Error::io("console", e))?),
        (None, Some(p)) => Some(crate::console::connect(p)?),
        _ => None,
    };
    let fd = fd.map(|fd| raise_fd(fd, min_fd)).transpose()?;
    plan.console_fd = fd.as_ref().map_or(-1, |c| c.as_raw_fd());
    Ok(fd)
}

/// Writes the pid to `path` as runc does: to a hidden temporary file in
/// the same directory, then renamed into place.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)
        .map_err(|e| Error::io(format!("--pid-file {}", path.display()), e))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}"));
    fs::write(&tmp, pid.to_string())
        .map_err(|e| Error::io(format!("--pid-file {}", tmp.display()), e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(format!("--pid-file {}", path.display()), e))
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

// A node agent shares one Runtime between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
};

/// Whether `res` asks for any limit beyond device rules.
fn sets_limits(res: &oci_spec::runtime::LinuxResources) -> bool {
    let mut v = serde_json::to_value(res).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("devices");
        m.retain(|_, x| !x.is_null());
        return !m.is_empty();
    }
    false
}

//! The lifecycle operations: create, start, state, kill, delete, list.
//!
//! One file per phase, each adding its operations to [`Runtime`]:
//! `create` (create and run), `start`, `exec`, `kill`, `delete`, and
//! `control` (pause, resume, update, stats); this file holds the handle,
//! the state lookups and `state`/`list`.
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
use crate::exit::ExitStatus;
use crate::failure::{InitError, Stage};
use crate::hooks;
use crate::namespaces;
use crate::process::plan::{ChildPlan, PlanOptions};
use crate::process::spawn::{self, raise_fd, Callbacks};
use crate::process::trampoline;
use crate::rootfs::plan::Host;
use crate::spec::{Bundle, SpecError};
use crate::state::{Record, State, Status};
use crate::store::{Entry, Store, StoreError};
use crate::sys;

mod control;
mod create;
mod delete;
mod exec;
mod execs;
mod kill;
mod start;
mod stdio;

pub use create::CreateOptions;
pub use exec::ExecOptions;
pub use execs::ExecState;
pub use stdio::Stdio;

/// Where a container's exit status is recorded, in its state directory.
const EXIT_FILE: &str = "exit.json";

/// A process this process created, the container's init or an `exec`'d
/// one: our child, so we can wait for its exit status.
///
/// Waiting goes through a pidfd opened while the process was still our
/// unreaped child, so it never observes another process that reuses the
/// pid. The status is read from the kernel once and kept: `wait` and
/// `try_wait` may be called again, from any thread. The init's status is
/// also recorded in the container's state ([`State::exit`]).
#[derive(Debug)]
pub struct Container {
    id: String,
    pid: i32,
    terminal: bool,
    pidfd: Option<OwnedFd>,
    /// Where the exit is recorded (the init's), if anywhere.
    record: Option<PathBuf>,
    /// Where the status is when the caller's reaper takes it.
    waiter: crate::exit::Waiter,
    /// Made by this process (our child), not opened by [`Runtime::open`].
    child: bool,
    /// The status, once observed; locked while a `wait` blocks.
    status: std::sync::Mutex<Option<ExitStatus>>,
}

impl Container {
    /// The container id.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// assert_eq!(c.id(), "web");
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Host pid of the container's init process.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// println!("init pid {}", c.pid());
    /// # Ok(()) }
    /// ```
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container's process has a terminal (`process.terminal`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// println!("terminal: {}", c.terminal());
    /// # Ok(()) }
    /// ```
    pub fn terminal(&self) -> bool {
        self.terminal
    }

    /// A pidfd of the process (readable once it exits, a safe target for
    /// signals), or None on kernels without pidfds (< 5.3).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// let fd = c.pidfd().expect("Linux 5.3 or later");
    /// # Ok(()) }
    /// ```
    pub fn pidfd(&self) -> Option<OwnedFd> {
        match &self.pidfd {
            Some(fd) => fd.try_clone().ok(),
            None => sys::pidfd(self.pid).ok(),
        }
    }

    /// Waits for the process to exit and returns how it ended.
    ///
    /// For a handle from [`Runtime::open`] (not our child) the status is
    /// the one the container's parent recorded, if it had when the exit
    /// was seen; [`State::exit`] may show it later.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.run("job", "/srv/bundles/job".as_ref(), Default::default())?;
    /// let st = c.wait()?;
    /// println!("job: {st} (shell code {})", st.shell_code());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when waiting fails (ECHILD: something else reaped it
    /// without a [`crate::Reaper`]); [`Error::ExitUnknown`] when the
    /// process is not our child and nobody recorded its exit.
    pub fn wait(&self) -> Result<ExitStatus> {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if st.is_none() {
            *st = self.reap(true)?;
        }
        Ok(st.expect("a blocking wait returns a status"))
    }

    /// How the process ended, if it has; does not block (while another
    /// thread blocks in [`Self::wait`], `None`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// match c.try_wait()? {
    ///     Some(st) => println!("web ended: {st}"),
    ///     None => println!("web runs"),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Self::wait`].
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        let Ok(mut st) = self.status.try_lock() else {
            return Ok(None);
        };
        if st.is_none() {
            *st = self.reap(false)?;
        }
        Ok(*st)
    }

    /// The pidfd this handle waits through, if the kernel has pidfds.
    pub(crate) fn pidfd_ref(&self) -> Option<&OwnedFd> {
        self.pidfd.as_ref()
    }

    fn new(
        id: &str,
        pid: i32,
        terminal: bool,
        record: Option<PathBuf>,
        waiter: &crate::exit::Waiter,
    ) -> Container {
        Container {
            id: id.to_string(),
            pid,
            terminal,
            // Our child, not reaped by us: this pidfd names it and no other
            // (unless a caller's reaper got it already; then the status is
            // there).
            pidfd: sys::pidfd(pid).ok(),
            record,
            waiter: waiter.clone(),
            child: true,
            status: std::sync::Mutex::new(None),
        }
    }

    /// How a process that is not our child ended: once its pidfd says it
    /// has exited, what its parent recorded.
    fn observe(&self, block: bool) -> Result<Option<ExitStatus>> {
        if let Some(fd) = &self.pidfd {
            let timeout = if block { -1 } else { 0 };
            let exited = sys::poll_in(fd.as_raw_fd(), timeout).map_err(|e| {
                Error::io(
                    format!("waiting for {}", self.pid),
                    std::io::Error::from_raw_os_error(e),
                )
            })?;
            if !exited {
                return Ok(None);
            }
        }
        match self.record.as_deref().and_then(ExitStatus::recorded) {
            Some(st) => Ok(Some(st)),
            None => Err(Error::ExitUnknown {
                id: self.id.clone(),
            }),
        }
    }

    fn reap(&self, block: bool) -> Result<Option<ExitStatus>> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        if !self.child {
            return self.observe(block);
        }
        use std::os::fd::AsFd;
        let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::__WALL;
        if !block {
            flags |= WaitPidFlag::WNOHANG;
        }
        let ws = loop {
            let r = match &self.pidfd {
                Some(fd) => waitid(Id::PIDFd(fd.as_fd()), flags),
                None => waitid(Id::Pid(nix::unistd::Pid::from_raw(self.pid)), flags),
            };
            match r {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r,
            }
        };
        let now = SystemTime::now();
        let st = match ws {
            Ok(WaitStatus::Exited(_, code)) => ExitStatus::exited(code, now),
            Ok(WaitStatus::Signaled(_, sig, core)) => ExitStatus::killed(sig as i32, core, now),
            Ok(_) => return Ok(None),
            // The caller's reaper took it: the status is (or will be) there.
            Err(nix::errno::Errno::ECHILD) if self.waiter.has_reaper() => {
                let st = if block {
                    self.waiter
                        .wait(self.pid)
                        .ok()
                        .map(|raw| ExitStatus::from_wait_status(raw, now))
                } else {
                    self.waiter.reaped(self.pid)
                };
                match st {
                    Some(st) => st,
                    None => return Ok(None),
                }
            }
            Err(e) => {
                return Err(Error::io(
                    format!("waiting for {}", self.pid),
                    std::io::Error::from(e),
                ))
            }
        };
        if let Some(p) = &self.record {
            // The state directory is gone once the container is deleted.
            if let Err(e) = st.record(p) {
                log::debug!("container {}: recording its exit: {e}", self.id);
            }
        }
        Ok(Some(st))
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
    reaper: Option<crate::exit::Reaper>,
    /// New containers get their cgroup from systemd.
    systemd_cgroup: bool,
    /// The systemd driver's D-Bus calls, for new containers and for the
    /// scopes of existing ones (update, delete).
    systemd: Option<crate::cgroups::systemd::Bus>,
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

fn alive(rec: &Record) -> bool {
    is_running(rec.state.pid, rec.init_start_time)
}

/// Process `pid` runs (not a zombie) and started at `start_time`: the
/// process recorded then, not one that reused its pid.
fn is_running(pid: i32, start_time: u64) -> bool {
    pid > 0
        && matches!(proc_start_time(pid), Some((t, s)) if t == start_time && s != 'Z' && s != 'X')
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

/// Gives `plan` the process's streams: the fd the init sends its pty
/// master to (the caller's connected socket, or a connection to
/// `--console-socket`; none without a terminal) and the caller's stdio
/// fds. The returned fds must outlive the spawn.
fn attach_streams(
    plan: &mut ChildPlan,
    terminal: bool,
    own: Option<&OwnedFd>,
    socket: Option<&Path>,
    stdio: &Stdio,
    min_fd: i32,
) -> Result<(Option<OwnedFd>, Vec<OwnedFd>)> {
    let fd = match (own, socket) {
        _ if !terminal => None,
        (Some(fd), _) => Some(fd.try_clone().map_err(|e| Error::io("console", e))?),
        (None, Some(p)) => Some(crate::console::connect(p)?),
        _ => None,
    };
    let fd = fd.map(|fd| raise_fd(fd, min_fd)).transpose()?;
    plan.wiring.console_fd = fd.as_ref().map_or(-1, |c| c.as_raw_fd());
    let stdio = stdio.attach(plan, terminal, min_fd)?;
    Ok((fd, stdio))
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

impl Runtime {
    /// A runtime whose containers live under `root` (runc: `--root`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// assert_eq!(rt.root(), std::path::Path::new("/run/my-agent"));
    /// # Ok(()) }
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            store: Store::new(root),
            rootless: None,
            reaper: None,
            systemd_cgroup: false,
            systemd: None,
        }
    }

    /// Has the caller's reaper hand over the exit statuses of the
    /// processes this runtime makes (see [`crate::Reaper`] for the two
    /// ways of reaping). Every runtime of a process that reaps with
    /// `waitpid(-1)` needs it.
    ///
    /// ```
    /// let rt = rcrun::Runtime::new("/run/my-shim").with_reaper(rcrun::Reaper::new());
    /// # let _ = rt;
    /// ```
    pub fn with_reaper(mut self, reaper: crate::exit::Reaper) -> Runtime {
        self.reaper = Some(reaper);
        self
    }

    /// A handle on an existing container, from any process: its init
    /// named by a pidfd checked against the start time in its record (so
    /// never a process that reused the pid). It offers what a handle from
    /// [`Self::create`] does, except that its exit status is the one the
    /// init's parent recorded ([`Container::wait`]).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.open("web")?;
    /// println!("web: init {}, {:?}", c.pid(), c.try_wait());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn open(&self, id: &str) -> Result<Container> {
        let rec = self.peek(id)?;
        let terminal = rec.process.as_ref().and_then(|p| p.terminal());
        Ok(self.observer(
            id,
            (rec.state.pid, rec.init_start_time),
            terminal.unwrap_or(false),
            self.store.root().join(id).join(EXIT_FILE),
        ))
    }

    /// A handle on a process of container `id` that is not our child:
    /// `pid` and the start time recorded for it, and where its parent
    /// records its exit. The pidfd is opened first, then the start time
    /// checked: if it still matches, the pidfd names that process,
    /// whatever happens to the pid afterwards (none when it does not).
    fn observer(
        &self,
        id: &str,
        (pid, start_time): (i32, u64),
        terminal: bool,
        record: PathBuf,
    ) -> Container {
        let pidfd = sys::pidfd(pid).ok().filter(|_| is_running(pid, start_time));
        Container {
            id: id.to_string(),
            pid,
            terminal,
            pidfd,
            record: Some(record),
            waiter: self.waiter(),
            child: false,
            status: std::sync::Mutex::new(None),
        }
    }

    /// How this runtime's next operation waits for the processes it makes.
    fn waiter(&self) -> crate::exit::Waiter {
        crate::exit::Waiter::new(self.reaper.as_ref())
    }

    /// Whether cgroup permission errors are tolerated when no limits are
    /// set (runc's `--rootless`); `None` (the default) decides by the
    /// effective uid.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/user/1000/rcrun").with_rootless(Some(true));
    /// # let _ = rt;
    /// # Ok(()) }
    /// ```
    pub fn with_rootless(mut self, rootless: Option<bool>) -> Runtime {
        self.rootless = rootless;
        self
    }

    /// Whether containers get their cgroup from systemd, as transient
    /// scope units (runc's `--systemd-cgroup`, containerd's
    /// `SystemdCgroup`): `linux.cgroupsPath` is then `slice:prefix:name`
    /// (an empty one is `system.slice:rcrun:<id>`). The default is
    /// cgroupfs. See [`crate::cgroups::systemd`].
    ///
    /// Either way the runtime can then reach systemd: `update` sets the
    /// scope's unit properties and `delete` stops the unit of containers
    /// made with the driver (without it, `delete` waits for systemd to
    /// collect the emptied scope and `update` writes the files alone).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent").with_systemd_cgroup(true);
    /// # let _ = rt;
    /// # Ok(()) }
    /// ```
    pub fn with_systemd_cgroup(mut self, systemd: bool) -> Runtime {
        self.systemd_cgroup = systemd;
        self.systemd = Some(crate::cgroups::systemd::Bus::DBUS);
        self
    }

    fn is_rootless(&self) -> bool {
        self.rootless
            .unwrap_or_else(|| !nix::unistd::geteuid().is_root())
    }

    /// The state root.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// println!("state under {}", rt.root().display());
    /// # Ok(()) }
    /// ```
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

    fn current(&self, id: &str, mut rec: Record) -> State {
        rec.state.status = self.status_of(id, &rec);
        if rec.state.owner.is_empty() {
            rec.state.owner = owner_of(&self.store.root().join(id));
        }
        if rec.state.status == Status::Stopped {
            rec.state.pid = 0;
            rec.state.exit = ExitStatus::recorded(&self.store.root().join(id).join(EXIT_FILE));
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

    /// The container's state, as `runc state` prints it.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let s = rt.state("web")?;
    /// println!("{} is {:?}, exit {:?}", s.id, s.status, s.exit);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn state(&self, id: &str) -> Result<State> {
        let rec = self.peek(id)?;
        Ok(self.current(id, rec))
    }

    /// The state of every container, sorted by id.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// for s in rt.list()? {
    ///     println!("{} {:?}", s.id, s.status);
    /// }
    /// # Ok(()) }
    /// ```
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
}

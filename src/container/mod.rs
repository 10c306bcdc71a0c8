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

mod control;
mod create;
mod delete;
mod exec;
mod kill;
mod start;
mod stdio;

pub use create::CreateOptions;
pub use exec::ExecOptions;
pub use stdio::Stdio;

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
}

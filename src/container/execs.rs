//! Exec processes with ids: each one started with [`ExecOptions::id`] is
//! recorded under its container (`exec/<id>/process.json`: pid, start
//! time), its exit next to it (`exit.json`) once observed, so that it can be looked up, signalled
//! and waited for one by one, from any process. `delete` removes them
//! with the container's state.

use super::*;

/// The record of one exec process.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ExecRecord {
    pid: i32,
    start_time: u64,
    terminal: bool,
}

/// An exec process of a container, as [`Runtime::exec_state`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecState {
    /// The exec id.
    pub id: String,
    /// Its host pid.
    pub pid: i32,
    /// Still running.
    pub running: bool,
    /// How it ended, if it has and someone observed it.
    pub exit: Option<ExitStatus>,
}

fn exec_dir(container_dir: &Path) -> PathBuf {
    container_dir.join("exec")
}

/// The directory of exec process `eid`. Every exec id is checked as a
/// container id is (no `/`, no `..`): the callers of a shim or an agent
/// may pass ids their tenants chose.
fn one_exec_dir(container_dir: &Path, eid: &str) -> Result<PathBuf> {
    crate::store::validate_id(eid)?;
    Ok(exec_dir(container_dir).join(eid))
}

pub(super) fn exit_path(container_dir: &Path, eid: &str) -> Result<PathBuf> {
    Ok(one_exec_dir(container_dir, eid)?.join("exit.json"))
}

fn record_path(container_dir: &Path, eid: &str) -> Result<PathBuf> {
    Ok(one_exec_dir(container_dir, eid)?.join("process.json"))
}

fn read(container_dir: &Path, id: &str, eid: &str) -> Result<ExecRecord> {
    let p = record_path(container_dir, eid)?;
    let bytes = fs::read(&p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ExecNotFound {
            id: id.into(),
            exec_id: eid.into(),
        },
        _ => Error::io(p.display().to_string(), e),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::io(p.display().to_string(), std::io::Error::from(e)))
}

fn alive(r: &ExecRecord) -> bool {
    is_running(r.pid, r.start_time)
}

/// Before an exec with id `eid`: the id must be valid and not name a
/// process that still runs.
pub(super) fn reserve(container_dir: &Path, id: &str, eid: &str) -> Result<()> {
    match read(container_dir, id, eid) {
        Ok(r) if alive(&r) => Err(Error::ExecInUse {
            id: id.into(),
            exec_id: eid.into(),
        }),
        Err(e @ Error::Store(_)) => Err(e),
        _ => {
            let dir = one_exec_dir(container_dir, eid)?;
            let _ = fs::remove_file(dir.join("exit.json"));
            fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display().to_string(), e))
        }
    }
}

/// Records exec process `eid` once it runs.
pub(super) fn record(container_dir: &Path, eid: &str, pid: i32, terminal: bool) -> Result<()> {
    let r = ExecRecord {
        pid,
        start_time: proc_start_time(pid).map(|(t, _)| t).unwrap_or(0),
        terminal,
    };
    let p = record_path(container_dir, eid)?;
    crate::store::write_json(&p, &r).map_err(|e| Error::io(p.display().to_string(), e))
}

impl Runtime {
    fn container_dir(&self, id: &str) -> Result<PathBuf> {
        crate::store::validate_id(id)?;
        let dir = self.store.root().join(id);
        if !dir.is_dir() {
            return Err(StoreError::NotFound(id.into()).into());
        }
        Ok(dir)
    }

    /// The exec processes of `id` started with an id, in no order.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// for eid in rt.exec_ids("web")? {
    ///     println!("{eid}: {:?}", rt.exec_state("web", &eid)?);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown container.
    pub fn exec_ids(&self, id: &str) -> Result<Vec<String>> {
        let dir = exec_dir(&self.container_dir(id)?);
        let mut ids: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("process.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The state of exec process `eid` of container `id`.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let s = rt.exec_state("web", "probe-1")?;
    /// println!("pid {} running {} exit {:?}", s.pid, s.running, s.exit);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ExecNotFound`] for an unknown exec id.
    pub fn exec_state(&self, id: &str, eid: &str) -> Result<ExecState> {
        let dir = self.container_dir(id)?;
        let r = read(&dir, id, eid)?;
        let running = alive(&r);
        Ok(ExecState {
            id: eid.to_string(),
            pid: r.pid,
            running,
            exit: if running {
                None
            } else {
                ExitStatus::recorded(&exit_path(&dir, eid)?)
            },
        })
    }

    /// Sends `signal` to exec process `eid` of `id`, through a pidfd
    /// checked against its recorded start time (never a process that
    /// reused the pid).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.kill_exec("web", "probe-1", libc::SIGKILL)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ExecNotFound`]; [`Error::InvalidStatus`] once it exited.
    pub fn kill_exec(&self, id: &str, eid: &str, signal: i32) -> Result<()> {
        let r = read(&self.container_dir(id)?, id, eid)?;
        let pidfd = sys::pidfd(r.pid).ok().filter(|_| alive(&r));
        let Some(pidfd) = pidfd else {
            return Err(Error::InvalidStatus {
                id: format!("{id} exec {eid}"),
                status: Status::Stopped,
                op: "kill",
                hint: "",
            });
        };
        sys::pidfd_send_signal(pidfd.as_raw_fd(), signal).map_err(|e| {
            Error::io(
                format!("kill {}", r.pid),
                std::io::Error::from_raw_os_error(e),
            )
        })
    }

    /// A handle on exec process `eid` of `id` from any process (as
    /// [`Self::open`] for the init): its exit status is the one its
    /// parent recorded.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let p = rt.open_exec("web", "probe-1")?;
    /// println!("probe-1: {:?}", p.try_wait());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::ExecNotFound`] for an unknown exec id.
    pub fn open_exec(&self, id: &str, eid: &str) -> Result<Container> {
        let dir = self.container_dir(id)?;
        let r = read(&dir, id, eid)?;
        Ok(self.observer(id, (r.pid, r.start_time), r.terminal, exit_path(&dir, eid)?))
    }
}

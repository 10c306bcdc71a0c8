use super::*;

pub(super) fn signal_init(rec: &Record, signal: i32) -> Result<()> {
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
    sys::pidfd_send_signal(pidfd.as_raw_fd(), signal)
        .map_err(|e| Error::io(format!("kill {pid}"), std::io::Error::from_raw_os_error(e)))
}

/// Signals every process of the container's cgroup. The cgroup is frozen
/// meanwhile (when it has a freezer), so that no process can fork a child
/// that escapes the signal; SIGKILLed frozen tasks die on thaw.
pub(super) fn signal_all(rec: &Record, signal: i32) -> Result<()> {
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
pub(super) fn kill_and_wait(rec: &Record) -> Result<()> {
    if !alive(rec) {
        return Ok(());
    }
    let pid = rec.state.pid;
    let pidfd = sys::pidfd(pid).ok();
    if rec.own_pid_ns {
        // The kernel ends the rest with it; the cgroup may be shared.
        // A frozen init dies on thaw.
        signal_init(rec, libc::SIGKILL)?;
        if rec.cgroup.is_frozen() {
            rec.cgroup.freeze(false)?;
        }
    } else {
        signal_all(rec, libc::SIGKILL)?;
    }
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

impl Runtime {
    /// Sends `signal` to the container's init, or with `all` to every
    /// process in its cgroup (none, once it is stopped: as runc, that is
    /// no error).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.kill("web", libc::SIGTERM, false)?; // the init only
    /// rt.kill("web", libc::SIGKILL, true)?; // every process of it
    /// # Ok(()) }
    /// ```
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
}

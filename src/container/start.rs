use super::kill::kill_and_wait;
use super::*;

/// Releases the init waiting on the exec fifo and returns once it has
/// exec'd the user's program (or died), so that poststart hooks run after
/// the program started, as the spec requires.
///
/// The init holds the fifo's only read end, close-on-exec. We fill the
/// pipe, which wakes the init; it reads one byte, leaving the pipe full,
/// so poll(2) cannot report POLLOUT, only POLLERR once the read end is
/// closed by the exec. No polling loop, no timer.
pub(super) fn wait_for_exec(f: &fs::File) -> std::io::Result<()> {
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

impl Runtime {
    /// Starts the user process of a created container and returns once it
    /// runs, after the poststart hooks. A failing startContainer hook,
    /// exec or poststart hook is an error and leaves the container stopped
    /// (runtime.md, lifecycle steps 7 to 9).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.start("web")?;
    /// # Ok(()) }
    /// ```
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
        if let Some(e) = spawn::late_failure(&entry.dir().join("init.err"), arg0) {
            // The init died before running the program: it is stopped.
            return Err(e.into());
        }
        self.started(id, &rec)
    }

    /// After the init was released and has exec'd: the poststart hooks.
    pub(super) fn started(&self, id: &str, rec: &Record) -> Result<()> {
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
        if let Err(e) = hooks::run_all("poststart", Some(poststart), &json, &self.waiter()) {
            let _ = kill_and_wait(rec);
            return Err(e.into());
        }
        Ok(())
    }
}

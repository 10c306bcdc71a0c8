use super::kill::{kill_and_wait, signal_all};
use super::*;

impl Runtime {
    /// Deletes a container: runs poststop hooks and removes its cgroup and
    /// state. A container that is not stopped is refused (runtime.md: the
    /// attempt has no effect) unless `force` is set: then every process of
    /// its cgroup gets SIGKILL first.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.delete("job", false)?; // a stopped container
    /// rt.delete("web", true)?; // killed first
    /// # Ok(()) }
    /// ```
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
        // namespace of its own; with one, what is left in the cgroup is
        // not this container's). An empty cgroup needs no freeze.
        if !rec.own_pid_ns && rec.cgroup.pids().is_ok_and(|p| !p.is_empty()) {
            let _ = signal_all(&rec, libc::SIGKILL);
        }
        if let Err(e) = rec.cgroup.remove_with(self.systemd.as_ref()) {
            match rec.cgroup.pids() {
                // A cgroup another container shares (runc 1.1): its
                // processes keep it; the last one out removes it.
                Ok(p) if !p.is_empty() => log::warn!("{e}: still in use, left in place"),
                _ => return Err(e.into()),
            }
        }
        if status != Status::Creating {
            let json = serde_json::to_vec(&st.to_oci()).expect("state serializes");
            for h in rec
                .hooks
                .as_ref()
                .and_then(|h| h.poststop().as_ref())
                .into_iter()
                .flatten()
            {
                if let Err(e) = hooks::run("poststop", h, &json, &self.waiter()) {
                    log::warn!("{e}");
                }
            }
        }
        if let Some(p) = &rec.image {
            // After the processes are gone; a failure keeps the record, so
            // that `delete` can be tried again.
            p.release()?;
        }
        entry.remove()?;
        log::debug!("container {id}: deleted");
        Ok(())
    }
}

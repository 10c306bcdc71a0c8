use super::*;

impl Runtime {
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
}

use super::*;

impl Runtime {
    /// Freezes every process of a running container (`runc pause`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.pause("web")?;
    /// rt.resume("web")?;
    /// # Ok(()) }
    /// ```
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
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// rt.resume("web")?;
    /// # Ok(()) }
    /// ```
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
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let res: rcrun::oci_spec::runtime::LinuxResources =
    ///     serde_json::from_str(r#"{"memory": {"limit": 268435456}}"#).expect("JSON");
    /// rt.update("web", &res)?;
    /// # Ok(()) }
    /// ```
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
        // The systemd driver: the unit's properties first, so that
        // systemd never puts the old limits back (without the D-Bus
        // client, the files alone).
        if let (Some(unit), Some(bus)) = (&rec.cgroup.systemd, &self.systemd) {
            (bus.set)(unit, res, rec.cgroup.v2)?;
        }
        rec.cgroup.apply(res)?;
        Ok(())
    }

    /// Resource usage (`runc events --stats`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// println!("{}", serde_json::to_string(&rt.stats("web")?).expect("JSON"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn stats(&self, id: &str) -> Result<crate::cgroups::stats::Stats> {
        Ok(self.peek(id)?.cgroup.stats())
    }

    /// Number of OOM kills in the container so far.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// println!("{} OOM kills", rt.oom_kills("web")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn oom_kills(&self, id: &str) -> Result<u64> {
        Ok(self.peek(id)?.cgroup.oom_kills())
    }

    /// The cgroup of a container (for `events` to watch).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// println!("{:?}", rt.cgroup("web")?.leaves);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn cgroup(&self, id: &str) -> Result<CgroupSet> {
        Ok(self.peek(id)?.cgroup)
    }

    /// The host pids of every process of the container (`runc ps`): none
    /// once it is stopped and its cgroup empty or gone.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// println!("{:?}", rt.pids("web")?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; the cgroup's error.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        Ok(self.peek(id)?.cgroup.pids()?)
    }
}

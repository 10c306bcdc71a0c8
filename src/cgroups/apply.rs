//! Writing `linux.resources` into a container's cgroups: the files of
//! each controller in the order the kernel accepts them (runc's rules
//! for memory and swap, the cpu period under a parent's quota, BFQ's
//! weight files), and the device rules (deny-all first; v1 files, or an
//! eBPF program on v2).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{bpf, resources, CgroupError, CgroupSet};

impl CgroupSet {
    /// Applies `linux.resources` to a running container (an update):
    /// the device rules are replaced only when `res` has
    /// `linux.resources.devices` (see [`Self::apply_all`]).
    ///
    /// # Errors
    /// [`CgroupError`] naming the spec field the kernel refused.
    pub fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        self.apply_with(res, res.devices().is_some())
    }

    /// Applies `linux.resources` to a new container's cgroups, the
    /// device rules always: deny-all, then the spec's
    /// `linux.resources.devices`, then runc's default devices
    /// ([`resources::device_rules`]), so that a spec without rules, or
    /// whose rules lack a deny-all, denies every other device.
    ///
    /// # Errors
    /// [`CgroupError`] naming the spec field the kernel refused.
    pub fn apply_all(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        self.apply_with(res, true)
    }

    fn apply_with(&self, res: &LinuxResources, devices: bool) -> Result<(), CgroupError> {
        let mut res = res.clone();
        let spec = res.devices().clone();
        let rules = devices
            .then(|| resources::device_rules(spec.as_deref()))
            .transpose()?;
        res.set_devices(None);
        let settings = if self.v2 {
            resources::v2(&res)?
        } else {
            self.v1_settings(&mut res)?
        };
        if let Some(rules) = &rules {
            let spec_len = spec.as_ref().map_or(0, Vec::len);
            self.apply_devices(rules, spec_len, spec.is_some())?;
        }
        // Consecutive values for one file go through one open file, a
        // write each, as the kernel takes them.
        let mut open: Option<(PathBuf, fs::File)> = None;
        for s in &settings {
            let ctrl = if self.v2 {
                resources::v2_controller(&s.file)
            } else {
                s.controller
            };
            let dir = self.dir_for(ctrl, &s.field)?;
            let path = weight_file(dir, &s.file);
            let fail = |source| CgroupError::Write {
                field: s.field.clone(),
                path: path.clone(),
                value: s.value.clone(),
                source,
            };
            if open.as_ref().is_none_or(|(p, _)| *p != path) {
                let f = fs::File::options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(fail)?;
                open = Some((path.clone(), f));
            }
            let (_, f) = open.as_mut().expect("just opened");
            match f.write_all(s.value.as_bytes()) {
                // runc's fs/cpu.go: a period the kernel refuses under a
                // parent's quota may pass once the new quota is in.
                Err(e)
                    if e.raw_os_error() == Some(libc::EINVAL) && s.file == "cpu.cfs_period_us" =>
                {
                    let quota = settings.iter().find(|q| q.file == "cpu.cfs_quota_us");
                    let Some(q) = quota else { return Err(fail(e)) };
                    fs::write(dir.join(&q.file), &q.value).map_err(|_| fail(e))?;
                    f.write_all(s.value.as_bytes()).map_err(fail)?;
                }
                r => r.map_err(fail)?,
            }
        }
        Ok(())
    }

    /// The v1 writes for `res`, with runc's two memory rules: a memory
    /// limit of -1 without a swap limit lifts the swap limit too (where
    /// the kernel accounts swap), and a swap limit above the current
    /// memory limit (or -1) is written first, so that memsw stays at or
    /// above the limit at every step.
    fn v1_settings(
        &self,
        res: &mut LinuxResources,
    ) -> Result<Vec<resources::Setting>, CgroupError> {
        let memory_dir = self
            .controllers
            .iter()
            .position(|c| c.iter().any(|c| c == "memory"))
            .map(|i| &self.leaves[i]);
        if let (Some(mut m), Some(dir)) = (*res.memory(), memory_dir) {
            if m.limit() == Some(-1)
                && m.swap().is_none_or(|s| s == 0)
                && dir.join("memory.memsw.limit_in_bytes").exists()
            {
                m.set_swap(Some(-1));
                res.set_memory(Some(m));
            }
        }
        let mut settings = resources::v1(res)?;
        let current = memory_dir
            .and_then(|d| fs::read_to_string(d.join("memory.limit_in_bytes")).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        resources::order_memory_v1(&mut settings, current);
        Ok(settings)
    }

    /// Replaces the device rules of the leaves with `rules`
    /// (from [`resources::device_rules`], `spec_len` of them from the
    /// spec): devices.deny/devices.allow on v1, an eBPF program on v2.
    ///
    /// Where the rules cannot be applied they are skipped, as runc does,
    /// unless the spec asked for rules (`required`) and the host lacks
    /// the controller: on a v1 host without a devices hierarchy, and when
    /// the kernel refuses an unprivileged runtime (rootless, or in a user
    /// namespace: bpf(2) and the devices files are root's).
    pub(super) fn apply_devices(
        &self,
        rules: &[LinuxDeviceCgroup],
        spec_len: usize,
        required: bool,
    ) -> Result<(), CgroupError> {
        let field = "linux.resources.devices";
        let skip = |e: CgroupError| {
            if e.is_permission() && unprivileged() {
                log::debug!("rootless: no device rules ({e})");
                Ok(())
            } else {
                Err(e)
            }
        };
        if self.v2 {
            let Some(leaf) = self.leaves.first() else {
                return Ok(());
            };
            let prog = bpf::program(rules);
            let fd = bpf::load(&prog).and_then(|fd| bpf::attach(leaf, &fd));
            return fd
                .map_err(|source| CgroupError::Write {
                    field: field.into(),
                    path: leaf.clone(),
                    value: format!("eBPF device program ({} rules)", rules.len()),
                    source,
                })
                .or_else(skip);
        }
        let Some(i) = self
            .controllers
            .iter()
            .position(|c| c.iter().any(|c| c == "devices"))
        else {
            if required {
                self.dir_for("devices", field)?;
            }
            return Ok(());
        };
        let dir = &self.leaves[i];
        let mut open: Option<(PathBuf, fs::File)> = None;
        let write = |open: &mut Option<(PathBuf, fs::File)>, s: &resources::Setting| {
            let path = dir.join(&s.file);
            let fail = |source| CgroupError::Write {
                field: s.field.clone(),
                path: path.clone(),
                value: s.value.clone(),
                source,
            };
            if open.as_ref().is_none_or(|(p, _)| *p != path) {
                let f = fs::File::options().write(true).open(&path).map_err(fail)?;
                *open = Some((path.clone(), f));
            }
            let (_, f) = open.as_mut().expect("just opened");
            f.write_all(s.value.as_bytes()).map_err(fail)
        };
        for s in resources::v1_devices(rules, spec_len) {
            if let Err(e) = write(&mut open, &s) {
                return skip(e);
            }
        }
        Ok(())
    }
}

/// Whether the runtime runs without root's rights over the host's
/// cgroups: as a non-root user, or inside a user namespace (where
/// bpf(2) and the v1 devices files refuse, and runc skips device rules).
fn unprivileged() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

/// `dir/file`, or for the blkio weights on a host whose only
/// proportional scheduler is BFQ (no `blkio.weight`), BFQ's own file,
/// as runc does.
fn weight_file(dir: &Path, file: &str) -> PathBuf {
    let path = dir.join(file);
    let bfq = match file {
        "blkio.weight" => "blkio.bfq.weight",
        "blkio.weight_device" => "blkio.bfq.weight_device",
        _ => return path,
    };
    if !path.exists() && dir.join(bfq).exists() {
        dir.join(bfq)
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_weights_go_to_bfq_where_it_is_the_only_one() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            weight_file(d.path(), "blkio.weight"),
            d.path().join("blkio.weight")
        );
        std::fs::write(d.path().join("blkio.bfq.weight"), "").unwrap();
        std::fs::write(d.path().join("blkio.bfq.weight_device"), "").unwrap();
        assert_eq!(
            weight_file(d.path(), "blkio.weight"),
            d.path().join("blkio.bfq.weight")
        );
        assert_eq!(
            weight_file(d.path(), "blkio.weight_device"),
            d.path().join("blkio.bfq.weight_device")
        );
        std::fs::write(d.path().join("blkio.weight"), "").unwrap();
        assert_eq!(
            weight_file(d.path(), "blkio.weight"),
            d.path().join("blkio.weight")
        );
        assert_eq!(
            weight_file(d.path(), "cpu.shares"),
            d.path().join("cpu.shares")
        );
    }
}

//! The systemd cgroup driver (`--systemd-cgroup`, containerd's
//! `SystemdCgroup = true`): the container's cgroup is a transient scope
//! unit that systemd creates over D-Bus, with the resources set as unit
//! properties, so that systemd, which owns the cgroup tree on such a
//! host, knows of it and never undoes its limits. As runc's driver:
//!
//! - `linux.cgroupsPath` is `slice:prefix:name`: the scope `prefix-name.scope`
//!   (`name.scope` without a prefix) in `slice` (`system.slice` when empty);
//!   an empty `cgroupsPath` is `system.slice:rcrun:<id>`.
//! - The scope is started with the init's pid (`PIDs`) and `Delegate=yes`,
//!   before the init enters its cgroup namespace; rcrun then makes the
//!   hierarchies systemd does not manage (v1 cpuset, freezer, ...) at the
//!   same path and writes every limit through cgroupfs as well, exactly as
//!   the cgroupfs driver does.
//! - `update` sets the unit's properties, then the files.
//! - `delete` stops the unit (systemd removes its cgroup), then removes
//!   the directories rcrun made.
//!
//! The bus is the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, or
//! `/run/dbus/system_bus_socket`), as with runc.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedObjectPath, Value};

use super::CgroupError;

/// The driver's calls to systemd, as plain function pointers: a binary
/// that never turns the driver on ([`crate::Runtime::with_systemd_cgroup`])
/// does not link the D-Bus client at all (the `rcrun` command hands
/// `--systemd-cgroup` to its sibling `rcrun-image`, which has it; 0.9 MB
/// less code, 0.9 MB less peak RSS per `run`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bus {
    /// [`Unit::start`].
    pub start: fn(&Unit, i32, Option<&LinuxResources>, bool) -> Result<(), CgroupError>,
    /// [`Unit::set`].
    pub set: fn(&Unit, &LinuxResources, bool) -> Result<(), CgroupError>,
    /// [`Unit::stop`].
    pub stop: fn(&Unit, Option<&Path>) -> Result<(), CgroupError>,
}

impl Bus {
    /// systemd over the system bus.
    pub(crate) const DBUS: Bus = Bus {
        start: Unit::start,
        set: Unit::set,
        stop: Unit::stop,
    };
}

/// The D-Bus API of systemd's manager, the few calls the driver makes.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false,
    blocking_name = "Manager"
)]
trait Manager {
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, Vec<(&str, Value<'_>)>)],
    ) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, Value<'_>)],
    ) -> zbus::Result<()>;
}

/// A container's scope unit.
///
/// ```
/// use rcrun::cgroups::systemd::Unit;
/// let u = Unit::parse(Some("kubepods-pod1.slice:cri-containerd:0123".as_ref()), "0123")?;
/// assert_eq!(u.slice, "kubepods-pod1.slice");
/// assert_eq!(u.name, "cri-containerd-0123.scope");
/// # Ok::<(), rcrun::cgroups::CgroupError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// The slice the scope is in (`system.slice`).
    pub slice: String,
    /// The scope's name (`rcrun-<id>.scope`).
    pub name: String,
}

/// How long systemd may take to move the init into its new scope, or
/// to remove a stopped scope's cgroup.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

impl Unit {
    /// The unit of a spec `cgroupsPath` (`slice:prefix:name`), or of
    /// `system.slice:rcrun:<id>` when there is none.
    ///
    /// # Errors
    /// [`CgroupError::InvalidPath`] when the path is not `slice:prefix:name`,
    /// the slice is not a valid slice name, or the name is a slice (a
    /// container is a scope).
    ///
    /// ```
    /// use rcrun::cgroups::systemd::Unit;
    /// assert_eq!(Unit::parse(None, "web")?.name, "rcrun-web.scope");
    /// assert!(Unit::parse(Some("/not/a/slice".as_ref()), "web").is_err());
    /// # Ok::<(), rcrun::cgroups::CgroupError>(())
    /// ```
    pub fn parse(cgroups_path: Option<&Path>, id: &str) -> Result<Unit, CgroupError> {
        let s = cgroups_path
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("system.slice:rcrun:{id}"));
        let parts: Vec<&str> = s.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(CgroupError::InvalidPath(format!(
                "{s:?}: the systemd cgroup driver expects \"slice:prefix:name\""
            )));
        };
        if name.is_empty() || name.contains('/') || prefix.contains('/') {
            return Err(CgroupError::InvalidPath(format!(
                "{s:?}: the unit name must be a non-empty name without '/'"
            )));
        }
        if name.ends_with(".slice") {
            return Err(CgroupError::InvalidPath(format!(
                "{s:?}: rcrun puts a container in a scope, not a slice"
            )));
        }
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        expand_slice(slice)?;
        let name = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(Unit {
            slice: slice.to_string(),
            name,
        })
    }

    /// The scope's cgroup below a hierarchy's root:
    /// `kubepods.slice/kubepods-pod1.slice/cri-x.scope`.
    ///
    /// ```
    /// use rcrun::cgroups::systemd::Unit;
    /// let u = Unit::parse(Some("kubepods-pod1.slice:cri:x".as_ref()), "x")?;
    /// assert_eq!(u.inner_path(), std::path::Path::new("kubepods.slice/kubepods-pod1.slice/cri-x.scope"));
    /// # Ok::<(), rcrun::cgroups::CgroupError>(())
    /// ```
    pub fn inner_path(&self) -> PathBuf {
        expand_slice(&self.slice)
            .expect("checked by parse")
            .join(&self.name)
    }

    /// Starts the scope with `pid` in it and the limits of `res`, and
    /// waits until systemd has moved `pid` there.
    ///
    /// # Errors
    /// [`CgroupError::Systemd`] when systemd refuses the unit (one of that
    /// name exists already, say) or does not move the process in time.
    fn start(&self, pid: i32, res: Option<&LinuxResources>, v2: bool) -> Result<(), CgroupError> {
        let mut props: Vec<(&str, Value<'_>)> = vec![
            (
                "Description",
                Value::from(format!("rcrun container {}", self.name)),
            ),
            ("Slice", Value::from(self.slice.as_str())),
            ("Delegate", Value::from(true)),
            ("PIDs", Value::from(vec![pid as u32])),
            ("DefaultDependencies", Value::from(false)),
            ("MemoryAccounting", Value::from(true)),
            ("CPUAccounting", Value::from(true)),
            ("TasksAccounting", Value::from(true)),
            (
                if v2 {
                    "IOAccounting"
                } else {
                    "BlockIOAccounting"
                },
                Value::from(true),
            ),
        ];
        props.extend(properties(res, v2));
        let m = self.manager()?;
        m.start_transient_unit(&self.name, "replace", &props, &[])
            .map_err(|e| self.err("starting it", e))?;
        let suffix = format!("/{}", self.name);
        let file = format!("/proc/{pid}/cgroup");
        wait_until(|| {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            text.lines().any(|l| l.ends_with(&suffix))
        })
        .map_err(|()| self.fail("moving the init into it: timed out"))
    }

    /// Sets the unit properties of `res` on the running scope (`update`).
    ///
    /// # Errors
    /// [`CgroupError::Systemd`] when systemd refuses them.
    fn set(&self, res: &LinuxResources, v2: bool) -> Result<(), CgroupError> {
        let props = properties(Some(res), v2);
        if props.is_empty() {
            return Ok(());
        }
        self.manager()?
            .set_unit_properties(&self.name, true, &props)
            .map_err(|e| self.err("setting its properties", e))
    }

    /// Stops the scope (killing what is left in it) and waits until its
    /// cgroup directory `leaf` is gone. A unit that is gone already (the
    /// container exited and systemd collected it) is no error.
    ///
    /// # Errors
    /// [`CgroupError::Systemd`] when systemd refuses, or keeps the cgroup.
    fn stop(&self, leaf: Option<&Path>) -> Result<(), CgroupError> {
        let m = self.manager()?;
        match m.stop_unit(&self.name, "replace") {
            Ok(_) => {}
            Err(e) if no_such_unit(&e) => {}
            Err(e) => return Err(self.err("stopping it", e)),
        }
        let gone = self.wait_gone(leaf);
        // A scope whose processes were killed ends "failed" and stays
        // loaded; the name must be free for the next container.
        let _ = m.reset_failed_unit(&self.name);
        gone
    }

    /// Waits until systemd has removed the scope's cgroup `leaf`: once
    /// the unit is stopped, or once its last process is gone (systemd
    /// then collects the scope by itself, which is all a caller without
    /// the D-Bus client can wait for).
    ///
    /// # Errors
    /// [`CgroupError::Systemd`] when the cgroup stays.
    pub(crate) fn wait_gone(&self, leaf: Option<&Path>) -> Result<(), CgroupError> {
        wait_until(|| leaf.is_none_or(|l| !l.exists()))
            .map_err(|()| self.fail("removing its cgroup: timed out"))
    }

    fn manager(&self) -> Result<Manager<'static>, CgroupError> {
        let conn = zbus::blocking::Connection::system()
            .map_err(|e| self.err("connecting to the system bus", e))?;
        Manager::new(&conn).map_err(|e| self.err("connecting to the system bus", e))
    }

    fn err(&self, what: &str, e: zbus::Error) -> CgroupError {
        self.fail(&format!("{what}: {}", describe(&e)))
    }

    fn fail(&self, reason: &str) -> CgroupError {
        CgroupError::Systemd {
            unit: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

fn describe(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(_, Some(msg), _) => msg.clone(),
        e => e.to_string(),
    }
}

fn no_such_unit(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(name, _, _)
        if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit")
}

/// Polls `done` with a backoff from 0.1 ms to 10 ms, for [`JOB_TIMEOUT`].
fn wait_until(mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    let mut us = 100;
    while !done() {
        if start.elapsed() > JOB_TIMEOUT {
            return Err(());
        }
        std::thread::sleep(Duration::from_micros(us));
        us = (us * 2).min(10_000);
    }
    Ok(())
}

/// A slice's cgroup path, as systemd lays slices out: `a-b-c.slice` is
/// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
///
/// # Errors
/// [`CgroupError::InvalidPath`] for a name systemd would refuse.
///
/// ```
/// use rcrun::cgroups::systemd::expand_slice;
/// assert_eq!(expand_slice("a-b.slice")?, std::path::Path::new("a.slice/a-b.slice"));
/// assert!(expand_slice("a--b.slice").is_err());
/// # Ok::<(), rcrun::cgroups::CgroupError>(())
/// ```
pub fn expand_slice(slice: &str) -> Result<PathBuf, CgroupError> {
    let bad = || CgroupError::InvalidPath(format!("{slice:?} is not a valid systemd slice name"));
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if slice.contains('/') {
        return Err(bad());
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Ok(path)
}

impl super::CgroupSet {
    /// The systemd driver's part of `create`, once the init is cloned
    /// (and waits): starts `unit` with `pid` and the limits of `res`,
    /// makes the hierarchies systemd does not manage at the same path
    /// (`inner`), and moves `pid` into those too.
    ///
    /// # Errors
    /// [`CgroupError::Systemd`] or [`CgroupError::Io`].
    pub(crate) fn start_scope(
        &mut self,
        bus: &Bus,
        unit: &Unit,
        inner: &Path,
        pid: i32,
        res: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        (bus.start)(unit, pid, res, self.v2)?;
        // Only now is the unit this container's to stop: a failed start
        // (a unit of that name exists) must leave the other one be.
        self.systemd = Some(unit.clone());
        self.make(inner, super::Part::All)?;
        super::join_paths(&self.leaves, pid)
    }
}

/// Whether `cgroups_path` has the systemd driver's form, with a slice
/// as its parent (`kubepods-pod1.slice:cri-containerd:<id>`): containerd's
/// CRI makes that form when the pod's cgroup parent is a slice, which is
/// how the kubelet's systemd driver names it.
///
/// ```
/// use rcrun::cgroups::systemd::is_unit_path;
/// assert!(is_unit_path("kubepods-besteffort.slice:cri-containerd:0123"));
/// assert!(!is_unit_path("/kubepods/besteffort/0123"));
/// ```
pub fn is_unit_path(cgroups_path: &str) -> bool {
    let mut parts = cgroups_path.split(':');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(slice), Some(_), Some(name), None)
            if slice.ends_with(".slice") && !name.is_empty() && !slice.contains('/')
    )
}

/// Whether systemd runs this host (its own test, `sd_booted`).
///
/// # Errors
/// [`CgroupError::Systemd`] naming `unit` when it does not.
pub(crate) fn check_booted(unit: &Unit) -> Result<(), CgroupError> {
    if Path::new("/run/systemd/system").is_dir() {
        return Ok(());
    }
    Err(CgroupError::Systemd {
        unit: unit.name.clone(),
        reason: "systemd is not running on this host (no /run/systemd/system): \
                 use a cgroupfs cgroupsPath without --systemd-cgroup"
            .into(),
    })
}

/// systemd's "infinity" for a limit.
const INFINITY: u64 = u64::MAX;

/// The unit properties of `res` (runc's resource-to-property mapping).
fn properties(res: Option<&LinuxResources>, v2: bool) -> Vec<(&'static str, Value<'static>)> {
    let mut p: Vec<(&'static str, Value<'static>)> = Vec::new();
    let Some(res) = res else { return p };
    let limit = |v: i64| if v < 0 { INFINITY } else { v as u64 };
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            p.push((
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                limit(l).into(),
            ));
        }
        if v2 {
            if let Some(r) = m.reservation().filter(|r| *r > 0) {
                p.push(("MemoryLow", (r as u64).into()));
            }
            // The spec's swap is memory+swap; systemd's is swap alone.
            match (m.swap(), m.limit()) {
                (Some(-1), _) => p.push(("MemorySwapMax", INFINITY.into())),
                (Some(s), Some(l)) if s > 0 && l > 0 && s >= l => {
                    p.push(("MemorySwapMax", ((s - l) as u64).into()));
                }
                _ => {}
            }
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            if v2 {
                p.push(("CPUWeight", super::resources::shares_to_weight(s).into()));
            } else {
                p.push(("CPUShares", s.into()));
            }
        }
        if let Some(period) = c.period().filter(|p| *p != 0) {
            if v2 {
                p.push(("CPUQuotaPeriodUSec", period.into()));
            }
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            let period = c.period().filter(|p| *p != 0).unwrap_or(100_000);
            let per_sec = if q < 0 {
                INFINITY
            } else {
                // systemd keeps the quota in 1% steps (10 ms a second):
                // round up, as runc does, so that the limit is never
                // tighter than asked.
                let us = (q as u64 * 1_000_000).div_ceil(period);
                us.div_ceil(10_000) * 10_000
            };
            p.push(("CPUQuotaPerSecUSec", per_sec.into()));
        }
        if v2 {
            if let Some(mask) = c.cpus().as_deref().and_then(range_mask) {
                p.push(("AllowedCPUs", mask.into()));
            }
            if let Some(mask) = c.mems().as_deref().and_then(range_mask) {
                p.push(("AllowedMemoryNodes", mask.into()));
            }
        }
    }
    if let Some(l) = res.pids().as_ref().map(|pd| pd.limit()) {
        if l != 0 {
            p.push(("TasksMax", limit(l).into()));
        }
    }
    p
}

/// A cpuset list (`0-2,7`) as systemd's bitmask: byte `i`, bit `j` is
/// number `8*i + j`. `None` for an empty or malformed list.
fn range_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = Vec::new();
    for part in list.trim().split(',').filter(|s| !s.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        for n in a..=b {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    (!mask.is_empty()).then_some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_lays_them_out() {
        assert_eq!(
            expand_slice("kubepods-burstable-pod1.slice").unwrap(),
            Path::new("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice")
        );
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("system.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new(""));
        for bad in ["system", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_name_scopes_as_runc_does() {
        let u = Unit::parse(Some(Path::new("system.slice:docker:abc")), "x").unwrap();
        assert_eq!(u.name, "docker-abc.scope");
        assert_eq!(u.inner_path(), Path::new("system.slice/docker-abc.scope"));
        let u = Unit::parse(Some(Path::new(":cri-containerd:abc")), "x").unwrap();
        assert_eq!(u.slice, "system.slice");
        let u = Unit::parse(Some(Path::new("k-p1.slice::abc")), "x").unwrap();
        assert_eq!(u.inner_path(), Path::new("k.slice/k-p1.slice/abc.scope"));
        let u = Unit::parse(None, "web").unwrap();
        assert_eq!(u.inner_path(), Path::new("system.slice/rcrun-web.scope"));
        for bad in ["/a/b", "a:b", "a.slice:b:c.slice", "a.slice:b:", "x:y:z"] {
            assert!(Unit::parse(Some(Path::new(bad)), "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn resources_become_unit_properties() {
        let res: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864,"swap":134217728},
                "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1,9"},
                "pids":{"limit":-1}}"#,
        )
        .unwrap();
        let p = properties(Some(&res), true);
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::from(67108864u64)));
        assert_eq!(get("MemorySwapMax"), Some(Value::from(67108864u64)));
        assert_eq!(get("CPUWeight"), Some(Value::from(39u64)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::from(500_000u64)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::from(100_000u64)));
        assert_eq!(get("TasksMax"), Some(Value::from(u64::MAX)));
        assert_eq!(get("AllowedCPUs"), Some(Value::from(vec![0b11u8, 0b10])));
        let v1 = properties(Some(&res), false);
        assert!(v1.iter().any(|(k, _)| *k == "MemoryLimit"));
        assert!(v1.iter().any(|(k, _)| *k == "CPUShares"));
        assert!(!v1.iter().any(|(k, _)| *k == "AllowedCPUs"));
        // 33 ms in 100 ms: 330 ms a second, rounded up to 1% steps.
        let odd: LinuxResources =
            serde_json::from_str(r#"{"cpu":{"quota":33333,"period":100000}}"#).unwrap();
        let p = properties(Some(&odd), true);
        assert!(p.contains(&("CPUQuotaPerSecUSec", Value::from(340_000u64))));
    }
}

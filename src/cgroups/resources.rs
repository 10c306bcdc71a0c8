//! `linux.resources` as cgroup file writes, for cgroup v1 and v2.
//!
//! The mapping is a pure function from the spec to a list of
//! [`Setting`]s (controller, file, value, and the spec field it comes
//! from), so that a kernel refusal can name the field, and so that the
//! mapping is unit-tested without a kernel. Device rules on v2 are not
//! files: they become an eBPF program ([`super::bpf`]).
//!
//! Device rules always start from deny-all, as runc's (its device
//! emulator starts as an allow list): [`device_rules`] puts a deny-all
//! first, the spec's `linux.resources.devices` after it, then runc's
//! default devices ([`default_device_rules`]), so that a spec without
//! devices, or whose rules lack a deny-all, still denies every device but
//! the defaults. As in runc, a `linux.devices` node is not allowed by
//! itself: the spec's rules must allow it.
//!
//! Why not cgroups-rs: its OCI manager (0.5) pulls a D-Bus stack into
//! every invocation (a bigger binary to seal and load per container),
//! resolves paths against the caller's own cgroup, has no v2 device
//! program, rdma or `unified` support, and its errors do not carry the
//! spec field. The file formats below are the kernel's and runc's.

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResources,
};

/// One value to write into a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The v1 controller whose hierarchy holds the file ("" on v2).
    pub controller: &'static str,
    /// File name inside the container's cgroup directory.
    pub file: String,
    /// The value to write.
    pub value: String,
    /// The spec field it implements, e.g. `linux.resources.memory.limit`.
    pub field: String,
}

/// A resource the running hierarchy cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config.json: {field}: {reason}")]
pub struct Unsupported {
    /// The spec field.
    pub field: String,
    /// Why.
    pub reason: String,
}

struct Out {
    v: Vec<Setting>,
}

impl Out {
    fn push(
        &mut self,
        controller: &'static str,
        file: impl Into<String>,
        value: impl ToString,
        field: &str,
    ) {
        self.v.push(Setting {
            controller,
            file: file.into(),
            value: value.to_string(),
            field: format!("linux.resources.{field}"),
        });
    }
}

fn unsupported(field: &str, reason: &str) -> Unsupported {
    Unsupported {
        field: format!("linux.resources.{field}"),
        reason: reason.into(),
    }
}

/// `-1` (unlimited) as the kernel spells it.
fn limit_v1(v: i64) -> String {
    v.to_string()
}

fn limit_v2(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's conversion of blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

/// A devices.allow/deny line for a v1 rule: `c 1:3 rwm`.
pub fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let t = d
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| n.filter(|n| *n >= 0).map_or("*".into(), |n| n.to_string());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    if t == "a" {
        return "a".into();
    }
    format!("{t} {}:{} {access}", num(d.major()), num(d.minor()))
}

fn device_cgroup(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access.to_string());
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().expect("every field is set")
}

/// The devices every container may use whatever its spec says: runc's
/// `AllowedDevices` (libcontainer/specconv): mknod of any character or
/// block device (opening one still needs a rule), /dev/null, /dev/random,
/// /dev/full, /dev/tty, /dev/zero, /dev/urandom, /dev/console, the ptys
/// (/dev/pts/*, 136:*) and /dev/ptmx.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut v = vec![
        device_cgroup(true, C, None, None, "m"),
        device_cgroup(true, B, None, None, "m"),
    ];
    for (maj, min) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 1)] {
        v.push(device_cgroup(true, C, Some(maj), Some(min), "rwm"));
    }
    v.push(device_cgroup(true, C, Some(136), None, "rwm"));
    v.push(device_cgroup(true, C, Some(5), Some(2), "rwm"));
    v
}

/// A rule's major or minor: absent or `-1` (runc's wildcard) mean any
/// device; any other negative number names no device. runc writes such a
/// number as is to devices.allow on v1, which the kernel refuses, but
/// its v2 program treats every negative number as a wildcard (an allow
/// of `b -2:-2` then opened every block device): refused here on both.
fn check_device_number(n: Option<i64>, field: impl FnOnce() -> String) -> Result<(), Unsupported> {
    match n {
        Some(n) if n < -1 => Err(Unsupported {
            field: field(),
            reason: format!("{n} is not a device number (leave it out, or -1, for any)"),
        }),
        Some(n) if n > i64::from(u32::MAX) => Err(Unsupported {
            field: field(),
            reason: format!("{n} is not a device number (at most {})", u32::MAX),
        }),
        _ => Ok(()),
    }
}

/// The complete device rule list for a container, in the order they
/// apply (the last match decides): a deny-all, the spec's
/// `linux.resources.devices` (`spec`), then runc's default devices.
///
/// # Errors
/// [`Unsupported`] naming the field (`linux.resources.devices[2].major`)
/// for a major or minor below -1.
///
/// ```
/// let rules = rcrun::cgroups::resources::device_rules(None).unwrap();
/// assert_eq!(rcrun::cgroups::resources::device_rule(&rules[0]), "a");
/// assert!(!rules[0].allow());
/// ```
pub fn device_rules(
    spec: Option<&[LinuxDeviceCgroup]>,
) -> Result<Vec<LinuxDeviceCgroup>, Unsupported> {
    for (i, d) in spec.unwrap_or_default().iter().enumerate() {
        check_device_number(d.major(), || format!("linux.resources.devices[{i}].major"))?;
        check_device_number(d.minor(), || format!("linux.resources.devices[{i}].minor"))?;
    }
    let mut v = vec![device_cgroup(false, LinuxDeviceType::A, None, None, "rwm")];
    // As runc's device rules: only r, w and m count (an "a" or a
    // repeated letter is dropped), and a rule left with none does nothing.
    for d in spec.unwrap_or_default() {
        let mut d = d.clone();
        if let Some(a) = d.access().clone() {
            let kept: String = "rwm".chars().filter(|c| a.contains(*c)).collect();
            if kept.is_empty() {
                continue;
            }
            d.set_access(Some(kept));
        }
        v.push(d);
    }
    v.extend(default_device_rules());
    Ok(v)
}

/// The spec field behind rule `i` of a [`device_rules`] list made with
/// `spec_len` spec rules.
pub fn device_rule_field(i: usize, spec_len: usize) -> String {
    match i {
        0 => "linux.resources.devices (the leading deny-all)".into(),
        i if i <= spec_len => format!("linux.resources.devices[{}]", i - 1),
        _ => "linux.resources.devices (the default devices)".into(),
    }
}

/// The devices.allow/devices.deny writes for `rules` (from
/// [`device_rules`] with `spec_len` spec rules: the first is the
/// deny-all `a`).
pub fn v1_devices(rules: &[LinuxDeviceCgroup], spec_len: usize) -> Vec<Setting> {
    rules
        .iter()
        .enumerate()
        .map(|(i, d)| Setting {
            controller: "devices",
            file: if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            }
            .into(),
            value: device_rule(d),
            field: device_rule_field(i, spec_len),
        })
        .collect()
}

/// The writes for `res` on cgroup v1. `update` leaves out what cannot be
/// changed on a running container. Zero values that runc's callers use
/// for "unchanged" (docker's update) are skipped. With `devices`, the
/// device rules come first, starting from deny-all ([`device_rules`]).
pub fn v1(res: &LinuxResources) -> Result<Vec<Setting>, Unsupported> {
    let mut o = Out { v: Vec::new() };
    if let Some(devs) = res.devices() {
        o.v = v1_devices(&device_rules(Some(devs))?, devs.len());
    }
    if let Some(m) = res.memory() {
        v1_memory(&mut o, m)?;
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            o.push("cpu", "cpu.shares", s, "cpu.shares");
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            o.push("cpu", "cpu.cfs_period_us", p, "cpu.period");
        }
        if let Some(q) = c.quota().filter(|q| *q != 0) {
            o.push("cpu", "cpu.cfs_quota_us", q, "cpu.quota");
        }
        if let Some(b) = c.burst() {
            o.push("cpu", "cpu.cfs_burst_us", b, "cpu.burst");
        }
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            o.push("cpu", "cpu.rt_period_us", p, "cpu.realtimePeriod");
        }
        if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
            o.push("cpu", "cpu.rt_runtime_us", r, "cpu.realtimeRuntime");
        }
    }
    cpuset_idle_pids(&mut o, res, ["cpu", "cpuset", "pids"]);
    if let Some(b) = res.block_io() {
        v1_blkio(&mut o, b);
    }
    for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
        o.push(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
            &format!("hugepageLimits[{i}]"),
        );
    }
    if let Some(n) = res.network() {
        if let Some(c) = n.class_id() {
            o.push("net_cls", "net_cls.classid", c, "network.classID");
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            o.push(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                &format!("network.priorities[{i}]"),
            );
        }
    }
    rdma(&mut o, res, "rdma");
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported(
            "unified",
            "invalid configuration: needs cgroup v2; this host runs cgroup v1",
        ));
    }
    Ok(o.v)
}

/// `memory` on cgroup v1.
fn v1_memory(o: &mut Out, m: &oci_spec::runtime::LinuxMemory) -> Result<(), Unsupported> {
    // With swap, the order matters: memsw must stay >= limit at every step.
    if let Some(l) = m.limit().filter(|l| *l != 0) {
        o.push(
            "memory",
            "memory.limit_in_bytes",
            limit_v1(l),
            "memory.limit",
        );
    }
    if let Some(s) = m.swap().filter(|s| *s != 0) {
        o.push(
            "memory",
            "memory.memsw.limit_in_bytes",
            limit_v1(s),
            "memory.swap",
        );
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        o.push(
            "memory",
            "memory.soft_limit_in_bytes",
            limit_v1(r),
            "memory.reservation",
        );
    }
    if let Some(k) = m.kernel_tcp().filter(|k| *k != 0) {
        o.push(
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            limit_v1(k),
            "memory.kernelTCP",
        );
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(unsupported(
                "memory.swappiness",
                "must be between 0 and 100",
            ));
        }
        o.push("memory", "memory.swappiness", s, "memory.swappiness");
    }
    if m.disable_oom_killer() == Some(true) {
        o.push("memory", "memory.oom_control", 1, "memory.disableOOMKiller");
    }
    if m.use_hierarchy() == Some(true) {
        o.push("memory", "memory.use_hierarchy", 1, "memory.useHierarchy");
    }
    Ok(())
}

/// `blockIO` on cgroup v1.
fn v1_blkio(o: &mut Out, b: &oci_spec::runtime::LinuxBlockIo) {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        o.push("blkio", "blkio.weight", w, "blockIO.weight");
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        o.push("blkio", "blkio.leaf_weight", w, "blockIO.leafWeight");
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            o.push(
                "blkio",
                "blkio.weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
                &format!("blockIO.weightDevice[{i}]"),
            );
        }
        if let Some(w) = d.leaf_weight() {
            o.push(
                "blkio",
                "blkio.leaf_weight_device",
                format!("{}:{} {w}", d.major(), d.minor()),
                &format!("blockIO.weightDevice[{i}].leafWeight"),
            );
        }
    }
    for (list, file, name) in [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for (i, d) in list.iter().flatten().enumerate() {
            o.push(
                "blkio",
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                &format!("blockIO.{name}[{i}]"),
            );
        }
    }
}

/// The files v1 and v2 share: cpu.idle, cpuset.cpus/mems, pids.max
/// (`ctl` names the v1 controllers of cpu, cpuset and pids).
fn cpuset_idle_pids(o: &mut Out, res: &LinuxResources, ctl: [&'static str; 3]) {
    if let Some(c) = res.cpu() {
        if let Some(i) = c.idle() {
            o.push(ctl[0], "cpu.idle", i, "cpu.idle");
        }
        if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            o.push(ctl[1], "cpuset.cpus", s, "cpu.cpus");
        }
        if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            o.push(ctl[1], "cpuset.mems", s, "cpu.mems");
        }
    }
    if let Some(p) = res.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        o.push(ctl[2], "pids.max", v, "pids.limit");
    }
}

fn rdma(o: &mut Out, res: &LinuxResources, controller: &'static str) {
    let mut devs: Vec<_> = res.rdma().iter().flatten().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, r) in devs {
        let mut parts = vec![dev.clone()];
        if let Some(h) = r.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(h) = r.hca_objects() {
            parts.push(format!("hca_object={h}"));
        }
        o.push(
            controller,
            "rdma.max",
            parts.join(" "),
            &format!("rdma.{dev}"),
        );
    }
}

/// Puts the memsw write before the memory limit's when the new swap
/// limit is unlimited or above `current` (the memory limit now): the
/// kernel refuses a memory limit above memsw, and a memsw below the
/// memory limit, at every single write (runc's setMemoryAndSwap).
pub fn order_memory_v1(settings: &mut [Setting], current: Option<u64>) {
    let at = |f: &str| settings.iter().position(|s| s.file == f);
    let (Some(l), Some(s)) = (
        at("memory.limit_in_bytes"),
        at("memory.memsw.limit_in_bytes"),
    ) else {
        return;
    };
    let swap = &settings[s].value;
    let raise = swap == "-1"
        || swap
            .parse::<u64>()
            .is_ok_and(|v| current.is_none_or(|c| c < v));
    if raise && s > l {
        settings[l..=s].rotate_right(1);
    }
}

/// The writes for `res` on cgroup v2 (device rules excepted).
pub fn v2(res: &LinuxResources) -> Result<Vec<Setting>, Unsupported> {
    let mut o = Out { v: Vec::new() };
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            o.push("", "memory.max", limit_v2(l), "memory.limit");
        }
        if let Some(s) = m.swap().filter(|s| *s != 0) {
            // OCI's swap is memory+swap; v2's swap.max is swap alone.
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l > 0 => {
                    if s < l {
                        return Err(unsupported("memory.swap", "must not be below memory.limit"));
                    }
                    (s - l).to_string()
                }
                _ => {
                    return Err(unsupported(
                        "memory.swap",
                        "needs memory.limit on cgroup v2",
                    ))
                }
            };
            o.push("", "memory.swap.max", v, "memory.swap");
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            o.push("", "memory.low", limit_v2(r), "memory.reservation");
        }
        if m.swappiness().is_some_and(|s| s != 0 && s != 60) {
            return Err(unsupported(
                "memory.swappiness",
                "is not available on cgroup v2",
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "memory.disableOOMKiller",
                "is not available on cgroup v2",
            ));
        }
        if m.kernel_tcp().is_some_and(|k| k != 0) {
            return Err(unsupported(
                "memory.kernelTCP",
                "is not available on cgroup v2",
            ));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            o.push("", "cpu.weight", shares_to_weight(s), "cpu.shares");
        }
        let (q, p) = (
            c.quota().filter(|q| *q != 0),
            c.period().filter(|p| *p != 0),
        );
        if q.is_some() || p.is_some() {
            let q = q.map_or("max".to_string(), limit_v2);
            o.push(
                "",
                "cpu.max",
                format!("{q} {}", p.unwrap_or(100_000)),
                "cpu.quota",
            );
        }
        if let Some(b) = c.burst() {
            o.push("", "cpu.max.burst", b, "cpu.burst");
        }
        if c.realtime_runtime().is_some_and(|r| r != 0)
            || c.realtime_period().is_some_and(|p| p != 0)
        {
            return Err(unsupported(
                "cpu.realtimeRuntime",
                "is not available on cgroup v2",
            ));
        }
    }
    cpuset_idle_pids(&mut o, res, [""; 3]);
    if let Some(b) = res.block_io() {
        v2_io(&mut o, b)?;
    }
    for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
        o.push(
            "",
            format!("hugetlb.{}.max", h.page_size()),
            limit_v2(h.limit()),
            &format!("hugepageLimits[{i}]"),
        );
    }
    if res.network().as_ref().is_some_and(|n| {
        n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
    }) {
        return Err(unsupported(
            "network",
            "net_cls and net_prio are not available on cgroup v2",
        ));
    }
    rdma(&mut o, res, "");
    let mut keys: Vec<_> = res.unified().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        if k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(unsupported(
                &format!("unified.{k}"),
                "is not a cgroup interface file name",
            ));
        }
        o.push("", k.clone(), v, &format!("unified.{k}"));
    }
    Ok(o.v)
}

/// `blockIO` on cgroup v2 (the io controller).
fn v2_io(o: &mut Out, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), Unsupported> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        o.push("", "io.bfq.weight", w, "blockIO.weight");
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        return Err(unsupported(
            "blockIO.leafWeight",
            "is not available on cgroup v2",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            o.push(
                "",
                "io.bfq.weight",
                format!("{}:{} {w}", d.major(), d.minor()),
                &format!("blockIO.weightDevice[{i}]"),
            );
        }
    }
    for (list, key, name) in [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "throttleWriteIOPSDevice",
        ),
    ] {
        for (i, d) in list.iter().flatten().enumerate() {
            o.push(
                "",
                "io.max",
                format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                &format!("blockIO.{name}[{i}]"),
            );
        }
    }
    Ok(())
}

/// The v2 controller a file belongs to (`memory.max` → `memory`).
pub fn v2_controller(file: &str) -> &str {
    file.split('.').next().unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn files(s: &[Setting]) -> Vec<(String, String)> {
        s.iter()
            .map(|s| (s.file.clone(), s.value.clone()))
            .collect()
    }

    #[test]
    fn v1_memory_cpu_pids() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152, "reservation": 524288, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 10}
        }));
        let s = v1(&r).unwrap();
        let f = files(&s);
        assert!(f.contains(&("memory.limit_in_bytes".into(), "1048576".into())));
        assert!(f.contains(&("memory.memsw.limit_in_bytes".into(), "2097152".into())));
        assert!(f.contains(&("memory.soft_limit_in_bytes".into(), "524288".into())));
        assert!(f.contains(&("memory.oom_control".into(), "1".into())));
        assert!(f.contains(&("cpu.shares".into(), "512".into())));
        assert!(f.contains(&("cpu.cfs_quota_us".into(), "50000".into())));
        assert!(f.contains(&("cpuset.cpus".into(), "0".into())));
        assert!(f.contains(&("pids.max".into(), "10".into())));
        assert_eq!(
            s.iter().find(|x| x.file == "pids.max").unwrap().field,
            "linux.resources.pids.limit"
        );
        // memory.limit comes before memsw (swap must stay >= limit).
        let li = s
            .iter()
            .position(|x| x.file == "memory.limit_in_bytes")
            .unwrap();
        let si = s
            .iter()
            .position(|x| x.file == "memory.memsw.limit_in_bytes")
            .unwrap();
        assert!(li < si);
    }

    #[test]
    fn v1_devices_blkio_hugetlb_net_rdma() {
        let r = res(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}, {"allow": true, "type": "b", "major": 8, "access": "r"}],
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
        }));
        let s = v1(&r).unwrap();
        let f = files(&s);
        // Always a deny-all first, then the spec's rules, then runc's defaults.
        assert_eq!(f[0], ("devices.deny".into(), "a".into()));
        assert_eq!(f[1], ("devices.deny".into(), "a".into()));
        assert_eq!(f[2], ("devices.allow".into(), "c 1:3 rw".into()));
        assert_eq!(f[3], ("devices.allow".into(), "b 8:* r".into()));
        assert_eq!(f[4], ("devices.allow".into(), "c *:* m".into()));
        assert_eq!(f[5], ("devices.allow".into(), "b *:* m".into()));
        assert_eq!(s[3].field, "linux.resources.devices[2]");
        assert!(f.contains(&("blkio.weight".into(), "500".into())));
        assert!(f.contains(&("blkio.throttle.read_bps_device".into(), "8:0 1000".into())));
        assert!(f.contains(&("hugetlb.2MB.limit_in_bytes".into(), "4194304".into())));
        assert!(f.contains(&("net_cls.classid".into(), "1048577".into())));
        assert!(f.contains(&("net_prio.ifpriomap".into(), "eth0 5".into())));
        assert!(f.contains(&(
            "rdma.max".into(),
            "mlx5_1 hca_handle=3 hca_object=10000".into()
        )));
    }

    /// No `linux.resources.devices`, or rules without a deny-all: the
    /// list still starts from deny-all and allows runc's defaults only.
    #[test]
    fn device_rules_start_from_deny_all() {
        let allow_null = res(serde_json::json!({
            "devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
        }));
        for spec in [None, allow_null.devices().as_deref()] {
            let rules = device_rules(spec).unwrap();
            let f = files(&v1_devices(&rules, spec.map_or(0, |s| s.len())));
            assert_eq!(f[0], ("devices.deny".into(), "a".into()));
            let allowed: Vec<&str> = f
                .iter()
                .filter(|(file, _)| file == "devices.allow")
                .map(|(_, v)| v.as_str())
                .collect();
            let defaults = [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 5:1 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
            ];
            for want in defaults {
                assert!(allowed.contains(&want), "{want} in {allowed:?}");
            }
            // Nothing else: no block device, no wildcard read or write.
            assert!(allowed.iter().all(|a| defaults.contains(a)), "{allowed:?}");
        }
    }

    /// A negative major or minor other than -1 is refused with the
    /// field; -1 and an absent number are runc's wildcard.
    #[test]
    fn negative_device_numbers_are_refused() {
        let r = res(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": -2, "minor": -2, "access": "rwm"}
        ]}));
        let e = device_rules(r.devices().as_deref()).unwrap_err();
        assert_eq!(e.field, "linux.resources.devices[1].major");
        assert_eq!(
            v1(&r).unwrap_err().field,
            "linux.resources.devices[1].major"
        );
        let r = res(serde_json::json!({"devices": [
            {"allow": true, "type": "c", "major": 1, "minor": -5, "access": "r"}
        ]}));
        let e = device_rules(r.devices().as_deref()).unwrap_err();
        assert_eq!(e.field, "linux.resources.devices[0].minor");
        let r = res(serde_json::json!({"devices": [
            {"allow": true, "type": "c", "major": -1, "minor": -1, "access": "m"}
        ]}));
        let rules = device_rules(r.devices().as_deref()).unwrap();
        assert_eq!(device_rule(&rules[1]), "c *:* m");
    }

    #[test]
    fn device_access_keeps_only_r_w_and_m() {
        let r = res(serde_json::json!({"devices": [
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"},
            {"allow": true, "type": "c", "major": 1, "minor": 12, "access": "a"}
        ]}));
        let rules = device_rules(r.devices().as_deref()).unwrap();
        assert_eq!(device_rule(&rules[1]), "c 1:11 rw");
        // The rule with no letter left is gone: the defaults follow.
        assert_eq!(rules.len(), 2 + default_device_rules().len());
    }

    #[test]
    fn v1_memory_and_swap_are_ordered_as_the_kernel_needs() {
        let r = res(serde_json::json!({"memory": {"limit": 2097152, "swap": 4194304}}));
        let names = |v: &[Setting]| -> Vec<String> {
            v.iter()
                .filter(|s| s.file.starts_with("memory.") && s.file.contains("limit"))
                .map(|s| s.file.clone())
                .collect()
        };
        // Raising (current 1 MiB): memsw first.
        let mut v = v1(&r).unwrap();
        order_memory_v1(&mut v, Some(1048576));
        assert_eq!(
            names(&v),
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
        // Lowering (current 8 MiB): the limit first.
        let mut v = v1(&r).unwrap();
        order_memory_v1(&mut v, Some(8388608));
        assert_eq!(
            names(&v),
            ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        );
        // Unlimited swap: first, whatever the current limit.
        let r = res(serde_json::json!({"memory": {"limit": -1, "swap": -1}}));
        let mut v = v1(&r).unwrap();
        order_memory_v1(&mut v, Some(1));
        assert_eq!(
            names(&v),
            ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        );
    }

    #[test]
    fn v1_refuses_unified_and_skips_docker_zeros() {
        let r = res(serde_json::json!({"unified": {"memory.high": "1M"}}));
        assert_eq!(v1(&r).unwrap_err().field, "linux.resources.unified");
        let r = res(
            serde_json::json!({"memory": {"reservation": 0, "kernel": 0}, "cpu": {"shares": 0}, "blockIO": {"weight": 0}}),
        );
        assert!(v1(&r).unwrap().is_empty());
    }

    #[test]
    fn v2_conversions() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 3145728, "reservation": 524288},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000},
            "pids": {"limit": -1},
            "blockIO": {"weight": 100, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": -1}],
            "unified": {"memory.high": "2097152"}
        }));
        let f = files(&v2(&r).unwrap());
        assert!(f.contains(&("memory.max".into(), "1048576".into())));
        assert!(f.contains(&("memory.swap.max".into(), "2097152".into())));
        assert!(f.contains(&("memory.low".into(), "524288".into())));
        assert!(f.contains(&("cpu.weight".into(), "39".into())));
        assert!(f.contains(&("cpu.max".into(), "50000 100000".into())));
        assert!(f.contains(&("cpu.max.burst".into(), "1000".into())));
        assert!(f.contains(&("pids.max".into(), "max".into())));
        assert!(f.contains(&("io.bfq.weight".into(), "100".into())));
        assert!(f.contains(&("io.max".into(), "8:0 wiops=10".into())));
        assert!(f.contains(&("hugetlb.2MB.max".into(), "max".into())));
        assert!(f.contains(&("memory.high".into(), "2097152".into())));
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
    }

    #[test]
    fn v2_refusals_name_the_field() {
        for (v, field) in [
            (
                serde_json::json!({"memory": {"disableOOMKiller": true}}),
                "memory.disableOOMKiller",
            ),
            (
                serde_json::json!({"cpu": {"realtimeRuntime": 5}}),
                "cpu.realtimeRuntime",
            ),
            (serde_json::json!({"network": {"classID": 1}}), "network"),
            (
                serde_json::json!({"unified": {"../x": "1"}}),
                "unified.../x",
            ),
            (
                serde_json::json!({"memory": {"limit": 10, "swap": 5}}),
                "memory.swap",
            ),
        ] {
            assert_eq!(
                v2(&res(v)).unwrap_err().field,
                format!("linux.resources.{field}")
            );
        }
    }
}

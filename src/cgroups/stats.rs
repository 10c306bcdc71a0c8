//! Resource usage of a container, in the JSON shape of `runc events`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::CgroupSet;

/// CPU time used, in nanoseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    /// Total time.
    pub total: u64,
    /// Per CPU (v1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In the kernel.
    pub kernel: u64,
    /// In user space.
    pub user: u64,
}

/// CFS throttling.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Throttling {
    /// Enforcement periods.
    pub periods: u64,
    /// Periods in which the group was throttled.
    pub throttled_periods: u64,
    /// Total throttled time, ns.
    pub throttled_time: u64,
}

/// CPU statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Cpu {
    /// Usage.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
}

/// One memory counter set.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    /// The limit (u64::MAX when unlimited).
    pub limit: u64,
    /// Current usage.
    pub usage: u64,
    /// Peak usage.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Memory statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Memory {
    /// Page cache.
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1) or swap (v2).
    pub swap: MemoryEntry,
    /// memory.stat, raw.
    pub raw: BTreeMap<String, u64>,
}

/// Pids statistics.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Pids {
    /// Tasks in the cgroup.
    pub current: u64,
    /// pids.max (0 when unlimited).
    pub limit: u64,
}

/// One block I/O counter.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BlkioEntry {
    /// Device major.
    pub major: u64,
    /// Device minor.
    pub minor: u64,
    /// Read, Write, ...
    pub op: String,
    /// The count.
    pub value: u64,
}

/// Block I/O statistics.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// Bytes per device and operation.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations per device and operation.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Hugetlb usage of one page size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Hugetlb {
    /// Bytes in use.
    pub usage: u64,
    /// Peak (v1).
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures.
    pub failcnt: u64,
}

/// All statistics (runc's `types.Stats`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// CPU.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Pids.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Hugetlb per page size.
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

fn num(p: &Path) -> u64 {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .map(|s| {
            if s == "max" {
                u64::MAX
            } else {
                s.parse().unwrap_or(0)
            }
        })
        .unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat).
fn kv(p: &Path) -> BTreeMap<String, u64> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn hugepage_sizes() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let kb: u64 = e
                .file_name()
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    v.sort();
    v
}

impl CgroupSet {
    /// Reads the container's statistics. Counters of absent controllers
    /// are zero.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// println!("{} pids", cg.stats().pids.current);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        if self.v2 {
            self.stats_v2()
        } else {
            self.stats_v1()
        }
    }

    fn stats_v1(&self) -> Stats {
        let mut s = Stats::default();
        let d = |c: &str| self.dir_for(c, "").ok();
        if let Some(d) = d("cpuacct") {
            s.cpu.usage.total = num(&d.join("cpuacct.usage"));
            s.cpu.usage.percpu = fs::read_to_string(d.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let st = kv(&d.join("cpuacct.stat"));
            // USER_HZ ticks to ns.
            s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * 10_000_000;
            s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        if let Some(d) = d("cpu") {
            let st = kv(&d.join("cpu.stat"));
            s.cpu.throttling = Throttling {
                periods: st.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: st.get("throttled_time").copied().unwrap_or(0),
            };
        }
        if let Some(d) = d("memory") {
            let e = |p: &str| MemoryEntry {
                limit: num(&d.join(format!("{p}.limit_in_bytes"))),
                usage: num(&d.join(format!("{p}.usage_in_bytes"))),
                max: num(&d.join(format!("{p}.max_usage_in_bytes"))),
                failcnt: num(&d.join(format!("{p}.failcnt"))),
            };
            s.memory.usage = e("memory");
            s.memory.swap = e("memory.memsw");
            s.memory.raw = kv(&d.join("memory.stat"));
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = d("pids") {
            s.pids.current = num(&d.join("pids.current"));
            s.pids.limit = match num(&d.join("pids.max")) {
                u64::MAX => 0,
                n => n,
            };
        }
        if let Some(d) = d("blkio") {
            let rd = |f: &str| -> Vec<BlkioEntry> {
                fs::read_to_string(d.join(f))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| {
                        let mut it = l.split_whitespace();
                        let (mm, op, v) = (it.next()?, it.next()?, it.next()?);
                        let (ma, mi) = mm.split_once(':')?;
                        Some(BlkioEntry {
                            major: ma.parse().ok()?,
                            minor: mi.parse().ok()?,
                            op: op.into(),
                            value: v.parse().ok()?,
                        })
                    })
                    .collect()
            };
            s.blkio.io_service_bytes_recursive = rd("blkio.throttle.io_service_bytes");
            s.blkio.io_serviced_recursive = rd("blkio.throttle.io_serviced");
        }
        if let Some(d) = d("hugetlb") {
            for size in hugepage_sizes() {
                s.hugetlb.insert(
                    size.clone(),
                    Hugetlb {
                        usage: num(&d.join(format!("hugetlb.{size}.usage_in_bytes"))),
                        max: num(&d.join(format!("hugetlb.{size}.max_usage_in_bytes"))),
                        failcnt: num(&d.join(format!("hugetlb.{size}.failcnt"))),
                    },
                );
            }
        }
        s
    }

    fn stats_v2(&self) -> Stats {
        let mut s = Stats::default();
        let Some(d) = self.leaves.first() else {
            return s;
        };
        let cpu = kv(&d.join("cpu.stat"));
        let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        s.cpu.usage = CpuUsage {
            total: g(&cpu, "usage_usec") * 1000,
            percpu: Vec::new(),
            kernel: g(&cpu, "system_usec") * 1000,
            user: g(&cpu, "user_usec") * 1000,
        };
        s.cpu.throttling = Throttling {
            periods: g(&cpu, "nr_periods"),
            throttled_periods: g(&cpu, "nr_throttled"),
            throttled_time: g(&cpu, "throttled_usec") * 1000,
        };
        let events = kv(&d.join("memory.events"));
        s.memory.usage = MemoryEntry {
            limit: num(&d.join("memory.max")),
            usage: num(&d.join("memory.current")),
            max: num(&d.join("memory.peak")),
            failcnt: g(&events, "max"),
        };
        s.memory.swap = MemoryEntry {
            limit: num(&d.join("memory.swap.max")),
            usage: num(&d.join("memory.swap.current")),
            max: 0,
            failcnt: 0,
        };
        s.memory.raw = kv(&d.join("memory.stat"));
        s.memory.cache = g(&s.memory.raw, "file");
        s.pids.current = num(&d.join("pids.current"));
        s.pids.limit = match num(&d.join("pids.max")) {
            u64::MAX => 0,
            n => n,
        };
        for l in fs::read_to_string(d.join("io.stat"))
            .unwrap_or_default()
            .lines()
        {
            let mut it = l.split_whitespace();
            let Some((ma, mi)) = it.next().and_then(|m| m.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
                continue;
            };
            for kvp in it {
                let Some((k, v)) = kvp.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
        for size in hugepage_sizes() {
            let ev = kv(&d.join(format!("hugetlb.{size}.events")));
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: num(&d.join(format!("hugetlb.{size}.current"))),
                    max: 0,
                    failcnt: g(&ev, "max"),
                },
            );
        }
        s
    }

    /// The number of OOM kills so far (v1: memory.oom_control's
    /// oom_kill; v2: memory.events' oom_kill), 0 where the kernel keeps
    /// no count.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// println!("{} OOM kills", cg.oom_kills());
    /// # Ok(()) }
    /// ```
    pub fn oom_kills(&self) -> u64 {
        self.oom_kill_count().unwrap_or(0)
    }

    /// Only the memory controller's leaf: what OOM watching needs.
    pub(crate) fn memory_only(&self) -> CgroupSet {
        let i = if self.v2 {
            0
        } else {
            match self
                .controllers
                .iter()
                .position(|c| c.iter().any(|c| c == "memory"))
            {
                Some(i) => i,
                None => return CgroupSet::default(),
            }
        };
        CgroupSet {
            shared: false,
            systemd: None,
            leaves: self.leaves.get(i).cloned().into_iter().collect(),
            created: Vec::new(),
            controllers: self
                .controllers
                .get(i)
                .map(|_| vec!["memory".to_string()])
                .into_iter()
                .collect(),
            v2: self.v2,
        }
    }

    /// The kernel's OOM kill counter, `None` without a memory cgroup or
    /// where the kernel keeps no count (v1 before Linux 4.13).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// if let Some(n) = cg.oom_kill_count() {
    ///     println!("{n} OOM kills");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn oom_kill_count(&self) -> Option<u64> {
        let file = if self.v2 {
            self.leaves.first()?.join("memory.events")
        } else {
            self.dir_for("memory", "").ok()?.join("memory.oom_control")
        };
        kv(&file).get("oom_kill").copied()
    }
}

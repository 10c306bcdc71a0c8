//! The library's cgroup statistics in containerd's own types (what `ctr
//! task metrics` and the kubelet decode): `io.containerd.cgroups.v1.Metrics`
//! on cgroup v1, `io.containerd.cgroups.v2.Metrics` on v2.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use rcrun::cgroups::stats::Stats;

/// `stats` packed as containerd packs its metrics.
pub fn to_any(stats: &Stats, is_v2: bool) -> Result<Any, String> {
    let (type_url, value) = if is_v2 {
        (
            "io.containerd.cgroups.v2.Metrics",
            v2_metrics(stats).write_to_bytes(),
        )
    } else {
        (
            "io.containerd.cgroups.v1.Metrics",
            v1_metrics(stats).write_to_bytes(),
        )
    };
    Ok(Any {
        type_url: type_url.into(),
        value: value.map_err(|e| e.to_string())?,
        ..Default::default()
    })
}

fn raw(s: &Stats, key: &str) -> u64 {
    s.memory.raw.get(key).copied().unwrap_or(0)
}

fn v1_metrics(s: &Stats) -> v1::Metrics {
    let entry = |e: &rcrun::cgroups::stats::MemoryEntry| v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    };
    let blkio = |v: &[rcrun::cgroups::stats::BlkioEntry]| -> Vec<v1::BlkIOEntry> {
        v.iter()
            .map(|b| v1::BlkIOEntry {
                op: b.op.clone(),
                major: b.major,
                minor: b.minor,
                value: b.value,
                ..Default::default()
            })
            .collect()
    };
    v1::Metrics {
        pids: MessageField::some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(v1::CPUStat {
            usage: MessageField::some(v1::CPUUsage {
                total: s.cpu.usage.total,
                kernel: s.cpu.usage.kernel,
                user: s.cpu.usage.user,
                per_cpu: s.cpu.usage.percpu.clone(),
                ..Default::default()
            }),
            throttling: MessageField::some(v1::Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(v1::MemoryStat {
            cache: s.memory.cache,
            rss: raw(s, "rss"),
            rss_huge: raw(s, "rss_huge"),
            mapped_file: raw(s, "mapped_file"),
            dirty: raw(s, "dirty"),
            writeback: raw(s, "writeback"),
            pg_pg_in: raw(s, "pgpgin"),
            pg_pg_out: raw(s, "pgpgout"),
            pg_fault: raw(s, "pgfault"),
            pg_maj_fault: raw(s, "pgmajfault"),
            inactive_anon: raw(s, "inactive_anon"),
            active_anon: raw(s, "active_anon"),
            inactive_file: raw(s, "inactive_file"),
            active_file: raw(s, "active_file"),
            unevictable: raw(s, "unevictable"),
            hierarchical_memory_limit: raw(s, "hierarchical_memory_limit"),
            hierarchical_swap_limit: raw(s, "hierarchical_memsw_limit"),
            total_cache: raw(s, "total_cache"),
            total_rss: raw(s, "total_rss"),
            total_rss_huge: raw(s, "total_rss_huge"),
            total_mapped_file: raw(s, "total_mapped_file"),
            total_dirty: raw(s, "total_dirty"),
            total_writeback: raw(s, "total_writeback"),
            total_pg_pg_in: raw(s, "total_pgpgin"),
            total_pg_pg_out: raw(s, "total_pgpgout"),
            total_pg_fault: raw(s, "total_pgfault"),
            total_pg_maj_fault: raw(s, "total_pgmajfault"),
            total_inactive_anon: raw(s, "total_inactive_anon"),
            total_active_anon: raw(s, "total_active_anon"),
            total_inactive_file: raw(s, "total_inactive_file"),
            total_active_file: raw(s, "total_active_file"),
            total_unevictable: raw(s, "total_unevictable"),
            usage: MessageField::some(entry(&s.memory.usage)),
            swap: MessageField::some(entry(&s.memory.swap)),
            ..Default::default()
        }),
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blkio(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blkio(&s.blkio.io_serviced_recursive),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn v2_metrics(s: &Stats) -> v2::Metrics {
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        // v2 counts microseconds; the library gives nanoseconds.
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        }),
        memory: MessageField::some(v2::MemoryStat {
            anon: raw(s, "anon"),
            file: raw(s, "file"),
            kernel_stack: raw(s, "kernel_stack"),
            slab: raw(s, "slab"),
            sock: raw(s, "sock"),
            shmem: raw(s, "shmem"),
            file_mapped: raw(s, "file_mapped"),
            file_dirty: raw(s, "file_dirty"),
            file_writeback: raw(s, "file_writeback"),
            anon_thp: raw(s, "anon_thp"),
            inactive_anon: raw(s, "inactive_anon"),
            active_anon: raw(s, "active_anon"),
            inactive_file: raw(s, "inactive_file"),
            active_file: raw(s, "active_file"),
            unevictable: raw(s, "unevictable"),
            slab_reclaimable: raw(s, "slab_reclaimable"),
            slab_unreclaimable: raw(s, "slab_unreclaimable"),
            pgfault: raw(s, "pgfault"),
            pgmajfault: raw(s, "pgmajfault"),
            usage: s.memory.usage.usage,
            usage_limit: s.memory.usage.limit,
            swap_usage: s.memory.swap.usage,
            swap_limit: s.memory.swap.limit,
            max_usage: s.memory.usage.max,
            ..Default::default()
        }),
        ..Default::default()
    }
}

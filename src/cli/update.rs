use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::{
    anyhow_lite::{Error, Result},
    Global,
};

/// The update command changes the resource limits of a container.
///
/// With --resources, the limits are read as JSON (the linux.resources
/// object of config.json) from a file or, with '-', from stdin; the other
/// flags override single values. Zero values mean "leave as is".
#[derive(Debug, Args)]
pub struct Update {
    /// Path to a file with the resources to update, or '-' for stdin
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Per-cgroup block IO weight, 10 to 1000
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds per period
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long, alias = "cpu-shares", value_name = "N")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use (cpuset)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (cpuset)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Memory limit in bytes (k, m, g suffixes allowed)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit) in bytes
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes; -1 for unlimited swap
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Obsolete, ignored
    #[arg(long, value_name = "BYTES", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete, ignored
    #[arg(long, value_name = "BYTES", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of pids (0 or less: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The container id
    pub id: String,
}

/// Parses `512`, `64k`, `100m`, `2g` (binary units) and `-1`.
pub fn bytes(s: &str) -> std::result::Result<i64, Error> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error(format!("invalid size {s:?}")))?;
    Ok((n * mul as f64) as i64)
}

fn set(obj: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let e = obj.entry(section).or_insert_with(|| json!({}));
    e[key] = v;
}

impl Update {
    pub fn run(self, g: &Global) -> Result<i32> {
        let mut v: Value = match &self.resources {
            Some(p) => {
                let mut text = String::new();
                if p.as_os_str() == "-" {
                    std::io::stdin().read_to_string(&mut text)?;
                } else {
                    text = std::fs::read_to_string(p)
                        .map_err(|e| Error(format!("--resources {}: {e}", p.display())))?;
                }
                serde_json::from_str(&text).map_err(|e| Error(format!("--resources: {e}")))?
            }
            None => json!({}),
        };
        let o = v
            .as_object_mut()
            .ok_or_else(|| Error("--resources: not a JSON object".into()))?;
        // Device rules are set at create only, as with runc (whose update
        // takes no devices): an update's rules would replace the
        // container's, from deny-all but without its linux.devices.
        if o.remove("devices").is_some() {
            log::warn!("update: linux.resources.devices cannot be updated; ignored");
        }
        if let Some(w) = self.blkio_weight {
            set(o, "blockIO", "weight", json!(w));
        }
        for (val, key) in [
            (self.cpu_period, "period"),
            (self.cpu_share, "shares"),
            (self.cpu_rt_period, "realtimePeriod"),
        ] {
            if let Some(x) = val {
                set(o, "cpu", key, json!(x));
            }
        }
        for (val, key) in [
            (self.cpu_quota, "quota"),
            (self.cpu_rt_runtime, "realtimeRuntime"),
        ] {
            if let Some(x) = val {
                set(o, "cpu", key, json!(x));
            }
        }
        if let Some(c) = &self.cpuset_cpus {
            set(o, "cpu", "cpus", json!(c));
        }
        if let Some(c) = &self.cpuset_mems {
            set(o, "cpu", "mems", json!(c));
        }
        for (val, key) in [
            (&self.memory, "limit"),
            (&self.memory_reservation, "reservation"),
            (&self.memory_swap, "swap"),
        ] {
            if let Some(x) = val {
                set(o, "memory", key, json!(bytes(x)?));
            }
        }
        if let Some(p) = self.pids_limit {
            set(o, "pids", "limit", json!(p));
        }
        let res: LinuxResources =
            serde_json::from_value(v).map_err(|e| Error(format!("resources: {e}")))?;
        g.runtime().update(&self.id, &res)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::bytes("512").unwrap(), 512);
        assert_eq!(super::bytes("64k").unwrap(), 65536);
        assert_eq!(super::bytes("100M").unwrap(), 100 << 20);
        assert_eq!(super::bytes("2g").unwrap(), 2 << 30);
        assert_eq!(super::bytes("-1").unwrap(), -1);
        assert!(super::bytes("lots").is_err());
    }
}

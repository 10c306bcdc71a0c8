//! The measurement behind scripts/bench-events.sh: N sleeping containers
//! watched either by one `rcrun::events::Events` (one thread, one epoll
//! fd) or by a thread per container blocked in `OomWatch::wait` (the
//! baseline); prints the watcher's RSS growth, threads and CPU time over
//! an idle period as one JSON line.
//!
//! ```text
//! watch_bench events|threads COUNT IDLE_SECS ROOTFS STATE_ROOT
//! ```

use std::time::Duration;

use rcrun::cgroups::oom::OomWatch;
use rcrun::events::Events;
use rcrun::{CreateOptions, Runtime};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_ms() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
    ms(u.user_time()) + ms(u.system_time())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rcrun::seal::ensure_sealed()?;
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [mode, count, idle, rootfs, root] = &a[..] else {
        return Err("usage: watch_bench events|threads COUNT IDLE_SECS ROOTFS STATE_ROOT".into());
    };
    let (count, idle): (usize, u64) = (count.parse()?, idle.parse()?);
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)?;
    let rt = Runtime::new(root);
    let bundles = std::path::Path::new(root).join("bundles");
    let mut containers = Vec::new();
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("w{}-{i}", std::process::id());
        let b = bundles.join(&id);
        std::fs::create_dir_all(&b)?;
        let cfg = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": rootfs, "readonly": true},
            "process": {"args": ["sleep", "100000"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
                      "cgroupsPath": format!("/rcrunbench-watch/{id}"),
                      "resources": {"memory": {"limit": 67108864}}}
        });
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg)?)?;
        containers.push(rt.run(&id, &b, CreateOptions::default())?);
        ids.push(id);
    }
    let rss0 = status_kib("VmRSS:");
    let mut keep = Vec::new();
    let events = match mode.as_str() {
        "events" => {
            let mut ev = Events::new(&rt)?;
            for c in containers.drain(..) {
                ev.watch(c)?;
            }
            Some(ev)
        }
        "threads" => {
            for id in &ids {
                let watch = OomWatch::new(&rt.cgroup(id)?).ok_or("no OOM watch")?;
                keep.push(std::thread::spawn(move || while watch.wait() {}));
            }
            None
        }
        m => return Err(format!("mode {m}?").into()),
    };
    let (rss1, cpu0) = (status_kib("VmRSS:"), cpu_ms());
    std::thread::sleep(Duration::from_secs(idle));
    let (rss2, cpu1, threads) = (status_kib("VmRSS:"), cpu_ms(), status_kib("Threads:"));
    println!(
        "{}",
        serde_json::json!({
            "mode": mode, "containers": count, "threads": threads,
            "rss_growth_kib": rss2.saturating_sub(rss0), "rss_setup_kib": rss1.saturating_sub(rss0),
            "idle_cpu_ms": ((cpu1 - cpu0) * 1000.0).round() / 1000.0, "idle_secs": idle,
        })
    );
    drop(events);
    for id in &ids {
        let _ = rt.delete(id, true);
    }
    for h in std::fs::read_dir("/sys/fs/cgroup")?.flatten() {
        let _ = std::fs::remove_dir(h.path().join("rcrunbench-watch"));
    }
    // The baseline's threads are still blocked; leave without joining.
    std::process::exit(0);
}

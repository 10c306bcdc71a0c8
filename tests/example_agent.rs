//! examples/agent.rs, the small node agent, run for real: three
//! containers with their output in log files, one restarted while it
//! exits non-zero, every event printed as a JSON line.

mod common;
use common::*;
use serde_json::json;

/// The example's binary, built by `cargo test` next to this test's.
fn agent() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("examples/agent")
}

#[test]
fn three_containers_logs_restarts_and_json_events() {
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.agent")
        .tempdir()
        .unwrap();
    let (root, logs, counter) = (
        dir.path().join("state"),
        dir.path().join("logs"),
        dir.path().join("counter"),
    );
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&counter).unwrap();
    // `b` fails until its third run (its count lives on the host).
    let scripts = [
        ("a", "echo hello-a"),
        (
            "b",
            "n=$(cat /counter/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /counter/n; \
             echo try-$n; [ $n -ge 3 ]",
        ),
        ("c", "echo to-stderr-c >&2"),
    ];
    let suffix = unique("agent");
    let mut args = vec![root.display().to_string(), logs.display().to_string()];
    let mut cgroups = Vec::new();
    for (name, script) in scripts {
        let cgroup = format!("rcrun-test-{suffix}-{name}");
        let mut cfg = base_config(rootfs(), &cgroup, script);
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/counter", "type": "bind", "source": counter, "options": ["rbind", "rw"]
        }));
        let b = dir.path().join(name);
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        args.push(format!("{name}={}", b.display()));
        cgroups.push(cgroup);
    }
    let o = std::process::Command::new(agent())
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("examples/agent (built by cargo test)");
    // Clean up whatever happened.
    for name in ["a", "b", "c"] {
        let _ = std::process::Command::new(RCRUN)
            .arg("--root")
            .arg(&root)
            .args(["delete", "-f", name])
            .stderr(std::process::Stdio::null())
            .status();
    }
    for cg in &cgroups {
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(cg));
        }
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exits = |id: &str| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e["type"] == "exit" && e["id"] == id)
            .map(|e| e["data"]["status"]["code"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(exits("a"), [0]);
    assert_eq!(exits("b"), [1, 1, 0], "restarted while it failed");
    assert_eq!(exits("c"), [0]);
    let log = |n: &str| std::fs::read_to_string(logs.join(format!("{n}.log"))).unwrap();
    assert_eq!(log("a"), "hello-a\n");
    assert_eq!(log("b"), "try-1\ntry-2\ntry-3\n");
    assert_eq!(log("c"), "to-stderr-c\n");
}

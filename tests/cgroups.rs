//! linux.resources, update, pause/resume, ps, events, on cgroup v1 and
//! v2: values read back from the cgroup files and their effects observed.

mod common;
use common::*;
use serde_json::json;

#[test]
fn resources_are_written() {
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 42}
    });
    c.start();
    assert_eq!(
        c.cg_read("memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(
        c.cg_read("memory", "memory.soft_limit_in_bytes", "memory.low"),
        "33554432"
    );
    if cgroup_v2() {
        assert_eq!(c.cg_read("cpu", "", "cpu.weight"), "20");
        assert_eq!(c.cg_read("cpu", "", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(c.cg_read("cpu", "cpu.shares", ""), "512");
        assert_eq!(c.cg_read("cpu", "cpu.cfs_quota_us", ""), "20000");
        assert_eq!(c.cg_read("cpu", "cpu.cfs_period_us", ""), "100000");
    }
    assert_eq!(c.cg_read("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    assert_eq!(c.cg_read("pids", "pids.max", "pids.max"), "42");
}

#[test]
fn blkio_throttle_is_written() {
    // A whole disk of this machine (the v2 VM has a scratch disk).
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with("loop") && !n.starts_with("ram")
        })
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .expect("a block device");
    let (major, minor) = dev.trim().split_once(':').unwrap();
    let (major, minor): (u32, u32) = (major.parse().unwrap(), minor.parse().unwrap());
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["resources"] = json!({"blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}});
    c.start();
    let want = format!("{major}:{minor}");
    let got = c.cg_read("blkio", "blkio.throttle.read_bps_device", "io.max");
    assert!(got.contains(&want) && got.contains("1048576"), "{got}");
}

#[test]
fn memory_limit_gets_a_process_oom_killed() {
    let mut c = Ct::new("tail /dev/zero; echo survived");
    c.cfg["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    if cgroup_v2() {
        c.cfg["linux"]["resources"]["memory"]["swap"] = json!(33554432);
    }
    let o = c.run();
    // tail is killed by the OOM killer; sh goes on.
    assert_eq!(stdout(&o), "survived\n");
}

#[test]
fn oom_shows_in_stats_and_events() {
    // The OOM comes only once `events` is watching (the test creates /tmp/go).
    let mut c = Ct::new("while [ ! -e /tmp/go ]; do sleep 0.1; done; tail /dev/zero; sleep 100");
    c.cfg["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    c.start();
    let pid = c.state()["pid"].as_i64().unwrap();
    let mut ev = c
        .cmd(&["events", "--interval", "200ms", &c.id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(ev.stdout.take().unwrap()).lines();
    // The first stats event: the OOM watcher is set up by now.
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "stats");
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), "").unwrap();
    let mut saw_stats = false;
    let mut saw_oom = false;
    for line in lines.take(1000) {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(v["id"], c.id.as_str());
        match v["type"].as_str().unwrap() {
            "stats" => {
                saw_stats = true;
                assert!(v["data"]["memory"]["usage"]["limit"].as_u64().unwrap() <= 33554432);
            }
            "oom" => saw_oom = true,
            t => panic!("event type {t}"),
        }
        if saw_oom && saw_stats {
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(saw_stats && saw_oom, "stats {saw_stats}, oom {saw_oom}");
    let o = c.rcrun(&["events", "--stats", &c.id]);
    assert_ok(&o);
    // runc's field order: type, id, data.
    let head = format!("{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{", c.id);
    assert!(stdout(&o).starts_with(&head), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 33554432);
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1);
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
}

#[test]
fn events_ends_when_the_container_exits() {
    // The stream (stats every interval) ends, with status 0, once the
    // init exits; runc's `events` does the same.
    let c = Ct::new("sleep 100");
    c.start();
    let mut ev = c
        .cmd(&["events", "--interval", "100ms", &c.id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(ev.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "stats");
    assert_ok(&c.rcrun(&["kill", &c.id, "KILL"]));
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(
        rest.iter().all(|l| l.contains("\"type\":\"stats\"")),
        "{rest:?}"
    );
    assert!(ev.wait().unwrap().success());
}

#[test]
fn pids_limit_refuses_forks() {
    let mut c = Ct::new(
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo $(ls /proc | grep -c '^[0-9]')",
    );
    c.cfg["linux"]["resources"] = json!({"pids": {"limit": 4}});
    let out = stdout(&c.run());
    assert!(
        out.contains("can't fork") || out.contains("Resource temporarily unavailable"),
        "{out}"
    );
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let c = Ct::new("i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done");
    c.start();
    let pid = c.state()["pid"].as_i64().unwrap();
    let read = || std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n")).unwrap_or_default();
    // Bounded waits, no timings: slow machines (the v2 VM) only take longer.
    let changes = |from: &str| {
        (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            let now = read();
            !now.is_empty() && now != from
        })
    };
    assert!(changes(""), "the container never ran");
    assert_ok(&c.rcrun(&["pause", &c.id]));
    assert_eq!(c.status(), "paused");
    let a = read();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(a, read(), "a frozen container ran");
    assert_err(&c.rcrun(&["pause", &c.id]), "is paused: cannot pause");
    assert_ok(&c.rcrun(&["resume", &c.id]));
    assert_eq!(c.status(), "running");
    assert!(changes(&a), "the container did not resume");
    assert_err(&c.rcrun(&["resume", &c.id]), "is running: cannot resume");
    // A paused container can be killed and force-deleted.
    assert_ok(&c.rcrun(&["pause", &c.id]));
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn update_with_flags_and_resources_json() {
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 10}});
    c.start();
    assert_ok(&c.rcrun(&[
        "update",
        "--memory",
        "128m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "100000",
        &c.id,
    ]));
    assert_eq!(
        c.cg_read("memory", "memory.limit_in_bytes", "memory.max"),
        "134217728"
    );
    assert_eq!(c.cg_read("pids", "pids.max", "pids.max"), "20");
    // docker's update: JSON on stdin, zeros mean "unchanged".
    let mut child = c
        .cmd(&["update", "--resources", "-", &c.id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(br#"{"memory": {"limit": 100663296, "reservation": 0}, "cpu": {"shares": 0}, "blockIO": {"weight": 0}, "pids": {"limit": 30}}"#).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        c.cg_read("memory", "memory.limit_in_bytes", "memory.max"),
        "100663296"
    );
    assert_eq!(c.cg_read("pids", "pids.max", "pids.max"), "30");
    // checkBeforeUpdate refuses a limit below the current usage.
    let f = c.path("res.json");
    std::fs::write(
        &f,
        r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
    )
    .unwrap();
    assert_err(
        &c.rcrun(&["update", "-r", f.to_str().unwrap(), &c.id]),
        "checkBeforeUpdate",
    );
}

#[test]
fn update_memory_with_swap_up_and_to_unlimited() {
    // As runc: raising memory and swap writes memsw first; --memory -1
    // without --memory-swap lifts the swap limit too (on v1, where memsw
    // must stay at or above the limit).
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    c.start();
    let up = ["update", "--memory", "64m", "--memory-swap", "128m", &c.id];
    assert_ok(&c.rcrun(&up));
    assert_eq!(
        c.cg_read("memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_ok(&c.rcrun(&["update", "--memory", "-1", &c.id]));
    let unlimited = c.cg_read("memory", "memory.limit_in_bytes", "memory.max");
    assert!(unlimited == "max" || unlimited.len() >= 19, "{unlimited}");
    if !cgroup_v2() {
        let swap = c.cg_read("memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
        assert!(swap.len() >= 19, "{swap}");
    }
}

#[test]
fn ps_lists_the_containers_processes() {
    let c = Ct::new("sleep 100 & sleep 100 & wait");
    c.start();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let o = c.rcrun(&["ps", "--format", "json", &c.id]);
    assert_ok(&o);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let t = stdout(&c.rcrun(&["ps", &c.id]));
    assert!(t.starts_with("UID") || t.contains("PID"), "{t}");
    assert_eq!(
        t.lines().filter(|l| l.ends_with(" sleep 100")).count(),
        2,
        "{t}"
    );
    let t = stdout(&c.rcrun(&["ps", &c.id, "-o", "pid,comm"]));
    assert!(t.lines().next().unwrap().contains("PID"), "{t}");
}

#[test]
fn kill_all_reaches_every_process() {
    // Without a pid namespace, killing the init leaves the others: --all reaches them.
    let mut c = Ct::new("sleep 100 & sleep 100 & exec sleep 100");
    c.cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
    c.start();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let o = c.rcrun(&["ps", "-f", "json", &c.id]);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pids.len(), 3);
    assert_ok(&c.rcrun(&["kill", "--all", &c.id, "KILL"]));
    c.wait_status("stopped");
    std::thread::sleep(std::time::Duration::from_millis(200));
    for p in pids {
        let st = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(st.is_empty() || st.contains(") Z "), "{p} survived: {st}");
    }
    assert_ok(&c.rcrun(&["delete", &c.id]));
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn device_rules_are_enforced() {
    // Deny everything: the default devices and linux.devices stay usable;
    // other devices can be made (runc's defaults allow mknod of any) but
    // not opened. (In /dev: /tmp is nodev.)
    let open_kmsg = "mknod /dev/kmsg2 c 1 11 2>/dev/null && echo mknod-ok || echo mknod-denied; \
                     head -c 512 /dev/kmsg2 >/dev/null 2>&1 && echo open-ok || echo open-denied";
    let mut c = Ct::new(&format!(
        "echo x > /dev/null && echo null-ok; head -c1 /dev/zero2 | wc -c; {open_kmsg}"
    ));
    c.cfg["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    c.cfg["linux"]["devices"] =
        json!([{"path": "/dev/zero2", "type": "c", "major": 1, "minor": 5}]);
    assert_eq!(c.run_ok(), "null-ok\n1\nmknod-ok\nopen-denied\n");
    // A rule for the device opens it (CAP_MKNOD is there).
    let mut c = Ct::new(open_kmsg);
    c.cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
    ]});
    assert_eq!(c.run_ok(), "mknod-ok\nopen-ok\n");
}

#[test]
fn unavailable_controller_or_value_names_the_field() {
    let mut c = Ct::new("true");
    if cgroup_v2() {
        c.cfg["linux"]["resources"] = json!({"network": {"classID": 1}});
        assert_err(&c.create(&[]), "linux.resources.network");
    } else {
        c.cfg["linux"]["resources"] = json!({"unified": {"memory.high": "1"}});
        assert_err(
            &c.create(&[]),
            "linux.resources.unified: invalid configuration: needs cgroup v2",
        );
    }
    assert!(c.cgroup_dirs().is_empty());
    let mut c = Ct::new("true");
    c.cfg["linux"]["resources"] = json!({"cpu": {"cpus": "99999"}});
    assert_err(&c.create(&[]), "linux.resources.cpu.cpus");
    assert!(c.cgroup_dirs().is_empty());
    let mut c = Ct::new("true");
    c.cfg["linux"]["resources"] = json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]});
    assert_err(&c.create(&[]), "linux.resources.hugepageLimits[0]");
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn relative_cgroups_path_is_not_under_the_callers_cgroup() {
    let mut c = Ct::new("cat /proc/self/cgroup");
    let rel = c.cgroup.clone();
    c.cfg["linux"]["cgroupsPath"] = json!(rel);
    let out = c.run_ok();
    assert!(
        out.lines().any(|l| l.ends_with(&format!(":/{rel}"))),
        "{out}"
    );
    assert!(!out.contains("process_api"), "{out}");
}

#[test]
fn every_mounted_hierarchy_is_joined() {
    // As runc: the controllers, the named ones (name=systemd) and, on a
    // hybrid host, the cgroup2 mount, so that tools reading any of them
    // find the container where its cgroupsPath says.
    let c = Ct::new("cat /proc/self/cgroup");
    let out = c.run_ok();
    let want = format!("/{}", c.cgroup);
    for l in out.lines() {
        assert!(l.ends_with(&want), "{l} is not in {want}:\n{out}");
    }
    let hosts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .map(String::from)
        .collect();
    assert_eq!(out.lines().count(), hosts.len(), "{out}\n{hosts:#?}");
    assert!(
        c.cgroup_dirs().is_empty(),
        "left behind: {:?}",
        c.cgroup_dirs()
    );
}

#[test]
fn a_non_empty_cgroup_is_shared_with_runcs_warning_and_deleted_by_the_last() {
    // runc 1.1 (cgroups.bats "should warn about a non-empty cgroup"): a
    // cgroupsPath that already holds processes is used with a warning.
    // Deleting one container must not kill the other's processes, and the
    // cgroup goes with the last container out, whichever made it.
    let a = Ct::new("sleep 1000");
    a.start();
    let sharer = |cg: &str| {
        let mut c = Ct::new("sleep 1000");
        c.cgroup = cg.to_string();
        c.cfg["linux"]["cgroupsPath"] = serde_json::json!(format!("/{cg}"));
        c
    };
    let b = sharer(&a.cgroup);
    let o = b.create(&[]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("container's cgroup is not empty: 1 process(es) found"),
        "{}",
        stderr(&o)
    );
    assert_ok(&b.rcrun(&["start", &b.id]));
    let dirs = a.cgroup_dirs();
    assert!(!dirs.is_empty());
    let procs = || std::fs::read_to_string(dirs[0].join("cgroup.procs")).unwrap();
    assert_eq!(procs().lines().count(), 2, "both inits share it");

    // The sharer goes first: the creator's process survives.
    assert_ok(&b.rcrun(&["delete", "--force", &b.id]));
    assert_eq!(a.status(), "running");
    assert_eq!(procs().trim(), a.state()["pid"].to_string());

    // A third sharer; now the creator goes first and leaves the cgroup to it.
    let c = sharer(&a.cgroup);
    c.start();
    assert_ok(&a.rcrun(&["delete", "--force", &a.id]));
    assert_eq!(c.status(), "running");
    assert!(dirs.iter().all(|d| d.exists()), "removed while in use");
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_frozen_cgroup_is_refused_and_left_alone() {
    // config-linux.md: a cgroup that exists already must pass a fitness
    // check; a frozen one is an error (as runc), and rcrun does not
    // remove what it did not create.
    let c = Ct::new("true");
    let dir = if cgroup_v2() {
        std::path::Path::new("/sys/fs/cgroup").join(&c.cgroup)
    } else {
        std::path::Path::new("/sys/fs/cgroup/freezer").join(&c.cgroup)
    };
    let (file, frozen, thawed) = if cgroup_v2() {
        ("cgroup.freeze", "1", "0")
    } else {
        ("freezer.state", "FROZEN", "THAWED")
    };
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(file), frozen).unwrap();
    assert_err(&c.create(&[]), "container's cgroup unexpectedly frozen");
    assert!(dir.exists());
    std::fs::write(dir.join(file), thawed).unwrap();
    // Empty and thawed: fit, and used.
    assert_ok(&c.create(&[]));
}

#[test]
fn nested_paths_share_a_parent_that_delete_leaves_in_place() {
    // As runc and crun: delete removes the container's own cgroup; the
    // parent is shared and stays (the test's Drop removes it).
    let mut a = Ct::new("sleep 100");
    let parent = a.cgroup.clone();
    a.cfg["linux"]["cgroupsPath"] = json!(format!("/{parent}/a"));
    a.start();
    let mut b = Ct::new("cat /proc/self/cgroup");
    b.cfg["linux"]["cgroupsPath"] = json!(format!("/{parent}/b"));
    let out = b.run_ok();
    assert!(
        out.lines().all(|l| l.ends_with(&format!("/{parent}/b"))),
        "{out}"
    );
    let dirs = a.cgroup_dirs();
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(
            !d.join("b").exists(),
            "{} left behind",
            d.join("b").display()
        );
        assert!(d.join("a").is_dir(), "{} is gone", d.join("a").display());
    }
    assert_ok(&a.rcrun(&["delete", "--force", &a.id]));
    for d in &dirs {
        assert!(d.is_dir() && !d.join("a").exists(), "{}", d.display());
    }
}

#[test]
fn new_processes_join_at_birth_through_tasks_or_clone_into_cgroup() {
    // Writing a pid to cgroup.procs takes a host-wide lock that waits for
    // an RCU grace period; rcrun's inits join as themselves through v1
    // `tasks` (no global lock) and cgroup2 through CLONE_INTO_CGROUP.
    use rcrun::cgroups::{inner_path, CgroupSet, Hierarchy, Part};
    let c = Ct::new("true");
    let h = Hierarchy::detect().unwrap();
    let path = std::path::PathBuf::from(format!("/{}", c.cgroup));
    let set = CgroupSet::create(&h, &inner_path(Some(&path), "x").unwrap()).unwrap();
    let j = set.open_join(Part::All).unwrap();
    let files: Vec<String> = j
        .tasks
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect();
    if cgroup_v2() {
        assert!(files.is_empty(), "{files:?}");
    } else {
        // One `tasks` file per v1 hierarchy; the hybrid cgroup2 mount
        // (if any) is the CLONE_INTO_CGROUP directory.
        assert_eq!(files.len() + j.unified.iter().count(), set.leaves.len());
        assert!(files.iter().all(|f| f.ends_with("/tasks")), "{files:?}");
    }
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    assert_eq!(j.unified.is_some(), cgroup_v2() || hybrid);
    drop(j);
    set.remove().unwrap();

    if !cgroup_v2() {
        // The init's own join failing is reported with the file: a v1
        // cpuset cgroup without CPUs (made by someone else) refuses tasks.
        let mut c = Ct::new("true");
        let leaf = format!("/sys/fs/cgroup/cpuset/{}", c.cgroup);
        std::fs::create_dir(&leaf).unwrap();
        c.cfg["linux"]["cgroupsPath"] = json!(format!("/{}", c.cgroup));
        let o = c.run();
        assert_err(&o, &format!("cgroup: joining through {leaf}/tasks"));
        assert!(
            stderr(&o).contains("no space left on device"),
            "{}",
            stderr(&o)
        );
        assert!(!c.root().join(&c.id).exists());
    }
}

#[test]
fn v1_cgroups_are_made_while_the_init_mounts() {
    // On cgroup v1 the runtime clones the init first and makes the
    // cgroups while the init makes its first mounts (two CPUs' worth of
    // set-up at once); the init joins them, as itself, only then, and
    // enters its cgroup namespace after. On cgroup v2 the leaf must exist
    // before the clone that joins it (CLONE_INTO_CGROUP).
    let mut c = Ct::new("cat /proc/self/cgroup");
    let ns = c.cfg["linux"]["namespaces"].as_array_mut().unwrap();
    if !ns.iter().any(|n| n["type"] == "cgroup") {
        ns.push(json!({"type": "cgroup"}));
    }
    c.write_config();
    let trace = c.path("trace");
    let b = c.bundle();
    let o = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=clone3,mkdir,mount,write,unshare",
            RCRUN,
            "--root",
        ])
        .arg(c.root())
        .args(["run", "-b", b.to_str().unwrap(), &c.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_ok(&o);
    // The container's cgroup namespace is rooted at its own cgroups.
    for line in stdout(&o).lines() {
        assert!(line.ends_with(":/"), "{:?}", stdout(&o));
    }
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let find = |what: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("not traced:\n{}", lines.join("\n")))
    };
    let clone = find(&|l| l.contains("clone3(") && l.contains("CLONE_NEWNS"));
    let init = lines[clone].rsplit(' ').next().unwrap().to_string();
    let of_init = |l: &str| l.split(' ').next() == Some(init.as_str());
    let leaf = if cgroup_v2() {
        format!("/sys/fs/cgroup/{}", c.cgroup)
    } else {
        format!("/sys/fs/cgroup/memory/{}", c.cgroup)
    };
    let mkdir = find(&|l| l.contains(&format!("mkdir(\"{leaf}\"")));
    if cgroup_v2() {
        assert!(mkdir < clone, "{}", lines.join("\n"));
        return;
    }
    assert!(clone < mkdir, "{}", lines.join("\n"));
    let proc_mount = find(&|l| of_init(l) && l.contains("mount(\"proc\""));
    // strace splits a call that another thread's call interrupts
    // ("unshare(CLONE_NEWCGROUP <unfinished ...>"): match the call's start.
    let join = find(&|l| of_init(l) && l.contains("write(") && l.contains(", \"0\", 1"));
    let cgroupns = find(&|l| of_init(l) && l.contains("unshare(CLONE_NEWCGROUP"));
    assert!(proc_mount < join && join < cgroupns, "{}", lines.join("\n"));
}

#[test]
fn linux_devices_need_a_device_rule_to_be_opened() {
    // As runc: a `linux.devices` node is made, but the device cgroup
    // allows only runc's defaults and `linux.resources.devices`, so
    // /dev/kmsg listed there opens only with a rule for it.
    let script = "ls /dev/kmsg >/dev/null && echo made; \
                  head -c1 /dev/kmsg >/dev/null 2>&1 && echo open-ok || echo open-denied";
    let kmsg = json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
    let mut c = Ct::new(script);
    c.cfg["linux"]["devices"] = kmsg.clone();
    assert_eq!(c.run_ok(), "made\nopen-denied\n");
    let mut c = Ct::new(script);
    c.cfg["linux"]["devices"] = kmsg;
    c.cfg["linux"]["resources"] = json!({"devices": [
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
    ]});
    assert_eq!(c.run_ok(), "made\nopen-ok\n");
}

#[test]
fn exec_joins_an_existing_sub_cgroup() {
    // runc's exec --cgroup [controller:]path.
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    c.start();
    let subs: Vec<_> = c.cgroup_dirs().iter().map(|d| d.join("sub")).collect();
    for s in &subs {
        std::fs::create_dir(s).unwrap();
    }
    let o = c.rcrun(&["exec", "--cgroup", "sub", &c.id, "cat", "/proc/self/cgroup"]);
    let own = c.rcrun(&["exec", "--cgroup", "/", &c.id, "cat", "/proc/self/cgroup"]);
    let none = c.rcrun(&["exec", "--cgroup", "nope", &c.id, "true"]);
    let up = c.rcrun(&["exec", "--cgroup", "../..", &c.id, "true"]);
    let what = c.rcrun(&["exec", "--cgroup", "whaaat:/", &c.id, "true"]);
    // The exec'd processes are gone: the sub-cgroups can go first.
    for s in &subs {
        let _ = std::fs::remove_dir(s);
    }
    assert_ok(&o);
    let out = stdout(&o);
    assert!(
        out.lines()
            .all(|l| l.ends_with(":/sub") || l.ends_with(":/")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.ends_with(":/sub")), "{out}");
    // runc's words, which its tests match.
    assert_err(&none, "nope/cgroup.procs: no such file");
    assert_err(&up, ".. is not a sub cgroup path");
    assert_err(&what, "unknown controller");
    assert_ok(&own);
    let own = stdout(&own);
    assert!(own.lines().all(|l| l.ends_with(":/")), "{own}");
}

#[test]
fn an_empty_existing_parent_cpuset_is_filled_before_the_container_joins() {
    // cgroup v1: a parent cpuset cgroup someone else made, with no cpus
    // or mems, gets its parent's before the container's is made under
    // it (as runc); otherwise the join fails with "no space left on
    // device". cgroup v2 has no such rule (the VM checks the rest).
    if cgroup_v2() {
        return;
    }
    let mut c = Ct::new("cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || true; echo ran");
    let parent = std::path::Path::new("/sys/fs/cgroup/cpuset").join(format!("{}-parent", c.cgroup));
    std::fs::create_dir(&parent).unwrap();
    c.cfg["linux"]["cgroupsPath"] = json!(format!("/{}-parent/leaf", c.cgroup));
    let o = c.run();
    let _ = std::fs::remove_dir(parent.join("leaf"));
    let filled = std::fs::read_to_string(parent.join("cpuset.cpus")).unwrap();
    for d in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = d.path().join(format!("{}-parent", c.cgroup));
        let _ = std::fs::remove_dir(p.join("leaf"));
        let _ = std::fs::remove_dir(p);
    }
    assert_ok(&o);
    assert!(stdout(&o).ends_with("ran\n"), "{}", stdout(&o));
    assert!(!filled.trim().is_empty());
}

#[test]
fn update_cpu_period_under_a_parent_with_a_quota() {
    // runc's "update cpu period in a pod cgroup with pod limit set": the
    // period the kernel refuses before the new quota is in passes after
    // it. (cgroup v1's cpu controller; v2 writes both in one cpu.max.)
    if cgroup_v2() {
        return;
    }
    let mut c = Ct::new("sleep 100");
    let pod = format!("{}-pod", c.cgroup);
    c.cfg["linux"]["cgroupsPath"] = json!(format!("/{pod}/ct"));
    let cpu = std::path::Path::new("/sys/fs/cgroup/cpu").join(&pod);
    std::fs::create_dir(&cpu).unwrap();
    std::fs::write(cpu.join("cpu.cfs_period_us"), "10000").unwrap();
    std::fs::write(cpu.join("cpu.cfs_quota_us"), "5000").unwrap();
    c.cfg["linux"]["resources"] = json!({"cpu": {"period": 10000, "quota": 4000}});
    c.start();
    let o = c.rcrun(&[
        "update",
        "--cpu-period",
        "5000",
        "--cpu-quota",
        "2000",
        &c.id,
    ]);
    let period = std::fs::read_to_string(cpu.join("ct/cpu.cfs_period_us")).unwrap_or_default();
    let _ = c.rcrun(&["delete", "-f", &c.id]);
    for d in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = d.path().join(&pod);
        let _ = std::fs::remove_dir(p.join("ct"));
        let _ = std::fs::remove_dir(p);
    }
    assert_ok(&o);
    assert_eq!(period.trim(), "5000");
}

#[test]
fn delete_force_removes_sub_cgroups_made_inside_the_container() {
    // runc's "delete --force in cgroupv1 with subcgroups": a process in a
    // sub-cgroup is killed too, and the sub-cgroups go with the container.
    let c = Ct::new("sleep 100");
    c.start();
    let subs: Vec<_> = c.cgroup_dirs().iter().map(|d| d.join("foo")).collect();
    for s in &subs {
        std::fs::create_dir(s).unwrap();
    }
    let o = c.rcrun(&["exec", "-d", "--cgroup", "foo", &c.id, "sleep", "100"]);
    let d = c.rcrun(&["delete", "--force", &c.id]);
    let left: Vec<_> = subs.iter().filter(|s| s.exists()).collect();
    for s in &subs {
        let _ = std::fs::remove_dir(s);
    }
    assert_ok(&o);
    assert_ok(&d);
    assert!(left.is_empty(), "{left:?}");
    assert!(c.cgroup_dirs().is_empty());
}

//! The systemd cgroup driver (`--systemd-cgroup`, the library's
//! `with_systemd_cgroup`, the shim's `SystemdCgroup`), checked against a
//! real systemd: containers are transient scopes, with their limits as
//! unit properties and in the files, updated, paused and stopped with
//! the container.
//!
//! It needs a host booted with systemd, which this project's machines are
//! not: scripts/test-v2.sh runs it in the cgroup v2 VM booted with systemd
//! as PID 1 (`V2VM_SYSTEMD=1`). Every test fails, not skips, elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::shim::{ctx, Containerd};
use common::{assert_err, assert_ok, stdout, Ct};
use containerd_shim::api;
use serde_json::json;

fn booted() {
    assert!(
        Path::new("/run/systemd/system").is_dir(),
        "this test needs systemd as PID 1: run it through `V2VM_SYSTEMD=1 scripts/test-v2.sh systemd`"
    );
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The scope is gone: unloaded by systemd, its cgroup removed.
fn assert_gone(unit: &str, dir: &Path) {
    let state = common::systemctl_show(unit, "ActiveState");
    assert!(
        state == "inactive" || state.is_empty(),
        "{unit} is still {state}"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
}

/// Stops a scope a failed test left behind.
struct UnitGuard(String);

impl Drop for UnitGuard {
    fn drop(&mut self) {
        let _ = Command::new("systemctl").args(["stop", &self.0]).status();
        let _ = Command::new("systemctl")
            .args(["reset-failed", &self.0])
            .status();
    }
}

fn systemd_ct(script: &str, slice: &str) -> (Ct, String, PathBuf, UnitGuard) {
    let mut ct = Ct::new(script);
    ct.cfg["linux"]["cgroupsPath"] = json!(format!("{slice}:rcrun:{}", ct.id));
    let unit = format!("rcrun-{}.scope", ct.id);
    let mut dir = PathBuf::from("/sys/fs/cgroup");
    // "rcrun-test.slice" is rcrun.slice/rcrun-test.slice.
    let mut prefix = String::new();
    for part in slice.trim_end_matches(".slice").split('-') {
        prefix = if prefix.is_empty() {
            part.to_string()
        } else {
            format!("{prefix}-{part}")
        };
        dir.push(format!("{prefix}.slice"));
    }
    dir.push(&unit);
    let guard = UnitGuard(unit.clone());
    (ct, unit, dir, guard)
}

/// `rcrun --systemd-cgroup create`.
fn sd_create(ct: &Ct) -> std::process::Output {
    ct.write_config();
    let b = ct.bundle();
    ct.rcrun(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &ct.id,
    ])
}

#[test]
fn a_container_is_a_scope_with_its_limits_as_properties() {
    booted();
    let (mut ct, unit, dir, _g) = systemd_ct("sleep 600", "rcrun-test.slice");
    ct.cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    ct.cfg["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"quota": 20000, "period": 100000, "shares": 512}
    });
    // A slice path is the systemd driver's: refused without it.
    assert_err(&ct.create(&[]), "use --systemd-cgroup");
    assert_ok(&sd_create(&ct));
    let pid = ct.state()["pid"].as_i64().unwrap();
    assert_eq!(common::systemctl_show(&unit, "ActiveState"), "active");
    assert_eq!(common::systemctl_show(&unit, "Delegate"), "yes");
    assert_eq!(
        common::systemctl_show(&unit, "ControlGroup"),
        format!("/rcrun.slice/rcrun-test.slice/{unit}")
    );
    assert_eq!(common::systemctl_show(&unit, "MemoryMax"), "67108864");
    assert_eq!(common::systemctl_show(&unit, "TasksMax"), "50");
    assert_eq!(common::systemctl_show(&unit, "CPUQuotaPerSecUSec"), "200ms");
    assert_eq!(common::systemctl_show(&unit, "CPUWeight"), "20");
    assert!(read(&dir.join("cgroup.procs"))
        .lines()
        .any(|l| l == pid.to_string()));
    assert_eq!(read(&dir.join("memory.max")), "67108864");
    assert_eq!(read(&dir.join("pids.max")), "50");
    assert_eq!(read(&dir.join("cpu.max")), "20000 100000");

    // Inside, the cgroup namespace is rooted at the scope.
    assert_ok(&ct.rcrun(&["start", &ct.id]));
    let o = ct.rcrun(&["exec", &ct.id, "cat", "/proc/self/cgroup"]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "0::/");

    // update: the unit's properties and the files.
    assert_ok(&ct.rcrun(&[
        "--systemd-cgroup",
        "update",
        "--memory",
        "134217728",
        "--pids-limit",
        "70",
        &ct.id,
    ]));
    assert_eq!(common::systemctl_show(&unit, "MemoryMax"), "134217728");
    assert_eq!(common::systemctl_show(&unit, "TasksMax"), "70");
    assert_eq!(read(&dir.join("memory.max")), "134217728");
    assert_eq!(read(&dir.join("pids.max")), "70");

    assert_ok(&ct.rcrun(&["pause", &ct.id]));
    assert_eq!(ct.status(), "paused");
    assert_ok(&ct.rcrun(&["resume", &ct.id]));
    assert_eq!(ct.status(), "running");

    assert_ok(&ct.rcrun(&["delete", "--force", &ct.id]));
    assert_gone(&unit, &dir);
}

#[test]
fn an_exited_container_leaves_no_unit() {
    booted();
    let (ct, unit, dir, _g) = systemd_ct("cat /proc/self/cgroup; exit 3", "system.slice");
    ct.write_config();
    let b = ct.bundle();
    let o = ct.rcrun(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        b.to_str().unwrap(),
        &ct.id,
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
    // Without a cgroup namespace, the init sees its scope.
    assert_eq!(stdout(&o).trim(), format!("0::/system.slice/{unit}"));
    assert_gone(&unit, &dir);
    assert!(ct.rcrun(&["state", &ct.id]).status.code() != Some(0));
}

#[test]
fn a_unit_that_exists_is_refused_and_nothing_is_left() {
    booted();
    let (ct, unit, dir, _g) = systemd_ct("sleep 600", "system.slice");
    assert_ok(&sd_create(&ct));
    let mut other = Ct::new("sleep 600");
    other.cfg["linux"]["cgroupsPath"] = ct.cfg["linux"]["cgroupsPath"].clone();
    let o = sd_create(&other);
    assert_err(&o, &format!("systemd unit {unit}"));
    assert!(other.rcrun(&["state", &other.id]).status.code() != Some(0));
    // The first is untouched.
    assert_eq!(common::systemctl_show(&unit, "ActiveState"), "active");
    assert_eq!(read(&dir.join("cgroup.procs")).lines().count(), 1);
    assert_ok(&ct.rcrun(&["delete", "--force", &ct.id]));
    assert_gone(&unit, &dir);
}

#[test]
fn paths_that_are_not_slice_prefix_name_are_refused() {
    booted();
    for bad in ["/rcrun-test/x", "a.slice:b", "notaslice:p:n"] {
        let mut ct = Ct::new("true");
        ct.cfg["linux"]["cgroupsPath"] = json!(bad);
        let o = sd_create(&ct);
        assert_err(&o, "linux.cgroupsPath");
        assert!(
            ct.rcrun(&["state", &ct.id]).status.code() != Some(0),
            "{bad}"
        );
    }
}

#[test]
fn the_library_defaults_to_system_slice() {
    booted();
    let dir = tempfile::tempdir().unwrap();
    let rt = rcrun::Runtime::new(dir.path().join("state")).with_systemd_cgroup(true);
    let (guard, bundle) = common::library::bundle(&rt, dir.path(), "lib", "sleep 600", |cfg| {
        cfg["linux"]["cgroupsPath"] = json!("");
    });
    let id = guard.id.clone();
    let unit = format!("rcrun-{id}.scope");
    let _g = UnitGuard(unit.clone());
    let c = rt
        .create(&id, &bundle, rcrun::CreateOptions::default())
        .unwrap();
    let cg = PathBuf::from("/sys/fs/cgroup/system.slice").join(&unit);
    assert_eq!(common::systemctl_show(&unit, "ActiveState"), "active");
    assert!(read(&cg.join("cgroup.procs"))
        .lines()
        .any(|l| l == c.pid().to_string()));
    let res: rcrun::oci_spec::runtime::LinuxResources =
        serde_json::from_value(json!({"memory": {"limit": 33554432}})).unwrap();
    rt.update(&id, &res).unwrap();
    assert_eq!(common::systemctl_show(&unit, "MemoryMax"), "33554432");
    assert_eq!(read(&cg.join("memory.max")), "33554432");
    rt.delete(&id, true).unwrap();
    assert_gone(&unit, &cg);
}

#[test]
fn the_shim_makes_a_scope_for_systemd_cgroup() {
    booted();
    let cd = Containerd::new();
    // The unit is named by the container's id, as the kubelet's paths
    // have it: the path is set once the id is known.
    let (id, bundle) = cd.bundle("sleep 600", |_| {});
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["linux"]["cgroupsPath"] = json!(format!("rcrun-shim.slice:cri-containerd:{id}"));
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let unit = format!("cri-containerd-{id}.scope");
    let _g = UnitGuard(unit.clone());
    let address = cd.start_shim(&bundle, &id);
    let c = cd.connect(&address);
    let opts = api::Options {
        systemd_cgroup: true,
        ..Default::default()
    };
    let req = common::shim::create_request(&id, &bundle, "", "", Some(opts));
    let pid = c.create(ctx(), &req).unwrap().pid;
    let dir = PathBuf::from("/sys/fs/cgroup/rcrun.slice/rcrun-shim.slice").join(&unit);
    assert_eq!(common::systemctl_show(&unit, "ActiveState"), "active");
    assert!(read(&dir.join("cgroup.procs"))
        .lines()
        .any(|l| l == pid.to_string()));
    let del = api::DeleteRequest {
        id: id.clone(),
        ..Default::default()
    };
    let kill = api::KillRequest {
        id: id.clone(),
        signal: 9,
        ..Default::default()
    };
    c.kill(ctx(), &kill).unwrap();
    let wait = api::WaitRequest {
        id: id.clone(),
        ..Default::default()
    };
    c.wait(ctx(), &wait).unwrap();
    c.delete(ctx(), &del).unwrap();
    assert_gone(&unit, &dir);
}

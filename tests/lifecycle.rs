//! create/start/state/kill/delete/list/run as runc does them.

mod common;
use common::*;

#[test]
fn run_prints_from_inside_and_cleans_up() {
    let c = Ct::new("echo hello from $(hostname)");
    let out = c.run_ok();
    assert_eq!(out.trim(), "hello from rcrun-test");
    // run deletes the container: no state, no cgroup.
    assert!(!c.root().join(&c.id).exists());
    assert!(c.cgroup_dirs().is_empty(), "{:?}", c.cgroup_dirs());
}

#[test]
fn run_returns_exit_status_and_128_plus_signal() {
    let c = Ct::new("exit 3");
    assert_eq!(c.run().status.code(), Some(3));
    // The init of a pid namespace cannot SIGKILL itself: share the host's.
    let mut c = Ct::new("kill -9 $$");
    c.cfg["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "uts"}]);
    assert_eq!(c.run().status.code(), Some(137));
}

#[test]
fn lifecycle_statuses_follow_runtime_md() {
    let c = Ct::new("read x < /dev/null; sleep 100");
    let pidfile = c.path("init.pid");
    let o = c.create(&["--pid-file", pidfile.to_str().unwrap()]);
    assert_ok(&o);
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["bundle"], c.bundle().to_str().unwrap());
    assert_eq!(st["rootfs"], rootfs().to_str().unwrap());
    assert_eq!(st["owner"], "root");
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // The pid file holds the init's pid, without a newline (runc).
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The init waits in the container: its cgroup holds it.
    assert!(!c.cgroup_dirs().is_empty());
    // Starting twice is an error; so is deleting a running container.
    assert_ok(&c.rcrun(&["start", &c.id]));
    assert_eq!(c.status(), "running");
    assert_err(&c.rcrun(&["start", &c.id]), "is running: cannot start");
    assert_err(&c.rcrun(&["delete", &c.id]), "use --force");
    assert_ok(&c.rcrun(&["kill", &c.id, "KILL"]));
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0);
    assert_err(&c.rcrun(&["kill", &c.id]), "is stopped: cannot kill");
    assert_ok(&c.rcrun(&["delete", &c.id]));
    assert!(c.cgroup_dirs().is_empty());
    assert_err(&c.rcrun(&["state", &c.id]), "does not exist");
}

#[test]
fn delete_of_a_created_container_needs_force() {
    let c = Ct::new("true");
    assert_ok(&c.create(&[]));
    let pid = c.state()["pid"].as_i64().unwrap();
    // runtime.md: deleting a container that is not stopped is an error
    // and has no effect.
    assert_err(&c.rcrun(&["delete", &c.id]), "is created: cannot delete it");
    assert_eq!(c.status(), "created");
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/exe")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn kill_accepts_names_and_numbers_and_all() {
    let c = Ct::new("trap 'echo got-usr1 >> /tmp/x' USR1; while :; do sleep 100 & wait; done");
    assert_ok(&c.create(&[]));
    assert_ok(&c.rcrun(&["start", &c.id]));
    assert_ok(&c.rcrun(&["kill", &c.id, "SIGUSR1"]));
    assert_ok(&c.rcrun(&["kill", &c.id, "10"]));
    assert_eq!(c.status(), "running");
    assert_err(&c.rcrun(&["kill", &c.id, "SIGNOPE"]), "invalid signal");
    assert_ok(&c.rcrun(&["kill", "--all", &c.id, "KILL"]));
    c.wait_status("stopped");
    assert_ok(&c.rcrun(&["delete", &c.id]));
}

#[test]
fn delete_force_kills_a_running_container() {
    let c = Ct::new("sleep 100");
    assert_ok(&c.create(&[]));
    assert_ok(&c.rcrun(&["start", &c.id]));
    let pid = c.state()["pid"].as_i64().unwrap();
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
    assert!(c.cgroup_dirs().is_empty());
    assert!(!c.root().join(&c.id).exists());
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        st.is_empty() || st.contains(") Z "),
        "init still alive: {st}"
    );
    // Forcing the delete of a container that is gone is not an error.
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
}

#[test]
fn duplicate_and_invalid_ids_are_refused() {
    let c = Ct::new("sleep 100");
    assert_ok(&c.create(&[]));
    assert_err(&c.create(&[]), "already exists");
    for bad in ["../x", "a/b", ".."] {
        let b = c.bundle();
        assert_err(
            &c.rcrun(&["create", "-b", b.to_str().unwrap(), bad]),
            "invalid container id",
        );
    }
    let b = c.bundle();
    assert_err(
        &c.rcrun(&["create", "-b", b.to_str().unwrap(), ""]),
        "invalid container id",
    );
}

#[test]
fn list_formats() {
    let c = Ct::new("sleep 100");
    assert_ok(&c.create(&[]));
    let q = stdout(&c.rcrun(&["list", "-q"]));
    assert_eq!(q.trim(), c.id);
    let j: serde_json::Value =
        serde_json::from_slice(&c.rcrun(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(j[0]["id"], c.id.as_str());
    assert_eq!(j[0]["status"], "created");
    let t = stdout(&c.rcrun(&["list"]));
    assert!(t.starts_with("ID "), "{t}");
    assert!(t.lines().nth(1).unwrap().contains("created"), "{t}");
}

#[test]
fn run_detached_and_keep() {
    let c = Ct::new("sleep 100");
    c.write_config();
    let b = c.bundle();
    assert_ok(&c.rcrun(&["run", "-d", "-b", b.to_str().unwrap(), &c.id]));
    assert_eq!(c.status(), "running");
    assert_ok(&c.rcrun(&["delete", "-f", &c.id]));

    let c = Ct::new("exit 0");
    c.write_config();
    let b = c.bundle();
    assert_ok(&c.rcrun(&["run", "--keep", "-b", b.to_str().unwrap(), &c.id]));
    assert_eq!(c.status(), "stopped");
}

#[test]
fn run_forwards_signals() {
    let c = Ct::new(&sigterm_script(7));
    c.write_config();
    let b = c.bundle();
    let run = c.cmd(&["run", "-b", b.to_str().unwrap(), &c.id]);
    assert_forwards_sigterm(run, 7, |pid| {
        // The main thread forwards (a signalfd and a pidfd): no thread.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.contains("\nThreads:\t1\n"), "{status}");
    });
}

#[test]
fn spec_writes_a_runc_like_default() {
    let d = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(RCRUN)
        .args(["spec", "-b", d.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["args"][0], "sh");
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["root"]["path"], "rootfs");
    // runc's: no inheritable set, a deny-all device rule, a cgroup
    // namespace only on a cgroup v2 host.
    assert!(
        v["process"]["capabilities"].get("inheritable").is_none(),
        "{v}"
    );
    assert_eq!(
        v["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": false, "access": "rwm"}])
    );
    let cgroupns = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "cgroup");
    assert_eq!(cgroupns, cgroup_v2(), "{v}");
    let o = std::process::Command::new(RCRUN)
        .args(["spec", "-b", d.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_err(&o, "exists");
    let d = tempfile::tempdir().unwrap();
    assert_ok(
        &std::process::Command::new(RCRUN)
            .args(["spec", "--rootless", "-b", d.path().to_str().unwrap()])
            .output()
            .unwrap(),
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    assert!(v["linux"]["uidMappings"].is_array());
}

#[test]
fn features_tells_the_truth() {
    let o = std::process::Command::new(RCRUN)
        .arg("features")
        .output()
        .unwrap();
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createContainer"));
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
    assert_eq!(v["linux"]["apparmor"]["enabled"], false);
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "time"));
}

#[test]
fn json_log_records_the_error() {
    let c = Ct::new("true");
    let log = c.path("log.json");
    let o = c.rcrun(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert!(!o.status.success());
    let line = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("nope does not exist"));
    assert!(v["time"].is_string());
}

#[test]
fn start_without_process_fails_and_the_container_stops() {
    let mut c = Ct::new("true");
    c.cfg.as_object_mut().unwrap().remove("process");
    assert_ok(&c.create(&[]));
    assert_eq!(c.status(), "created");
    assert_err(&c.rcrun(&["start", &c.id]), "process: is not set");
    c.wait_status("stopped");
    assert_ok(&c.rcrun(&["delete", &c.id]));
}

#[test]
fn exec_failure_is_reported_by_start() {
    // Executable by its mode, but not a program: exec fails after start.
    let mut c = Ct::new("true");
    let bad = c.path("bad");
    std::fs::write(&bad, b"\x7fELF garbage").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    c.cfg["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/bad", "type": "bind", "source": bad, "options": ["bind"]}));
    c.cfg["process"]["args"] = serde_json::json!(["/bad"]);
    assert_ok(&c.create(&[]));
    assert_err(
        &c.rcrun(&["start", &c.id]),
        "process.args[0]: exec: \"/bad\": exec format error",
    );
    c.wait_status("stopped");
}

#[test]
fn run_releases_the_init_over_its_socket_and_reports_a_failed_exec() {
    // create makes the exec fifo that start writes to; run needs none (the
    // init waits on its sync socket). A createRuntime hook lists the
    // state directory in both.
    let mut c = Ct::new("true");
    let ls = c.path("ls");
    let dir = c.root().join(&c.id);
    c.cfg["hooks"] = serde_json::json!({"createRuntime": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("ls {} > {}", dir.display(), ls.display())]}]});
    assert_ok(&c.create(&[]));
    assert!(std::fs::read_to_string(&ls).unwrap().contains("exec.fifo"));
    assert_ok(&c.rcrun(&["delete", "--force", &c.id]));
    let out = c.run_ok();
    assert_eq!(out, "");
    let listed = std::fs::read_to_string(&ls).unwrap();
    assert!(
        listed.contains("state.json") && !listed.contains("exec.fifo"),
        "{listed}"
    );

    // A failed exec is run's error; the container is deleted, with its
    // poststop hooks (as runc destroys it).
    let bad = c.path("bad");
    std::fs::write(&bad, b"\x7fELF garbage").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    c.cfg["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/bad", "type": "bind", "source": bad, "options": ["bind"]}));
    c.cfg["process"]["args"] = serde_json::json!(["/bad"]);
    let post = c.path("poststop");
    c.cfg["hooks"] = serde_json::json!({"poststop": [{"path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {}", post.display())]}]});
    assert_err(
        &c.run(),
        "process.args[0]: exec: \"/bad\": exec format error",
    );
    assert!(!dir.exists(), "state left behind");
    assert!(c.cgroup_dirs().is_empty(), "{:?}", c.cgroup_dirs());
    assert!(std::fs::read_to_string(&post)
        .unwrap()
        .contains("\"stopped\""));
}

#[test]
fn kill_all_and_ps_on_a_stopped_container_succeed_as_in_runc() {
    // runc: `kill --all` reaches every process left in the cgroup (none,
    // no error) and signal 0 is a signal; `ps` lists no process.
    let c = Ct::new("true");
    c.write_config();
    let b = c.bundle();
    assert_ok(&c.rcrun(&["run", "--keep", "-b", b.to_str().unwrap(), &c.id]));
    assert_eq!(c.status(), "stopped");
    for sig in ["0", "KILL"] {
        assert_ok(&c.rcrun(&["kill", "--all", &c.id, sig]));
    }
    assert_err(&c.rcrun(&["kill", &c.id, "KILL"]), "stopped");
    let o = c.rcrun(&["ps", "--format", "json", &c.id]);
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "[]");
    let o = c.rcrun(&["ps", &c.id]);
    assert_ok(&o);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    // Signal 0 to a running container's init: it exists.
    let r = Ct::new("sleep 100");
    r.start();
    assert_ok(&r.rcrun(&["kill", &r.id, "0"]));
}

//! Hooks run at the moments config.md names, with the state on stdin.

mod common;
use common::*;
use serde_json::json;

/// A hook script (on the host; the rootfs is mounted there before
/// pivot_root, so createContainer/startContainer can reach it through
/// the rootfs's own /bin/sh as well).
fn hook(kind: &str, log: &std::path::Path) -> serde_json::Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("s=$(cat); echo \"{kind} $HOOKENV $1 $s\" >> {}", log.display()), "hook", "arg1"],
        "env": ["HOOKENV=env-ok"],
    })
}

#[test]
fn all_hooks_in_order_with_state_env_and_args() {
    let mut c = Ct::new("echo user-process >> /hooklog/log");
    let logdir = c.path("hooklog");
    std::fs::create_dir(&logdir).unwrap();
    let host_log = logdir.join("log");
    // createContainer and startContainer run in the container's mount
    // namespace: createContainer before pivot_root (the host path still
    // resolves), startContainer after it (the log is bind-mounted in).
    c.cfg["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/hooklog", "type": "bind", "source": logdir, "options": ["bind"]}),
    );
    let in_ct = std::path::PathBuf::from("/hooklog/log");
    c.cfg["hooks"] = json!({
        "prestart": [hook("prestart", &host_log)],
        "createRuntime": [hook("createRuntime", &host_log)],
        "createContainer": [hook("createContainer", &host_log)],
        "startContainer": [hook("startContainer", &in_ct)],
        "poststart": [hook("poststart", &host_log)],
        "poststop": [hook("poststop", &host_log)]
    });
    assert_ok(&c.create(&[]));
    let created = std::fs::read_to_string(&host_log).unwrap();
    let kinds: Vec<&str> = created
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(kinds, ["prestart", "createRuntime", "createContainer"]);
    assert_ok(&c.rcrun(&["start", &c.id]));
    c.wait_status("stopped");
    assert_ok(&c.rcrun(&["delete", &c.id]));
    let all = std::fs::read_to_string(&host_log).unwrap();
    let kinds: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    // poststart runs after the user process started; the user process may
    // write before or after it.
    let mut sorted = kinds.clone();
    sorted.retain(|k| *k != "user-process");
    assert_eq!(
        sorted,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{all}"
    );
    let sc = kinds.iter().position(|k| *k == "startContainer").unwrap();
    let up = kinds.iter().position(|k| *k == "user-process").unwrap();
    assert!(
        sc < up,
        "startContainer must run before the user process: {all}"
    );
    for line in all.lines().filter(|l| !l.starts_with("user-process")) {
        let mut parts = line.splitn(4, ' ');
        let kind = parts.next().unwrap();
        assert_eq!(parts.next(), Some("env-ok"), "{line}");
        assert_eq!(parts.next(), Some("arg1"), "{line}");
        let state: serde_json::Value = serde_json::from_str(parts.next().unwrap()).unwrap();
        assert_eq!(state["id"], c.id.as_str(), "{line}");
        assert_eq!(state["bundle"], c.bundle().to_str().unwrap());
        assert!(state["ociVersion"].is_string());
        let want = match kind {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(state["status"], want, "{line}");
        let pid = state["pid"].as_i64().unwrap_or(0);
        match kind {
            // In the container's namespaces: the pid the container sees.
            "createContainer" | "startContainer" => assert_eq!(pid, 1, "{line}"),
            "poststop" => {}
            // In the runtime's: the host pid.
            _ => assert!(pid > 1, "{line}"),
        }
    }
}

#[test]
fn failing_create_runtime_hook_fails_create_and_cleans_up() {
    let mut c = Ct::new("true");
    let mark = c.path("poststop-ran");
    c.cfg["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", mark.display())]}]
    });
    let o = c.create(&[]);
    assert_err(
        &o,
        "createRuntime hook /bin/sh failed: exit status 3: broken",
    );
    assert!(!c.root().join(&c.id).exists());
    assert!(c.cgroup_dirs().is_empty());
    // runtime.md lifecycle 4 -> 12, 13: destroyed, then the poststop hooks.
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&mark).unwrap()).unwrap();
    assert_eq!(st["status"], "stopped");
}

#[test]
fn failing_create_container_hook_names_it() {
    let mut c = Ct::new("true");
    c.cfg["hooks"] = json!({"createContainer": [{"path": "/bin/true"}, {"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]});
    assert_err(
        &c.create(&[]),
        "hooks.createContainer[1]: error running hook #1: exit status 4",
    );
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn hook_timeout() {
    let mut c = Ct::new("true");
    c.cfg["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = std::time::Instant::now();
    assert_err(
        &c.create(&[]),
        "prestart hook /bin/sleep timed out after 1s",
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let mut c = Ct::new("true");
    c.cfg["hooks"] =
        json!({"createContainer": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    assert_err(&c.create(&[]), "hooks.createContainer[0]: timed out");
}

#[test]
fn failing_poststop_hook_only_warns() {
    let mut c = Ct::new("true");
    c.cfg["hooks"] = json!({"poststop": [{"path": "/bin/false"}, {"path": "/bin/true"}]});
    let o = c.run();
    assert_ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains("warning: poststop hook /bin/false failed"),
        "{e}"
    );
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn failing_poststart_hook_fails_start_and_stops_the_container() {
    let mut c = Ct::new("sleep 100");
    c.cfg["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    assert_ok(&c.create(&[]));
    assert_err(
        &c.rcrun(&["start", &c.id]),
        "poststart hook /bin/false failed",
    );
    assert_eq!(c.status(), "stopped");
    assert_ok(&c.rcrun(&["delete", &c.id]));
}

#[test]
fn failing_start_container_hook_fails_start() {
    let mut c = Ct::new("echo must-not-run");
    c.cfg["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 6"]}]});
    assert_ok(&c.create(&[]));
    let o = c.rcrun(&["start", &c.id]);
    assert_err(
        &o,
        "hooks.startContainer[0]: error running hook #0: exit status 6",
    );
    assert!(!stdout(&o).contains("must-not-run"));
    c.wait_status("stopped");
    assert_ok(&c.rcrun(&["delete", &c.id]));
}

#[test]
fn poststart_runs_after_the_user_program_was_executed() {
    // The hook looks at the init's executable: it must already be the
    // user's program (busybox), not the runtime's sealed copy. (The
    // program outlives a slow machine's poststart hook.)
    let mut c = Ct::new("sleep 30");
    let log = c.path("exe");
    let script = format!(
        "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/exe > {}",
        log.display()
    );
    // A slow startContainer hook widens the window a racy start would lose.
    c.cfg["hooks"] = json!({
        "startContainer": [{"path": "/bin/sleep", "args": ["sleep", "0.3"]}],
        "poststart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
    });
    assert_ok(&c.create(&[]));
    assert_ok(&c.rcrun(&["start", &c.id]));
    let exe = std::fs::read_to_string(&log).unwrap();
    assert!(
        exe.trim().ends_with("/bin/busybox"),
        "init's exe at poststart: {exe:?}"
    );
}

#[test]
fn start_container_hooks_get_the_process_env_and_create_container_hooks_the_rootfs_as_cwd() {
    // As runc: a startContainer hook without `env` sees the container
    // process's environment; a createContainer hook runs in the rootfs.
    let mut c = Ct::new("cat /tmp/hookenv");
    let mut rootfs = c.private_rootfs();
    rootfs = std::fs::canonicalize(rootfs).unwrap();
    c.cfg["process"]["env"] = json!(["PATH=/bin", "FROM_PROCESS=yes"]);
    let cwd_log = c.path("cwd");
    c.cfg["hooks"] = json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("pwd > {}", cwd_log.display())]}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /tmp/hookenv"]}]
    });
    let out = c.run_ok();
    assert!(out.lines().any(|l| l == "FROM_PROCESS=yes"), "{out}");
    let cwd = std::fs::read_to_string(&cwd_log).unwrap();
    assert_eq!(cwd.trim_end(), rootfs.to_str().unwrap());
}

#[test]
fn a_hook_killed_by_a_signal_is_reported_as_such() {
    // runc's words: "error running hook #0: signal: bad system call".
    let mut c = Ct::new("true");
    c.cfg["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -SYS $$"]}]
    });
    assert_err(&c.run(), "error running hook #0: signal: bad system call");
    let mut c = Ct::new("true");
    c.cfg["hooks"] = json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]
    });
    assert_err(&c.run(), "error running hook #0: exit status 3");
}

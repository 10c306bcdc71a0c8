//! `exec`: a new process in a running container, in its namespaces and
//! cgroup, with its own user, environment and terminal.

mod common;
use common::*;
use serde_json::json;

fn ns_of(pid: i64, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exec_joins_the_containers_namespaces_and_cgroup() {
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "cgroup"}
    ]);
    c.start();
    let init = c.state()["pid"].as_i64().unwrap();
    let kinds = ["pid", "ipc", "uts", "mnt", "net", "cgroup"];
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let o = c.rcrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        &format!(
            "{script}; hostname; cat /proc/self/cgroup | head -1; ls /proc | grep -c '^[0-9]'"
        ),
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    for (i, k) in kinds.iter().enumerate() {
        assert_eq!(l[i], ns_of(init, k), "{k}");
    }
    assert_eq!(l[6], "rcrun-test");
    assert!(l[7].ends_with(":/"), "{out}");
    // sleep, sh, ls, grep: the container's pid namespace.
    assert!(l[8].parse::<u32>().unwrap() <= 4, "{out}");
}

#[test]
fn exec_returns_the_exit_status_and_applies_flags() {
    let c = Ct::new("sleep 100");
    c.start();
    assert_eq!(
        c.rcrun(&["exec", &c.id, "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let o = c.rcrun(&[
        "exec",
        "-u",
        "1000:1000",
        "-g",
        "5",
        "--cwd",
        "/tmp",
        "-e",
        "FOO=bar baz",
        &c.id,
        "sh",
        "-c",
        "id -u; id -G; pwd; echo $FOO; grep NoNewPrivs /proc/self/status",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000 5");
    assert_eq!(l[2], "/tmp");
    assert_eq!(l[3], "bar baz");
    assert!(l[4].ends_with("0"), "{out}");
    let o = c.rcrun(&[
        "exec",
        "--no-new-privs",
        &c.id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(stdout(&o).trim().ends_with('1'), "{}", stdout(&o));
}

#[test]
fn exec_with_a_process_json() {
    let c = Ct::new("sleep 100");
    c.start();
    let p = c.path("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "terminal": false, "user": {"uid": 65534, "gid": 65534}, "cwd": "/",
            "args": ["sh", "-c", "id -u; ulimit -n; grep CapEff /proc/self/status"],
            "env": ["PATH=/bin"],
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100}],
            "capabilities": {"bounding": ["CAP_KILL"]}
        }))
        .unwrap(),
    )
    .unwrap();
    let o = c.rcrun(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "65534\n100\nCapEff:\t0000000000000000\n");
}

#[test]
fn exec_with_a_process_json_without_user_or_cwd_runs_as_root_in_slash() {
    // As runc: a --process without `user` runs as uid 0, without `cwd` in /.
    let c = Ct::new("sleep 100");
    c.start();
    let p = c.path("process.json");
    let proc = json!({"args": ["sh", "-c", "id -u; pwd"], "env": ["PATH=/bin"]});
    std::fs::write(&p, serde_json::to_vec(&proc).unwrap()).unwrap();
    let o = c.rcrun(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "0\n/\n");
}

#[test]
fn exec_detached_with_pid_file() {
    let c = Ct::new("sleep 100");
    c.start();
    let pf = c.path("exec.pid");
    assert_ok(&c.rcrun(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap(),
        &c.id,
        "sleep",
        "50",
    ]));
    let pid: i32 = std::fs::read_to_string(&pf).unwrap().parse().unwrap();
    let o = c.rcrun(&["ps", "-f", "json", &c.id]);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(pids.contains(&pid), "{pid} not in {pids:?}");
}

#[test]
fn exec_with_a_terminal_through_the_console_socket() {
    let c = Ct::new("sleep 100");
    c.start();
    let sock = c.path("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        rcrun::console::recv_pty(&std::os::fd::OwnedFd::from(s)).unwrap()
    });
    assert_ok(&c.rcrun(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "tty; echo done",
    ]));
    let mut f = std::fs::File::from(t.join().unwrap());
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = std::io::Read::read(&mut f, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.ends_with(b"done\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(
        text.starts_with("/dev/pts/") && text.ends_with("done\n"),
        "{text:?}"
    );
}

#[test]
fn exec_errors() {
    let c = Ct::new("sleep 100");
    assert_err(&c.rcrun(&["exec", &c.id, "true"]), "does not exist");
    c.start();
    let o = c.rcrun(&["exec", &c.id, "no-such-program"]);
    assert_err(&o, "\"no-such-program\": executable file not found");
    // As runc: exec's own failures exit with 255, not a status the
    // program could have.
    assert_eq!(o.status.code(), Some(255));
    assert_ok(&c.rcrun(&["pause", &c.id]));
    let o = c.rcrun(&["exec", &c.id, "true"]);
    assert_err(&o, "cannot exec in a paused container");
    assert_eq!(o.status.code(), Some(255));
    // With --ignore-paused the process joins the frozen cgroup: it runs
    // once the container is resumed.
    let mut bg = c
        .cmd(&["exec", "--ignore-paused", &c.id, "sh", "-c", "exit 3"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_ok(&c.rcrun(&["resume", &c.id]));
    assert_eq!(bg.wait().unwrap().code(), Some(3));
    assert_ok(&c.rcrun(&["kill", &c.id, "KILL"]));
    c.wait_status("stopped");
    assert_err(
        &c.rcrun(&["exec", &c.id, "true"]),
        "is stopped: cannot exec in it",
    );
}

#[test]
fn exec_into_a_user_namespace() {
    let mut c = Ct::new("sleep 100");
    c.cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]);
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.start();
    let o = c.rcrun(&["exec", &c.id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.starts_with("0\n") && out.contains("100000"), "{out}");
    // The process runs as the mapped host uid.
    let o = c.rcrun(&[
        "exec",
        "-d",
        "--pid-file",
        c.path("p").to_str().unwrap(),
        &c.id,
        "sleep",
        "30",
    ]);
    assert_ok(&o);
    let pid = std::fs::read_to_string(c.path("p")).unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        st.lines()
            .any(|l| l.starts_with("Uid:") && l.contains("100000")),
        "{st}"
    );
}

#[test]
fn exec_forwards_signals_and_returns_the_exit_status() {
    let c = Ct::new("sleep 100");
    c.start();
    let exec = c.cmd(&["exec", &c.id, "sh", "-c", &sigterm_script(9)]);
    assert_forwards_sigterm(exec, 9, |_| {});
    assert_ok(&c.rcrun(&["delete", "-f", &c.id]));
}

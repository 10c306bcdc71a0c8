//! Bad input: one clear line naming what is at fault, a non-zero exit,
//! and nothing left behind.

mod common;
use common::*;
use serde_json::json;

/// Nothing of the container remains: state, cgroup, processes.
fn assert_clean(c: &Ct) {
    assert!(
        !c.root().join(&c.id).exists(),
        "state directory left behind"
    );
    assert!(
        c.cgroup_dirs().is_empty(),
        "cgroup left behind: {:?}",
        c.cgroup_dirs()
    );
    let o = c.rcrun(&["list", "-q"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn malformed_config_json() {
    let c = Ct::new("true");
    std::fs::write(
        c.bundle().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    let b = c.bundle();
    let o = c.rcrun(&["create", "-b", b.to_str().unwrap(), &c.id]);
    assert_err(&o, "config.json: field");
    assert!(stderr(&o).contains("EOF"));
    assert_clean(&c);
}

#[test]
fn wrong_type_names_the_field() {
    let mut c = Ct::new("true");
    c.cfg["process"]["user"]["uid"] = json!("root");
    assert_err(&c.create(&[]), "field process.user.uid");
    assert_clean(&c);
}

#[test]
fn missing_config_json() {
    let c = Ct::new("true");
    let b = c.bundle();
    let o = c.rcrun(&["create", "-b", b.to_str().unwrap(), &c.id]);
    assert_err(&o, "config.json: No such file or directory");
    assert_clean(&c);
}

#[test]
fn missing_rootfs() {
    let mut c = Ct::new("true");
    c.cfg["root"]["path"] = json!("/nonexistent/rootfs");
    assert_err(
        &c.create(&[]),
        "root.path: rootfs /nonexistent/rootfs does not exist",
    );
    assert_clean(&c);
}

#[test]
fn unknown_namespace_type() {
    let mut c = Ct::new("true");
    c.cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "bogus"}]);
    let o = c.create(&[]);
    assert_err(&o, "field linux.namespaces[1].type");
    assert!(stderr(&o).contains("bogus"));
    assert_clean(&c);
}

#[test]
fn bad_signal_and_unknown_id() {
    let c = Ct::new("true");
    assert_err(
        &c.rcrun(&["kill", "nope", "SIGWHAT"]),
        "invalid signal \"SIGWHAT\"",
    );
    assert_err(
        &c.rcrun(&["kill", "nope", "KILL"]),
        "container nope does not exist",
    );
    assert_err(
        &c.rcrun(&["start", "nope"]),
        "container nope does not exist",
    );
    assert_err(
        &c.rcrun(&["delete", "nope"]),
        "container nope does not exist",
    );
    assert_err(
        &c.rcrun(&["state", "nope"]),
        "container nope does not exist",
    );
}

#[test]
fn failure_inside_the_init_leaves_nothing_behind() {
    // The mount fails inside the init, after the cgroup, state directory
    // and namespaces were created.
    let mut c = Ct::new("true");
    c.cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "type": "nosuchfs", "source": "none"}));
    let before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_err(&c.create(&[]), "mounts[6] /x: mount: no such device");
    assert_clean(&c);
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
        before
    );
}

#[test]
fn unsupported_mount_option_and_missing_bind_source() {
    let mut c = Ct::new("true");
    c.cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}));
    assert_err(
        &c.create(&[]),
        "mounts[6].options: \"idmap\" is not supported",
    );
    assert_clean(&c);
    let mut c = Ct::new("true");
    c.cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]}));
    assert_err(&c.create(&[]), "mounts[6].source: /no/such/dir");
    assert_clean(&c);
}

#[test]
fn systemd_cgroup_is_a_clear_error() {
    let sd_create = |c: &Ct| {
        c.write_config();
        let b = c.bundle();
        c.rcrun(&[
            "--systemd-cgroup",
            "create",
            "-b",
            b.to_str().unwrap(),
            &c.id,
        ])
    };
    // A cgroupfs path is not the systemd driver's.
    let c = Ct::new("true");
    assert_err(&sd_create(&c), "expects \"slice:prefix:name\"");
    assert_clean(&c);
    // Where systemd does not run (these machines: tests/systemd.rs runs
    // in a VM booted with it), the driver says so before it starts.
    let mut c = Ct::new("true");
    c.cfg["linux"]["cgroupsPath"] = json!(format!("system.slice:rcrun-test:{}", c.id));
    if !std::path::Path::new("/run/systemd/system").exists() {
        let o = sd_create(&c);
        assert_err(&o, "systemd is not running on this host");
        assert_err(&o, "without --systemd-cgroup");
    }
    assert_clean(&c);
}

/// What `rcrun ARGS...` prints on stdout.
fn rcrun_stdout(args: &[&str]) -> String {
    stdout(
        &std::process::Command::new(RCRUN)
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn help_reads_like_runcs() {
    let h = rcrun_stdout(&["--help"]);
    for cmd in [
        "create",
        "delete",
        "features",
        "kill",
        "list",
        "run",
        "spec",
        "start",
        "state",
        "--root",
        "--log-format",
        "--systemd-cgroup",
    ] {
        assert!(h.contains(cmd), "--help lacks {cmd}");
    }
    // runc's opening: the name and what it is, then how to start one.
    assert!(
        h.starts_with("rcrun - a fast, runc-compatible OCI container runtime\n"),
        "{h}"
    );
    assert!(
        h.contains("# rcrun run [ -b bundle ] <container-id>"),
        "{h}"
    );
    // Subcommand flags are built on demand (clap's defer): they must
    // still be there for the subcommand's own help and parsing.
    let h = rcrun_stdout(&["run", "--help"]);
    for flag in [
        "--bundle",
        "--detach",
        "--pid-file",
        "--console-socket",
        "--keep",
    ] {
        assert!(h.contains(flag), "run --help lacks {flag}: {h}");
    }
}

#[test]
fn global_flags_go_before_the_command_as_in_runc() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().to_str().unwrap();
    let o = std::process::Command::new(RCRUN)
        .args(["--root", root, "list", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = std::process::Command::new(RCRUN)
        .args(["list", "-q", "--root", root])
        .output()
        .unwrap();
    // A usage error, as runc's "flag provided but not defined: -root".
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unexpected argument '--root'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn library_refuses_unsealed_callers_where_the_trampoline_is_not_enough() {
    // This test process runs from its file on disk, not sealed. A
    // container whose processes may hold CAP_SYS_PTRACE needs the sealed
    // runtime: refused, naming the reason, and nothing is left behind.
    let mut c = Ct::new("true");
    c.cfg["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_PTRACE"]);
    c.write_config();
    let rt = rcrun::Runtime::new(c.root());
    let e = rt
        .create(&c.id, &c.bundle(), rcrun::CreateOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, rcrun::Error::Unsealed { id, reason }
            if *id == c.id && reason.contains("CAP_SYS_PTRACE")),
        "{e:?}"
    );
    assert!(e.to_string().contains("ensure_sealed"), "{e}");
    assert_clean(&c);
    // Without it, the container starts through the exec trampoline.
    let c = Ct::new("true");
    c.write_config();
    let rt = rcrun::Runtime::new(c.root());
    rt.create(&c.id, &c.bundle(), rcrun::CreateOptions::default())
        .unwrap();
    rt.delete(&c.id, true).unwrap();
    assert_clean(&c);
}

#[test]
fn version_is_in_runcs_format() {
    // dockerd parses "<name> version X" and "commit: <id>" (docker info).
    for flag in ["--version", "-v"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_rcrun"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(o.status.success());
        let out = String::from_utf8(o.stdout).unwrap();
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(l[0], format!("rcrun version {}", env!("CARGO_PKG_VERSION")));
        assert!(
            l[1].starts_with("commit: ") && l[1].len() > "commit: ".len(),
            "{out}"
        );
        assert_eq!(l[2], format!("spec: {}", rcrun::oci_spec::runtime::VERSION));
    }
}

//! Rootless: a non-root user on this machine runs `rcrun spec --rootless`
//! and then `rcrun run`, `create`/`start`, `exec`, `list`, `kill` and
//! `delete`, with state under $XDG_RUNTIME_DIR/rcrun and no cgroup (the
//! user may not create one here); limits without a writable cgroup are a
//! clear error. The tests create the user and remove it.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const RCRUN: &str = env!("CARGO_BIN_EXE_rcrun");

/// A throw-away user with a bundle directory and an XDG_RUNTIME_DIR.
struct User {
    name: String,
    uid: u32,
    dir: tempfile::TempDir,
}

impl User {
    fn new() -> User {
        let name = format!("rcrl{}", unique("").replace('-', "x"));
        let st = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", &name])
            .status()
            .expect("useradd (passwd package)");
        assert!(st.success(), "useradd {name}");
        let uid = nix::unistd::User::from_name(&name)
            .unwrap()
            .unwrap()
            .uid
            .as_raw();
        let dir = tempfile::Builder::new()
            .prefix("rcrun-rootless.")
            .tempdir()
            .unwrap();
        let u = User { name, uid, dir };
        for d in ["bundle", "xdg"] {
            std::fs::create_dir(u.dir.path().join(d)).unwrap();
        }
        for d in [u.dir.path().to_path_buf(), u.bundle(), u.xdg()] {
            nix::unistd::chown(&d, Some(uid.into()), Some(uid.into())).unwrap();
        }
        std::fs::set_permissions(u.xdg(), std::fs::Permissions::from_mode(0o700)).unwrap();
        u
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// `rcrun ARGS...` as the user, in the bundle, with XDG_RUNTIME_DIR set.
    /// Output through files: a detached init keeps stdout open.
    fn rcrun(&self, args: &[&str]) -> Output {
        let (o, e) = (self.dir.path().join(".out"), self.dir.path().join(".err"));
        let st = Command::new("setpriv")
            .args([
                "--reuid",
                &self.name,
                "--regid",
                &self.name,
                "--init-groups",
                "--",
            ])
            .arg(RCRUN)
            .args(args)
            .current_dir(self.bundle())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("XDG_RUNTIME_DIR", self.xdg())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .expect("setpriv (util-linux)");
        Output {
            status: st,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// `spec --rootless`, then the test's own args and the shared rootfs.
    fn spec(&self, script: &str) -> Value {
        let _ = std::fs::remove_file(self.bundle().join("config.json"));
        assert_ok(&self.rcrun(&["spec", "--rootless"]));
        let p = self.bundle().join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["root"]["path"] = json!(rootfs());
        c
    }

    fn write(&self, c: &Value) {
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(c).unwrap(),
        )
        .unwrap();
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Whatever a failed test left running goes first.
        let ls = self.rcrun(&["list", "-q"]);
        for id in stdout(&ls).lines() {
            self.rcrun(&["delete", "--force", id]);
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

#[test]
fn spec_rootless_maps_the_user_to_root() {
    let u = User::new();
    u.spec("true");
    let c: Value =
        serde_json::from_slice(&std::fs::read(u.bundle().join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user"), "{ns:?}");
    assert!(
        !ns.contains(&"network"),
        "rootless shares the host network: {ns:?}"
    );
    assert_eq!(c["linux"]["uidMappings"][0]["hostID"], json!(u.uid));
    assert_eq!(c["linux"]["uidMappings"][0]["containerID"], json!(0));
    assert_eq!(c["linux"]["uidMappings"][0]["size"], json!(1));
}

#[test]
fn a_user_runs_a_container() {
    let u = User::new();
    let c = u.spec("id -u; cat /proc/self/uid_map; test -c /dev/null && echo null-ok; echo hi > /dev/null && echo write-ok");
    u.write(&c);
    let id = unique("rl");
    let o = u.rcrun(&["run", &id]);
    assert_ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "{out}");
    assert_eq!(&lines[2..], ["null-ok", "write-ok"], "{out}");
    // State lived under $XDG_RUNTIME_DIR/rcrun; run removed it.
    assert!(u.xdg().join("rcrun").is_dir());
    assert!(!u.xdg().join("rcrun").join(&id).exists());
    // The user made no cgroup (the host's stay as they were).
    for ctl in ["memory", "pids", "cpu"] {
        for base in [
            format!("/sys/fs/cgroup/{ctl}/rcrun/{id}"),
            format!("/sys/fs/cgroup/rcrun/{id}"),
        ] {
            assert!(!std::path::Path::new(&base).exists(), "{base}");
        }
    }
}

#[test]
fn lifecycle_and_exec_as_a_user() {
    let u = User::new();
    let c = u.spec("sleep 1000");
    u.write(&c);
    let id = unique("rl");
    assert_ok(&u.rcrun(&["create", &id]));
    // No copy of the binary (CVE-2019-5736): the init, in its user
    // namespace, waits for `start` in the sealed exec trampoline.
    let st: Value = serde_json::from_slice(&u.rcrun(&["state", &id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().contains("memfd:rcrun-exec"),
        "{exe:?}"
    );
    assert_ok(&u.rcrun(&["start", &id]));
    let st: Value = serde_json::from_slice(&u.rcrun(&["state", &id]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["owner"], json!(u.name));
    let ls = u.rcrun(&["list", "-q"]);
    assert_eq!(stdout(&ls).trim(), id);
    let o = u.rcrun(&["exec", &id, "sh", "-c", "id -u; readlink /proc/1/exe"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "0\n/bin/busybox\n");
    assert_ok(&u.rcrun(&["kill", &id, "KILL"]));
    for _ in 0..200 {
        let st: Value = serde_json::from_slice(&u.rcrun(&["state", &id]).stdout).unwrap();
        if st["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_ok(&u.rcrun(&["delete", &id]));
    assert!(stdout(&u.rcrun(&["list", "-q"])).trim().is_empty());
}

#[test]
fn limits_without_a_writable_cgroup_are_an_error() {
    let u = User::new();
    let mut c = u.spec("true");
    c["linux"]["resources"] = json!({"pids": {"limit": 10}});
    u.write(&c);
    let id = unique("rl");
    let o = u.rcrun(&["run", &id]);
    assert_err(&o, "linux.resources: rootless");
    assert!(!u.xdg().join("rcrun").join(&id).exists());
    // And a user may not name a cgroup it cannot write.
    let mut c = u.spec("true");
    c["linux"]["cgroupsPath"] = json!(format!("/rcrun-test-{id}"));
    u.write(&c);
    assert_err(&u.rcrun(&["run", &id]), "Permission denied");
}

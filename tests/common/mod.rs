//! Test harness: real containers on the busybox rootfs.
//!
//! Every container gets its own state root, bundle directory, id and
//! absolute cgroupsPath; dropping a [`Ct`] deletes the container (with
//! --force), removes its cgroup directories and its temporary files, so
//! nothing is left behind even when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub mod image;
pub mod library;
#[cfg(feature = "shim")]
pub mod shim;

pub const RCRUN: &str = env!("CARGO_BIN_EXE_rcrun");

/// The shared busybox rootfs, built once by rootfs/build-busybox.sh.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-bundle");
        let st = Command::new("sh")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs/build-busybox.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run rootfs/build-busybox.sh");
        assert!(st.success(), "building the busybox rootfs failed");
        dir.join("rootfs")
    })
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A container under test.
pub struct Ct {
    pub id: String,
    pub dir: tempfile::TempDir,
    pub cfg: Value,
    pub cgroup: String,
}

/// Every capability this process holds but CAP_SYS_PTRACE, by name: a
/// container that gets them has the run of the machine, as the caller
/// does, yet starts through the exec trampoline like a container with
/// `rcrun spec`'s defaults (a container that may hold CAP_SYS_PTRACE needs
/// the sealed runtime instead; see tests/escape_proc_exe.rs).
pub fn all_caps_but_ptrace() -> Vec<String> {
    let mut own: Vec<_> = caps::read(None, caps::CapSet::Bounding)
        .unwrap()
        .into_iter()
        .filter(|c| *c != caps::Capability::CAP_SYS_PTRACE)
        .map(|c| c.to_string())
        .collect();
    own.sort();
    own
}

pub fn base_config(rootfs: &Path, cgroup: &str, script: &str) -> Value {
    let caps = all_caps_but_ptrace();
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs},
        "hostname": "rcrun-test",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script],
            "env": ["PATH=/bin:/sbin:/usr/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
            "cgroupsPath": format!("/{cgroup}"),
        }
    })
}

impl Ct {
    /// A container running `sh -c script`.
    pub fn new(script: &str) -> Ct {
        let id = unique("t");
        let cgroup = format!("rcrun-test-{id}");
        let dir = tempfile::Builder::new()
            .prefix("rcrun-test.")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("bundle")).unwrap();
        let cfg = base_config(rootfs(), &cgroup, script);
        Ct {
            id,
            dir,
            cfg,
            cgroup,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_config(&self) {
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.cfg).unwrap(),
        )
        .unwrap();
    }

    /// `rcrun --root <ours> ARGS...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RCRUN);
        c.arg("--root").arg(self.root()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs rcrun to completion. Its output goes through files, not pipes:
    /// a created container's init inherits stdout and stderr and keeps
    /// them open, so waiting for EOF on a pipe would wait for the container.
    pub fn rcrun(&self, args: &[&str]) -> Output {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let (o, e) = (
            self.path(&format!(".out{n}")),
            self.path(&format!(".err{n}")),
        );
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .expect("spawn rcrun");
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// `rcrun run` in the foreground; returns its output.
    pub fn run(&self) -> Output {
        self.write_config();
        let b = self.bundle();
        self.rcrun(&["run", "--bundle", b.to_str().unwrap(), &self.id])
    }

    /// Runs and asserts success; returns stdout.
    pub fn run_ok(&self) -> String {
        let o = self.run();
        assert_ok(&o);
        stdout(&o)
    }

    pub fn create(&self, extra: &[&str]) -> Output {
        self.write_config();
        let b = self.bundle();
        let mut args = vec!["create", "--bundle", b.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.rcrun(&args)
    }

    pub fn state(&self) -> Value {
        let o = self.rcrun(&["state", &self.id]);
        assert_ok(&o);
        serde_json::from_slice(&o.stdout).expect("state is JSON")
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap().to_string()
    }

    /// Cgroup directories of this container on the host.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = e.path().join(&self.cgroup);
            if p.exists() {
                v.push(p);
            }
        }
        let p = Path::new("/sys/fs/cgroup").join(&self.cgroup);
        if p.exists() && !v.contains(&p) {
            v.push(p);
        }
        v
    }

    /// Waits (bounded) until the container's status is `want`.
    pub fn wait_status(&self, want: &str) {
        for _ in 0..500 {
            if self.status() == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "container {} never became {want}: {}",
            self.id,
            self.status()
        );
    }
}

impl Drop for Ct {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "rcrun failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Asserts failure with exactly one line on stderr that contains `needle`.
#[track_caller]
pub fn assert_err(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stdout: {}",
        stdout(o)
    );
    assert!(
        e.contains(needle),
        "stderr {e:?} does not mention {needle:?}"
    );
    assert_eq!(
        e.trim_end().lines().count(),
        1,
        "stderr is not one line: {e:?}"
    );
}

/// The inode of a namespace of the current (host) process.
pub fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The host runs the unified cgroup v2 hierarchy only.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !Path::new("/sys/fs/cgroup/memory").exists()
}

impl Ct {
    /// Reads a file of the container's cgroup: `v1` in the named v1
    /// controller's hierarchy, or `v2` in the unified one.
    pub fn cg_read(&self, controller: &str, v1: &str, v2: &str) -> String {
        let p = if cgroup_v2() {
            Path::new("/sys/fs/cgroup").join(&self.cgroup).join(v2)
        } else {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(&self.cgroup)
                .join(v1)
        };
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// Gives the container a private copy of the rootfs (for tests that
    /// plant files in it) and returns its path.
    pub fn private_rootfs(&mut self) -> PathBuf {
        let root = self.path("rootfs");
        let st = Command::new("cp")
            .args(["-a", rootfs().to_str().unwrap(), root.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(st.success(), "copying the rootfs failed");
        self.cfg["root"]["path"] = json!(root);
        root
    }

    /// Creates and starts the container; returns once it runs.
    pub fn start(&self) {
        assert_ok(&self.create(&[]));
        assert_ok(&self.rcrun(&["start", &self.id]));
    }
}

/// The script of a container process that [`assert_forwards_sigterm`]
/// signals: it prints `ready`, and on SIGTERM `term`, and exits with `code`.
pub fn sigterm_script(code: i32) -> String {
    format!("trap 'echo term; exit {code}' TERM; echo ready; while :; do sleep 0.05; done")
}

/// Spawns `cmd` (an rcrun `run` or `exec` of [`sigterm_script`]), waits
/// for `ready`, lets `at_ready` look at rcrun's pid, then sends rcrun
/// SIGTERM and checks that the container's process got it: it printed
/// `term` and rcrun exits with the process's status, `code`.
pub fn assert_forwards_sigterm(mut cmd: Command, code: i32, at_ready: impl FnOnce(u32)) {
    use std::io::BufRead;
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    at_ready(child.id());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
    assert_eq!(rest.trim(), "term");
    assert_eq!(st.code(), Some(code));
}

/// `systemctl show UNIT -p PROP --value` (tests/systemd.rs, and
/// tests/cri.rs where systemd runs the host).
#[allow(dead_code)]
pub fn systemctl_show(unit: &str, prop: &str) -> String {
    let o = Command::new("systemctl")
        .args(["show", unit, "-p", prop, "--value"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

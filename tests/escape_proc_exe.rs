//! CVE-2019-5736: a container process reaching the runtime's binary
//! through /proc/<pid>/exe. The init that waits for `start` is
//! non-dumpable, so only a process with CAP_SYS_PTRACE could open that
//! link; the program it starts is executed by the exec trampoline, from a
//! sealed memfd. A container that may hold CAP_SYS_PTRACE gets a runtime
//! re-executed through a private read-only overlayfs (as root) or a
//! sealed memfd copy instead. Either way writes are refused and the
//! host's binary is untouched.

mod common;
use common::*;
use serde_json::json;

fn host_binary() -> Vec<u8> {
    std::fs::read(RCRUN).unwrap()
}

/// How `/proc/<pid>/exe` is protected: "memfd" or "overlay", or None
/// when it is a writable file (the host's binary).
fn protection(pid: i64) -> Option<&'static str> {
    let link = format!("/proc/{pid}/exe");
    if std::fs::read_link(&link)
        .unwrap()
        .to_string_lossy()
        .contains("memfd:")
    {
        return Some("memfd");
    }
    let fs = nix::sys::statfs::statfs(link.as_str()).unwrap();
    let vfs = nix::sys::statvfs::statvfs(link.as_str()).unwrap();
    let ro = vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    (fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC && ro).then_some("overlay")
}

/// From a process exec'd into the created container `c`: read the
/// init's exe link, open it for writing, truncate it.
fn reach_init_exe(c: &Ct) -> String {
    let o = c.rcrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "readlink /proc/1/exe || echo unreadable; \
         (echo pwned >> /proc/1/exe) 2>/dev/null && echo WROTE || echo refused; \
         (: > /proc/1/exe) 2>/dev/null && echo TRUNCATED || echo refused",
    ]);
    assert_ok(&o);
    stdout(&o)
}

#[test]
fn waiting_init_cannot_be_reached_from_the_container() {
    // The default: no re-exec; the init waits for `start` in the exec
    // trampoline (a sealed memfd), non-dumpable, so a container process
    // without CAP_SYS_PTRACE cannot even read the link, let alone write
    // through it.
    let before = host_binary();
    let c = Ct::new("true");
    assert_ok(&c.create(&[]));
    let pid = c.state()["pid"].as_i64().unwrap();
    assert_eq!(protection(pid), Some("memfd"));
    let out = reach_init_exe(&c);
    assert!(out.starts_with("unreadable\n"), "{out}");
    assert!(!out.contains(RCRUN), "{out}");
    assert_eq!(out.matches("refused").count(), 2, "{out}");
    assert_eq!(host_binary(), before, "the host's rcrun binary changed");
}

#[test]
fn a_container_that_may_hold_cap_sys_ptrace_gets_the_sealed_runtime() {
    // CAP_SYS_PTRACE opens a non-dumpable process's exe link: rcrun
    // re-executes itself through the read-only overlay first (from main:
    // only the config tells), so the link leads there and writes fail.
    let before = host_binary();
    let mut c = Ct::new("true");
    let mut caps = all_caps_but_ptrace();
    caps.push("CAP_SYS_PTRACE".into());
    c.cfg["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    assert_ok(&c.create(&[]));
    let pid = c.state()["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(exe, std::fs::canonicalize(RCRUN).unwrap());
    assert_eq!(protection(pid), Some("overlay"), "{exe:?}");
    let out = reach_init_exe(&c);
    assert!(!out.contains("unreadable"), "{out}");
    assert!(!out.contains(RCRUN), "{out}");
    assert_eq!(out.matches("refused").count(), 2, "{out}");
    assert_eq!(host_binary(), before, "the host's rcrun binary changed");
}

#[test]
fn executing_proc_self_exe_does_not_reach_the_host_binary() {
    // The original exploit: the container's program is /proc/self/exe (or
    // a script whose interpreter it is), so at exec time the kernel
    // resolves the executing process's own binary. By default that is the
    // exec trampoline's sealed memfd, which refuses to run as anything
    // but the trampoline (status 127); with the sealed runtime, the
    // read-only copy (which cannot even start here: the busybox rootfs
    // has no dynamic loader). Never the host's file.
    let before = host_binary();
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("x");
    std::fs::write(&script, "#!/proc/self/exe --version\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (args, trampoline) in [
        (json!(["/proc/self/exe", "--version"]), true),
        (json!(["/s/x"]), true),
        (json!(["/proc/self/exe", "--version"]), false),
        (json!(["/s/x"]), false),
    ] {
        let mut c = Ct::new("true");
        c.cfg["process"]["args"] = args.clone();
        c.cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/s", "type": "bind", "source": scripts.path(),
            "options": ["rbind", "ro"]
        }));
        if !trampoline {
            c.cfg["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_PTRACE"]);
        }
        let o = c.run();
        assert!(
            !stdout(&o).contains("rcrun version"),
            "{args}: the runtime ran inside the container"
        );
        if trampoline {
            assert_eq!(o.status.code(), Some(127), "{args}: {o:?}");
        } else {
            assert_ne!(o.status.code(), Some(0), "{args}: {o:?}");
        }
    }
    assert_eq!(host_binary(), before, "the host's rcrun binary changed");
}

#[test]
fn binary_on_a_read_only_mount_runs_without_re_exec_and_stays_unwritable() {
    // A node that installs rcrun on a read-only mount needs no re-exec:
    // the waiting init runs from that very path, through a mount that
    // refuses writes. The read-only bind lives in a private mount
    // namespace; the init keeps its file (and mount) alive after it.
    let c = Ct::new("true");
    c.write_config();
    let bin = c.path("rcrun");
    std::fs::copy(RCRUN, &bin).unwrap();
    let before = std::fs::read(&bin).unwrap();
    let script = format!(
        "set -e; mount --bind {b} {b}; mount -o remount,bind,ro {b}; \
         {b} --root {r} create -b {bundle} {id} >{log} 2>&1 || {{ cat {log} >&2; exit 1; }}",
        log = c.path("create.log").display(),
        b = bin.display(),
        r = c.root().display(),
        bundle = c.bundle().display(),
        id = c.id,
    );
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pid = c.state()["pid"].as_i64().unwrap();
    let link = format!("/proc/{pid}/exe");
    // No re-exec: neither the overlay (own device and inode numbers) nor
    // a memfd, but the very file.
    use std::os::unix::fs::MetadataExt;
    let (exe, file) = (
        std::fs::metadata(&link).unwrap(),
        std::fs::metadata(&bin).unwrap(),
    );
    assert_eq!((exe.dev(), exe.ino()), (file.dev(), file.ino()));
    let vfs = nix::sys::statvfs::statvfs(link.as_str()).unwrap();
    assert!(vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let w = std::fs::OpenOptions::new().append(true).open(&link);
    assert!(w.is_err(), "opened the runtime binary for writing");
    assert_ok(&c.rcrun(&["delete", "-f", &c.id]));
    assert_eq!(std::fs::read(&bin).unwrap(), before);
}

/// The system calls `strace` saw `rcrun --root <tmp> <args>` make, of
/// those in `filter`, by name and in order.
fn traced_calls(filter: &str, args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let root = dir.path().join("state");
    let o = std::process::Command::new("strace")
        .arg("-qq")
        .arg("-o")
        .arg(&trace)
        .args(["-e", &format!("trace={filter}"), RCRUN, "--root"])
        .arg(&root)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.code().is_some(), "{o:?}");
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('(').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn exec_reexecutes_sealed_before_its_runtime_starts() {
    // src/cli/early.rs: for exec, the binary's entry point executes it
    // again through the read-only overlay before the C library and the
    // Rust runtime start; the runtime's first act, installing its signal
    // stack (sigaltstack), would otherwise come first and the re-exec
    // only from main. Once, not again after it.
    let filter = "execve,execveat,sigaltstack";
    let cmd = ["exec", "nonexistent", "true"];
    let calls = traced_calls(filter, &cmd);
    assert_eq!(
        calls.first().map(String::as_str),
        Some("execve"),
        "{calls:?}"
    );
    assert_eq!(
        calls.get(1).map(String::as_str),
        Some("execveat"),
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("execve")).count(),
        2,
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c == "sigaltstack"), "{calls:?}");
    // create and run start at once (they seal later, and only for a
    // container that needs it), as does everything else.
    for cmd in [
        &["run", "-b", "/nonexistent", "x"][..],
        &["create", "-b", "/nonexistent", "x"],
        &["list"],
    ] {
        let calls = traced_calls(filter, cmd);
        assert_eq!(
            calls.iter().filter(|c| c.starts_with("execve")).count(),
            1,
            "{cmd:?}: {calls:?}"
        );
    }
}

/// A copy of the runtime binary to attack (a successful attack must not
/// break the one the other tests use), and rcrun commands run from it.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Copy {
        let dir = tempfile::Builder::new()
            .prefix("rcrun-bin.")
            .tempdir()
            .unwrap();
        std::fs::copy(RCRUN, dir.path().join("rcrun")).unwrap();
        Copy { dir }
    }

    fn bin(&self) -> std::path::PathBuf {
        self.dir.path().join("rcrun")
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.bin()).unwrap()
    }

    /// "DEV:INO" of the copy, as busybox's `stat -L -c %d:%i` prints it.
    fn dev_ino(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(self.bin()).unwrap();
        format!("{}:{}", m.dev(), m.ino())
    }

    /// `COPY --root <c's> ARGS...` to completion, output through files.
    fn rcrun(&self, c: &Ct, args: &[&str]) -> std::process::Output {
        let (o, e) = (c.path(&unique("out")), c.path(&unique("err")));
        let status = loop {
            let r = std::process::Command::new(self.bin())
                .arg("--root")
                .arg(c.root())
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::fs::File::create(&o).unwrap())
                .stderr(std::fs::File::create(&e).unwrap())
                .status();
            // A fork of another test thread may still hold the copy's
            // write fd for a moment (until its exec closes it).
            match r {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        std::process::Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// Polls `/tmp/r` in `c` (through an exec) until it has a line
    /// "done"; returns its contents.
    fn results(&self, c: &Ct) -> String {
        for _ in 0..600 {
            let o = self.rcrun(c, &["exec", &c.id, "cat", "/tmp/r"]);
            let out = stdout(&o);
            if out.lines().any(|l| l == "done") {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the attack never finished");
    }
}

/// The attack on every process visible in the container, for as long
/// as /tmp/stop does not exist (at most ~30 s): any whose exe is the
/// copy of the runtime (same device and inode) is a "HIT", and so is any
/// exe link that opens for writing. Lines go to /tmp/r, then "done".
const SCAN: &str = r#"i=0
while [ ! -e /tmp/stop ] && [ $i -lt 3000 ]; do
  for p in /proc/[0-9]*; do
    [ "$p" = /proc/$$ ] && continue
    d=$(stat -L -c %d:%i $p/exe 2>/dev/null) || continue
    [ "$d" = "$BIN" ] && echo "HIT $p $d" >> /tmp/r
    ( : >> $p/exe ) 2>/dev/null && echo "WROTE $p" >> /tmp/r
  done
  i=$((i+1))
done
echo scanned $i >> /tmp/r; echo done >> /tmp/r"#;

#[test]
fn exec_with_cap_sys_ptrace_into_a_created_container_cannot_reach_the_runtime() {
    // The review's reproduction, on a copy of the binary: a process
    // exec'd into a created container with CAP_SYS_PTRACE opens the
    // waiting init's exe, then writes through it once `start` made the
    // binary free. The init waits in the sealed trampoline, so the link
    // is a memfd that refuses writes, never the runtime.
    let bin = Copy::new();
    let before = bin.bytes();
    let mut c = Ct::new("touch /tmp/started; sleep 300");
    c.cfg["process"]["args"] = json!(["sh", "-c", "touch /tmp/started; sleep 300"]);
    c.write_config();
    let b = c.bundle();
    assert_ok(&bin.rcrun(&c, &["create", "-b", b.to_str().unwrap(), &c.id]));
    let attack = "exec 7</proc/1/exe && echo opened >> /tmp/r; \
         stat -L -c %d:%i:%s /proc/1/exe >> /tmp/r; \
         (printf PWNED | dd of=/proc/1/exe conv=notrunc) 2>/dev/null && echo WROTE-init >> /tmp/r; \
         i=0; while [ ! -e /tmp/started ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; \
         (printf PWNED | dd of=/proc/self/fd/7 conv=notrunc) 2>/dev/null && echo WROTE-fd >> /tmp/r; \
         echo done >> /tmp/r";
    let o = bin.rcrun(
        &c,
        &[
            "exec",
            "-d",
            "--cap",
            "CAP_SYS_PTRACE",
            &c.id,
            "sh",
            "-c",
            attack,
        ],
    );
    assert_ok(&o);
    assert_ok(&bin.rcrun(&c, &["start", &c.id]));
    let out = bin.results(&c);
    assert!(out.contains("opened"), "{out}");
    assert!(!out.contains("WROTE"), "{out}");
    let (dev_ino, size) = (bin.dev_ino(), before.len());
    assert!(!out.contains(&dev_ino), "the init was the runtime: {out}");
    assert!(
        !out.contains(&format!(":{size}\n")),
        "read the runtime: {out}"
    );
    assert_eq!(bin.bytes(), before, "the runtime binary changed");
}

#[test]
fn a_created_container_without_a_process_holds_no_runtime() {
    // Without `process`, the init waits until the container is deleted:
    // in the trampoline too, not as the runtime.
    let bin = Copy::new();
    let before = bin.bytes();
    let mut c = Ct::new("true");
    c.cfg.as_object_mut().unwrap().remove("process");
    c.write_config();
    let b = c.bundle();
    assert_ok(&bin.rcrun(&c, &["create", "-b", b.to_str().unwrap(), &c.id]));
    let o = bin.rcrun(
        &c,
        &[
            "exec",
            "--cap",
            "CAP_SYS_PTRACE",
            "--env",
            &format!("BIN={}", bin.dev_ino()),
            &c.id,
            "sh",
            "-c",
            "stat -L -c %d:%i /proc/1/exe; (printf PWNED | dd of=/proc/1/exe conv=notrunc) \
             2>/dev/null && echo WROTE; echo end",
        ],
    );
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.ends_with("end\n"), "{out}");
    assert!(
        !out.contains(&bin.dev_ino()),
        "the init was the runtime: {out}"
    );
    assert!(!out.contains("WROTE"), "{out}");
    assert_eq!(bin.bytes(), before, "the runtime binary changed");
}

/// A copy of the runtime, and a container it runs (`sleep 600`) in which
/// a process exec'd with CAP_SYS_PTRACE scans (SCAN).
fn scanning() -> (Copy, Vec<u8>, Ct) {
    let bin = Copy::new();
    let before = bin.bytes();
    let c = Ct::new("sleep 600");
    c.write_config();
    let b = c.bundle();
    assert_ok(&bin.rcrun(&c, &["run", "-d", "-b", b.to_str().unwrap(), &c.id]));
    let o = bin.rcrun(
        &c,
        &[
            "exec",
            "-d",
            "--cap",
            "CAP_SYS_PTRACE",
            "--env",
            &format!("BIN={}", bin.dev_ino()),
            &c.id,
            "sh",
            "-c",
            SCAN,
        ],
    );
    assert_ok(&o);
    (bin, before, c)
}

/// Stops the scan and returns its findings, which must be clean.
#[track_caller]
fn assert_scan_clean(bin: &Copy, c: &Ct) {
    assert_ok(&bin.rcrun(c, &["exec", &c.id, "touch", "/tmp/stop"]));
    let out = bin.results(c);
    assert!(
        !out.contains("HIT"),
        "a container process was the runtime: {out}"
    );
    assert!(!out.contains("WROTE"), "{out}");
}

#[test]
fn runs_into_a_shared_pid_namespace_never_show_the_runtime() {
    // `run`: containers started into the pid namespace of a container
    // where a process with CAP_SYS_PTRACE scans every process's exe.
    let (bin, before, a) = scanning();
    let pid = bin.rcrun(&a, &["state", &a.id]);
    let pid: serde_json::Value = serde_json::from_slice(&pid.stdout).unwrap();
    let pid = pid["pid"].as_i64().unwrap();
    for _ in 0..5 {
        let mut c = Ct::new("sleep 0.2");
        c.cfg["linux"]["namespaces"] = json!([
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")},
            {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}
        ]);
        c.write_config();
        let bb = c.bundle();
        assert_ok(&bin.rcrun(&c, &["run", "-b", bb.to_str().unwrap(), &c.id]));
    }
    assert_scan_clean(&bin, &a);
    assert_eq!(bin.bytes(), before, "the runtime binary changed");
}

#[test]
fn execs_never_show_the_runtime() {
    // `exec` alone: every other exec's process, while it sets up, is
    // seen by a scanning process with CAP_SYS_PTRACE.
    let (bin, before, c) = scanning();
    for _ in 0..20 {
        assert_ok(&bin.rcrun(&c, &["exec", &c.id, "true"]));
    }
    assert_scan_clean(&bin, &c);
    assert_eq!(bin.bytes(), before, "the runtime binary changed");
}

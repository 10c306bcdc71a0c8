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
    // The default: no re-exec; the waiting init is a clone of the runtime
    // (its exe is the host's file, as the host sees it) and non-dumpable,
    // so a container process without CAP_SYS_PTRACE cannot even read
    // the link, let alone write through it.
    let before = host_binary();
    let c = Ct::new("true");
    assert_ok(&c.create(&[]));
    let pid = c.state()["pid"].as_i64().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, std::fs::canonicalize(RCRUN).unwrap());
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

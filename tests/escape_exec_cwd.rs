//! CVE-2024-21626: the working directory (or a `PATH` entry) of a
//! container process resolving through `/proc/self/fd/N` to a directory
//! of the host: one the runtime had open (its state directory, its
//! overlay, a cgroup) or one its caller left open (containerd, conmon or
//! a script can hold such fds). Every such fd is closed before any path
//! lookup made for the container, and the cwd is resolved inside the
//! root with openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, then
//! checked after the switch to the container's user.
//!
//! Each attack runs over every fd number from 3 to 64, once with the
//! caller holding a host directory at all of them, once without (then
//! the runtime's own fds take the low numbers).

mod common;
use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FDS: std::ops::RangeInclusive<i32> = 3..=64;

/// The fd numbers to try: every one in FDS while the caller holds a host
/// directory at all of them; without it, the ones the runtime's own fds
/// take (the lowest free: a dozen at most), with room to spare.
fn fds(holding: Option<&Path>) -> std::ops::RangeInclusive<i32> {
    if holding.is_some() {
        FDS
    } else {
        3..=24
    }
}

/// A host directory that must never be reached: it holds a file whose
/// name is `MARK`, and an executable `hostprog` that prints it.
struct HostDir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

const MARK: &str = "HOST-DIRECTORY-REACHED";

impl HostDir {
    fn new() -> HostDir {
        let tmp = tempfile::Builder::new()
            .prefix("rcrun-host.")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join(format!("{MARK}-parent"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(MARK), "").unwrap();
        let prog = dir.join("hostprog");
        std::fs::write(&prog, format!("#!/bin/sh\necho {MARK}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        HostDir { _tmp: tmp, dir }
    }
}

/// Runs `rcrun --root <c's> ARGS` to completion; with `host`, the host
/// directory is open (not close-on-exec) at every fd in FDS.
fn rcrun_holding(c: &Ct, host: Option<&Path>, args: &[&str]) -> Output {
    let (o, e) = (c.path(&unique("out")), c.path(&unique("err")));
    let mut cmd = Command::new(RCRUN);
    cmd.arg("--root")
        .arg(c.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    let dir = host.map(|h| std::fs::File::open(h).unwrap());
    if let Some(d) = &dir {
        let fd = d.as_raw_fd();
        // SAFETY: only dup2 and close in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 200) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for n in FDS {
                    if libc::dup2(200, n) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::close(200);
                Ok(())
            });
        }
    }
    let status = cmd.status().unwrap();
    Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    }
}

/// What `ls` of the cwd and its parent shows must be the container's.
#[track_caller]
fn assert_not_reached(what: &str, o: &Output) {
    let out = stdout(o) + &stderr(o);
    assert!(!out.contains(MARK), "{what}: reached the host: {out}");
    // The runtime's own directories: its binary's (the sealed overlay),
    // its state directory.
    for name in ["rcrun-test.", "deps", "state.json", "exec.fifo"] {
        assert!(
            !out.contains(name),
            "{what}: reached the runtime's {name}: {out}"
        );
    }
}

/// A running container with a `/w` the attacks can repoint (in a
/// rootfs of its own, which the test changes from the host).
fn running() -> (Ct, std::path::PathBuf) {
    let mut c = Ct::new("sleep 600");
    let rootfs = c.private_rootfs();
    c.cfg["process"]["cwd"] = json!("/w");
    c.write_config();
    let b = c.bundle();
    assert_ok(&c.rcrun(&["run", "-d", "-b", b.to_str().unwrap(), &c.id]));
    (c, rootfs)
}

const LS: &str = "ls -a . ..; pwd";

#[test]
fn exec_cwd_through_proc_self_fd_stays_in_the_container() {
    let host = HostDir::new();
    let (c, _) = running();
    for holding in [Some(host.dir.as_path()), None] {
        for n in fds(holding) {
            let cwd = format!("/proc/self/fd/{n}");
            let o = rcrun_holding(&c, holding, &["exec", "--cwd", &cwd, &c.id, "sh", "-c", LS]);
            assert_not_reached(
                &format!("exec --cwd {cwd} (caller fds: {})", holding.is_some()),
                &o,
            );
        }
    }
}

#[test]
fn exec_config_cwd_symlinked_to_proc_self_fd_stays_in_the_container() {
    // The review's reproduction: the process's cwd (from config.json) is
    // replaced, inside the container, by a symlink to /proc/self/fd/N.
    let host = HostDir::new();
    let (c, rootfs) = running();
    for holding in [Some(host.dir.as_path()), None] {
        for n in fds(holding) {
            let w = rootfs.join("w");
            let _ = std::fs::remove_dir_all(&w).or_else(|_| std::fs::remove_file(&w));
            std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), &w).unwrap();
            let o = rcrun_holding(&c, holding, &["exec", &c.id, "sh", "-c", LS]);
            assert_not_reached(
                &format!("cwd /w -> fd {n} (caller fds: {})", holding.is_some()),
                &o,
            );
        }
    }
}

#[test]
fn path_through_proc_self_fd_finds_no_host_program() {
    // Every /proc/self/fd/N in PATH at once: the search must find none.
    let host = HostDir::new();
    let (c, _) = running();
    let path: Vec<String> = FDS.map(|n| format!("/proc/self/fd/{n}")).collect();
    let path = format!("PATH={}", path.join(":"));
    for holding in [Some(host.dir.as_path()), None] {
        let o = rcrun_holding(&c, holding, &["exec", "--env", &path, &c.id, "hostprog"]);
        assert!(!o.status.success(), "{path}: {o:?}");
        assert_not_reached(&path, &o);
    }
}

#[test]
fn create_cwd_through_proc_self_fd_stays_in_the_container() {
    // The same for the init: config cwd /proc/self/fd/N (which the
    // runtime creates inside the rootfs if it can, as runc does) or a
    // symlink in the image to it.
    let host = HostDir::new();
    let mut c = Ct::new(LS);
    let rootfs = c.private_rootfs();
    for holding in [Some(host.dir.as_path()), None] {
        for n in fds(holding) {
            let _ = std::fs::remove_file(rootfs.join("w"));
            std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), rootfs.join("w")).unwrap();
            // The literal /proc/self/fd/N fails the same way for every N
            // (a magic link: refused by the lookup); a few suffice.
            let literal = [3, 4, 5, 10, 24, 64].contains(&n);
            let cwds = ["/w".to_string(), format!("/proc/self/fd/{n}")];
            for cwd in cwds.iter().take(if literal { 2 } else { 1 }) {
                c.cfg["process"]["cwd"] = json!(cwd);
                c.write_config();
                let b = c.bundle();
                let id = unique("cwd");
                // run deletes the container either way (and the test's
                // Ct its cgroup).
                let o = rcrun_holding(&c, holding, &["run", "-b", b.to_str().unwrap(), &id]);
                assert_not_reached(
                    &format!("run, cwd {cwd} (caller fds: {})", holding.is_some()),
                    &o,
                );
            }
        }
    }
}

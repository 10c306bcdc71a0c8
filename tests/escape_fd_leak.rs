//! CVE-2024-21626: a host file descriptor (a directory, in the exploit)
//! leaking into the container, or a cwd that resolves outside the rootfs.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

/// Runs rcrun with a host directory open (not close-on-exec) at fd 7.
fn run_with_host_dir_fd(c: &Ct) -> std::process::Output {
    c.write_config();
    let b = c.bundle();
    let dir = std::fs::File::open("/").unwrap();
    let fd = dir.as_raw_fd();
    let mut cmd = c.cmd(&["run", "-b", b.to_str().unwrap(), &c.id]);
    let (out, err) = (c.path("out"), c.path("err"));
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    // SAFETY: dup2 in the child before exec; the new fd is not CLOEXEC.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().unwrap();
    std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

#[test]
fn host_fds_do_not_reach_the_container() {
    let c = Ct::new("ls /proc/self/fd | tr '\\n' ' '; echo; ls /proc/self/fd/7/ 2>/dev/null | head -1 || true; echo end");
    let o = run_with_host_dir_fd(&c);
    assert_ok(&o);
    let out = stdout(&o);
    let fds: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert!(!fds.contains(&"7"), "host fd 7 leaked: {out}");
    assert!(out.ends_with("end\n"), "{out}");
}

#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    // The exploit's config: process.cwd = /proc/self/fd/7.
    let mut c = Ct::new("pwd; ls ..");
    c.cfg["process"]["cwd"] = json!("/proc/self/fd/7");
    let o = run_with_host_dir_fd(&c);
    assert!(
        !o.status.success(),
        "the container ran with cwd {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("process.cwd /proc/self/fd/7"),
        "{}",
        stderr(&o)
    );
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn the_sealed_re_execs_mount_does_not_reach_the_container() {
    // The entry point keeps the read-only overlay it re-executes the
    // binary through open across that exec (src/cli/early.rs), at the
    // lowest free fd. With fds 3 to 5 closed in the caller and
    // `--preserve-fds 3`, that fd falls among the preserved ones, which
    // the init does not close: it must still not reach the container,
    // whether the init joins its cgroups late (and closes it then) or
    // not (a startContainer hook rules that out; close-on-exec then). A
    // caller's own RCRUN_SEALED_MOUNT_FD (here naming the host's root
    // directory) must not be taken for the overlay's.
    for hook in [false, true] {
        let mut c = Ct::new("for f in /proc/$$/fd/*; do echo ${f##*/}; done | tr '\\n' ' '");
        if hook {
            c.cfg["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
        }
        c.write_config();
        let b = c.bundle();
        let root = std::fs::File::open("/").unwrap();
        let fd = root.as_raw_fd();
        let mut cmd = c.cmd(&[
            "run",
            "--preserve-fds",
            "3",
            "-b",
            b.to_str().unwrap(),
            &c.id,
        ]);
        cmd.env("RCRUN_SEALED_MOUNT_FD", "9");
        // SAFETY: dup2 and close in the child before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 9) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for n in 3..=5 {
                    libc::close(n);
                }
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        assert_ok(&o);
        // The shell's fds (its glob's directory is closed by the time
        // the loop runs): 0 to 2; 9, which was not preserved, must not be
        // there either.
        assert_eq!(stdout(&o).trim(), "0 1 2", "hook {hook}");
    }
}

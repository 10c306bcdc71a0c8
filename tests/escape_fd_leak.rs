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

/// `rcrun ARGS` as `c.cmd` runs it, with fds 3 to 5 closed, the host's
/// root directory open as fd 9 (not preserved) and a caller's
/// RCRUN_SEALED_MOUNT_FD naming it.
fn with_fds_3_to_5_closed(c: &Ct, args: &[&str]) -> std::process::Output {
    let root = std::fs::File::open("/").unwrap();
    let fd = root.as_raw_fd();
    let mut cmd = c.cmd(args);
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
    cmd.output().unwrap()
}

/// The shell's fds, in one line, as a subshell sees them (the subshell's
/// glob holds its own directory fd). No pipeline: the shell would hold
/// the pipe's ends until it had forked both sides, while the loop looks.
const LIST_FDS: &str = "(for f in /proc/$$/fd/*; do printf '%s ' ${f##*/}; done); :";

#[test]
fn the_runtimes_own_fds_do_not_reach_the_container() {
    // With fds 3 to 5 closed in the caller and `--preserve-fds 3`, the
    // runtime's own fds land among the preserved ones, which the init
    // does not close: none may reach the container. `run` starts the
    // program through the exec trampoline, whose sync socket must close
    // when the program starts (or, with a startContainer hook, the
    // runtime re-executes itself sealed first). `exec` re-executes sealed
    // from the entry point (src/cli/early.rs), which keeps the overlay's
    // mount fd open across that exec at the lowest free fd. A caller's
    // own RCRUN_SEALED_MOUNT_FD (here naming the host's root directory)
    // must not be taken for the overlay's.
    for hook in [false, true] {
        let mut c = Ct::new(LIST_FDS);
        if hook {
            c.cfg["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
        }
        c.write_config();
        let b = c.bundle();
        let args = [
            "run",
            "--preserve-fds",
            "3",
            "-b",
            b.to_str().unwrap(),
            &c.id,
        ];
        let o = with_fds_3_to_5_closed(&c, &args);
        assert_ok(&o);
        // The shell's fds (its glob's directory is closed by the time
        // the loop runs): 0 to 2; 9, which was not preserved, must not be
        // there either.
        assert_eq!(stdout(&o).trim(), "0 1 2", "hook {hook}");
    }
    let c = Ct::new("sleep 1000");
    c.start();
    let o = with_fds_3_to_5_closed(
        &c,
        &["exec", "--preserve-fds", "3", &c.id, "sh", "-c", LIST_FDS],
    );
    assert_ok(&o);
    assert_eq!(stdout(&o).trim(), "0 1 2", "exec");
    assert_ok(&c.rcrun(&["delete", "-f", &c.id]));
}

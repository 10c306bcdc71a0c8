//! process.*: user, capabilities, rlimits, terminal, fds, as the
//! container sees them.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn status_field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .to_string()
}

#[test]
fn user_groups_umask_cwd_env() {
    let mut c =
        Ct::new("id -u; id -g; id -G; umask; pwd; echo $FOO; touch /tmp/f && stat -c %a /tmp/f");
    c.cfg["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534], "umask": 23});
    c.cfg["process"]["cwd"] = json!("/tmp/work/dir");
    c.cfg["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    let out = c.run_ok();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    assert_eq!(l[2], "1000 5 65534");
    assert_eq!(l[3], "0027");
    assert_eq!(l[4], "/tmp/work/dir");
    assert_eq!(l[5], "bar baz");
    assert_eq!(l[6], "640");
}

#[test]
fn capability_sets_as_proc_status_shows_them() {
    // A non-root user: root gains its bounding set at every exec, while a
    // user's sets after exec are exactly the ambient set.
    let mut c = Ct::new("cat /proc/self/status");
    c.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.cfg["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    let out = c.run_ok();
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10.
    assert_eq!(
        status_field(&out, "CapBnd"),
        format!("{:016x}", 1 | 1 << 5 | 1 << 10)
    );
    assert_eq!(status_field(&out, "CapInh"), format!("{:016x}", 1 << 10));
    assert_eq!(status_field(&out, "CapAmb"), format!("{:016x}", 1 << 10));
    assert_eq!(status_field(&out, "CapPrm"), format!("{:016x}", 1 << 10));
    assert_eq!(status_field(&out, "CapEff"), format!("{:016x}", 1 << 10));
}

#[test]
fn capabilities_of_a_non_root_user_and_no_new_privs() {
    let mut c =
        Ct::new("cat /proc/self/status; chown 0 /tmp 2>/dev/null && echo chowned || echo denied");
    c.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.cfg["process"]["noNewPrivileges"] = json!(true);
    c.cfg["process"]["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": [], "permitted": []});
    let out = c.run_ok();
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "CapEff"), "0000000000000000");
    assert_eq!(status_field(&out, "CapBnd"), format!("{:016x}", 1 << 5));
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert!(out.ends_with("denied\n"), "{out}");
}

#[test]
fn rlimits_and_oom_score_adj() {
    let mut c = Ct::new("ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj");
    c.cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    c.cfg["process"]["oomScoreAdj"] = json!(500);
    assert_eq!(c.run_ok(), "512\n1024\n0\n500\n");
}

#[test]
fn rlimit_above_the_hard_limit_names_the_rlimit() {
    let mut c = Ct::new("true");
    c.cfg["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}]);
    assert_err(&c.run(), "process.rlimits: RLIMIT_NOFILE");
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn executable_not_found_is_reported_at_create() {
    let mut c = Ct::new("true");
    c.cfg["process"]["args"] = json!(["no-such-program"]);
    let o = c.create(&[]);
    // runc's wording: engines read it to pick exit codes 126 and 127.
    assert_err(
        &o,
        "process.args[0]: exec: \"no-such-program\": executable file not found in $PATH",
    );
    assert!(!c.root().join(&c.id).exists());
    assert!(c.cgroup_dirs().is_empty());
    let mut c = Ct::new("true");
    c.cfg["process"]["args"] = json!(["/nonexistent"]);
    assert_err(
        &c.create(&[]),
        "exec: \"/nonexistent\": stat /nonexistent: no such file or directory",
    );
    let mut c = Ct::new("true");
    c.cfg["process"]["args"] = json!(["/etc/passwd"]);
    assert_err(&c.create(&[]), "exec: \"/etc/passwd\": permission denied");
}

#[test]
fn preserve_fds_passes_exactly_those_fds() {
    // fds 3 and 4 are passed; an inherited fd 7 beyond --preserve-fds
    // must not reach the container.
    let c = Ct::new("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; cat <&3; cat <&4");
    c.write_config();
    let p3 = c.path("three");
    let p4 = c.path("four");
    std::fs::write(&p3, "three\n").unwrap();
    std::fs::write(&p4, "four\n").unwrap();
    let b = c.bundle();
    let mut cmd = c.cmd(&[
        "run",
        "--preserve-fds",
        "2",
        "-b",
        b.to_str().unwrap(),
        &c.id,
    ]);
    let out = c.path("out");
    cmd.stdout(std::fs::File::create(&out).unwrap());
    let (a, bb, x) = (
        std::fs::File::open(&p3).unwrap(),
        std::fs::File::open(&p4).unwrap(),
        std::fs::File::open(&p4).unwrap(),
    );
    use std::os::unix::process::CommandExt;
    let (fa, fb, fx) = (a.as_raw_fd(), bb.as_raw_fd(), x.as_raw_fd());
    // SAFETY: dup2 in the child before exec, onto fds it will own.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(fa, 3), (fb, 4), (fx, 7)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let st = cmd.status().unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let mut l = text.lines();
    // ls itself opens one fd for the directory it lists.
    let fds: Vec<u32> = l
        .next()
        .unwrap()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(fds.starts_with(&[0, 1, 2, 3, 4]), "{fds:?}");
    assert!(!fds.contains(&7), "fd 7 leaked: {fds:?}");
    assert!(fds.len() <= 6, "unexpected fds: {fds:?}");
    assert_eq!(l.collect::<Vec<_>>(), ["three", "four"]);
}

#[test]
fn only_stdio_is_open_and_cwd_is_inside() {
    let c = Ct::new("ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/cwd");
    // stdio, and the directory `ls` lists.
    assert_eq!(c.run_ok(), "0 1 2 3 \n/\n");
}

/// A console-socket listener like conmon's: receives the pty master.
fn recv_master(listener: &std::os::unix::net::UnixListener) -> (OwnedFd, String) {
    let (s, _) = listener.accept().unwrap();
    let mut name = [0u8; 256];
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // SAFETY: valid msghdr over live buffers.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.0.as_mut_ptr().cast();
        m.msg_controllen = 64;
        let n = libc::recvmsg(s.as_raw_fd(), &mut m, 0);
        assert!(n > 0);
        let c = libc::CMSG_FIRSTHDR(&m);
        assert!(!c.is_null());
        assert_eq!((*c).cmsg_type, libc::SCM_RIGHTS);
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        (
            OwnedFd::from_raw_fd(fd),
            String::from_utf8_lossy(&name[..n as usize]).into_owned(),
        )
    }
}

#[test]
fn terminal_through_the_console_socket() {
    let mut c = Ct::new("tty; stty size; echo done");
    c.cfg["process"]["terminal"] = json!(true);
    c.cfg["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    let sock = c.path("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || recv_master(&listener));
    assert_ok(&c.create(&["--console-socket", sock.to_str().unwrap()]));
    let (master, name) = t.join().unwrap();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    assert_ok(&c.rcrun(&["start", &c.id]));
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.ends_with(b"done\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert_eq!(text, format!("{name}\n33 111\ndone\n"));
}

#[test]
fn terminal_without_console_socket_is_refused_when_detached() {
    let mut c = Ct::new("true");
    c.cfg["process"]["terminal"] = json!(true);
    assert_err(
        &c.create(&[]),
        "process.terminal: a terminal needs --console-socket",
    );
    let c = Ct::new("true");
    let sock = c.path("s");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    assert_err(
        &c.create(&["--console-socket", sock.to_str().unwrap()]),
        "process.terminal is false",
    );
}

#[test]
fn new_session_keyring_unless_no_new_keyring() {
    // The session keyring is named after the container.
    let c = Ct::new("cat /proc/keys");
    let id = c.id.clone();
    assert!(
        c.run_ok().contains(&format!(" {id}: ")),
        "no keyring named {id}"
    );
    let c = Ct::new("cat /proc/keys");
    c.write_config();
    let b = c.bundle();
    let o = c.rcrun(&["run", "--no-new-keyring", "-b", b.to_str().unwrap(), &c.id]);
    assert_ok(&o);
    assert!(!stdout(&o).contains(&format!(" {}: ", c.id)));
}

#[test]
fn run_in_the_foreground_proxies_a_terminal() {
    // No --console-socket: run makes its own and copies the pty to stdout.
    let mut c = Ct::new("tty; echo on-a-terminal");
    c.cfg["process"]["terminal"] = json!(true);
    let out = c.run_ok().replace('\r', "");
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.ends_with("on-a-terminal\n"), "{out:?}");
}

#[test]
fn the_terminal_belongs_to_the_user_and_keeps_the_tty_group() {
    // As runc: the pty's owner becomes the process's user; its group
    // stays devpts' (gid=5 in the mount options), not the user's.
    let mut c = Ct::new("stat -c '%u:%g' $(tty)");
    c.cfg["process"]["terminal"] = json!(true);
    c.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = c.run_ok().replace('\r', "");
    assert_eq!(out, "1000:5\n");
}

#[test]
fn debug_log_lines_go_to_the_log_file() {
    let c = Ct::new("true");
    c.write_config();
    let log = c.path("debug.log");
    let b = c.bundle();
    let o = c.rcrun(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "run",
        "-b",
        b.to_str().unwrap(),
        &c.id,
    ]);
    assert_ok(&o);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("level=debug")
            && text.contains("is waiting for start")
            && text.contains("deleted"),
        "{text}"
    );
}

#[test]
fn capabilities_that_cannot_be_granted_are_a_warning() {
    // This machine's runtime lacks CAP_SYS_RESOURCE: asking for it warns
    // and the rest is granted (config.md).
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = u64::from_str_radix(&status_field(&own, "CapBnd"), 16).unwrap();
    let mut c = Ct::new("grep CapBnd /proc/self/status");
    let all = ["CAP_KILL", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"];
    c.cfg["process"]["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    let o = c.run();
    assert_ok(&o);
    let got = u64::from_str_radix(&status_field(&stdout(&o), "CapBnd"), 16).unwrap();
    let want = ((1u64 << 5) | (1 << 24) | (1 << 12)) & bnd;
    assert_eq!(got, want);
    if bnd & (1 << 24) == 0 {
        assert!(
            stderr(&o).contains("cannot grant CAP_SYS_RESOURCE"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn dev_console_is_the_terminal() {
    let mut c =
        Ct::new("stat -c '%t' /dev/console; stat -c '%t:%T' $(tty); echo hi > /dev/console");
    c.cfg["process"]["terminal"] = json!(true);
    let out = c.run_ok().replace('\r', "");
    let l: Vec<&str> = out.lines().collect();
    // Both are the same devpts pty (major 136 = 0x88).
    assert_eq!(l[0], "88", "{out}");
    assert!(l[1].starts_with("88:"), "{out}");
    assert_eq!(l[2], "hi", "{out}");
}

#[test]
fn personality_and_memory_policy_apply_to_the_program() {
    // linux.personality LINUX32: uname reports a 32-bit machine;
    // linux.memoryPolicy: the program's policy shows in numa_maps.
    let mut c = Ct::new("uname -m; head -1 /proc/self/numa_maps | cut -d' ' -f2");
    c.cfg["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.cfg["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    assert_eq!(c.run_ok(), "i686\nbind:0\n");
    let mut c = Ct::new("true");
    c.cfg["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE"});
    assert_err(&c.run(), "linux.memoryPolicy.nodes");
}

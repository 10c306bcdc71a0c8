//! linux.seccomp: targeted denials observed from inside, a large
//! allowlist in the shape of Docker's default profile, argument
//! comparisons, exec'd processes under the same filter, and
//! SCMP_ACT_NOTIFY with a seccomp agent on listenerPath.

mod common;
use common::*;
use serde_json::json;

#[test]
fn targeted_denials_with_errno_and_kill() {
    let mut c = Ct::new("mkdir /tmp/d 2>&1; touch /tmp/f && echo touch-ok; echo end");
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    assert_eq!(
        c.run_ok(),
        "mkdir: can't create directory '/tmp/d': Operation not permitted\ntouch-ok\nend\n"
    );
    // SCMP_ACT_KILL_PROCESS: sethostname kills the caller with SIGSYS.
    let mut c = Ct::new("hostname newname; echo rc=$?; hostname");
    c.cfg["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    assert_eq!(
        c.run_ok(),
        format!("rc={}\nrcrun-test\n", 128 + libc::SIGSYS)
    );
}

/// Every syscall of this architecture, from the kernel headers.
fn all_syscalls() -> Vec<String> {
    std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        .expect("libc6-dev headers")
        .lines()
        .filter_map(|l| l.strip_prefix("#define __NR_"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[test]
fn docker_shaped_allowlist() {
    // defaultAction ERRNO(ENOSYS) and hundreds of allowed names, minus mkdir.
    let names: Vec<String> = all_syscalls()
        .into_iter()
        .filter(|n| n != "mkdir" && n != "mkdirat")
        .collect();
    assert!(names.len() > 300);
    let mut c = Ct::new("echo start; ls / > /dev/null && echo ls-ok; mkdir /tmp/x 2>&1; echo end");
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    });
    let out = c.run_ok();
    assert!(out.starts_with("start\nls-ok\n"), "{out}");
    assert!(out.contains("Function not implemented"), "{out}");
    assert!(out.ends_with("end\n"), "{out}");
}

/// A static program that prints the errno of syscall 1000 (no kernel
/// has it), of clone3 with no arguments, and of mkdir.
const ERRNO_PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
static int e(long r) { return r < 0 ? errno : 0; }
int main(void) {
    int a = e(syscall(1000, 0, 0, 0));
    int b = e(syscall(SYS_clone3, 0, 0));
    int c = e(syscall(SYS_mkdir, "/tmp/d", 0700));
    printf("%d %d %d\n", a, b, c);
    return 0;
}
"#;

#[test]
fn syscalls_newer_than_the_profile_get_enosys_not_the_default() {
    // runc's patchbpf: the profile (every syscall up to, not including,
    // clone3, without mkdir; default ERRNO(EPERM)) cannot know later
    // syscalls, so they fail with ENOSYS and the C library falls back;
    // those it leaves out below its largest get the default.
    let mut c = Ct::new("/errno-probe");
    let root = c.private_rootfs();
    let src = c.path("probe.c");
    std::fs::write(&src, ERRNO_PROBE_C).unwrap();
    let o = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(root.join("errno-probe"))
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(o.status.success(), "gcc: {}", stderr(&o));
    let names: Vec<String> = all_syscalls()
        .into_iter()
        .filter(|n| n != "mkdir" && n != "clone3")
        .filter(|n| {
            let nr = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
                .unwrap()
                .lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("#define __NR_{n} "))
                        .map(|v| v.trim().parse::<i64>().unwrap())
                });
            nr.is_some_and(|nr| nr < libc::SYS_clone3)
        })
        .collect();
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    });
    assert_eq!(
        c.run_ok(),
        format!("{} {} {}\n", libc::ENOSYS, libc::ENOSYS, libc::EPERM)
    );
}

#[test]
fn a_profile_denying_getcwd_loaded_early_still_runs() {
    // runtime-tools' linux_seccomp: without noNewPrivileges the filter is
    // loaded while privileged, before the user switch; the runtime's own
    // check that the cwd is inside the root (getcwd) comes before it.
    let mut c = Ct::new("echo ran");
    c.cfg["process"]["noNewPrivileges"] = json!(false);
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    assert_eq!(c.run_ok(), "ran\n");
}

#[test]
fn argument_comparisons() {
    // kill(2) with signal 10 (SIGUSR1) is denied; other signals are not.
    let mut c = Ct::new("kill -USR1 $$ 2>&1 || echo usr1-denied; kill -0 $$ && echo sig0-ok");
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}]
    });
    let out = c.run_ok();
    assert!(out.contains("usr1-denied"), "{out}");
    assert!(out.contains("sig0-ok"), "{out}");
}

#[test]
fn exec_gets_the_containers_filter_and_nnp_path_works() {
    let mut c = Ct::new("sleep 100");
    c.cfg["process"]["noNewPrivileges"] = json!(true);
    c.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    c.start();
    let o = c.rcrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "mkdir /tmp/y 2>&1; grep Seccomp: /proc/self/status",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

/// A seccomp agent: receives the listener fd and the container process
/// state on `l`, then answers every notification with EROFS until the
/// filter's last process is gone. Returns the state and the count.
fn seccomp_agent(l: std::os::unix::net::UnixListener) -> (serde_json::Value, usize) {
    agent(l, false)
}

/// The same; with `pass`, every call goes on as if there were no filter
/// (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
fn agent(l: std::os::unix::net::UnixListener, pass: bool) -> (serde_json::Value, usize) {
    serve(accept(&l), pass)
}

/// The runtime's next connection to `l` (within 60 s).
fn accept(l: &std::os::unix::net::UnixListener) -> std::os::unix::net::UnixStream {
    l.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match l.accept() {
            Ok((s, _)) => return s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("no connection from the runtime: {e}"),
        }
    }
}

/// An agent on the connection `s` (see `agent`).
fn serve(s: std::os::unix::net::UnixStream, pass: bool) -> (serde_json::Value, usize) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    s.set_nonblocking(false).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(RawFd);
    let r = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    let mut fd = None;
    for c in r.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(f) = c {
            // SAFETY (test): the kernel installed this fd for us.
            fd = Some(unsafe { OwnedFd::from_raw_fd(f[0]) });
        }
    }
    let n = r.bytes;
    let doc: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    let fd = fd.expect("an SCM_RIGHTS fd");
    let mut answered = 0;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY (test): one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 60_000) };
        assert!(r > 0, "the agent waited 60 s for a notification");
        if pfd.revents & libc::POLLIN == 0 {
            break; // POLLHUP: no process left under the filter
        }
        // SAFETY (test): zeroed plain C structs filled by the kernel.
        unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            if libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) < 0 {
                continue;
            }
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            if pass {
                resp.flags = 1; // SECCOMP_USER_NOTIF_FLAG_CONTINUE
            } else {
                resp.error = -libc::EROFS;
            }
            libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp);
        }
        answered += 1;
    }
    (doc, answered)
}

#[test]
fn notify_hands_the_listener_fd_to_listener_path() {
    let mut c = Ct::new("mkdir /tmp/n 2>&1; echo rc=$?; test -d /tmp/n || echo absent; echo end");
    let sock = c.path("agent.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock, "listenerMetadata": "agent-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let agent = std::thread::spawn(move || seccomp_agent(l));
    let out = c.run_ok();
    let (doc, answered) = agent.join().unwrap();
    assert_eq!(
        out,
        "mkdir: can't create directory '/tmp/n': Read-only file system\nrc=1\nabsent\nend\n"
    );
    assert!(answered >= 1);
    assert_eq!(doc["fds"], json!(["seccompFd"]));
    assert_eq!(doc["metadata"], "agent-meta");
    assert_eq!(doc["state"]["id"], json!(c.id));
    assert!(doc["pid"].as_i64().unwrap() > 0, "{doc}");
}

#[test]
fn notify_without_a_listener_fails_create_and_leaves_nothing() {
    let mut c = Ct::new("true");
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": c.path("nobody-listens.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let o = c.create(&[]);
    assert_err(&o, "listenerPath");
    assert_err(&o, "failed to connect with seccomp agent");
    assert!(c.cgroup_dirs().iter().all(|d| !d.exists()));
    assert!(!c.root().join(&c.id).exists());
}

#[test]
fn two_conditions_on_one_argument_are_either_or() {
    // As runc: each becomes a rule of its own. personality(8) and
    // personality(0x20008) are refused, personality(0xffffffff) (a query)
    // is not.
    let mut c = Ct::new(
        "linux32 true 2>/dev/null && echo linux32-ok || echo linux32-refused; \
         linux32 --help >/dev/null 2>&1; [ -x /bin/linux32 ] && echo has-linux32; \
         uname -m >/dev/null && echo query-ok",
    );
    c.cfg["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}
        ]}]
    });
    assert_eq!(c.run_ok(), "linux32-refused\nhas-linux32\nquery-ok\n");
    // Without the filter, linux32 works.
    let c = Ct::new("linux32 true && echo linux32-ok");
    assert_eq!(c.run_ok(), "linux32-ok\n");
}

#[test]
fn notify_in_exec_hands_the_agent_the_containers_state() {
    // runc: an exec'd process's listener fd comes with the container's
    // state, as the init's does (it came with none: "EOF while parsing").
    let mut c = Ct::new("sleep 100");
    let sock = c.path("agent.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let l2 = l.try_clone().unwrap();
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // The init's connection is queued once create returns: taken here,
    // so that the exec's agent gets the exec's.
    let init = std::thread::spawn(move || accept(&l));
    c.start();
    let init = init.join().unwrap();
    let _init_agent = std::thread::spawn(move || serve(init, false));
    let exec_agent = std::thread::spawn(move || seccomp_agent(l2));
    let o = c.rcrun(&["exec", &c.id, "sh", "-c", "mkdir /tmp/e 2>&1; echo end"]);
    let (doc, answered) = exec_agent.join().unwrap();
    assert_ok(&o);
    assert!(
        stdout(&o).contains("Read-only file system"),
        "{}",
        stdout(&o)
    );
    assert!(answered >= 1);
    assert_eq!(doc["state"]["id"], json!(c.id));
    assert_eq!(doc["state"]["status"], "running");
    assert!(doc["pid"].as_i64().unwrap() > 0, "{doc}");
}

#[test]
fn notify_on_the_syscalls_the_runtime_makes_after_loading_works() {
    // runc's "important syscalls": close, read, openat, execve go to the
    // agent too, once it has the fd, with either place of loading.
    for nnp in [false, true] {
        let mut c = Ct::new("true");
        c.cfg["process"]["args"] = json!(["/bin/true"]);
        c.cfg["process"]["noNewPrivileges"] = json!(nnp);
        let sock = c.path("agent.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        c.cfg["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{"names": ["execve", "openat", "open", "read", "close"],
                          "action": "SCMP_ACT_NOTIFY"}]
        });
        let a = std::thread::spawn(move || agent(l, true));
        let o = c.run();
        assert_ok(&o);
        let (_, answered) = a.join().unwrap();
        assert!(answered >= 1, "nnp {nnp}");
    }
    let mut c = Ct::new("true");
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": c.path("a.sock"),
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]
    });
    assert_err(
        &c.run(),
        "SCMP_ACT_NOTIFY cannot be used for the write syscall",
    );
}

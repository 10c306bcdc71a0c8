//! linux.seccomp: targeted denials observed from inside, a large
//! allowlist in the shape of Docker's default profile, argument
//! comparisons, and exec'd processes under the same filter.

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

#[test]
fn notify_is_refused_naming_the_field() {
    let mut c = Ct::new("true");
    c.cfg["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/tmp/x.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    assert_err(&c.create(&[]), "linux.seccomp.syscalls[0].action");
    assert!(c.cgroup_dirs().is_empty());
}

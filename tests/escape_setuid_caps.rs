//! Attack class: gaining privilege inside the container. A setuid-root
//! program (built here, static) run by an unprivileged container user:
//! without noNewPrivileges it becomes root, but only with the bounding
//! set's capabilities; with noNewPrivileges it gains nothing. Container
//! root without CAP_SYS_ADMIN / CAP_NET_ADMIN / CAP_MKNOD cannot mount,
//! reconfigure the network, set the hostname or make device nodes, and
//! holds no capability the bounding set lacks.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Prints the effective uid, CapEff, and whether sethostname(2) works.
const PROBE_C: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    unsigned long long eff = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7)) sscanf(line + 7, "%llx", &eff);
    printf("euid=%d capeff=%llx sethostname=%s\n", (int)geteuid(), eff,
           sethostname("pwned", 5) == 0 ? "ok" : "denied");
    return 0;
}
"#;

/// A container whose private rootfs holds /bin/suprobe, setuid root.
fn with_probe(script: &str) -> Ct {
    let mut c = Ct::new(script);
    let root = c.private_rootfs();
    let src = c.path("probe.c");
    std::fs::write(&src, PROBE_C).unwrap();
    let bin = root.join("bin/suprobe");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc");
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
    c.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_KILL: u32 = 5;

#[test]
fn setuid_works_without_nnp_but_only_within_the_bounding_set() {
    let mut c = with_probe("suprobe");
    c.cfg["process"]["noNewPrivileges"] = json!(false);
    c.cfg["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"]});
    // Control: setuid does take effect (euid 0), so the next test's
    // result comes from noNewPrivileges, not from a broken probe.
    assert_eq!(
        c.run_ok(),
        format!("euid=0 capeff={:x} sethostname=denied\n", 1u64 << CAP_KILL)
    );
}

#[test]
fn no_new_privileges_stops_setuid() {
    let mut c = with_probe("suprobe; grep NoNewPrivs /proc/self/status");
    c.cfg["process"]["noNewPrivileges"] = json!(true);
    c.cfg["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_SYS_ADMIN"]});
    assert_eq!(
        c.run_ok(),
        "euid=1000 capeff=0 sethostname=denied\nNoNewPrivs:\t1\n"
    );
}

#[test]
fn root_without_the_capabilities_cannot_use_them() {
    let caps = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_NET_BIND_SERVICE",
    ];
    let mut c = Ct::new(
        "mount -t tmpfs t /mnt 2>/dev/null && echo ESCAPED mount; \
         ip link set lo up 2>/dev/null && echo ESCAPED net_admin; \
         hostname pwned 2>/dev/null && echo ESCAPED sethostname; \
         mknod /tmp/sda b 8 0 2>/dev/null && echo ESCAPED mknod; \
         grep -E '^Cap(Bnd|Eff)' /proc/self/status; echo done",
    );
    c.cfg["process"]["capabilities"] =
        json!({"bounding": caps, "effective": caps, "permitted": caps});
    let out = c.run_ok();
    let mask: u64 = [0u32, 5, 7, 6, 10].iter().map(|b| 1u64 << b).sum();
    assert_eq!(
        out,
        format!("CapEff:\t{mask:016x}\nCapBnd:\t{mask:016x}\ndone\n"),
        "{out}"
    );
    assert_ne!(1u64 << CAP_SYS_ADMIN & mask, 1u64 << CAP_SYS_ADMIN);
}

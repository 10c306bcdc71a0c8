//! CVE-2016-9962: a container process attaching to, or reading the /proc
//! entries of, a runtime process that entered the container but has not
//! exec'd yet (and still holds host fds). rcrun's init and `exec`
//! processes are non-dumpable until they exec: a container process
//! without CAP_SYS_PTRACE cannot ptrace them or open their exe, fds or
//! environment. The exec resets it for the user's program.

mod common;
use common::*;

#[test]
fn a_waiting_init_is_out_of_the_containers_reach_until_it_execs() {
    let mut c = Ct::new("sleep 100");
    // `rcrun spec`'s capabilities (runc's defaults): no CAP_SYS_PTRACE.
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    c.cfg["process"]["capabilities"] = serde_json::json!({
        "bounding": caps, "effective": caps, "permitted": caps});
    assert_ok(&c.create(&[]));
    // The init (pid 1 inside) waits for start. A process exec'd into the
    // container as its root, with the default capabilities:
    let probe = "for f in exe cwd root; do readlink /proc/1/$f >/dev/null 2>&1 && echo \"$f open\" || echo \"$f denied\"; done; \
                 readlink /proc/1/fd/0 >/dev/null 2>&1 && echo 'fd open' || echo 'fd denied'; \
                 cat /proc/1/environ >/dev/null 2>&1 && echo 'environ open' || echo 'environ denied'";
    let o = c.rcrun(&["exec", &c.id, "sh", "-c", probe]);
    assert_ok(&o);
    let out = stdout(&o);
    for what in ["exe", "cwd", "root", "fd", "environ"] {
        assert!(out.contains(&format!("{what} denied")), "{out}");
    }
    // Once started, pid 1 is the user's program, dumpable as usual.
    assert_ok(&c.rcrun(&["start", &c.id]));
    let o = c.rcrun(&["exec", &c.id, "sh", "-c", probe]);
    assert_ok(&o);
    let out = stdout(&o);
    for what in ["exe", "cwd", "root", "fd", "environ"] {
        assert!(out.contains(&format!("{what} open")), "{out}");
    }
}

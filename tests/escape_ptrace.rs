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

#[test]
fn exec_setup_is_never_seen_with_the_runtimes_capabilities() {
    // CAP_SYS_PTRACE over the host's user namespace (`exec --cap`)
    // attaches to non-dumpable processes too. An `exec` therefore forks
    // into the container's pid namespace only once it has dropped to the
    // process's own capabilities: a scan of every process's CapEff from
    // inside, while execs run, sees nothing wider than the container's
    // (KILL, NET_BIND_SERVICE, AUDIT_WRITE: 0x20000420) or the
    // scanner's own (with SYS_PTRACE: 0x20080420).
    let mut c = Ct::new("sleep 600");
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    c.cfg["process"]["capabilities"] = serde_json::json!({
        "bounding": caps, "effective": caps, "permitted": caps});
    c.start();
    let scan = r#"i=0
while [ ! -e /tmp/stop ] && [ $i -lt 20000 ]; do
  grep -H CapEff /proc/[0-9]*/status 2>/dev/null | grep -v -e '\s0000000020000420$' \
    -e '\s0000000020080420$' -e '\s0000000000000000$' >> /tmp/r
  i=$((i+1))
done
echo "scanned $i" >> /tmp/r; echo done >> /tmp/r"#;
    let o = c.rcrun(&[
        "exec",
        "-d",
        "--cap",
        "CAP_SYS_PTRACE",
        &c.id,
        "sh",
        "-c",
        scan,
    ]);
    assert_ok(&o);
    for _ in 0..40 {
        assert_ok(&c.rcrun(&["exec", &c.id, "true"]));
    }
    assert_ok(&c.rcrun(&["exec", &c.id, "touch", "/tmp/stop"]));
    let mut out = String::new();
    for _ in 0..600 {
        out = stdout(&c.rcrun(&["exec", &c.id, "cat", "/tmp/r"]));
        if out.lines().any(|l| l == "done") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        out.lines().any(|l| l == "done"),
        "the scan never finished: {out}"
    );
    let wide: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("CapEff"))
        .take(5)
        .collect();
    assert!(
        wide.is_empty(),
        "a process with the runtime's capabilities was visible: {wide:?}"
    );
}

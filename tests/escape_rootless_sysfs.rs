//! Attack class: a writable host /sys (CVE-2023-25809). In a user
//! namespace without a network namespace of its own, sysfs cannot be
//! mounted, and the host's /sys is bound instead (as runc does). A bind
//! ignores `ro`, `nosuid`, `nodev` and `noexec`: the container got the
//! host's /sys read-write. The bind is now remounted with the flags the
//! mount asks for, and they are applied to the mounts below it too.

mod common;
use common::*;
use serde_json::json;

#[test]
fn sysfs_fallback_bind_is_read_only() {
    let mut c = Ct::new(
        "grep -E '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /sys[/ ]' /proc/self/mountinfo; \
         echo ==; \
         (cat /sys/class/net/lo/mtu > /sys/class/net/lo/mtu) 2>&1; \
         touch /sys/rcrun-probe 2>&1; true",
    );
    // No network namespace: sysfs needs one owned by the container's
    // user namespace, so the host's /sys is bound.
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}
    ]);
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    let out = c.run_ok();
    let (mounts, writes) = out.split_once("==\n").unwrap();
    let mut top = false;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let opts: Vec<&str> = f[5].split(',').collect();
        assert!(opts.contains(&"ro"), "not read-only: {l}");
        if f[4] == "/sys" {
            top = true;
            for o in ["nosuid", "nodev", "noexec"] {
                assert!(opts.contains(&o), "/sys lacks {o}: {l}");
            }
        }
    }
    assert!(top, "no /sys mount in {mounts}");
    assert_eq!(
        writes.matches("Read-only file system").count(),
        2,
        "writes to /sys did not fail with EROFS: {writes}"
    );
}

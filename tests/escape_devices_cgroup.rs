//! Attack class: reaching the host's devices through the device cgroup.
//! A container with CAP_MKNOD makes a node for the host's disk (and for
//! /dev/kmsg, the host's kernel log) and reads it. The device cgroup must
//! refuse the open (runc's rules: mknod of any device is allowed, opening
//! one only for the default devices and the listed rules), whether the
//! spec has no `linux.resources` at all, no `devices` in it, rules
//! without a leading deny-all, negative device numbers (refused at
//! create), or an `update` that tries to add rules later. The default
//! devices keep working in every case.

mod common;
use common::*;
use serde_json::json;

/// A block device of the host that the host itself can open: the one
/// holding `/`, or else the first in /sys/dev/block (in the v2 VM the
/// root is not on a block device; on some hosts the root disk is closed
/// even to root). The container opening it shows the device cgroup let
/// it through, whatever it reads (an empty zram device reads nothing).
fn host_disk() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let opens = |maj: u32, min: u32| {
        let uevent = std::fs::read_to_string(format!("/sys/dev/block/{maj}:{min}/uevent"))
            .unwrap_or_default();
        uevent
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .is_some_and(|n| std::fs::File::open(format!("/dev/{n}")).is_ok())
    };
    let dev = std::fs::metadata("/").unwrap().dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    if opens(maj, min) {
        return Some((maj, min));
    }
    let mut all: Vec<(u32, u32)> = std::fs::read_dir("/sys/dev/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let (a, b) = n.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    all.sort();
    all.into_iter().find(|&(a, b)| opens(a, b))
}

/// The script: uses the default devices, then makes nodes for the host's
/// disk and /dev/kmsg and tries to read them. Prints one line per step.
fn attack() -> String {
    let mut s = String::from(
        "echo x > /dev/null && echo null-ok; \
         echo zero-$(head -c 4 /dev/zero | wc -c); \
         echo urandom-$(head -c 4 /dev/urandom | wc -c); \
         (: < /dev/tty) 2>&1 | grep -q 'not permitted' && echo tty-denied; \
         try() { mknod /dev/$1 $2 $3 $4 2>/tmp/err && echo $1-mknod-ok || echo $1-mknod-denied: $(cat /tmp/err); \
         if head -c 512 /dev/$1 >/tmp/out 2>/tmp/err; then echo $1-read-$(wc -c < /tmp/out); \
         else echo $1-read-denied: $(cat /tmp/err); fi; }; \
         try hostkmsg c 1 11; ",
    );
    if let Some((maj, min)) = host_disk() {
        s += &format!("try hostdisk b {maj} {min}; ");
    }
    s
}

/// The attack failed: no host device was read, and the defaults work.
#[track_caller]
fn assert_contained(out: &str) {
    for want in ["null-ok", "zero-4", "urandom-4", "hostkmsg-read-denied"] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("tty-denied"), "/dev/tty denied:\n{out}");
    if host_disk().is_some() {
        assert!(
            out.contains("hostdisk-read-denied"),
            "the host's disk:\n{out}"
        );
    }
    for line in out.lines().filter(|l| l.contains("-read-denied")) {
        // The device cgroup's answer, not a missing driver.
        assert!(line.contains("Operation not permitted"), "{line}");
    }
}

#[test]
fn no_linux_resources_denies_host_devices() {
    let c = Ct::new(&attack());
    assert!(c.cfg["linux"].get("resources").is_none());
    assert_contained(&c.run_ok());
}

#[test]
fn resources_without_devices_deny_host_devices() {
    let mut c = Ct::new(&attack());
    c.cfg["linux"]["resources"] = json!({"pids": {"limit": 100}});
    assert_contained(&c.run_ok());
}

#[test]
fn rules_without_deny_all_deny_host_devices() {
    let mut c = Ct::new(&attack());
    c.cfg["linux"]["resources"] = json!({"devices": [
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    ]});
    assert_contained(&c.run_ok());
    // A deny of one device after the defaults' allows wins over nothing
    // else: still no host device, and /dev/null still works.
    let mut c = Ct::new(&attack());
    c.cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "type": "b", "major": 7, "access": "rwm"}
    ]});
    assert_contained(&c.run_ok());
}

#[test]
fn negative_device_numbers_are_refused() {
    for (devices, field) in [
        (
            json!([{"allow": true, "type": "b", "major": -2, "minor": -2, "access": "rwm"}]),
            "linux.resources.devices[0].major",
        ),
        (
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 8, "minor": -7, "access": "rwm"}
            ]),
            "linux.resources.devices[1].minor",
        ),
    ] {
        let mut c = Ct::new(&attack());
        c.cfg["linux"]["resources"] = json!({ "devices": devices });
        assert_err(&c.run(), field);
        assert!(c.cgroup_dirs().is_empty(), "{:?}", c.cgroup_dirs());
    }
    // -1 is runc's wildcard: allowed, and with a deny-all before a
    // wildcard mknod-only rule the host's devices stay closed.
    let mut c = Ct::new(&attack());
    c.cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"}
    ]});
    assert_contained(&c.run_ok());
}

#[test]
fn update_cannot_open_host_devices() {
    let mut c = Ct::new("sleep 60");
    c.cfg["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    c.start();
    let res = c.path("res.json");
    std::fs::write(
        &res,
        json!({"devices": [
            {"allow": true, "type": "b", "access": "rwm"},
            {"allow": true, "type": "c", "access": "rwm"}
        ]})
        .to_string(),
    )
    .unwrap();
    assert_ok(&c.rcrun(&["update", "--resources", res.to_str().unwrap(), &c.id]));
    let o = c.rcrun(&["exec", &c.id, "sh", "-c", &attack()]);
    assert_ok(&o);
    assert_contained(&stdout(&o));
}

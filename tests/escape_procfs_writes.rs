//! Attack class: procfs files the init writes by path (sysctls, the
//! AppArmor exec attribute) redirected by a mount over part of /proc or
//! a symlink (CVE-2025-52881, CVE-2019-16884, CVE-2023-27561). Mount
//! destinations on or under /proc are refused (runc's `checkProcMount`),
//! by name at plan time and again once resolved inside the rootfs; the
//! init writes through a verified procfs (openat2 RESOLVE_NO_XDEV |
//! RESOLVE_NO_SYMLINKS from a /proc that is the root of a procfs), so a
//! mount made by other means (a hook) fails the write instead of taking
//! it. The host files standing in for procfs must stay untouched.

mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A host directory that stands in for /proc/sys/kernel: its
/// `domainname` says "untouched" until a sysctl write lands in it.
fn fake_kernel_dir(c: &Ct) -> PathBuf {
    let d = c.path("fake-kernel");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("domainname"), "untouched\n").unwrap();
    d
}

#[track_caller]
fn assert_untouched(fake: &Path) {
    assert_eq!(
        std::fs::read_to_string(fake.join("domainname")).unwrap(),
        "untouched\n",
        "the sysctl was written into the volume"
    );
}

fn add_mount(c: &mut Ct, m: serde_json::Value) {
    c.cfg["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn sysctl_under_a_volume_over_proc_sys_is_refused() {
    // A bind of a host directory over /proc/sys/kernel (after /proc): the
    // sysctl would be written into the host directory.
    for dest in ["/proc/sys/kernel", "/proc/sys", "/proc/./sys/../sys/kernel"] {
        let mut c = Ct::new("cat /proc/sys/kernel/domainname");
        let fake = fake_kernel_dir(&c);
        let src = if dest.ends_with("kernel") {
            fake.clone()
        } else {
            std::fs::create_dir_all(c.path("fake-sys")).unwrap();
            std::os::unix::fs::symlink(&fake, c.path("fake-sys/kernel")).unwrap();
            c.path("fake-sys")
        };
        add_mount(
            &mut c,
            json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind"]}),
        );
        c.cfg["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
        let o = c.run();
        assert_untouched(&fake);
        assert_err(&o, "config.json: mounts[6].destination");
    }
    // A tmpfs over /proc/sys: the same, by name.
    let mut c = Ct::new("cat /proc/sys/kernel/domainname");
    add_mount(
        &mut c,
        json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
    );
    c.cfg["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    assert_err(&c.run(), "mounts[6].destination: /proc/sys is inside /proc");
}

#[test]
fn sysctl_under_a_mount_made_by_a_hook_is_not_written() {
    // A createContainer hook (in the container's mount namespace, before
    // pivot_root) binds a host directory over the container's
    // /proc/sys/kernel: no mounts entry to refuse, so the verified write
    // itself must refuse to cross the mount.
    let mut c = Ct::new("cat /proc/sys/kernel/domainname");
    let fake = fake_kernel_dir(&c);
    let root = c.cfg["root"]["path"].as_str().unwrap().to_string();
    c.cfg["hooks"] = json!({"createContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("mount --bind {} {root}/proc/sys/kernel", fake.display())],
    }]});
    c.cfg["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    let o = c.run();
    assert_untouched(&fake);
    assert_err(&o, "linux.sysctl.kernel.domainname: cross-device link");
}

#[test]
fn image_symlink_carrying_a_volume_onto_procfs_is_refused() {
    // /vol in the image points into /proc: the literal destination is not
    // under /proc, the resolved one is on procfs.
    for (link, kind) in [
        ("/proc/sys/kernel", "bind"),
        ("/proc/sys/kernel", "tmpfs"),
        ("/proc/self/attr", "tmpfs"),
        ("../proc/sys", "tmpfs"),
    ] {
        let mut c = Ct::new("cat /proc/sys/kernel/domainname");
        let root = c.private_rootfs();
        std::os::unix::fs::symlink(link, root.join("vol")).unwrap();
        let fake = fake_kernel_dir(&c);
        let m = if kind == "bind" {
            json!({"destination": "/vol", "type": "bind", "source": fake, "options": ["bind"]})
        } else {
            json!({"destination": "/vol", "type": "tmpfs", "source": "tmpfs"})
        };
        add_mount(&mut c, m);
        c.cfg["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
        let o = c.run();
        assert_untouched(&fake);
        assert_err(
            &o,
            "mounts[6] /vol: cannot resolve or create the destination inside the rootfs: cross-device link",
        );
    }
}

#[test]
fn mounts_on_proc_files_are_refused_by_name() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (dest, m) in [
        (
            "/proc/self/attr",
            json!({"type": "tmpfs", "source": "tmpfs"}),
        ),
        (
            "/proc/sysrq-trigger",
            json!({"type": "bind", "source": file.path(), "options": ["bind"]}),
        ),
        (
            "/proc/1/attr/current",
            json!({"type": "bind", "source": file.path(), "options": ["bind"]}),
        ),
        (
            "/proc/thread-self",
            json!({"type": "bind", "source": dir.path(), "options": ["bind"]}),
        ),
        (
            "/proc/sys/kernel/../../sysrq-trigger",
            json!({"type": "bind", "source": file.path(), "options": ["bind"]}),
        ),
    ] {
        let mut c = Ct::new("true");
        let mut m = m;
        m["destination"] = json!(dest);
        add_mount(&mut c, m);
        let o = c.run();
        assert_err(&o, "config.json: mounts[6].destination");
        assert!(stderr(&o).contains("is inside /proc"), "{}", stderr(&o));
    }
    // On /proc itself only a procfs.
    for m in [
        json!({"type": "tmpfs", "source": "tmpfs"}),
        json!({"type": "bind", "source": dir.path(), "options": ["rbind"]}),
    ] {
        let mut c = Ct::new("true");
        let mut m = m;
        m["destination"] = json!("/proc");
        c.cfg["mounts"][0] = m;
        assert_err(
            &c.run(),
            "mounts[0].destination: /proc can only be a mount of type proc",
        );
    }
}

#[test]
fn lxcfs_style_binds_onto_proc_files_still_work() {
    // lxcfs binds its files over /proc/uptime, /proc/meminfo...: allowed,
    // as in runc; and a second procfs on /proc too.
    let mut c = Ct::new(
        "cat /proc/uptime; head -n1 /proc/meminfo; test -r /proc/sys/kernel/hostname && echo ok",
    );
    let up = c.path("uptime");
    std::fs::write(&up, "4242.00 1.00\n").unwrap();
    let mem = c.path("meminfo");
    std::fs::write(&mem, "MemTotal: 1 kB\n").unwrap();
    add_mount(
        &mut c,
        json!({"destination": "/proc/uptime", "type": "bind", "source": up, "options": ["bind", "ro"]}),
    );
    add_mount(
        &mut c,
        json!({"destination": "/proc/meminfo", "type": "bind", "source": mem, "options": ["bind"]}),
    );
    add_mount(
        &mut c,
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
    );
    c.cfg["linux"]["sysctl"] = json!({"kernel.domainname": "fine"});
    let out = c.run_ok();
    // The second procfs covers the binds made before it.
    assert!(out.ends_with("ok\n"), "{out}");
    c.cfg["mounts"].as_array_mut().unwrap().pop();
    assert_eq!(
        c.run_ok(),
        "4242.00 1.00\nMemTotal: 1 kB\nok\n",
        "lxcfs-style binds"
    );
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[test]
fn apparmor_attribute_under_a_mount_made_by_a_hook_is_not_written() {
    // CVE-2019-16884: a volume over the init's attr directory would take
    // the profile, and the container would run unconfined. The mounts
    // entry for it is refused by name (above); a hook's mount must make
    // the write fail, not land.
    if !apparmor_enabled() {
        eprintln!(
            "AppArmor is not enabled here: the verified write is covered by sys.rs's unit tests"
        );
        return;
    }
    let mut c = Ct::new("true");
    let fake = c.path("fake-attr");
    std::fs::create_dir_all(fake.join("apparmor")).unwrap();
    std::fs::write(fake.join("apparmor/exec"), "").unwrap();
    std::fs::write(fake.join("exec"), "").unwrap();
    let root = c.cfg["root"]["path"].as_str().unwrap().to_string();
    // The init is pid 1 (and tid 1) of the container's pid namespace,
    // whose procfs is mounted at <rootfs>/proc.
    c.cfg["hooks"] = json!({"createContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "mount --bind {f} {root}/proc/1/task/1/attr && mount --bind {f} {root}/proc/1/attr",
            f = fake.display()
        )],
    }]});
    c.cfg["process"]["apparmorProfile"] = json!("unconfined");
    let o = c.run();
    assert_err(&o, "process.apparmorProfile: applying the profile");
    assert!(stderr(&o).contains("cross-device link"), "{}", stderr(&o));
    for f in ["apparmor/exec", "exec"] {
        assert_eq!(std::fs::read_to_string(fake.join(f)).unwrap(), "", "{f}");
    }
}

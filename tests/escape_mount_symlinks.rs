//! Attack class: mount destinations and rootfs paths that are symlinks
//! pointing out of the rootfs (CVE-2019-16884, CVE-2021-30465 and kin):
//! absolute and `..` symlinks, dangling ones, and a symlink swapped in
//! and out while containers start. Every path is resolved inside the
//! rootfs (openat2 with RESOLVE_IN_ROOT); the host directory the links
//! point at must stay empty.

mod common;
use common::*;
use serde_json::json;

#[test]
fn mount_destination_symlinks_cannot_escape_the_rootfs() {
    // In a private copy of the rootfs, /escape points at a host directory
    // by absolute path and /up climbs out with "..": mounts through them
    // must land inside the rootfs, never on the host.
    let mut c = Ct::new("test -d /escape/landed && test -d /up/landed2 && echo inside");
    let root = c.private_rootfs();
    let host_target = c.path("host-target");
    std::fs::create_dir(&host_target).unwrap();
    let inside = root.join(host_target.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    std::os::unix::fs::symlink(&host_target, root.join("escape")).unwrap();
    let up = format!(
        "{}{}",
        "../".repeat(20),
        host_target.strip_prefix("/").unwrap().display()
    );
    std::os::unix::fs::symlink(up, root.join("up")).unwrap();
    let m = c.cfg["mounts"].as_array_mut().unwrap();
    m.retain(|m| m["destination"] != "/tmp");
    m.push(json!({"destination": "/escape/landed", "type": "tmpfs", "source": "tmpfs"}));
    m.push(json!({"destination": "/up/landed2", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(c.run_ok(), "inside\n");
    assert_eq!(
        std::fs::read_dir(&host_target).unwrap().count(),
        0,
        "the host directory was touched"
    );
    assert!(inside.join("landed").is_dir() && inside.join("landed2").is_dir());
}

#[test]
fn dangling_symlink_destination_is_refused() {
    let mut c = Ct::new("true");
    let root = c.private_rootfs();
    std::os::unix::fs::symlink("/nonexistent/dir", root.join("dangling")).unwrap();
    c.cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/dangling/x", "type": "tmpfs", "source": "tmpfs"}));
    assert_err(
        &c.run(),
        "mounts[6] /dangling/x: cannot resolve or create the destination",
    );
    assert!(!std::path::Path::new("/nonexistent").exists());
}

#[test]
fn destination_swapped_for_a_symlink_during_setup_stays_inside() {
    // A host thread swaps /flip between a real directory and a symlink to
    // a host directory (renameat2 RENAME_EXCHANGE) while containers mount
    // a tmpfs at /flip/landed: whichever it sees, the mount and the
    // directory it creates must stay inside the rootfs.
    let mut c = Ct::new("true");
    let root = c.private_rootfs();
    let host_target = c.path("host-target");
    std::fs::create_dir(&host_target).unwrap();
    std::fs::create_dir(root.join("flip")).unwrap();
    std::os::unix::fs::symlink(&host_target, root.join("flip-link")).unwrap();
    let m = c.cfg["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/flip/landed", "type": "tmpfs", "source": "tmpfs"}));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let (a, b) = (
            std::ffi::CString::new(root.join("flip").into_os_string().into_encoded_bytes())
                .unwrap(),
            std::ffi::CString::new(root.join("flip-link").into_os_string().into_encoded_bytes())
                .unwrap(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY (test): two NUL-terminated paths.
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                n += 1;
            }
            n
        })
    };
    let mut ran = 0;
    let base = c.id.clone();
    for i in 0..30 {
        c.id = format!("{base}-r{i}");
        let o = c.run();
        if o.status.success() {
            ran += 1;
        }
        // A failure is fine (the path changed under it); an escape is not.
        assert_eq!(
            std::fs::read_dir(&host_target).unwrap().count(),
            0,
            "run {i}: the host directory was touched"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = flipper.join().unwrap();
    assert!(swaps > 100, "the race did not run ({swaps} swaps)");
    assert!(ran > 0, "no container started at all");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(host_target.to_str().unwrap()),
        "a mount landed on the host"
    );
}

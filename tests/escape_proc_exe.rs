//! CVE-2019-5736: a container process reaching the runtime's binary
//! through /proc/<pid>/exe. The init that waits for `start` runs from a
//! private read-only overlayfs (as root) or a sealed memfd copy: the link
//! leads there, writes are refused, and the host's binary is untouched.

mod common;
use common::*;
use serde_json::json;

fn host_binary() -> Vec<u8> {
    std::fs::read(RCRUN).unwrap()
}

/// How `/proc/<pid>/exe` is protected: "memfd" or "overlay", or None
/// when it is a writable file (the host's binary).
fn protection(pid: i64) -> Option<&'static str> {
    let link = format!("/proc/{pid}/exe");
    if std::fs::read_link(&link)
        .unwrap()
        .to_string_lossy()
        .contains("memfd:")
    {
        return Some("memfd");
    }
    let fs = nix::sys::statfs::statfs(link.as_str()).unwrap();
    let vfs = nix::sys::statvfs::statvfs(link.as_str()).unwrap();
    let ro = vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    (fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC && ro).then_some("overlay")
}

#[test]
fn waiting_init_is_a_sealed_copy_that_cannot_be_written() {
    let before = host_binary();
    let c = Ct::new("true");
    assert_ok(&c.create(&[]));
    let pid = c.state()["pid"].as_i64().unwrap();
    // From the host: the init's executable is the read-only overlay (we
    // are root) or the sealed memfd, not the file.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(exe, std::fs::canonicalize(RCRUN).unwrap());
    let how = protection(pid);
    assert_eq!(how, Some("overlay"), "{exe:?}");
    // From inside (a process exec'd into the created container): open
    // the init's exe for writing, truncate it, append to it.
    let o = c.rcrun(&[
        "exec", &c.id, "sh", "-c",
        "readlink /proc/1/exe; (echo pwned >> /proc/1/exe) 2>/dev/null && echo WROTE || echo refused; \
         (: > /proc/1/exe) 2>/dev/null && echo TRUNCATED || echo refused",
    ]);
    assert_ok(&o);
    let out = stdout(&o);
    assert!(!out.contains(RCRUN), "{out}");
    assert_eq!(out.matches("refused").count(), 2, "{out}");
    assert_eq!(host_binary(), before, "the host's rcrun binary changed");
}

#[test]
fn executing_proc_self_exe_does_not_reach_the_host_binary() {
    // The original exploit: the container's program is /proc/self/exe, so
    // at exec time the kernel resolves the init's executable: the sealed
    // in-memory copy (which cannot even start here: the busybox rootfs has
    // no dynamic loader), never the host's file.
    let before = host_binary();
    let mut c = Ct::new("true");
    c.cfg["process"]["args"] = json!(["/proc/self/exe", "--version"]);
    let o = c.run();
    assert!(
        !stdout(&o).contains("rcrun version"),
        "the runtime ran inside the container"
    );
    assert_eq!(host_binary(), before, "the host's rcrun binary changed");
}

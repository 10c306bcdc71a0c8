//! Attack class: device nodes made in the host's /dev. When a bind mount
//! covers /dev (`--device` passthrough setups bind the host's /dev), the
//! runtime must not make `linux.devices` or the default nodes in it, nor
//! chown/chmod a node already there: that would create or loosen the
//! host's own device files. As runc (needsSetupDev), such a /dev is left
//! alone. The test binds a temporary directory, never the real /dev.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn bound_dev_gets_no_devices_and_keeps_its_modes() {
    let mut c = Ct::new("test -c /dev/existing && echo ok");
    let hostdev = c.path("hostdev");
    std::fs::create_dir(&hostdev).unwrap();
    // A node already there, as the host's /dev/null is: 1:3, mode 0600.
    let existing = hostdev.join("existing");
    let p = std::ffi::CString::new(existing.to_str().unwrap()).unwrap();
    // SAFETY: p is NUL-terminated.
    let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::metadata(&existing).unwrap();
    let mounts: Vec<_> = c.cfg["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap().starts_with("/dev"))
        .cloned()
        .chain([json!({
            "destination": "/dev", "type": "bind", "source": hostdev,
            "options": ["rbind", "rw"]
        })])
        .collect();
    c.cfg["mounts"] = json!(mounts);
    c.cfg["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
         "fileMode": 0o666, "uid": 1234, "gid": 1234},
        {"path": "/dev/existing", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o666, "uid": 1234, "gid": 1234}
    ]);
    assert_eq!(c.run_ok(), "ok\n");
    let names: Vec<_> = std::fs::read_dir(&hostdev)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["existing"], "nodes made in the bound /dev");
    let after = std::fs::metadata(&existing).unwrap();
    assert_eq!(
        (after.mode(), after.uid(), after.gid()),
        (before.mode(), before.uid(), before.gid()),
        "the existing node's mode or owner changed"
    );
}

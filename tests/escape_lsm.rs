//! Attack class: running outside the security label the config asks for.
//! With AppArmor enabled (the cgroup v2 VM's Debian kernel), a profile
//! that denies writes is in force inside the container, for the init and
//! for `exec`; where a security module is missing (this host has neither
//! AppArmor nor SELinux), a requested profile or label is an error, as
//! with runc, rather than a container that silently runs unconfined.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Loads an AppArmor profile for the life of the value.
struct Profile {
    file: tempfile::NamedTempFile,
}

impl Profile {
    fn load(name: &str) -> Profile {
        if !Path::new("/sys/kernel/security/apparmor").exists() {
            let st = Command::new("mount")
                .args(["-t", "securityfs", "securityfs", "/sys/kernel/security"])
                .status()
                .unwrap();
            assert!(st.success(), "mounting securityfs");
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            format!(
                "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  ptrace,\n  unix,\n  deny /tmp/secret* w,\n}}\n"
            ),
        )
        .unwrap();
        let o = Command::new("apparmor_parser")
            .args(["-r", "-K"])
            .arg(file.path())
            .output()
            .expect("apparmor_parser (the apparmor package)");
        assert!(
            o.status.success(),
            "apparmor_parser: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Profile { file }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("apparmor_parser")
            .arg("-R")
            .arg(self.file.path())
            .status();
    }
}

#[test]
fn apparmor_profile_confines_init_and_exec_or_is_an_error() {
    let script = "(echo x > /tmp/secret || echo denied; echo x > /tmp/ok && echo allowed) > /tmp/result 2>&1; sleep 100";
    let mut c = Ct::new(script);
    let name = format!("rcrun-test-{}", c.id);
    c.cfg["process"]["apparmorProfile"] = json!(name);
    if !apparmor_enabled() {
        assert_err(
            &c.create(&[]),
            "process.apparmorProfile: AppArmor is not enabled",
        );
        assert!(c.cgroup_dirs().iter().all(|d| !d.exists()));
        // exec asks for one too: same answer, nothing started.
        let plain = Ct::new("sleep 100");
        plain.start();
        let o = plain.rcrun(&["exec", "--apparmor", &name, &plain.id, "true"]);
        assert_err(&o, "process.apparmorProfile");
        return;
    }
    let _p = Profile::load(&name);
    c.start();
    let mut out = String::new();
    for _ in 0..400 {
        out = stdout(&c.rcrun(&["exec", &c.id, "cat", "/proc/1/attr/current", "/tmp/result"]));
        if out.contains("allowed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(out.starts_with(&format!("{name} (enforce)\n")), "{out}");
    assert!(out.contains("denied\nallowed"), "{out}");
    let o = c.rcrun(&[
        "exec",
        "--apparmor",
        &name,
        &c.id,
        "sh",
        "-c",
        "cat /proc/self/attr/current; echo y > /tmp/secret2 || echo denied",
    ]);
    assert_eq!(stdout(&o), format!("{name} (enforce)\ndenied\n"));
    // Without the flag, exec gets the container's profile (runc builds
    // exec's process from the container's).
    let o = c.rcrun(&["exec", &c.id, "cat", "/proc/self/attr/current"]);
    assert_eq!(stdout(&o), format!("{name} (enforce)\n"));
}

#[test]
fn selinux_label_without_selinux_is_an_error() {
    assert!(
        !Path::new("/sys/fs/selinux/enforce").exists(),
        "this test expects a host without SELinux"
    );
    let mut c = Ct::new("true");
    c.cfg["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    assert_err(&c.create(&[]), "process.selinuxLabel: SELinux is disabled");
    // mountLabel alone is ignored without SELinux, as runc does.
    let mut c = Ct::new("echo ran");
    c.cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    assert_eq!(c.run_ok(), "ran\n");
}

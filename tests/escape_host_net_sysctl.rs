//! Attack class: host sysctls through a joined namespace. A config that
//! joins the runtime's own network namespace by path (`/proc/self/ns/net`,
//! `/proc/1/ns/net`: the host's) and sets `net.*` sysctls would change
//! the host's network settings. As runc, such sysctls are refused when
//! the joined namespace is the runtime's own (same device and inode as
//! `/proc/self/ns/net`); a network namespace of its own, joined by path,
//! still takes them.

mod common;
use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Puts the host's ip_forward back if a failing test changed it.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        if std::fs::read_to_string(IP_FORWARD).unwrap() != self.0 {
            std::fs::write(IP_FORWARD, &self.0).unwrap();
        }
    }
}

fn with_netns_path(path: &str, value: &str) -> Ct {
    let mut c = Ct::new("cat /proc/sys/net/ipv4/ip_forward");
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": path}
    ]);
    c.cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": value});
    c
}

#[test]
fn net_sysctl_refused_in_the_host_network_namespace() {
    let host = std::fs::read_to_string(IP_FORWARD).unwrap();
    let _restore = Restore(host.clone());
    let flipped = if host.trim() == "1" { "0" } else { "1" };
    let mut paths = vec!["/proc/self/ns/net"];
    if std::fs::read_link("/proc/1/ns/net").ok() == std::fs::read_link("/proc/self/ns/net").ok() {
        paths.push("/proc/1/ns/net");
    }
    for path in paths {
        let c = with_netns_path(path, flipped);
        let o = c.run();
        assert_err(&o, "linux.sysctl.net.ipv4.ip_forward");
        assert!(stderr(&o).contains("host's"), "{}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(IP_FORWARD).unwrap(),
            host,
            "the host's ip_forward changed through {path}"
        );
        // Refused before anything was made.
        assert!(c.cgroup_dirs().is_empty());
    }
}

/// A network namespace bound to a file, unmounted on drop.
struct NetNs(PathBuf);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn net_sysctl_allowed_in_a_joined_namespace_of_its_own() {
    let host = std::fs::read_to_string(IP_FORWARD).unwrap();
    let _restore = Restore(host.clone());
    let flipped = if host.trim() == "1" { "0" } else { "1" };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("netns");
    std::fs::write(&file, "").unwrap();
    let st = Command::new("unshare")
        .arg(format!("--net={}", file.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success(), "unshare --net");
    let ns = NetNs(file);
    let c = with_netns_path(ns.0.to_str().unwrap(), flipped);
    assert_eq!(c.run_ok().trim(), flipped);
    assert_eq!(std::fs::read_to_string(IP_FORWARD).unwrap(), host);
    drop(c);
}

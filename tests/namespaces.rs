//! Namespaces observed from inside the container.

mod common;
use common::*;
use serde_json::json;

fn ns_inside(c: &Ct, kinds: &[&str]) -> Vec<String> {
    let out = c.run_ok();
    let v: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(v.len(), kinds.len(), "{out}");
    v
}

#[test]
fn new_namespaces_differ_from_the_host() {
    let kinds = ["pid", "ipc", "uts", "mnt", "net", "cgroup"];
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut c = Ct::new(&script);
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "cgroup"}
    ]);
    for (k, inside) in kinds.iter().zip(ns_inside(&c, &kinds)) {
        assert_ne!(inside, host_ns(k), "{k} namespace is the host's");
        assert!(inside.starts_with(&format!("{k}:[")), "{inside}");
    }
}

#[test]
fn sysfs_shows_the_devices_of_the_containers_network_namespace() {
    // sysfs shows the network devices of the namespace it is mounted in:
    // the container's own (lo alone), never the host's (eth0 and more
    // here; the cgroup v2 VM may have lo alone).
    let c = Ct::new("readlink /proc/self/ns/net; ls /sys/class/net");
    let out = c.run_ok();
    let mut l = out.lines();
    assert_ne!(l.next().unwrap_or_default(), host_ns("net"), "{out}");
    assert_eq!(l.collect::<Vec<_>>(), ["lo"], "{out}");
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    let c = Ct::new("echo $$; ls /proc | grep -c '^[0-9]'");
    let out = c.run_ok();
    let mut l = out.lines();
    assert_eq!(l.next(), Some("1"));
    // sh, ls, grep and nothing of the host's.
    assert!(l.next().unwrap().parse::<u32>().unwrap() <= 4, "{out}");
}

#[test]
fn absent_namespaces_are_shared_with_the_host() {
    let mut c = Ct::new("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc");
    c.cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let v = ns_inside(&c, &["net", "ipc"]);
    assert_eq!(v[0], host_ns("net"));
    assert_eq!(v[1], host_ns("ipc"));
}

#[test]
fn namespaces_joined_by_path() {
    // Join the host's own net and uts namespaces by path.
    let mut c = Ct::new("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; echo $$");
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": "/proc/self/ns/net"},
        {"type": "uts", "path": "/proc/self/ns/uts"}
    ]);
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let out = c.run_ok();
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(v[0], host_ns("net"));
    assert_eq!(v[1], host_ns("uts"));
    // The pid namespace is new: the grandchild is its pid 1.
    assert_eq!(v[2], "1");
}

#[test]
fn joining_a_pid_namespace_by_path() {
    // A first container holds a pid namespace; a second joins it.
    let holder = Ct::new("sleep 100");
    assert_ok(&holder.create(&[]));
    assert_ok(&holder.rcrun(&["start", &holder.id]));
    let pid = holder.state()["pid"].as_i64().unwrap();
    let mut c = Ct::new("readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'");
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}
    ]);
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let out = c.run_ok();
    let want = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_eq!(out.lines().next().unwrap(), want.to_str().unwrap());
    assert!(
        out.lines().nth(1).unwrap().parse::<u32>().unwrap() >= 2,
        "{out}"
    );
}

#[test]
fn user_namespace_with_mappings() {
    let mut c =
        Ct::new("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}
    ]);
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // sysfs cannot be mounted without owning the network namespace's
    // user namespace; it is ours here, so it works. /dev/pts's gid=5 maps.
    let out = c.run_ok();
    let v: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(v[0], ["0", "100000", "65536"]);
    assert_eq!(v[1], ["0", "100000", "65536"]);
    assert_eq!(v[2], ["0"]);
    assert_ne!(v[3][0], host_ns("user"));
}

#[test]
fn user_namespace_devices_are_bind_mounts_of_the_hosts() {
    // mknod is not allowed in a user namespace: the default devices and
    // linux.devices entries are bind-mounted from the host, and work.
    let mut c = Ct::new(
        "for d in null zero full tty urandom; do grep -q \" /dev/$d \" /proc/self/mountinfo && echo bound-$d; done; \
         echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; \
         (echo x > /dev/full) 2>&1 | grep -q 'No space' && echo full-ok; ls -l /dev/full | cut -c1",
    );
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}
    ]);
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["devices"] = json!([{"path": "/dev/full", "type": "c", "major": 1, "minor": 7}]);
    assert_eq!(
        c.run_ok(),
        "bound-null\nbound-zero\nbound-full\nbound-tty\nbound-urandom\nnull-ok\n4\nfull-ok\nc\n"
    );
}

#[test]
fn time_namespace_with_offsets() {
    let mut c = Ct::new("cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    c.cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "time"}]);
    c.cfg["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 5}});
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let out = c.run_ok();
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    assert!(out.contains("boottime") && out.contains("3600"), "{out}");
    assert_ne!(out.lines().last().unwrap(), host_ns("time"));
}

#[test]
fn cgroup_namespace_hides_the_host_path() {
    // The pids line on v1, the single "0::" line on v2.
    let script = "grep -E '^[0-9]+:pids:|^0::' /proc/self/cgroup | head -1";
    let mut c = Ct::new(script);
    c.cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "cgroup"}]);
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let out = c.run_ok();
    assert!(out.trim().ends_with(":/"), "{out:?}");
    let mut c = Ct::new(script);
    c.cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    c.cfg.as_object_mut().unwrap().remove("hostname");
    let cg = c.cgroup.clone();
    let out = c.run_ok();
    assert!(out.trim().ends_with(&format!(":/{cg}")), "{out:?}");
}

#[test]
fn hostname_and_domainname() {
    let mut c = Ct::new("hostname; cat /proc/sys/kernel/domainname");
    c.cfg["hostname"] = json!("box1");
    c.cfg["domainname"] = json!("example.org");
    assert_eq!(c.run_ok(), "box1\nexample.org\n");
}

#[test]
fn user_namespace_binds_sources_only_the_hosts_root_can_reach() {
    // As runc: the runtime opens bind sources before the init enters its
    // user namespace, where its root is a mapped user that cannot even
    // traverse a 0700 directory of the host's root.
    let mut c = Ct::new("cat /v/file");
    let private = c.path("private");
    std::fs::create_dir(&private).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(private.join("vol")).unwrap();
    std::fs::write(private.join("vol/file"), "reached\n").unwrap();
    std::fs::set_permissions(
        private.join("vol/file"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    c.cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/v", "type": "bind", "source": private.join("vol"), "options": ["rbind", "ro"]
    }));
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}
    ]);
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    assert_eq!(c.run_ok(), "reached\n");
}

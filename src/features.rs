//! `rcrun features`: what this build supports (runtime-spec features.md).

use serde_json::{json, Value};

/// The features document. It lists only what rcrun implements.
pub fn features() -> Value {
    let caps: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow",
            "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec",
            "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
            "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
            "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "symfollow", "tmpcopyup", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                          "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            },
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.version": "1.1.0-compatible",
            "io.github.rcrun.version": env!("CARGO_PKG_VERSION")
        }
    })
}

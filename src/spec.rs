//! Loading and validating a bundle's `config.json`.
//!
//! The spec types are `oci-spec`'s; this module adds what runc checks
//! before it starts anything, with errors that name the offending field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Why a bundle's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// config.json is not valid JSON or does not match the spec's schema.
    #[error("{path}: field {field}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON path of the offending field, e.g. `linux.namespaces[2].type`.
        field: String,
        /// What the parser said.
        msg: String,
    },
    /// A field has a value the runtime refuses.
    #[error("config.json: {field}: {reason}")]
    Invalid {
        /// The offending field, e.g. `mounts[3].destination`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// `root.path` does not exist or is not a directory.
    #[error("config.json: root.path: rootfs {0} does not exist or is not a directory")]
    RootfsMissing(PathBuf),
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A validated bundle: its absolute path, its spec and its absolute rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub path: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// Absolute, canonical path of the root filesystem.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Whether the container's process wants a terminal
    /// (`process.terminal`).
    pub fn terminal(&self) -> bool {
        self.spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false)
    }

    /// Loads and validates `<dir>/config.json`.
    ///
    /// # Errors
    /// [`SpecError`] naming the file, field or path at fault.
    pub fn load(dir: &Path) -> Result<Bundle, SpecError> {
        let path = std::path::absolute(dir).map_err(|source| SpecError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let cfg = path.join("config.json");
        let data = std::fs::read(&cfg).map_err(|source| SpecError::Read {
            path: cfg.clone(),
            source,
        })?;
        let spec = parse(&data).map_err(|(field, msg)| SpecError::Parse {
            path: cfg.clone(),
            field,
            msg,
        })?;
        validate(&spec)?;
        let root = spec.root().as_ref().expect("validated");
        let rootfs = path.join(root.path());
        let rootfs = match std::fs::canonicalize(&rootfs) {
            Ok(p) if p.is_dir() => p,
            _ => return Err(SpecError::RootfsMissing(rootfs)),
        };
        Ok(Bundle { path, spec, rootfs })
    }
}

/// Parses config.json text, reporting the JSON path of a bad field.
pub fn parse(data: &[u8]) -> Result<Spec, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(document)".into()
        } else {
            field
        };
        (field, e.into_inner().to_string())
    })
}

/// Sysctls that runc lets a container set, and the namespace each needs.
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Whether the host runs an LSM (AppArmor or SELinux).
fn lsm_enabled(name: &str) -> bool {
    match name {
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y"),
        _ => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

const NOT_YET: &str = "is not supported by rcrun yet";

/// The first field that is set but not implemented, as an error.
fn unsupported(checks: &[(bool, &str)]) -> Result<(), SpecError> {
    match checks.iter().find(|(set, _)| *set) {
        Some((_, field)) => Err(invalid(*field, NOT_YET)),
        None => Ok(()),
    }
}

/// Fields rcrun does not implement yet. runtime.md: the runtime MUST
/// generate an error for values it does not support, rather than run the
/// container without them. An AppArmor profile or SELinux label the host
/// cannot apply is an error too, as with runc; `mountLabel` is ignored
/// without SELinux, as runc does.
fn refuse_unsupported(spec: &Spec) -> Result<(), SpecError> {
    if let Some(l) = spec.linux() {
        unsupported(&[
            (l.intel_rdt().is_some(), "linux.intelRdt"),
            (
                l.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
                "linux.netDevices",
            ),
            (
                l.mount_label().as_deref().is_some_and(|s| !s.is_empty()) && lsm_enabled("selinux"),
                "linux.mountLabel",
            ),
        ])?;
    }
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(invalid(
                format!("mounts[{i}].uidMappings (id-mapped mounts)"),
                NOT_YET,
            ));
        }
    }
    Ok(())
}

/// The checks of `process` that `exec`'s process gets too: unsupported
/// fields, security labels the host cannot apply, duplicate rlimits.
///
/// # Errors
/// [`SpecError::Invalid`] naming the first offending field.
pub fn check_process(p: &oci_spec::runtime::Process) -> Result<(), SpecError> {
    unsupported(&[
        (p.scheduler().is_some(), "process.scheduler"),
        (p.io_priority().is_some(), "process.ioPriority"),
        (p.exec_cpu_affinity().is_some(), "process.execCPUAffinity"),
    ])?;
    // Requested but unavailable is an error, as with runc (which
    // fails applying the profile, and validates the label).
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !lsm_enabled("apparmor")
    {
        return Err(invalid(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host",
        ));
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) {
        if !lsm_enabled("selinux") {
            return Err(invalid(
                "process.selinuxLabel",
                "SELinux is disabled or not supported on this host",
            ));
        }
        return Err(invalid("process.selinuxLabel", NOT_YET));
    }
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if !seen.insert(r.typ().to_string()) {
            return Err(invalid(
                format!("process.rlimits[{i}].type"),
                format!("{} is listed twice", r.typ()),
            ));
        }
    }
    Ok(())
}

/// Checks what the spec and runc require beyond the schema.
///
/// # Errors
/// [`SpecError::Invalid`] naming the first offending field.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let v = spec.version();
    if v.is_empty() {
        return Err(invalid("ociVersion", "must be set"));
    }
    if !v.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{v:?} is not supported (rcrun supports 1.x)"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "must be set"))?;
    if root.path().as_os_str().is_empty() {
        return Err(invalid("root.path", "must not be empty"));
    }
    // `process` may be absent at create; `start` then fails (runtime.md).
    if let Some(p) = spec.process() {
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(invalid("process.args", "must name a program"));
        }
        if !p.cwd().is_absolute() {
            return Err(invalid(
                "process.cwd",
                format!("{} is not an absolute path", p.cwd().display()),
            ));
        }
    }
    refuse_unsupported(spec)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("mounts[{i}].destination"),
                format!("{} is not an absolute path", m.destination().display()),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "must be set on Linux"))?;
    let mut seen = HashSet::new();
    let nss = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in nss.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}].type"),
                format!("namespace {} is listed twice", ns.typ()),
            ));
        }
    }
    let has_new = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "cannot set a hostname without a UTS namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_new(LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "cannot set a domainname without a UTS namespace",
        ));
    }
    let userns = nss
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if userns && !maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if !has_new(LinuxNamespaceType::User)
        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
    {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings are set but there is no user namespace",
        ));
    }
    if let Some(off) = linux.time_offsets() {
        if !off.is_empty() && !has_new(LinuxNamespaceType::Time) {
            return Err(invalid(
                "linux.timeOffsets",
                "time offsets need a time namespace",
            ));
        }
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        match sysctl_namespace(key) {
            None => {
                return Err(invalid(
                    format!("linux.sysctl.{key}"),
                    "is not namespaced and cannot be set in a container",
                ))
            }
            Some(t) if !has_new(t) => {
                return Err(invalid(
                    format!("linux.sysctl.{key}"),
                    format!("needs a {t} namespace, which the container does not have"),
                ))
            }
            Some(t) => {
                if let Some((i, path)) = nss
                    .iter()
                    .enumerate()
                    .find_map(|(i, n)| (n.typ() == t).then_some((i, n.path().as_ref()?)))
                    .filter(|(_, p)| !p.as_os_str().is_empty())
                {
                    if joins_own_namespace(path, t).map_err(|e| {
                        invalid(
                            format!("linux.namespaces[{i}].path"),
                            format!("cannot check {}: {e}", path.display()),
                        )
                    })? {
                        return Err(invalid(
                            format!("linux.sysctl.{key}"),
                            format!(
                                "is not allowed in the host's {t} namespace, which \
                                 linux.namespaces[{i}].path ({}) joins",
                                path.display()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether the namespace file `path` is the runtime's own namespace of
/// type `t` (the host's, as a rule): the same device and inode as
/// `/proc/self/ns/<t>`. A sysctl set there would change the host
/// (runc refuses `net.*` in the host's network namespace).
fn joins_own_namespace(path: &Path, t: LinuxNamespaceType) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let name = match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        _ => return Ok(false),
    };
    let theirs = std::fs::metadata(path)?;
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))?;
    Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// The configuration `rcrun spec` writes: runc's default (a shell on a
/// terminal in new pid, network, ipc, uts, mount and cgroup namespaces,
/// the usual mounts, masked paths and a small capability set), or its
/// rootless variant mapping the calling user to root.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("rcrun".into()));
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
    }
    spec.set_version(oci_spec::runtime::VERSION.to_string());
    // As `runc spec`: no inheritable capabilities (CVE-2022-29162), a
    // deny-all device rule, and a cgroup namespace only on a cgroup v2
    // host (on v1 it would hide the container's cgroup paths from exec).
    let mut v = serde_json::to_value(&spec).expect("a spec serializes");
    if let Some(c) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        c.remove("inheritable");
    }
    if !rootless {
        v["linux"]["resources"] =
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
    }
    if !matches!(
        crate::cgroups::Hierarchy::detect(),
        Ok(crate::cgroups::Hierarchy::Unified(_))
    ) {
        if let Some(ns) = v
            .pointer_mut("/linux/namespaces")
            .and_then(|n| n.as_array_mut())
        {
            ns.retain(|n| n["type"] != "cgroup");
        }
    }
    serde_json::from_value(v).expect("the edited spec parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<(), String> {
        let spec = parse(v.to_string().as_bytes()).map_err(|(f, m)| format!("{f}: {m}"))?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_config_is_valid() {
        check(base()).unwrap();
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = check(v).unwrap_err();
        assert!(e.starts_with("linux.namespaces[1].type"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let e = parse(b"{\"ociVersion\": ").unwrap_err();
        assert!(e.1.contains("EOF"), "{e:?}");
    }

    #[test]
    fn duplicate_namespace_refused() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(check(v).unwrap_err().contains("listed twice"));
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "x".into();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        assert!(check(v).unwrap_err().contains("hostname"));
    }

    #[test]
    fn relative_mount_destination_refused() {
        let mut v = base();
        v["mounts"] =
            serde_json::json!([{"destination": "proc", "type": "proc", "source": "proc"}]);
        assert!(check(v).unwrap_err().contains("mounts[0].destination"));
    }

    #[test]
    fn process_is_optional() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("process");
        check(v).unwrap();
    }

    #[test]
    fn empty_args_refused() {
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).unwrap_err().contains("process.args"));
    }

    #[test]
    fn userns_needs_mappings() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "user"}]);
        assert!(check(v).unwrap_err().contains("uidMappings"));
    }

    #[test]
    fn sysctl_rules() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v.clone()).unwrap_err().contains("net namespace"));
        v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        assert!(check(v.clone()).unwrap_err().contains("not namespaced"));
        v["linux"]["sysctl"] = serde_json::json!({"kernel.shmmax": "1"});
        assert!(check(v.clone()).unwrap_err().contains("ipc namespace"));
    }

    #[test]
    fn net_sysctl_refused_in_the_host_network_namespace() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]);
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        let e = check(v.clone()).unwrap_err();
        assert!(e.contains("linux.sysctl.net.ipv4.ip_forward:"), "{e}");
        assert!(e.contains("host's"), "{e}");
        v["linux"]["namespaces"][1]["path"] = "/nonexistent/ns".into();
        let e = check(v).unwrap_err();
        assert!(e.contains("linux.namespaces[1].path:"), "{e}");
    }

    #[test]
    fn unsupported_fields_refused() {
        let mut v = base();
        v["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_OTHER"});
        assert!(check(v).unwrap_err().contains("process.scheduler"));
    }

    #[test]
    fn duplicate_rlimit_refused() {
        let mut v = base();
        v["process"]["rlimits"] = serde_json::json!([
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
            {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}
        ]);
        assert!(check(v).unwrap_err().contains("process.rlimits[1].type"));
    }

    #[test]
    fn wrong_major_version_refused() {
        let mut v = base();
        v["ociVersion"] = "2.0.0".into();
        assert!(check(v).unwrap_err().contains("ociVersion"));
    }
}

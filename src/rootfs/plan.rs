//! Building a [`RootfsPlan`] from the spec (runtime side).

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use libc::{c_ulong, dev_t, mode_t};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::options;
use crate::cgroups::{CgroupSet, Hierarchy};
use crate::spec::SpecError;

pub(crate) fn cstr(b: impl Into<Vec<u8>>) -> CString {
    // Paths and options from JSON strings cannot contain NUL bytes except
    // through \u0000 escapes, which are stripped rather than truncating.
    let mut v: Vec<u8> = b.into();
    v.retain(|&c| c != 0);
    CString::new(v).expect("NULs removed")
}

pub(crate) fn path_cstr(p: &Path) -> CString {
    cstr(p.as_os_str().as_bytes())
}

/// A path inside the rootfs, pre-split so that the init process can
/// resolve and create it component by component without allocating.
#[derive(Debug)]
pub(crate) struct PathPlan {
    /// The whole path, e.g. `/a/b/c`.
    pub full: CString,
    /// Each prefix: `/a`, `/a/b`, `/a/b/c`.
    pub prefixes: Vec<CString>,
    /// Each component: `a`, `b`, `c`.
    pub names: Vec<CString>,
}

impl PathPlan {
    pub(crate) fn new(p: &Path) -> PathPlan {
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        let mut full = PathBuf::from("/");
        let mut prefixes = Vec::new();
        let mut names = Vec::new();
        for n in parts {
            full.push(n);
            prefixes.push(path_cstr(&full));
            names.push(cstr(n.as_bytes()));
        }
        PathPlan {
            full: path_cstr(&full),
            prefixes,
            names,
        }
    }

    pub(crate) fn display(&self) -> String {
        self.full.to_string_lossy().into_owned()
    }
}

/// What a mount entry does.
#[derive(Debug)]
pub(crate) struct MountOp {
    /// Index in `mounts` (for error messages).
    pub index: usize,
    pub dest: PathPlan,
    pub source: Option<CString>,
    /// The bind source as a detached mount the runtime cloned (in a new
    /// user namespace the init may not be allowed to reach it by path):
    /// moved into place with move_mount(2); -1 otherwise.
    pub source_fd: RawFd,
    pub fstype: Option<CString>,
    pub flags: c_ulong,
    pub data: Option<CString>,
    pub propagation: Vec<c_ulong>,
    /// A bind mount with flags that need a second, remounting call.
    pub remount: bool,
    /// The destination is a file (the source of a bind is not a directory).
    pub file: bool,
    /// sysfs that may fall back to an rbind of the host's /sys (user
    /// namespace without a network namespace).
    pub sysfs_fallback: bool,
    /// tmpfs with `tmpcopyup`: copy the covered directory into it.
    pub copyup: bool,
    /// Directories to make in the fresh mount (a name, directly under
    /// it) and bind (recursively) from a host path: the cgroup v1 tree.
    pub children: Vec<(CString, CString)>,
    /// `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV` and `MS_NOEXEC` to set on the
    /// mount and everything below it once `children` are bound: one
    /// recursive mount_setattr(2) rather than a remount each.
    pub tree_flags: c_ulong,
    /// Where on a procfs the destination may resolve to in the init.
    pub on_proc: OnProc,
    /// A proc or sysfs mount, whose destination must be a directory.
    pub pseudo: bool,
    /// The recursive options: `MOUNT_ATTR_*` to set and to clear on the
    /// mount and all below it once it is made (mount_setattr(2)).
    pub rec_attr: (u64, u64),
}

/// Whether a mount may land on a procfs (runc's `checkProcMount`), checked
/// on the literal destination here and again in the init on the resolved
/// one (a symlink in the image such as `/vol -> /proc/sys` must not carry
/// a volume onto procfs: CVE-2019-16884, CVE-2025-52881).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnProc {
    /// Nowhere: the destination is not on or under `/proc`.
    Never,
    /// A procfs on `/proc`: only on the root of a procfs.
    Root,
    /// A file lxcfs emulates (`/proc/meminfo`): anywhere on procfs.
    File,
}

/// The files under /proc that may be mount destinations (those lxcfs
/// emulates), as runc's `checkProcMount`.
const VALID_PROC_MOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Checks a mount destination (cleaned, absolute) against /proc: on
/// `/proc` itself only a procfs (type or source `proc`, or a bind of a
/// procfs); under it only [`VALID_PROC_MOUNTS`].
fn check_proc_mount(
    dest: &Path,
    typ: &str,
    source: Option<&Path>,
    bind_from: Option<&Path>,
) -> Result<OnProc, String> {
    let Ok(rest) = dest.strip_prefix("/proc") else {
        return Ok(OnProc::Never);
    };
    if rest.as_os_str().is_empty() {
        // A bind's source is relative to the bundle.
        let procfs_source = |bundle: &Path| {
            source.is_some_and(|s| {
                nix::sys::statfs::statfs(&bundle.join(s))
                    .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
            })
        };
        let ok = match bind_from {
            None => typ == "proc" || (typ.is_empty() && source == Some(Path::new("proc"))),
            Some(bundle) => procfs_source(bundle),
        };
        if ok {
            return Ok(OnProc::Root);
        }
        return Err("/proc can only be a mount of type proc (or a bind of a procfs)".into());
    }
    if VALID_PROC_MOUNTS.iter().any(|v| dest == Path::new(v)) {
        return Ok(OnProc::File);
    }
    Err(format!(
        "{} is inside /proc: only {} may be mounted there",
        dest.display(),
        VALID_PROC_MOUNTS.join(", ")
    ))
}

impl MountOp {
    /// Whether this mount can be made before the init joins its cgroups:
    /// a pseudo filesystem, or a bind of anything but the cgroup tree. A
    /// cgroup mount needs the container's cgroup (and its namespace), a
    /// block device the cgroup's device rules.
    fn independent_of_cgroups(&self) -> bool {
        const PSEUDO: &[&[u8]] = &[b"proc", b"sysfs", b"tmpfs", b"devpts", b"mqueue"];
        if !self.children.is_empty() {
            return false;
        }
        match &self.fstype {
            Some(t) => PSEUDO.contains(&t.to_bytes()),
            None => !self
                .source
                .as_ref()
                .is_some_and(|s| s.to_bytes().starts_with(b"/sys/fs/cgroup")),
        }
    }
}

/// A device node to create (or bind from the host in a user namespace).
#[derive(Debug)]
pub(crate) struct DeviceOp {
    pub path: PathPlan,
    pub mode: mode_t,
    pub dev: dev_t,
    pub uid: u32,
    pub gid: u32,
    pub bind_from: Option<CString>,
}

/// Everything the init process does to the filesystem.
#[derive(Debug)]
pub(crate) struct RootfsPlan {
    pub rootfs: CString,
    /// The mount point holding the rootfs, made private before the rootfs
    /// is bound onto itself: pivot_root(2) refuses a new root whose parent
    /// mount is shared.
    pub parent_mount: CString,
    pub propagation: c_ulong,
    /// Propagation to set on `/` after pivot_root when rootfsPropagation asks.
    pub final_propagation: Option<c_ulong>,
    pub pivot: bool,
    pub readonly: bool,
    pub mounts: Vec<MountOp>,
    /// Create default devices and /dev symlinks (false when /dev is a bind).
    pub setup_dev: bool,
    /// A read-only `/dev` is mounted read-write and made read-only only
    /// once the mounts under it and the devices are in place (as runc),
    /// with these flags (`MS_RDONLY` and the others it asked for).
    /// With `--no-pivot`: the host's procfs and sysfs mounts to detach
    /// before the chroot.
    pub hide: Vec<CString>,
    /// The bind sources the runtime cloned for an init in a new user
    /// namespace (`MountOp::source_fd`), as runc does.
    pub source_fds: Vec<std::os::fd::OwnedFd>,
    /// The `mounts` index of `/dev` comes first.
    pub dev_readonly: Option<(u32, c_ulong)>,
    pub devices: Vec<DeviceOp>,
    pub dev_dir: PathPlan,
    pub masked: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    /// `mounts[..cgroup_at]` touch nothing that depends on the
    /// container's cgroup: an init that joins its v1 cgroups late (see
    /// `ChildPlan::late_cgroups`) mounts them first, then joins.
    pub cgroup_at: usize,
}

const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn invalid(field: String, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl RootfsPlan {
    /// A plan that does nothing (for describing `exec` failures).
    pub(crate) fn empty() -> RootfsPlan {
        RootfsPlan {
            rootfs: CString::default(),
            parent_mount: CString::default(),
            propagation: 0,
            final_propagation: None,
            pivot: false,
            readonly: false,
            mounts: Vec::new(),
            setup_dev: false,
            hide: Vec::new(),
            source_fds: Vec::new(),
            dev_readonly: None,
            devices: Vec::new(),
            dev_dir: PathPlan::new(Path::new("/dev")),
            masked: Vec::new(),
            readonly_paths: Vec::new(),
            cgroup_at: 0,
        }
    }

    pub(crate) fn build(
        spec: &Spec,
        bundle: &Path,
        rootfs: &Path,
        no_pivot: bool,
        userns: bool,
        cgroupns: bool,
        host: &Host<'_>,
    ) -> Result<RootfsPlan, SpecError> {
        let linux = spec.linux().as_ref().expect("validated");
        let propagation = rootfs_propagation(linux)?;
        let mut mounts = Vec::new();
        let mut setup_dev = true;
        let mut source_fds = Vec::new();
        let mut dev_readonly = None;
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let field = |f: &str| format!("mounts[{i}].{f}");
            let opts = options::parse(m.options().as_deref().unwrap_or_default())
                .map_err(|o| invalid(field("options"), format!("{:?} is not supported", o.0)))?;
            let typ = m.typ().as_deref().unwrap_or("");
            let bind = opts.is_bind() || typ == "bind";
            let dest = m.destination();
            if bind && dest == Path::new("/dev") {
                setup_dev = false;
            }
            let clean = PathPlan::new(dest).full;
            let mut opts = opts;
            if clean.as_bytes() == b"/dev" && opts.flags & libc::MS_RDONLY != 0 {
                opts.flags &= !libc::MS_RDONLY;
                dev_readonly = Some((
                    i as u32,
                    libc::MS_RDONLY
                        | opts.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC),
                ));
            }
            let on_proc = check_proc_mount(
                Path::new(std::ffi::OsStr::from_bytes(clean.as_bytes())),
                typ,
                m.source().as_deref(),
                bind.then_some(bundle),
            )
            .map_err(|r| invalid(field("destination"), r))?;
            if typ == "cgroup" && !bind {
                cgroup_mounts(
                    &mut mounts,
                    i,
                    dest,
                    &opts,
                    cgroupns,
                    (host.hierarchy, host.cgroup),
                );
                continue;
            }
            let source = m.source().as_ref().map(|s| {
                if bind && s.is_relative() {
                    bundle.join(s)
                } else {
                    s.clone()
                }
            });
            let mut file = false;
            if bind {
                let src = source
                    .as_ref()
                    .ok_or_else(|| invalid(field("source"), "a bind mount needs a source"))?;
                let md = std::fs::metadata(src)
                    .map_err(|e| invalid(field("source"), format!("{}: {e}", src.display())))?;
                file = !md.is_dir();
            }
            let mut flags = opts.flags;
            if bind {
                flags |= libc::MS_BIND;
            }
            // In a new user namespace the init is a mapped user: a source
            // only the host's root may reach is cloned here into a
            // detached mount (open_tree), which the init moves into place,
            // as runc does.
            // A runtime that may not clone mounts (rootless) leaves it to
            // the init, by path.
            let mut source_fd = -1;
            if bind && userns {
                let src = source.as_ref().expect("checked above");
                if let Ok(f) = clone_tree(src, flags & libc::MS_REC != 0) {
                    source_fd = f.as_raw_fd();
                    source_fds.push(f);
                }
            }
            let extra = flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
            mounts.push(MountOp {
                index: i,
                dest: PathPlan::new(dest),
                source: source
                    .map(|s| path_cstr(&s))
                    .or_else(|| (!typ.is_empty()).then(|| cstr(typ))),
                fstype: (!bind && !typ.is_empty()).then(|| cstr(typ)),
                flags,
                data: (!opts.data.is_empty()).then(|| cstr(opts.data.as_str())),
                propagation: opts.propagation,
                remount: bind && extra != 0,
                file,
                sysfs_fallback: typ == "sysfs" && userns,
                pseudo: !bind && matches!(typ, "proc" | "sysfs"),
                copyup: opts.copyup && typ == "tmpfs",
                children: Vec::new(),
                tree_flags: 0,
                on_proc,
                rec_attr: (opts.rec_set, opts.rec_clr),
                source_fd,
            });
        }
        let devices = device_ops(linux, setup_dev, userns)?;
        let paths =
            |v: &Option<Vec<String>>| v.iter().flatten().map(|p| cstr(p.as_str())).collect();
        let cgroup_at = mounts
            .iter()
            .position(|m| !m.independent_of_cgroups())
            .unwrap_or(mounts.len());
        Ok(RootfsPlan {
            cgroup_at,
            rootfs: path_cstr(rootfs),
            parent_mount: path_cstr(&parent_mount(host.mountinfo, rootfs)),
            propagation: propagation.unwrap_or(libc::MS_SLAVE | libc::MS_REC),
            final_propagation: propagation,
            pivot: !no_pivot,
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            mounts,
            setup_dev,
            source_fds,
            hide: if no_pivot {
                host_proc_sys(host.mountinfo, rootfs)
            } else {
                Vec::new()
            },
            dev_readonly,
            devices,
            dev_dir: PathPlan::new(Path::new("/dev")),
            masked: paths(linux.masked_paths()),
            readonly_paths: paths(linux.readonly_paths()),
        })
    }
}

/// `linux.rootfsPropagation`, if set.
fn rootfs_propagation(
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<libc::c_ulong>, SpecError> {
    match linux.rootfs_propagation().as_deref() {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p).map(Some).ok_or_else(|| {
            invalid(
                "linux.rootfsPropagation".into(),
                format!("unknown value {p:?}"),
            )
        }),
    }
}

/// `linux.devices`, then the spec's default devices unless /dev is bound
/// from the host; in a user namespace each is bound from the host's node.
fn device_ops(
    linux: &oci_spec::runtime::Linux,
    setup_dev: bool,
    userns: bool,
) -> Result<Vec<DeviceOp>, SpecError> {
    let mut devices: Vec<DeviceOp> = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is not a device type",
                ))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(invalid(
                format!("linux.devices[{i}].path"),
                format!("{} is not under /dev", d.path().display()),
            ));
        }
        devices.push(DeviceOp {
            path: PathPlan::new(d.path()),
            mode: kind | d.file_mode().unwrap_or(0o666) & 0o7777,
            dev: libc::makedev(d.major() as u32, d.minor() as u32),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            bind_from: userns.then(|| path_cstr(d.path())),
        });
    }
    if setup_dev {
        for (p, maj, min) in DEFAULT_DEVICES {
            if devices
                .iter()
                .any(|d| d.path.full.as_bytes() == p.as_bytes())
            {
                continue;
            }
            devices.push(DeviceOp {
                path: PathPlan::new(Path::new(p)),
                mode: libc::S_IFCHR | 0o666,
                dev: libc::makedev(*maj, *min),
                uid: 0,
                gid: 0,
                bind_from: userns.then(|| cstr(*p)),
            });
        }
    }
    Ok(devices)
}

/// What the plan needs to know of the host: its cgroup layout, the
/// container's cgroup, and the mount table (`/proc/self/mountinfo`, read
/// once per create).
#[derive(Clone, Copy)]
pub(crate) struct Host<'a> {
    pub hierarchy: &'a Hierarchy,
    pub cgroup: &'a CgroupSet,
    pub mountinfo: &'a str,
}

/// The deepest mount point that contains `path`, from the text of
/// `/proc/self/mountinfo`.
/// A detached copy of the mount at `path` (with those below it when
/// `recursive`): open_tree(2) with `OPEN_TREE_CLONE`.
fn clone_tree(path: &Path, recursive: bool) -> std::io::Result<std::os::fd::OwnedFd> {
    let p = path_cstr(path);
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: a NUL-terminated path; the fd returned is ours.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, p.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as RawFd) })
}

/// The host's whole procfs and sysfs mounts outside `rootfs` (root "/"
/// in mountinfo), which `--no-pivot` detaches before its chroot, as runc:
/// in the container's mount namespace they would stay reachable, and
/// with them a fully visible procfs lets a process inside mount a new
/// one (in a user namespace of its own).
fn host_proc_sys(mountinfo: &str, rootfs: &Path) -> Vec<CString> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            let mountpoint = unescape_mountinfo(f.get(4)?);
            let whole = *f.get(3)? == "/";
            (whole && matches!(fstype, "proc" | "sysfs") && !mountpoint.starts_with(rootfs))
                .then(|| path_cstr(&mountpoint))
        })
        .collect()
}

fn parent_mount(mountinfo: &str, path: &Path) -> PathBuf {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// A `cgroup` mount: on cgroup v2, the cgroup2 filesystem (with a cgroup
/// namespace) or a bind of the container's own cgroup; on v1, a tmpfs with
/// a bind of the container's directory of each hierarchy, as runc does.
fn cgroup_mounts(
    out: &mut Vec<MountOp>,
    index: usize,
    dest: &Path,
    opts: &options::MountOptions,
    cgroupns: bool,
    (h, set): (&Hierarchy, &CgroupSet),
) {
    let fl = opts.flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let bind = |dest: PathBuf, src: &Path| MountOp {
        index,
        dest: PathPlan::new(&dest),
        source: Some(path_cstr(src)),
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC | fl,
        data: None,
        propagation: vec![],
        remount: fl != 0,
        file: false,
        sysfs_fallback: false,
        copyup: false,
        children: Vec::new(),
        tree_flags: 0,
        on_proc: OnProc::Never,
        rec_attr: (0, 0),
        source_fd: -1,
        pseudo: false,
    };
    match h {
        Hierarchy::Unified(_) if cgroupns => out.push(MountOp {
            index,
            dest: PathPlan::new(dest),
            source: Some(cstr("cgroup2")),
            fstype: Some(cstr("cgroup2")),
            flags: fl,
            data: None,
            propagation: vec![],
            remount: false,
            file: false,
            sysfs_fallback: false,
            copyup: false,
            children: Vec::new(),
            tree_flags: 0,
            on_proc: OnProc::Never,
            rec_attr: (0, 0),
            source_fd: -1,
            pseudo: false,
        }),
        Hierarchy::Unified(_) => {
            if let Some(leaf) = set.leaves.first() {
                out.push(bind(dest.to_path_buf(), leaf));
            }
        }
        Hierarchy::Legacy(mnts) => {
            // The tmpfs is new and nothing but the init can reach it
            // yet: its directories are made and bound by name, with no
            // lookup under the rootfs each, and made read-only at once.
            let children = mnts
                .iter()
                .zip(&set.leaves)
                .filter_map(|((mnt, _), leaf)| {
                    let name = mnt.file_name()?;
                    Some((cstr(name.as_bytes()), path_cstr(leaf)))
                })
                .collect();
            out.push(MountOp {
                index,
                dest: PathPlan::new(dest),
                source: Some(cstr("tmpfs")),
                fstype: Some(cstr("tmpfs")),
                flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                data: Some(cstr("mode=755")),
                propagation: vec![],
                remount: false,
                file: false,
                sysfs_fallback: false,
                copyup: false,
                children,
                tree_flags: fl,
                on_proc: OnProc::Never,
                rec_attr: (0, 0),
                source_fd: -1,
                pseudo: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_plan_splits_and_cleans() {
        let p = PathPlan::new(Path::new("/a/./b/../c/d"));
        assert_eq!(p.full.to_str().unwrap(), "/a/c/d");
        let pre: Vec<_> = p.prefixes.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(pre, ["/a", "/a/c", "/a/c/d"]);
        let names: Vec<_> = p.names.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(names, ["a", "c", "d"]);
        assert_eq!(
            PathPlan::new(Path::new("/../..")).full.to_str().unwrap(),
            "/"
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), Path::new("/a b"));
        assert_eq!(unescape_mountinfo("/plain"), Path::new("/plain"));
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            parent_mount(&info, Path::new("/proc/self")),
            Path::new("/proc")
        );
    }

    #[test]
    fn proc_mount_destinations() {
        let p = |d: &str, t: &str, s: Option<&str>, bind: bool| {
            check_proc_mount(
                Path::new(d),
                t,
                s.map(Path::new),
                bind.then_some(Path::new("/nonexistent-bundle")),
            )
        };
        assert_eq!(p("/procfoo", "tmpfs", None, false), Ok(OnProc::Never));
        assert_eq!(p("/", "tmpfs", None, false), Ok(OnProc::Never));
        assert_eq!(p("/proc", "proc", Some("proc"), false), Ok(OnProc::Root));
        assert_eq!(p("/proc", "", Some("proc"), false), Ok(OnProc::Root));
        assert_eq!(p("/proc", "bind", Some("/proc"), true), Ok(OnProc::Root));
        assert!(p("/proc", "tmpfs", Some("proc"), false).is_err());
        assert!(p("/proc", "bind", Some("/tmp"), true).is_err());
        assert!(p("/proc", "bind", Some("proc"), true).is_err());
        for ok in VALID_PROC_MOUNTS {
            assert_eq!(p(ok, "bind", Some("/etc/hostname"), true), Ok(OnProc::File));
        }
        for bad in [
            "/proc/sys",
            "/proc/sys/kernel",
            "/proc/self/attr",
            "/proc/sysrq-trigger",
            "/proc/uptime/x",
            "/proc/kcore",
        ] {
            let e = p(bad, "tmpfs", None, false).unwrap_err();
            assert!(e.contains("is inside /proc"), "{bad}: {e}");
        }
    }

    #[test]
    fn nul_bytes_are_stripped() {
        assert_eq!(cstr("a\0b").to_str().unwrap(), "ab");
    }
}

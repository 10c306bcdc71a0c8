//! Cgroup directories of a container: create, join, signal, remove.
//!
//! This is the part every container needs (a cgroup of its own that
//! `kill --all` and `delete` can find and that is removed afterwards) on
//! both hierarchies: the cgroup v1 controllers mounted on the host, or the
//! unified cgroup v2 tree. rcrun only ever creates and removes directories
//! under the container's own `cgroupsPath`; the host's cgroups are never
//! written to, except for copying `cpuset.cpus`/`cpuset.mems` down into a
//! v1 cpuset directory that rcrun itself created (without them no process
//! can join it).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be read, written or removed.
    #[error("cgroup {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `linux.cgroupsPath` is not usable.
    #[error("config.json: linux.cgroupsPath: {0}")]
    InvalidPath(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// v1 controllers rcrun places containers in.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "pids",
    "blkio",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure cgroup v2 mounted at the given directory.
    Unified(PathBuf),
    /// cgroup v1: each mount point (e.g. `/sys/fs/cgroup/cpu,cpuacct`) with
    /// the controllers mounted there.
    Legacy(Vec<(PathBuf, Vec<String>)>),
}

impl Hierarchy {
    /// Reads the layout from `/proc/self/mountinfo`.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when mountinfo cannot be read.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(p).map_err(io(p))?;
        Ok(Self::from_mountinfo(&text))
    }

    fn from_mountinfo(text: &str) -> Hierarchy {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mnt = pre.split(' ').nth(4).unwrap_or_default();
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or_default();
            let opts = post.nth(1).unwrap_or_default();
            match fstype {
                "cgroup2" if mnt == "/sys/fs/cgroup" => v2 = Some(PathBuf::from(mnt)),
                "cgroup" => {
                    let ctrls: Vec<String> = opts
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o))
                        .map(String::from)
                        .collect();
                    if !ctrls.is_empty() && !v1.iter().any(|(m, _)| m == Path::new(mnt)) {
                        v1.push((PathBuf::from(mnt), ctrls));
                    }
                }
                _ => {}
            }
        }
        match v2 {
            Some(p) if v1.is_empty() => Hierarchy::Unified(p),
            _ => Hierarchy::Legacy(v1),
        }
    }
}

/// The cgroup directories of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSet {
    /// The container's own directory in each hierarchy.
    pub leaves: Vec<PathBuf>,
    /// Every directory rcrun created for it, parents first.
    pub created: Vec<PathBuf>,
}

/// Resolves a spec `cgroupsPath` (or the default `/rcrun/<id>`) to the
/// path inside each hierarchy. Relative paths are taken from the
/// hierarchy's root, never from the caller's own cgroup.
///
/// # Errors
/// [`CgroupError::InvalidPath`] for paths with `..` components.
pub fn inner_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("/rcrun").join(id),
    };
    let s = p.to_string_lossy();
    if s.contains(':') {
        return Err(CgroupError::InvalidPath(format!(
            "{s:?} is a systemd slice path; use --systemd-cgroup"
        )));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                return Err(CgroupError::InvalidPath(format!("{s:?} contains '..'")))
            }
            _ => {}
        }
    }
    if out.as_os_str().is_empty() {
        return Err(CgroupError::InvalidPath(format!(
            "{s:?} is the root cgroup"
        )));
    }
    Ok(out)
}

impl CgroupSet {
    /// Creates the container's directories in every hierarchy.
    /// On failure, whatever was created is removed again.
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the directory.
    pub fn create(h: &Hierarchy, inner: &Path) -> Result<CgroupSet, CgroupError> {
        let mut set = CgroupSet::default();
        let res = (|| {
            match h {
                Hierarchy::Unified(root) => set.mkdir_all(root, inner, false)?,
                Hierarchy::Legacy(mounts) => {
                    for (mnt, ctrls) in mounts {
                        let cpuset = ctrls.iter().any(|c| c == "cpuset");
                        set.mkdir_all(mnt, inner, cpuset)?;
                    }
                }
            }
            Ok(())
        })();
        match res {
            Ok(()) => Ok(set),
            Err(e) => {
                let _ = set.remove();
                Err(e)
            }
        }
    }

    fn mkdir_all(&mut self, root: &Path, inner: &Path, cpuset: bool) -> Result<(), CgroupError> {
        let mut dir = root.to_path_buf();
        for c in inner.components() {
            let parent = dir.clone();
            dir.push(c);
            match fs::create_dir(&dir) {
                Ok(()) => {
                    self.created.push(dir.clone());
                    if cpuset {
                        for f in ["cpuset.cpus", "cpuset.mems"] {
                            let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
                            if cur.trim().is_empty() {
                                let v = fs::read_to_string(parent.join(f))
                                    .map_err(io(&parent.join(f)))?;
                                fs::write(dir.join(f), v.trim()).map_err(io(&dir.join(f)))?;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&dir)(e)),
            }
        }
        self.leaves.push(dir);
        Ok(())
    }

    /// Moves process `pid` into every leaf.
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the `cgroup.procs` file.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        let s = pid.to_string();
        for l in &self.leaves {
            let p = l.join("cgroup.procs");
            fs::write(&p, &s).map_err(io(&p))?;
        }
        Ok(())
    }

    /// The pids in the container's cgroup.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when `cgroup.procs` cannot be read.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(l) = self.leaves.first() else {
            return Ok(vec![]);
        };
        let p = l.join("cgroup.procs");
        match fs::read_to_string(&p) {
            Ok(t) => Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Removes the directories rcrun created, deepest first. A directory
    /// that other containers still use (non-empty parent) is left alone.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when a leaf cannot be removed.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.created.iter().rev() {
            let leaf = self.leaves.contains(dir);
            let mut tries = 0;
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    // Exiting tasks can keep a cgroup busy for a moment.
                    Err(e) if leaf && e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) if leaf => return Err(io(dir)(e)),
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 25 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
36 25 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
39 25 0:34 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
40 25 0:35 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_is_legacy() {
        match Hierarchy::from_mountinfo(HYBRID) {
            Hierarchy::Legacy(m) => {
                assert_eq!(m.len(), 2);
                assert_eq!(m[0].1, vec!["cpu", "cpuacct"]);
            }
            h => panic!("{h:?}"),
        }
    }

    #[test]
    fn unified() {
        let t = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Hierarchy::from_mountinfo(t),
            Hierarchy::Unified("/sys/fs/cgroup".into())
        );
    }

    #[test]
    fn paths() {
        assert_eq!(inner_path(None, "x").unwrap(), Path::new("rcrun/x"));
        assert_eq!(
            inner_path(Some(Path::new("/a/b")), "x").unwrap(),
            Path::new("a/b")
        );
        assert_eq!(
            inner_path(Some(Path::new("a")), "x").unwrap(),
            Path::new("a")
        );
        assert!(inner_path(Some(Path::new("/a/../b")), "x").is_err());
        assert!(inner_path(Some(Path::new("/")), "x").is_err());
        assert!(inner_path(Some(Path::new("system.slice:rcrun:x")), "x").is_err());
    }
}

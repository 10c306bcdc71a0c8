//! The container's cgroup: create, join, limit, freeze, measure, signal,
//! remove, on both hierarchies: the cgroup v1 controllers mounted on the
//! host, or the unified cgroup v2 tree.
//!
//! rcrun only ever creates, writes and removes directories under the
//! container's own `cgroupsPath`; the host's cgroups are never written to.
//! (It reads the parent's `cpuset.cpus`/`cpuset.mems` to fill a v1 cpuset
//! directory it created, without which no process could join it; an
//! existing parent whose own are empty, which no process could use either,
//! is filled from its parent the same way, as runc does. On v2 it enables
//! controllers in the `cgroup.subtree_control` of the directories it
//! created above the container's.)

mod apply;
#[doc(hidden)]
pub mod bpf; // for fuzz/
pub mod oom;
#[doc(hidden)]
pub mod resources; // for fuzz/
pub mod stats;
pub mod systemd;

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    /// `exec --cgroup` names no usable sub-cgroup.
    #[error("exec --cgroup: {0}")]
    SubCgroup(String),
    /// The kernel refused a resource value.
    #[error("config.json: {field}: writing {value:?} to {path}: {source}")]
    Write {
        /// The spec field.
        field: String,
        /// The cgroup file.
        path: PathBuf,
        /// The value.
        value: String,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// The cgroup exists already and is in use (config-linux.md: the
    /// runtime MUST generate an error when the fitness check fails).
    #[error("config.json: linux.cgroupsPath: {path} {why}")]
    InUse {
        /// The cgroup directory.
        path: PathBuf,
        /// Why it cannot be used ("is frozen").
        why: String,
    },
    /// Rootless without the right to create cgroups, but limits are set.
    #[error("config.json: linux.resources: rootless containers without a writable cgroup cannot have limits ({0}); remove the limits or delegate a cgroup and set linux.cgroupsPath")]
    Rootless(String),
    /// A resource the host's cgroups cannot express.
    #[error(transparent)]
    Unsupported(#[from] resources::Unsupported),
    /// systemd refused or failed a request of the systemd cgroup driver.
    #[error("systemd unit {unit}: {reason}")]
    Systemd {
        /// The scope unit.
        unit: String,
        /// What failed, in systemd's words.
        reason: String,
    },
    /// The controller a field needs is not available.
    #[error("config.json: {field}: the {controller} controller is not available ({where_})")]
    NoController {
        /// The spec field.
        field: String,
        /// The controller.
        controller: String,
        /// Where it was looked for.
        where_: String,
    },
}

impl CgroupError {
    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Whether the error is the kernel refusing access (no delegation).
    pub fn is_permission(&self) -> bool {
        let src = match self {
            CgroupError::Io { source, .. } | CgroupError::Write { source, .. } => source,
            _ => return false,
        };
        matches!(
            src.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EROFS)
        )
    }
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

#[doc(hidden)] // plumbing of the runtime and its tests
/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure cgroup v2 mounted at the given directory.
    Unified(PathBuf),
    /// cgroup v1: each mount point (e.g. `/sys/fs/cgroup/cpu,cpuacct`) with
    /// the controllers mounted there; after them the named hierarchies
    /// (`name=systemd`) and, in hybrid mode, the cgroup2 mount (`unified`),
    /// which the container joins without limits, as with runc.
    Legacy(Vec<(PathBuf, Vec<String>)>),
}

impl Hierarchy {
    /// Reads the layout from `/proc/self/mountinfo`.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when mountinfo cannot be read.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Ok(Self::from_mountinfo(&read_mountinfo()?))
    }

    /// The layout, from the text of `/proc/self/mountinfo` (a caller that
    /// needs the mount table for more than the cgroups reads it once).
    pub fn from_mountinfo(text: &str) -> Hierarchy {
        let mut v1 = Vec::new();
        let mut named = Vec::new();
        let mut v2 = None;
        let mut hybrid = None;
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
                "cgroup2" => hybrid = hybrid.or_else(|| Some(PathBuf::from(mnt))),
                "cgroup" => {
                    if let Some(n) = opts.split(',').find(|o| o.starts_with("name=")) {
                        if !named.iter().any(|(m, _)| m == Path::new(mnt)) {
                            named.push((PathBuf::from(mnt), vec![n.to_string()]));
                        }
                        continue;
                    }
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
            _ => {
                // Controllers first: code that needs any leaf takes the first.
                if !v1.is_empty() {
                    v1.extend(named);
                    v1.extend(hybrid.map(|h| (h, vec!["unified".to_string()])));
                }
                Hierarchy::Legacy(v1)
            }
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
    /// The v1 controllers of each leaf's hierarchy (empty on v2).
    #[serde(default)]
    pub controllers: Vec<Vec<String>>,
    /// The leaves are in the unified (v2) hierarchy.
    #[serde(default)]
    pub v2: bool,
    /// The cgroup held processes before this container joined it (a
    /// shared `cgroupsPath`, which runc 1.1 allows with a warning).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The scope unit systemd made the cgroup as (the systemd cgroup
    /// driver): it is stopped, not only removed, with the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

#[doc(hidden)] // plumbing of the runtime and its tests
/// Which of a [`CgroupSet`]'s leaves `CgroupSet::make` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Every hierarchy.
    All,
    /// The cgroup2 leaf (pure v2, or the unified mount of a hybrid host):
    /// it must exist before the clone that joins it (CLONE_INTO_CGROUP).
    Unified,
    /// The v1 hierarchies, which the init joins itself.
    Legacy,
}

#[doc(hidden)] // plumbing of the runtime and its tests
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
    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Creates the container's directories in every hierarchy.
    /// On failure, the leaves it created are removed again.
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the directory.
    ///
    /// The new cgroup denies every device but runc's default ones
    /// ([`resources::device_rules`]), until [`Self::apply`] is given
    /// `linux.resources.devices`.
    pub fn create(h: &Hierarchy, inner: &Path) -> Result<CgroupSet, CgroupError> {
        let mut set = Self::planned(h, inner);
        set.make(inner, Part::All)?;
        if let Err(e) = set.apply_devices(&resources::device_rules(None)?, 0, false) {
            let _ = set.remove();
            return Err(e);
        }
        Ok(set)
    }

    /// The container's directories, named but not created yet
    /// ([`Self::make`] creates them).
    pub(crate) fn planned(h: &Hierarchy, inner: &Path) -> CgroupSet {
        match h {
            Hierarchy::Unified(root) => CgroupSet {
                leaves: vec![root.join(inner)],
                v2: true,
                ..CgroupSet::default()
            },
            Hierarchy::Legacy(mounts) => CgroupSet {
                leaves: mounts.iter().map(|(m, _)| m.join(inner)).collect(),
                controllers: mounts.iter().map(|(_, c)| c.clone()).collect(),
                ..CgroupSet::default()
            },
        }
    }

    /// Whether leaf `i` is in a cgroup2 hierarchy (pure v2, or the
    /// unified mount of a hybrid host).
    fn is_unified(&self, i: usize) -> bool {
        self.v2 || self.controllers.get(i).is_some_and(|c| c == &["unified"])
    }

    fn in_part(&self, i: usize, part: Part) -> bool {
        match part {
            Part::All => true,
            Part::Unified => self.is_unified(i),
            Part::Legacy => !self.is_unified(i),
        }
    }

    /// Creates the planned leaves of `part` (`inner` is their path below
    /// each hierarchy's root) and checks the ones that existed. On
    /// failure, what this call created is removed again. It writes no
    /// device rules: the caller applies them ([`Self::apply_all`]).
    pub(crate) fn make(&mut self, inner: &Path, part: Part) -> Result<(), CgroupError> {
        let before = self.created.len();
        let picked: Vec<usize> = (0..self.leaves.len())
            .filter(|&i| self.in_part(i, part))
            .collect();
        let res = picked.iter().try_for_each(|&i| {
            let cpuset = self
                .controllers
                .get(i)
                .is_some_and(|c| c.iter().any(|c| c == "cpuset"));
            self.mkdir_all(i, inner, cpuset)
        });
        match res.and_then(|()| self.check_fitness(&picked)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let made = self.created.split_off(before);
                let undo = CgroupSet {
                    leaves: self.leaves.clone(),
                    created: made,
                    ..CgroupSet::default()
                };
                let _ = undo.remove();
                Err(e)
            }
        }
    }

    /// A cgroup that existed before (a shared `cgroupsPath`) must not be
    /// frozen. One that holds processes is used, with runc 1.1's warning
    /// (runc 1.2 refuses it). Fresh ones need no look.
    fn check_fitness(&mut self, picked: &[usize]) -> Result<(), CgroupError> {
        if self.systemd.is_some() {
            // systemd made the scope for this container a moment ago.
            return Ok(());
        }
        // Only the leaves that existed before (none, usually): cloned so
        // that `shared` can be set while they are looked at.
        let old: Vec<PathBuf> = picked
            .iter()
            .map(|&i| &self.leaves[i])
            .filter(|l| !self.created.contains(l))
            .cloned()
            .collect();
        for leaf in &old {
            let procs = fs::read_to_string(leaf.join("cgroup.procs")).unwrap_or_default();
            let n = procs.lines().count();
            if n > 0 && !self.shared {
                self.shared = true;
                log::warn!("container's cgroup is not empty: {n} process(es) found");
                log::warn!(
                    "{}: shared with other processes: `kill --all` and `ps` of this container reach them too",
                    leaf.display()
                );
            }
            let frozen = fs::read_to_string(leaf.join("freezer.state"))
                .is_ok_and(|s| s.trim() != "THAWED")
                || fs::read_to_string(leaf.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
            if frozen {
                return Err(CgroupError::InUse {
                    path: leaf.clone(),
                    why: "is frozen (container's cgroup unexpectedly frozen)".into(),
                });
            }
        }
        Ok(())
    }

    fn mkdir_all(&mut self, i: usize, inner: &Path, cpuset: bool) -> Result<(), CgroupError> {
        // Usually only the leaf is missing: one mkdir, not one per
        // component (11 hierarchies on a v1 host).
        let leaf = self.leaves[i].clone();
        match fs::create_dir(&leaf) {
            Ok(()) => {
                self.created.push(leaf.clone());
                if cpuset {
                    fill_cpuset(&leaf)?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(&leaf)(e)),
        }
        let depth = inner.components().count();
        let mut dir = leaf.ancestors().nth(depth).unwrap_or(&leaf).to_path_buf();
        for c in inner.components() {
            let parent = dir.clone();
            dir.push(c);
            // v2: a directory rcrun created above the container's hands
            // its controllers down (the parent of the first one is not ours).
            if self.v2 && self.created.last() == Some(&parent) {
                enable_controllers(&parent);
            }
            match fs::create_dir(&dir) {
                Ok(()) => {
                    self.created.push(dir.clone());
                    if cpuset {
                        fill_cpuset(&dir)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&dir)(e)),
            }
        }
        Ok(())
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Moves process `pid` into every leaf.
    ///
    /// Writing a pid to `cgroup.procs` takes the kernel's host-wide
    /// `cgroup_threadgroup_rwsem` for writing, which waits for an RCU
    /// grace period (5 to 30 ms) unless another migration happened just
    /// before. New processes therefore join through [`Self::open_join`]
    /// instead; this is the fallback.
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the `cgroup.procs` file.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        join_paths(&self.leaves, pid)
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Opens what a process about to be cloned needs to join the cgroup
    /// at birth, without the host-wide migration lock of [`Self::join`]:
    ///
    /// - a v1 hierarchy's `tasks` file, to which the new process writes
    ///   `0` (itself) first thing: moving the calling thread alone takes
    ///   no global lock, and a freshly cloned process has one thread;
    /// - the cgroup2 leaf (pure v2, or the unified mount of a hybrid
    ///   host) as a directory fd for `clone3(CLONE_INTO_CGROUP)`.
    ///
    /// The fds are close-on-exec. Only the leaves of `part` are opened.
    ///
    /// # Errors
    /// [`CgroupError::Io`] naming the file that cannot be opened.
    pub fn open_join(&self, part: Part) -> Result<Join, CgroupError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut j = Join::default();
        for (i, leaf) in self.leaves.iter().enumerate() {
            if !self.in_part(i, part) {
                continue;
            }
            // A v1 leaf (known from the mount table): its `tasks` file,
            // opened by path. A record from before `controllers` was kept
            // says nothing: the directory's filesystem tells.
            if i < self.controllers.len() && !self.is_unified(i) {
                let t = leaf.join("tasks");
                let f = fs::File::options().write(true).open(&t).map_err(io(&t))?;
                j.tasks.push((f.into(), t));
                continue;
            }
            let dir = fs::File::options()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(leaf)
                .map_err(io(leaf))?;
            if is_cgroup2(&dir) {
                j.unified = Some((dir.into(), leaf.clone()));
                continue;
            }
            // Relative to the directory just opened: no second walk of
            // the whole path.
            let t = leaf.join("tasks");
            // SAFETY: a valid directory fd and a NUL-terminated name.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c"tasks".as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io(&t)(std::io::Error::last_os_error()));
            }
            // SAFETY: a new fd nothing else owns.
            j.tasks.push((unsafe { OwnedFd::from_raw_fd(fd) }, t));
        }
        Ok(j)
    }

    /// The leaf holding the files of `controller` (v1), or the v2 leaf
    /// after checking that the controller is enabled there.
    fn dir_for(&self, controller: &str, field: &str) -> Result<&Path, CgroupError> {
        let missing = |where_: String| CgroupError::NoController {
            field: field.to_string(),
            controller: controller.to_string(),
            where_,
        };
        if self.v2 {
            let leaf = self
                .leaves
                .first()
                .ok_or_else(|| missing("no cgroup".into()))?;
            // Core files (cgroup.*) and the always-on cpu/io/memory/pids
            // of the root need no check; others must be listed.
            if controller != "cgroup" {
                let p = leaf.join("cgroup.controllers");
                let have = fs::read_to_string(&p).unwrap_or_default();
                if !have.split_whitespace().any(|c| c == controller) {
                    return Err(missing(format!("not in {}", p.display())));
                }
            }
            return Ok(leaf);
        }
        self.controllers
            .iter()
            .position(|c| c.iter().any(|c| c == controller))
            .map(|i| self.leaves[i].as_path())
            .ok_or_else(|| missing("not mounted as a cgroup v1 hierarchy".into()))
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// The same container's existing sub-cgroups `subs` (`exec
    /// --cgroup`): each a path below the leaves (`/` is the leaves
    /// themselves), for the v1 hierarchies of the controllers named
    /// (none: every hierarchy; on cgroup v2 only that form, or the name
    /// `unified`).
    ///
    /// # Errors
    /// [`CgroupError::SubCgroup`] for a path that leaves the container's
    /// cgroup or does not exist, or a controller no hierarchy has (in
    /// runc's words, which its tests match).
    ///
    /// ```
    /// let set = rcrun::cgroups::CgroupSet::default();
    /// assert!(set.sub(&[(vec![], "../x".into())]).is_err());
    /// ```
    pub fn sub(&self, subs: &[(Vec<String>, PathBuf)]) -> Result<CgroupSet, CgroupError> {
        use std::path::Component;
        let bad = CgroupError::SubCgroup;
        let mut out = self.clone();
        for (ctrls, path) in subs {
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::RootDir))
            {
                return Err(bad(format!("{} is not a sub cgroup path", path.display())));
            }
            let path: PathBuf = path
                .components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .collect();
            let mut hit = false;
            for (i, leaf) in self.leaves.iter().enumerate() {
                let own = self
                    .controllers
                    .get(i)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let named = ctrls.is_empty()
                    || ctrls.iter().any(|c| {
                        own.iter().any(|o| o == c) || (c == "unified" && self.is_unified(i))
                    });
                if !named {
                    continue;
                }
                hit = true;
                let dir = leaf.join(&path);
                if !dir.is_dir() {
                    return Err(bad(format!(
                        "adding pid to cgroups: {}/cgroup.procs: no such file or directory",
                        dir.display()
                    )));
                }
                if own.iter().any(|c| c == "cpuset") {
                    fill_cpuset(&dir)?;
                }
                out.leaves[i] = dir;
            }
            if !hit && !ctrls.is_empty() {
                return Err(bad(format!("unknown controller {:?}", ctrls.join(","))));
            }
        }
        Ok(out)
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Freezes (`true`) or thaws the container's processes and waits until
    /// the kernel reports the new state.
    ///
    /// # Errors
    /// [`CgroupError`] when the freezer is missing or refuses.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let field = "pause/resume";
        let (file, value, done_file, done) = if self.v2 {
            (
                "cgroup.freeze",
                if frozen { "1" } else { "0" },
                "cgroup.events",
                if frozen { "frozen 1" } else { "frozen 0" },
            )
        } else {
            (
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
            )
        };
        let dir = self.dir_for(if self.v2 { "cgroup" } else { "freezer" }, field)?;
        let path = dir.join(file);
        // A v1 freeze can stay FREEZING while tasks are busy: retry, as runc does.
        for _ in 0..1000 {
            fs::write(&path, value).map_err(|source| CgroupError::Write {
                field: field.into(),
                path: path.clone(),
                value: value.into(),
                source,
            })?;
            let state = fs::read_to_string(dir.join(done_file)).unwrap_or_default();
            if state.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Err(CgroupError::Write {
            field: field.into(),
            path,
            value: value.into(),
            source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        })
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Whether the container's cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        let Ok(dir) = self.dir_for(if self.v2 { "cgroup" } else { "freezer" }, "") else {
            return false;
        };
        if self.v2 {
            fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        } else {
            fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
        }
    }

    /// The pids in the container's cgroup.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// println!("{:?}", cg.pids()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`CgroupError::Io`] when `cgroup.procs` cannot be read.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(l) = self.leaves.first() else {
            return Ok(vec![]);
        };
        // The container's sub-cgroups too (made inside it, or by `exec
        // --cgroup`), children before their parent.
        let mut pids = Vec::new();
        for dir in descendants(l).iter().chain([l]) {
            let p = dir.join("cgroup.procs");
            match fs::read_to_string(&p) {
                Ok(t) => pids.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(&p)(e)),
            }
        }
        Ok(pids)
    }

    #[doc(hidden)] // plumbing of the runtime and its tests
    /// Removes the container's own directories, the leaves rcrun
    /// created. Parents stay, as with runc and crun: they are shared
    /// (`/rcrun`, `/kubepods/...`), and removing one while another
    /// container is between its `mkdir` of the parent and of its leaf
    /// would fail that container's create. A shared leaf (see
    /// [`CgroupSet::shared`]) made by another container is removed too
    /// when this one leaves it empty, as runc does.
    ///
    /// # Errors
    /// [`CgroupError::Io`] when a leaf cannot be removed.
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.remove_with(None)
    }

    /// [`Self::remove`], stopping the scope unit of the systemd driver
    /// through `bus` when there is one (otherwise systemd collects it
    /// once its last process is gone).
    pub(crate) fn remove_with(&self, bus: Option<&systemd::Bus>) -> Result<(), CgroupError> {
        if let Some(unit) = &self.systemd {
            // systemd removes the directories it made (those rcrun did
            // not); the first one tells when it is done.
            let theirs = self.leaves.iter().find(|l| !self.created.contains(l));
            let theirs = theirs.map(PathBuf::as_path);
            match bus {
                Some(bus) => (bus.stop)(unit, theirs)?,
                None => unit.wait_gone(theirs)?,
            }
        }
        if self.shared {
            for dir in self.leaves.iter().filter(|d| !self.created.contains(d)) {
                let _ = fs::remove_dir(dir);
            }
        }
        for dir in self.created.iter().filter(|d| self.leaves.contains(d)) {
            let mut tries = 0;
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    // Exiting tasks can keep a cgroup busy for a moment,
                    // and so do sub-cgroups made inside the container:
                    // those go first, children before parents (as
                    // runc's RemovePath). Back off from 0.1 ms to 10 ms
                    // (about 1 s in all).
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 110 => {
                        for sub in descendants(dir) {
                            let _ = fs::remove_dir(sub);
                        }
                        tries += 1;
                        let us = (100u64 << tries.min(7)).min(10_000);
                        std::thread::sleep(std::time::Duration::from_micros(us));
                    }
                    Err(e) => return Err(io(dir)(e)),
                }
            }
        }
        Ok(())
    }
}

/// [`CgroupSet::join`] for the given cgroup directories.
///
/// # Errors
/// [`CgroupError::Io`] naming the `cgroup.procs` file.
pub(crate) fn join_paths(dirs: &[PathBuf], pid: i32) -> Result<(), CgroupError> {
    let s = pid.to_string();
    for l in dirs {
        let p = l.join("cgroup.procs");
        fs::write(&p, &s).map_err(io(&p))?;
    }
    Ok(())
}

#[doc(hidden)] // plumbing of the runtime and its tests
/// The text of `/proc/self/mountinfo`.
///
/// # Errors
/// [`CgroupError::Io`] when it cannot be read.
pub fn read_mountinfo() -> Result<String, CgroupError> {
    let p = Path::new("/proc/self/mountinfo");
    fs::read_to_string(p).map_err(io(p))
}

#[doc(hidden)] // plumbing of the runtime and its tests
/// How a new process joins a container's cgroup at birth
/// ([`CgroupSet::open_join`]).
#[derive(Debug, Default)]
pub struct Join {
    /// The `tasks` file of each v1 hierarchy, open for writing, and its path.
    pub tasks: Vec<(std::os::fd::OwnedFd, PathBuf)>,
    /// The cgroup2 leaf directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub unified: Option<(std::os::fd::OwnedFd, PathBuf)>,
}

fn is_cgroup2(dir: &fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;
    // SAFETY: fstatfs into a zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) } == 0;
    ok && st.f_type as libc::c_long == CGROUP2_SUPER_MAGIC
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and
/// no task can join it until they are set: copy them from the parent.
fn fill_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let parent = dir.parent().unwrap_or(dir);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let mut v = fs::read_to_string(parent.join(f)).map_err(io(&parent.join(f)))?;
            // An empty parent (made by someone else) is filled from its
            // own parent first, as runc's cpusetEnsureParent; the
            // hierarchy's root is never empty.
            if v.trim().is_empty() && parent != dir {
                fill_cpuset(parent)?;
                v = fs::read_to_string(parent.join(f)).map_err(io(&parent.join(f)))?;
            }
            fs::write(dir.join(f), v.trim()).map_err(io(&dir.join(f)))?;
        }
    }
    Ok(())
}

/// The cgroup directories below `dir`, deepest first.
fn descendants(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(descendants(&e.path()));
                out.push(e.path());
            }
        }
    }
    out
}

/// Enables in `dir`'s subtree_control every controller `dir` has.
fn enable_controllers(dir: &Path) {
    let have = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for c in have.split_whitespace() {
        // Best effort: a controller that cannot be delegated shows up as
        // a clear error when a resource needs it.
        let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
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
                let names: Vec<_> = m
                    .iter()
                    .map(|(p, c)| (p.to_str().unwrap(), c.join(",")))
                    .collect();
                assert_eq!(
                    names,
                    [
                        ("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct".to_string()),
                        ("/sys/fs/cgroup/memory", "memory".to_string()),
                        ("/sys/fs/cgroup/systemd", "name=systemd".to_string()),
                        ("/sys/fs/cgroup/unified", "unified".to_string()),
                    ]
                );
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

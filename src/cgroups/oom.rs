//! OOM-kill notifications for a container's cgroup.
//!
//! The kernel tells a watcher about OOM kills in two ways: on cgroup v1 an
//! eventfd registered through `cgroup.event_control` for
//! `memory.oom_control` (what runc uses), on v2 a modification of
//! `memory.events` (inotify). Both only say "something happened"; the
//! count of kills is `oom_kill` in `memory.oom_control` (v1, Linux 4.13+)
//! or `memory.events` (v2). [`OomWatch`] arms the notification when it is
//! created, so that no kill after [`OomWatch::new`] returns is missed, and
//! [`OomCounter::kills`] turns wake-ups into a number of kills.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::CgroupSet;

enum Source {
    /// v1: the eventfd registered for `memory.oom_control`.
    V1(EventFd),
    /// v2: inotify on `memory.events`.
    V2(Inotify),
}

/// An armed OOM notification on a container's cgroup.
///
/// [`wait`](Self::wait) blocks, so a caller that also has other work
/// (statistics every few seconds, say) runs it on a thread of its own.
pub struct OomWatch {
    source: Source,
    /// The memory cgroup directory, to notice that it went away.
    dir: PathBuf,
}

impl OomWatch {
    /// Arms the notification on the memory controller of `cg`. `None`
    /// when the container has no memory cgroup or the kernel refuses.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// use rcrun::cgroups::oom::{OomCounter, OomWatch};
    /// let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// let mut counter = OomCounter::new(&cg);
    /// if let Some(watch) = OomWatch::new(&cg) {
    ///     while watch.wait() {
    ///         println!("{} OOM kills", counter.kills(&cg, true));
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn new(cg: &CgroupSet) -> Option<OomWatch> {
        if cg.v2 {
            let dir = cg.leaves.first()?.clone();
            let ino = Inotify::init(InitFlags::IN_CLOEXEC).ok()?;
            ino.add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
                .ok()?;
            return Some(OomWatch {
                source: Source::V2(ino),
                dir,
            });
        }
        let i = cg
            .controllers
            .iter()
            .position(|c| c.iter().any(|c| c == "memory"))?;
        let dir = cg.leaves.get(i)?.clone();
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).ok()?;
        let ctl = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
        std::fs::write(
            dir.join("cgroup.event_control"),
            format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd()),
        )
        .ok()?;
        Some(OomWatch {
            source: Source::V1(efd),
            dir,
        })
    }

    /// Blocks until the kernel signals the memory cgroup. `false` once the
    /// cgroup is gone (v1 also signals removal) or the watch failed.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// let watch = rcrun::cgroups::oom::OomWatch::new(&cg).expect("a memory cgroup");
    /// while watch.wait() {
    ///     println!("the kernel signalled an OOM");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait(&self) -> bool {
        let ok = match &self.source {
            Source::V1(efd) => efd.read().is_ok(),
            Source::V2(ino) => ino.read_events().is_ok(),
        };
        ok && self.dir.exists()
    }
}

impl std::os::fd::AsFd for OomWatch {
    /// The fd that becomes readable when the kernel signals the cgroup
    /// (for an event loop; [`OomWatch::wait`] then does not block).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.source {
            Source::V1(efd) => efd.as_fd(),
            Source::V2(ino) => ino.as_fd(),
        }
    }
}

/// Turns OOM wake-ups and the kernel's kill counter into a number of kills
/// to report, each kill once.
#[derive(Debug)]
pub struct OomCounter {
    seen: Option<u64>,
}

impl OomCounter {
    /// Starts counting from the kills `cg` has had so far.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// let counter = rcrun::cgroups::oom::OomCounter::new(&cg);
    /// # let _ = counter;
    /// # Ok(()) }
    /// ```
    pub fn new(cg: &CgroupSet) -> OomCounter {
        OomCounter {
            seen: cg.oom_kill_count(),
        }
    }

    /// The kills since the last call. `woke` says a notification arrived:
    /// where the kernel keeps no counter, each notification is one kill.
    /// Where it does, the counter decides (it may lag the notification:
    /// v1 signals before it kills; a later call reports the kill).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let cg = rcrun::Runtime::new("/run/my-agent").cgroup("web")?;
    /// let mut counter = rcrun::cgroups::oom::OomCounter::new(&cg);
    /// println!("{} kills since", counter.kills(&cg, false));
    /// # Ok(()) }
    /// ```
    pub fn kills(&mut self, cg: &CgroupSet, woke: bool) -> u64 {
        match (self.seen, cg.oom_kill_count()) {
            (Some(seen), Some(now)) => {
                self.seen = Some(now);
                now.saturating_sub(seen)
            }
            _ => u64::from(woke),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(dir: &std::path::Path) -> CgroupSet {
        CgroupSet {
            leaves: vec![dir.to_path_buf()],
            created: vec![],
            controllers: vec![],
            v2: true,
            ..CgroupSet::default()
        }
    }

    #[test]
    fn counter_reports_each_kill_once_and_wakes_without_a_counter() {
        let dir = std::env::temp_dir().join(format!("rcrun-oom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        let cg = set(&dir);
        let mut c = OomCounter::new(&cg);
        assert_eq!(c.kills(&cg, true), 0, "a wake before the kill is counted");
        std::fs::write(&events, "max 9\noom 3\noom_kill 3\n").unwrap();
        assert_eq!(c.kills(&cg, false), 2);
        assert_eq!(c.kills(&cg, true), 0);
        // No counter (v1 before 4.13): one kill per notification.
        std::fs::write(&events, "max 9\n").unwrap();
        let mut c = OomCounter::new(&cg);
        assert_eq!(c.kills(&cg, false), 0);
        assert_eq!(c.kills(&cg, true), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! How a container's process ended: [`ExitStatus`], observed through a
//! pidfd (never another process that reused the pid) and recorded in the
//! container's state directory so that `state`, another process or an
//! agent that re-attaches can read it.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The end of a process: its exit code, or the signal that killed it,
/// and when it was observed.
///
/// ```
/// use rcrun::ExitStatus;
/// // A raw wait status, as waitpid(2) returns it: killed by SIGKILL.
/// let st = ExitStatus::from_wait_status(9, std::time::SystemTime::now());
/// assert_eq!(st.signal(), Some(9));
/// assert_eq!(st.code(), None);
/// assert_eq!(st.shell_code(), 137);
/// assert!(!st.success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(default)]
    core_dumped: bool,
    exited_at: SystemTime,
}

impl ExitStatus {
    /// From a raw wait status (waitpid(2)'s `wstatus`), observed at `at`.
    /// A status that is neither an exit nor a kill (stopped, continued)
    /// reads as exit code 0; the library only waits for exits.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let st = rcrun::ExitStatus::from_wait_status(3 << 8, std::time::SystemTime::now());
    /// assert_eq!(st.code(), Some(3));
    /// # Ok(()) }
    /// ```
    pub fn from_wait_status(status: i32, at: SystemTime) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus {
                code: None,
                signal: Some(libc::WTERMSIG(status)),
                core_dumped: libc::WCOREDUMP(status),
                exited_at: at,
            }
        } else {
            ExitStatus::exited(libc::WEXITSTATUS(status), at)
        }
    }

    /// A process that exited with `code`.
    ///
    /// ```
    /// let st = rcrun::ExitStatus::exited(3, std::time::SystemTime::now());
    /// assert_eq!((st.code(), st.shell_code()), (Some(3), 3));
    /// ```
    pub fn exited(code: i32, at: SystemTime) -> ExitStatus {
        ExitStatus {
            code: Some(code),
            signal: None,
            core_dumped: false,
            exited_at: at,
        }
    }

    /// A process killed by `signal`.
    ///
    /// ```
    /// let st = rcrun::ExitStatus::killed(15, false, std::time::SystemTime::now());
    /// assert_eq!(st.signal(), Some(15));
    /// ```
    pub fn killed(signal: i32, core_dumped: bool, at: SystemTime) -> ExitStatus {
        ExitStatus {
            code: None,
            signal: Some(signal),
            core_dumped,
            exited_at: at,
        }
    }

    /// The exit code, when the process exited by itself.
    ///
    /// ```
    /// # let st = rcrun::ExitStatus::exited(0, std::time::SystemTime::now());
    /// assert_eq!(st.code(), Some(0));
    /// ```
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the process.
    ///
    /// ```
    /// # let st = rcrun::ExitStatus::exited(0, std::time::SystemTime::now());
    /// assert_eq!(st.signal(), None);
    /// ```
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// Whether the kill left a core dump.
    ///
    /// ```
    /// # let st = rcrun::ExitStatus::killed(11, true, std::time::SystemTime::now());
    /// assert!(st.core_dumped());
    /// ```
    pub fn core_dumped(&self) -> bool {
        self.core_dumped
    }

    /// When the exit was observed (reaped).
    ///
    /// ```
    /// # let now = std::time::SystemTime::now();
    /// # let st = rcrun::ExitStatus::exited(0, now);
    /// assert_eq!(st.exited_at(), now);
    /// ```
    pub fn exited_at(&self) -> SystemTime {
        self.exited_at
    }

    /// Exit code 0.
    ///
    /// ```
    /// # let st = rcrun::ExitStatus::exited(0, std::time::SystemTime::now());
    /// assert!(st.success());
    /// ```
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// As a shell reports it, and as `runc run` exits: the code, or 128
    /// plus the signal.
    ///
    /// ```
    /// # let st = rcrun::ExitStatus::killed(15, false, std::time::SystemTime::now());
    /// assert_eq!(st.shell_code(), 143);
    /// ```
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 0,
        }
    }

    /// As a raw wait status again.
    pub(crate) fn raw(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => (c & 0xff) << 8,
            (None, Some(s)) => s | if self.core_dumped { 0x80 } else { 0 },
            (None, None) => 0,
        }
    }

    /// Writes the status to `path`, atomically.
    pub(crate) fn record(&self, path: &Path) -> std::io::Result<()> {
        crate::store::write_json(path, self)
    }

    /// The status recorded at `path`, if any.
    pub(crate) fn recorded(path: &Path) -> Option<ExitStatus> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) if self.core_dumped => write!(f, "killed by signal {s} (core dumped)"),
            (None, Some(s)) => write!(f, "killed by signal {s}"),
            (None, None) => write!(f, "exit status 0"),
        }
    }
}

/// The statuses a caller's own reaper collected, handed to the library.
///
/// Who reaps is one choice for the whole process:
/// - **The library** (the default, no `Reaper`): each wait is for one
///   child (a pidfd, or `waitpid(pid)`), for the container processes
///   ([`crate::Container::wait`]) and for the runtime's own helpers
///   (hooks, intermediate processes, an init that failed).
/// - **The caller**: a shim or agent that is a child subreaper runs
///   `waitpid(-1)` on SIGCHLD (containerd-shim's reaper does), which also
///   takes the library's children. It passes every status it collects to
///   [`Reaper::record`], and gives the same `Reaper` to its runtimes
///   ([`crate::Runtime::with_reaper`]). A wait of the library that finds
///   its child already reaped (ECHILD) then takes the status from here,
///   waiting for the reaper to record it if need be.
///
/// Statuses nobody asks for (the caller's own children) are kept up to a
/// bound and then dropped, oldest first. A `Reaper` is a cheap handle:
/// clones share the statuses, and it may be used from any thread.
///
/// ```no_run
/// use rcrun::{Reaper, Runtime};
/// let reaper = Reaper::new();
/// let r = reaper.clone();
/// std::thread::spawn(move || loop {
///     let mut st = 0;
///     // SAFETY: waitpid with a valid out-pointer.
///     let pid = unsafe { libc::waitpid(-1, &mut st, 0) };
///     if pid > 0 {
///         r.record(pid, st);
///     } else {
///         std::thread::sleep(std::time::Duration::from_millis(50));
///     }
/// });
/// let rt = Runtime::new("/run/my-shim").with_reaper(reaper);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Reaper {
    inner: std::sync::Arc<(std::sync::Mutex<Reaped>, std::sync::Condvar)>,
}

#[derive(Debug, Default)]
struct Reaped {
    /// (pid, raw wait status, when it was recorded, when observed)
    statuses: std::collections::VecDeque<(i32, i32, std::time::Instant, SystemTime)>,
}

/// How many unclaimed statuses a [`Reaper`] keeps.
const REAPED_CAP: usize = 4096;

impl Reaper {
    /// A reaper with no statuses yet.
    ///
    /// ```
    /// let r = rcrun::Reaper::new();
    /// r.record(12345, 0);
    /// ```
    pub fn new() -> Reaper {
        Reaper::default()
    }

    /// Hands over the raw wait status (`waitpid`'s `wstatus`) of `pid`,
    /// which the caller has reaped. Call it for every status the reaper
    /// collects; the library takes those of its own processes.
    ///
    /// ```
    /// rcrun::Reaper::new().record(4321, 9); // killed by SIGKILL
    /// ```
    pub fn record(&self, pid: i32, wait_status: i32) {
        let (lock, cv) = &*self.inner;
        let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
        if r.statuses.len() == REAPED_CAP {
            r.statuses.pop_front();
        }
        r.statuses.push_back((
            pid,
            wait_status,
            std::time::Instant::now(),
            SystemTime::now(),
        ));
        cv.notify_all();
    }

    /// The status of `pid` recorded at or after `since`, if there is one.
    pub(crate) fn try_take(&self, pid: i32, since: std::time::Instant) -> Option<ExitStatus> {
        let (lock, _) = &*self.inner;
        let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
        let i = r
            .statuses
            .iter()
            .position(|&(p, _, at, _)| p == pid && at >= since)?;
        let (_, raw, _, when) = r.statuses.remove(i).expect("found");
        Some(ExitStatus::from_wait_status(raw, when))
    }

    /// Takes the status of `pid` recorded at or after `since` (when the
    /// library made that process: an older record is of another process
    /// that had the pid), waiting for it until the caller records it.
    pub(crate) fn take(&self, pid: i32, since: std::time::Instant) -> ExitStatus {
        let (lock, cv) = &*self.inner;
        let mut r = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let found = r
                .statuses
                .iter()
                .position(|&(p, _, at, _)| p == pid && at >= since);
            if let Some(i) = found {
                let (_, raw, _, when) = r.statuses.remove(i).expect("found");
                return ExitStatus::from_wait_status(raw, when);
            }
            r = cv.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// How one operation of the library waits for the children it makes:
/// `waitpid(pid)`, or, when the caller's reaper took the child first
/// (ECHILD), the status the caller recorded (see [`Reaper`]).
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    reaper: Option<Reaper>,
    /// Before the operation's first fork: a record older than this is
    /// of another process that had the pid.
    since: std::time::Instant,
}

impl Waiter {
    pub(crate) fn new(reaper: Option<&Reaper>) -> Waiter {
        Waiter {
            reaper: reaper.cloned(),
            since: std::time::Instant::now(),
        }
    }

    /// Waits for child `pid`; returns its raw wait status.
    pub(crate) fn wait(&self, pid: i32) -> Result<i32, crate::sys::Errno> {
        match (crate::sys::waitpid(pid), &self.reaper) {
            (Err(libc::ECHILD), Some(r)) => Ok(r.take(pid, self.since).raw()),
            (r, _) => r,
        }
    }

    /// The status of child `pid` if the caller's reaper recorded it.
    pub(crate) fn reaped(&self, pid: i32) -> Option<ExitStatus> {
        self.reaper.as_ref()?.try_take(pid, self.since)
    }

    /// Whether a caller's reaper may take the library's children.
    pub(crate) fn has_reaper(&self) -> bool {
        self.reaper.is_some()
    }

    /// Kills `pid`, which may not be our child, and reaps it if it is
    /// (at once, or through the caller's reaper if it recorded it already);
    /// never waits for a status that may not come.
    pub(crate) fn kill_and_try_reap(&self, pid: i32) {
        // SAFETY: kill(2) with a pid we made; at worst ESRCH.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if crate::sys::waitpid(pid).is_err() {
            let _ = self.reaped(pid);
        }
    }

    /// Kills child `pid` and waits for it.
    pub(crate) fn kill_and_reap(&self, pid: i32) {
        // SAFETY: signalling our own child, not yet reaped by us.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = self.wait(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_statuses() {
        let t = SystemTime::now();
        let st = ExitStatus::from_wait_status(7 << 8, t);
        assert_eq!(
            (st.code(), st.signal(), st.to_string()),
            (Some(7), None, "exit status 7".into())
        );
        let st = ExitStatus::from_wait_status(0x80 | 11, t);
        assert!(st.core_dumped());
        assert_eq!(st.to_string(), "killed by signal 11 (core dumped)");
    }

    #[test]
    fn recorded_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        assert_eq!(ExitStatus::recorded(&p), None);
        let st = ExitStatus::killed(9, false, SystemTime::now());
        st.record(&p).unwrap();
        assert_eq!(ExitStatus::recorded(&p), Some(st));
    }
}

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

    /// Writes the status to `path`, atomically (a temporary file in the
    /// same directory, renamed over it).
    pub(crate) fn record(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).expect("plain fields"))?;
        std::fs::rename(&tmp, path)
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

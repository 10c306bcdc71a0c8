//! Lifecycle hooks (config.md, "POSIX-platform Hooks").
//!
//! `prestart`, `createRuntime`, `poststart` and `poststop` run in the
//! runtime's namespaces and are started here with [`run`].
//! `createContainer` and `startContainer` run in the container's
//! namespaces, so the container's init process starts them itself with
//! `HookExec::run`, which is async-signal-safe.

use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use libc::c_char;
use oci_spec::runtime::Hook;

use crate::sys;

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The hook could not be started.
    #[error("{kind} hook {path}: cannot start: {source}")]
    Spawn {
        /// The hook kind, e.g. `createRuntime`.
        kind: &'static str,
        /// Its path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The hook exited non-zero or was killed.
    #[error("{kind} hook {path} failed: {status}{output}")]
    Failed {
        /// The hook kind.
        kind: &'static str,
        /// Its path.
        path: String,
        /// How it ended.
        status: String,
        /// What it printed, prefixed with ": " (empty when nothing).
        output: String,
    },
    /// The hook ran longer than its `timeout`.
    #[error("{kind} hook {path} timed out after {secs}s")]
    Timeout {
        /// The hook kind.
        kind: &'static str,
        /// Its path.
        path: String,
        /// The timeout.
        secs: i64,
    },
}

fn memfd() -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(c"rcrun-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

/// Runs one hook in the runtime's namespaces with `state` on its stdin.
/// Its stdout and stderr are captured and reported if it fails.
///
/// # Errors
/// [`HookError`] naming the hook kind and path.
pub(crate) fn run(
    kind: &'static str,
    hook: &Hook,
    state: &[u8],
    waiter: &crate::exit::Waiter,
) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let spawn_err = |source| HookError::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let mut cmd = Command::new(hook.path());
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((a0, rest)) = args.split_first() {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut out = memfd().map_err(spawn_err)?;
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(spawn_err)?)
        .stderr(out.try_clone().map_err(spawn_err)?);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE).
        let _ = stdin.write_all(state);
    }
    if let Some(secs) = hook.timeout().filter(|t| *t > 0) {
        let pidfd = sys::pidfd(child.id() as i32)
            .map_err(|e| spawn_err(std::io::Error::from_raw_os_error(e)))?;
        let ms = (secs.saturating_mul(1000)).min(i32::MAX as i64) as i32;
        if !sys::poll_in(pidfd.as_raw_fd(), ms).unwrap_or(true) {
            waiter.kill_and_reap(child.id() as i32);
            return Err(HookError::Timeout { kind, path, secs });
        }
    }
    let status = waiter
        .wait(child.id() as i32)
        .map_err(|e| spawn_err(std::io::Error::from_raw_os_error(e)))?;
    let status = crate::ExitStatus::from_wait_status(status, std::time::SystemTime::now());
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = out.rewind();
    let _ = out.read_to_string(&mut text);
    let text = text.trim();
    Err(HookError::Failed {
        kind,
        path,
        status: status.to_string(),
        output: if text.is_empty() {
            String::new()
        } else {
            format!(": {}", text.lines().last().unwrap_or_default())
        },
    })
}

/// Runs every hook of a kind in order, stopping at the first failure.
///
/// # Errors
/// The first hook's [`HookError`].
pub(crate) fn run_all(
    kind: &'static str,
    hooks: Option<&Vec<Hook>>,
    state: &[u8],
    waiter: &crate::exit::Waiter,
) -> Result<(), HookError> {
    hooks
        .into_iter()
        .flatten()
        .try_for_each(|h| run(kind, h, state, waiter))
}

/// A NULL-terminated `char *[]` with the strings it points into.
#[derive(Debug)]
pub(crate) struct CStrings {
    _owned: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl CStrings {
    pub(crate) fn new<S: AsRef<[u8]>>(items: impl IntoIterator<Item = S>) -> CStrings {
        let owned: Vec<CString> = items
            .into_iter()
            .map(|s| crate::rootfs::plan::cstr(s.as_ref()))
            .collect();
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStrings {
            _owned: owned,
            ptrs,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// The pointers, the closing NULL included.
    pub(crate) fn ptrs(&self) -> &[*const c_char] {
        &self.ptrs
    }
}

/// A hook prepared for the container's init process to start.
#[derive(Debug)]
pub(crate) struct HookExec {
    path: CString,
    argv: CStrings,
    envp: CStrings,
    timeout_ms: i32,
}

/// How a hook started by the init process failed.
pub(crate) enum HookFailure {
    Errno(sys::Errno),
    Status(i32),
    /// Killed by this signal.
    Signal(i32),
    Timeout,
}

impl HookExec {
    /// Prepares `h`; a hook without `env` gets `default_env` (as runc:
    /// a startContainer hook sees the container process's environment).
    pub(crate) fn new(h: &Hook, default_env: &[String]) -> HookExec {
        let path = crate::rootfs::plan::cstr(h.path().as_os_str().as_bytes());
        let args: Vec<String> = h
            .args()
            .clone()
            .unwrap_or_else(|| vec![h.path().display().to_string()]);
        HookExec {
            path,
            argv: CStrings::new(args.iter().map(|s| s.as_bytes())),
            envp: CStrings::new(
                h.env()
                    .as_deref()
                    .unwrap_or(default_env)
                    .iter()
                    .map(|s| s.as_bytes()),
            ),
            timeout_ms: h
                .timeout()
                .filter(|t| *t > 0)
                .map_or(-1, |t| (t.saturating_mul(1000)).min(i32::MAX as i64) as i32),
        }
    }

    /// Forks, execs the hook with `state` on its stdin and waits for it.
    /// Async-signal-safe: only system calls on prepared data.
    pub(crate) fn run(&self, state: &[u8]) -> Result<(), HookFailure> {
        let mut fds = [0; 2];
        // SAFETY: fds is a valid 2-element out-array.
        sys::check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })
            .map_err(HookFailure::Errno)?;
        let pid = match sys::fork(0) {
            Ok(0) => {
                // SAFETY: in the forked child: dup2 clears CLOEXEC on fd 0,
                // then exec; _exit if that fails. No allocation.
                unsafe {
                    libc::dup2(fds[0], 0);
                    libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
                    libc::_exit(127);
                }
            }
            Ok(pid) => pid,
            Err(e) => {
                sys::close(fds[0]);
                sys::close(fds[1]);
                return Err(HookFailure::Errno(e));
            }
        };
        sys::close(fds[0]);
        let _ = sys::write_all(fds[1], state);
        sys::close(fds[1]);
        if self.timeout_ms >= 0 {
            let pidfd = sys::pidfd_open(pid).map_err(HookFailure::Errno)?;
            let done = sys::poll_in(pidfd, self.timeout_ms);
            sys::close(pidfd);
            if !done.map_err(HookFailure::Errno)? {
                // SAFETY: pid is our child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = sys::waitpid(pid);
                return Err(HookFailure::Timeout);
            }
        }
        let st = sys::waitpid(pid).map_err(HookFailure::Errno)?;
        if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
            Ok(())
        } else if libc::WIFEXITED(st) {
            Err(HookFailure::Status(libc::WEXITSTATUS(st)))
        } else {
            Err(HookFailure::Signal(libc::WTERMSIG(st)))
        }
    }
}

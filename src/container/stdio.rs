//! The standard streams of a container's process: the caller's own fds
//! 0-2 (runc's behaviour without a terminal), or fds the caller gives.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::process::plan::ChildPlan;

/// Standard input, output and error for a container's process: pipes,
/// fifos, files or sockets the caller owns. A stream left `None` is the
/// calling process's own fd of that number (as with runc).
///
/// The runtime keeps no copy once `create` or `exec` returns: the
/// process sees end-of-file on its stdin when the caller closes the
/// other end of that pipe, and the caller sees end-of-file on an output
/// pipe once every process holding it has exited. Not for a process with
/// a terminal (`process.terminal`): its streams are the pty's.
///
/// ```no_run
/// use std::io::Read;
/// use rcrun::{CreateOptions, Runtime, Stdio};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (r, w) = nix::unistd::pipe()?;
/// let mut out = std::fs::File::from(r);
/// let opts = CreateOptions {
///     stdio: Stdio { stdout: Some(w), ..Stdio::default() },
///     ..CreateOptions::default()
/// };
/// let rt = Runtime::new("/run/rcrun");
/// let c = rt.run("hello", "/srv/bundles/hello".as_ref(), opts)?;
/// let mut text = String::new();
/// out.read_to_string(&mut text)?; // until the container's exit
/// c.wait()?;
/// rt.delete("hello", false)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Stdio {
    /// Becomes fd 0.
    pub stdin: Option<OwnedFd>,
    /// Becomes fd 1.
    pub stdout: Option<OwnedFd>,
    /// Becomes fd 2.
    pub stderr: Option<OwnedFd>,
}

impl Stdio {
    fn given(&self) -> [Option<&OwnedFd>; 3] {
        [
            self.stdin.as_ref(),
            self.stdout.as_ref(),
            self.stderr.as_ref(),
        ]
    }

    /// Gives `plan` copies of the fds, numbered from `min_fd` up (above
    /// stdio and the preserved fds, so that placing one cannot clobber
    /// another); the copies must outlive the spawn and are dropped after.
    pub(crate) fn attach(
        &self,
        plan: &mut ChildPlan,
        terminal: bool,
        min_fd: RawFd,
    ) -> Result<Vec<OwnedFd>> {
        let given = self.given();
        if terminal && given.iter().any(Option::is_some) {
            return Err(Error::Unsupported(
                "giving stdio fds to a process with a terminal",
            ));
        }
        let mut held = Vec::new();
        for (i, f) in given.into_iter().enumerate() {
            let Some(f) = f else { continue };
            // SAFETY: duplicating an fd the caller lent us; F_DUPFD_CLOEXEC
            // returns a new fd or -1.
            let n = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min_fd) };
            if n < 0 {
                return Err(Error::io("stdio", std::io::Error::last_os_error()));
            }
            // SAFETY: fcntl returned a new fd that nothing else owns.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) };
            plan.wiring.stdio[i] = fd.as_raw_fd();
            held.push(fd);
        }
        Ok(held)
    }
}

//! The fds of a process that is about to run container code: every fd
//! the runtime or its caller had open is closed before the init (or an
//! `exec`'d process) makes any path lookup on the container's behalf
//! (CVE-2024-21626: a host directory reached through `/proc/self/fd/N`
//! as the working directory, in `PATH`, or as the program).
//!
//! Async-signal-safe: runs between clone and exec, on a fixed-size list
//! on the stack.

use std::os::fd::RawFd;

/// The most fds a plan can name (sync socket, error file, exec fifo,
/// console socket, trampoline, namespaces to join, cgroup `tasks` files,
/// bind sources opened for a user namespace). On the stack: 4 KiB.
pub(crate) const MAX_KEEP: usize = 1024;

/// The fds to keep open: a fixed-size set, no allocation.
#[derive(Debug)]
pub(crate) struct Keep {
    fds: [RawFd; MAX_KEEP],
    len: usize,
}

impl Keep {
    pub(crate) const fn new() -> Keep {
        Keep {
            fds: [0; MAX_KEEP],
            len: 0,
        }
    }

    /// Adds `fd` (ignored when negative). Returns false when full.
    pub(crate) fn add(&mut self, fd: RawFd) -> bool {
        if fd < 0 {
            return true;
        }
        if self.len == MAX_KEEP {
            return false;
        }
        self.fds[self.len] = fd;
        self.len += 1;
        true
    }

    /// Closes every fd from `from` up that is not in the set.
    pub(crate) fn close_others(&mut self, from: RawFd) {
        let kept = &mut self.fds[..self.len];
        kept.sort_unstable();
        let mut lo = from.max(0) as u32;
        for &fd in kept.iter() {
            let fd = fd as u32;
            if fd < lo {
                continue;
            }
            if fd > lo {
                close_range(lo, fd - 1);
            }
            lo = fd + 1;
        }
        close_range(lo, u32::MAX);
    }
}

fn close_range(lo: u32, hi: u32) {
    // SAFETY: plain syscall on this process's own fd table (not shared:
    // the init and exec'd processes are cloned without CLONE_FILES).
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r < 0 {
        // Kernels before 5.9: close one by one, up to the hard limit (an
        // fd opened before the soft limit was lowered is above it).
        let mut lim: libc::rlimit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid out-pointer.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        let top = (lim.rlim_max.min(u64::from(hi) + 1)).min(1 << 20) as u32;
        for fd in lo..top {
            crate::sys::close(fd as RawFd);
        }
    }
}

/// Whether this process's working directory is reachable from its root:
/// getcwd(2) prefixes a directory outside the root with "(unreachable)",
/// and fails when it was removed.
pub(crate) fn cwd_inside_root() -> bool {
    // PATH_MAX: the kernel puts "(unreachable)" first and fails with
    // ERANGE only when the whole does not fit, so a shorter buffer would
    // hide the marker of a long path. On the stack: no allocation.
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: buf is a valid, writable buffer of its length; the raw
    // syscall (not glibc's getcwd, which would allocate).
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    r > 0 && buf[0] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_everything_but_the_kept_fds() {
        use std::os::fd::AsRawFd;
        // In a forked child: the test harness's own fds must not close.
        let files: Vec<std::fs::File> = (0..6).map(|_| tempfile::tempfile().unwrap()).collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        // SAFETY: fork in a test; the child only makes syscalls and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut k = Keep::new();
            k.add(raw[4]);
            k.add(raw[1]);
            k.add(-1);
            k.close_others(3);
            let open = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            let ok = open(0)
                && open(raw[1])
                && open(raw[4])
                && ![0, 2, 3, 5].iter().any(|&i| open(raw[i]));
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st}");
    }

    #[test]
    fn a_cwd_inside_the_root_is_reachable() {
        assert!(cwd_inside_root());
    }
}

//! Thin, allocation-free wrappers over the system calls that the
//! container's init process makes between clone and exec.
//!
//! Everything here is async-signal-safe: plain syscalls on caller-owned
//! buffers, no allocation, no locks, no logging. Errors are raw errnos.

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_char, c_int, c_ulong};

/// A failed system call's errno.
pub(crate) type Errno = i32;

pub(crate) fn errno() -> Errno {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Turns a `-1 and errno` return into a `Result`.
pub(crate) fn check(r: c_int) -> Result<c_int, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

pub(crate) fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: closing an fd this process owns; errors are irrelevant here.
        unsafe { libc::close(fd) };
    }
}

/// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were
/// `/`, so neither `..` nor absolute symlinks can leave it.
pub(crate) fn open_in_root(root: RawFd, path: &CStr, flags: c_int) -> Result<RawFd, Errno> {
    // open_how is non-exhaustive in libc: start from zeroes.
    // SAFETY: an all-zero open_how is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: `how` and `path` are valid for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            return Ok(r as RawFd);
        }
        let e = errno();
        // The kernel asks for a retry when a rename raced the lookup.
        if e != libc::EAGAIN {
            return Err(e);
        }
    }
}

/// Writes `prefix` and the decimal `n` into `buf`, NUL-terminated;
/// returns the length without the NUL. `buf` must hold prefix + 11 bytes.
pub(crate) fn prefixed_number(buf: &mut [u8], prefix: &[u8], n: u32) -> usize {
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut i, mut n) = (digits.len(), n);
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = prefix.len() + digits.len() - i;
    buf[prefix.len()..len].copy_from_slice(&digits[i..]);
    buf[len] = 0;
    len
}

/// `/proc/self/fd/<fd>` as a NUL-terminated string in `buf`, for
/// syscalls that take a path but must act on an already-resolved fd.
pub(crate) fn fd_path(buf: &mut [u8; 32], fd: RawFd) -> *const c_char {
    prefixed_number(buf, b"/proc/self/fd/", fd.max(0) as u32);
    buf.as_ptr().cast()
}

pub(crate) fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> Result<(), Errno> {
    // SAFETY: all pointers are NULL or NUL-terminated strings owned by the caller.
    check(unsafe { libc::mount(src, target, fstype, flags, data.cast()) }).map(drop)
}

/// Writes all of `buf`, retrying on EINTR and short writes.
pub(crate) fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(errno());
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Writes `value` to the file at `path` (a procfs knob).
pub(crate) fn write_file(path: &CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: path is NUL-terminated.
    let fd = check(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
    let r = write_all(fd, value);
    close(fd);
    r
}

/// fork(2) without glibc's atfork handlers, which are not safe to run in a
/// child of a multithreaded process: a raw clone(2) sharing nothing.
pub(crate) fn fork(flags: c_int) -> Result<libc::pid_t, Errno> {
    // SAFETY: without CLONE_VM the child gets a copy-on-write copy of the
    // address space and continues on its own copy of this stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// [`fork`] through clone3(2) with `CLONE_INTO_CGROUP`: the child is
/// born in the cgroup2 directory `cgroup`, with no migration (and none
/// of the host-wide lock a migration takes). Linux 5.7+; callers fall
/// back to [`fork`] on an error.
pub(crate) fn fork_into(flags: c_int, cgroup: RawFd) -> Result<libc::pid_t, Errno> {
    /// struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..CloneArgs::default()
    };
    // SAFETY: as fork: no CLONE_VM and no stack, so the child continues
    // on a copy-on-write copy of this stack; args is valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// [`pidfd_open`], owned.
pub(crate) fn pidfd(pid: libc::pid_t) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open returned a new fd that nothing else owns.
    pidfd_open(pid).map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn pidfd_open(pid: libc::pid_t) -> Result<RawFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as RawFd)
    }
}

/// Waits for `pid` to exit; returns its wait status.
pub(crate) fn waitpid(pid: libc::pid_t) -> Result<c_int, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 {
            return Ok(status);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// Blocks until `fd` is readable (or `timeout_ms` passes; -1 waits
/// forever). Returns false on time-out.
pub(crate) fn poll_in(fd: RawFd, timeout_ms: c_int) -> Result<bool, Errno> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: p is a valid pollfd array of length 1.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

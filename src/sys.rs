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
    openat2(
        root,
        path.as_ptr(),
        flags | libc::O_CLOEXEC,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// openat2(2) of the NUL-terminated `path` from `dir`, again while the
/// kernel asks for a retry (a rename raced the lookup).
pub(crate) fn openat2(
    dir: RawFd,
    path: *const c_char,
    flags: c_int,
    resolve: u64,
) -> Result<RawFd, Errno> {
    // open_how is non-exhaustive in libc: start from zeroes.
    // SAFETY: an all-zero open_how is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` and the caller's NUL-terminated `path` are valid
        // for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path,
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            return Ok(r as RawFd);
        }
        let e = errno();
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

/// Sends `signal` to the process `pidfd` names (pidfd_send_signal(2)).
pub(crate) fn pidfd_send_signal(pidfd: RawFd, signal: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall; a NULL siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
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

/// Whether the file `fd` is on a procfs (fstatfs), as runc's `isProc`.
pub(crate) fn on_procfs(fd: RawFd) -> Result<bool, Errno> {
    // SAFETY: an all-zero statfs is valid; fstatfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstatfs(fd, &mut st) })?;
    Ok(st.f_type == libc::PROC_SUPER_MAGIC)
}

/// The inode number of every procfs's root directory (fs/proc/internal.h).
pub(crate) const PROC_ROOT_INO: u64 = 1;

/// Whether `fd` is the root directory of a procfs.
pub(crate) fn is_procfs_root(fd: RawFd) -> Result<bool, Errno> {
    if !on_procfs(fd)? {
        return Ok(false);
    }
    // SAFETY: an all-zero stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_ino == PROC_ROOT_INO && st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Where a path given to [`write_proc`] starts, inside the procfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcBase {
    /// The procfs root: `sys/kernel/domainname`.
    Root,
    /// This thread's directory, `<pid>/task/<tid>` (what `thread-self`
    /// points to), built from getpid(2) and gettid(2). The procfs must
    /// belong to this process's pid namespace: the path is checked
    /// against its `thread-self` link, and refused (EXDEV) otherwise.
    /// For the container's own `/proc`, after pivot_root.
    ThreadSelf,
    /// This process's directory as that procfs numbers it: the target
    /// of its `self` link (digits only). For the runtime's `/proc`
    /// before pivot_root, whose pid namespace is not the init's: in the
    /// init's new mount namespace only the host can mount over it (the
    /// `mounts` entries land inside the rootfs).
    SelfLink,
}

/// Writes `value` to the file `path` (relative, no leading `/`, no NUL)
/// of the procfs mounted at `/proc`, through a verified procfs only:
/// `/proc` must be the root of a procfs (fstatfs PROC_SUPER_MAGIC, inode
/// 1; not a symlink), `path` is opened from it with openat2
/// RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS, so that no
/// mount over a part of it (a volume on /proc/sys) and no symlink can
/// redirect the write, and the opened file must be on procfs again.
/// CVE-2025-52881, CVE-2019-16884.
///
/// Errors: EXDEV when `/proc` is not a procfs root, when the path
/// crosses a mount, or when `thread-self` is not this thread; ELOOP
/// when it meets a symlink; ENAMETOOLONG; or the open's or write's own.
/// Async-signal-safe: no allocation, the path is built on the stack.
pub(crate) fn write_proc(base: ProcBase, path: &[u8], value: &[u8]) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated literal.
    let proc = check(unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    let r = write_proc_at(proc, base, path, value);
    close(proc);
    r
}

/// [`write_proc`] from an already-opened `/proc` (O_PATH) fd.
pub(crate) fn write_proc_at(
    proc: RawFd,
    base: ProcBase,
    path: &[u8],
    value: &[u8],
) -> Result<(), Errno> {
    if !is_procfs_root(proc)? {
        return Err(libc::EXDEV);
    }
    let mut buf = [0u8; libc::PATH_MAX as usize];
    let mut len = match base {
        ProcBase::Root => 0,
        ProcBase::ThreadSelf => {
            // SAFETY: plain syscalls without arguments.
            let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
            let n = prefixed_number(&mut buf, b"", pid as u32);
            let n = prefixed_number(&mut buf[n..], b"/task/", tid as u32) + n;
            let mut link = [0u8; 64];
            if read_link(proc, c"thread-self", &mut link)? != &buf[..n] {
                return Err(libc::EXDEV);
            }
            buf[n] = b'/';
            n + 1
        }
        ProcBase::SelfLink => {
            let n = read_link(proc, c"self", &mut buf[..16])?.len();
            if n == 0 || !buf[..n].iter().all(u8::is_ascii_digit) {
                return Err(libc::EXDEV);
            }
            buf[n] = b'/';
            n + 1
        }
    };
    if path.contains(&0) || len + path.len() >= buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[len..len + path.len()].copy_from_slice(path);
    len += path.len();
    buf[len] = 0;
    let fd = openat2(
        proc,
        buf.as_ptr().cast(),
        libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_SYMLINKS,
    )?;
    let r = match on_procfs(fd) {
        Ok(true) => write_all(fd, value),
        Ok(false) => Err(libc::EXDEV),
        Err(e) => Err(e),
    };
    close(fd);
    r
}

/// readlinkat(2) of `name` in `dir` into `buf`; the link's bytes. A
/// target that fills `buf` counts as too long (ENAMETOOLONG).
fn read_link<'a>(dir: RawFd, name: &CStr, buf: &'a mut [u8]) -> Result<&'a [u8], Errno> {
    // SAFETY: buf is valid for buf.len() bytes; name is NUL-terminated.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(errno());
    }
    let n = n as usize;
    if n >= buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    Ok(&buf[..n])
}

/// sendmsg(2) with one fd in an SCM_RIGHTS control message.
pub(crate) fn send_fd(sock: RawFd, payload: &[u8], fd: RawFd) -> Result<(), Errno> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut _,
        iov_len: payload.len(),
    };
    // SAFETY: an all-zero msghdr is valid; every pointer set below points
    // into live stack buffers large enough for one fd (CMSG_SPACE(4) <= 64).
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.0.as_mut_ptr().cast();
        m.msg_controllen = libc::CMSG_SPACE(4) as usize;
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &m, libc::MSG_NOSIGNAL) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::null;

    fn open_dir(p: &CStr) -> RawFd {
        // SAFETY: p is NUL-terminated.
        check(unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
        .unwrap()
    }

    #[test]
    fn writes_this_threads_files_through_task_tid() {
        // In a thread of its own (not the process's main thread): the
        // path is <pid>/task/<tid>, checked against thread-self.
        std::thread::spawn(|| {
            write_proc(ProcBase::ThreadSelf, b"comm", b"rcrun-wp").unwrap();
            let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
            assert_eq!(comm, "rcrun-wp\n");
            assert_eq!(
                write_proc(ProcBase::ThreadSelf, b"no-such-file", b"x"),
                Err(libc::ENOENT)
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn writes_the_process_files_through_its_self_link() {
        let v = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
        write_proc(ProcBase::SelfLink, b"oom_score_adj", v.trim().as_bytes()).unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/self/oom_score_adj").unwrap(),
            v
        );
    }

    #[test]
    fn refuses_symlinks_and_paths_out_of_procfs() {
        // self and thread-self are symlinks, even inside procfs.
        for p in [&b"self/comm"[..], b"thread-self/comm", b"self/attr/current"] {
            assert_eq!(write_proc(ProcBase::Root, p, b"x"), Err(libc::ELOOP));
        }
        // Out of /proc.
        for p in [&b"../tmp/x"[..], b"/tmp/x", b"sys/../../etc/hostname"] {
            assert_eq!(write_proc(ProcBase::Root, p, b"x"), Err(libc::EXDEV));
        }
        assert_eq!(
            write_proc(ProcBase::Root, b"sys/kernel/a\0b", b"x"),
            Err(libc::ENAMETOOLONG)
        );
        assert_eq!(
            write_proc(ProcBase::Root, &[b'a'; 5000], b"x"),
            Err(libc::ENAMETOOLONG)
        );
    }

    #[test]
    fn refuses_a_proc_that_is_not_a_procfs_root() {
        // A directory that is not procfs, and one inside procfs (a bind
        // of /proc/sys over /proc would look like procfs to fstatfs).
        for dir in [c"/tmp", c"/proc/sys", c"/proc/self"] {
            let fd = open_dir(dir);
            assert_eq!(
                write_proc_at(fd, ProcBase::Root, b"kernel/domainname", b"x"),
                Err(libc::EXDEV),
                "{dir:?}"
            );
            close(fd);
        }
        let fd = open_dir(c"/proc");
        assert!(is_procfs_root(fd).unwrap());
        close(fd);
    }

    #[test]
    fn refuses_crossing_a_mount_inside_procfs() {
        // A private mount namespace in a child: a tmpfs over /proc/sys,
        // and the write beneath it refused with EXDEV (the child exits
        // with the errno it got, 0 for success). Root only.
        // SAFETY: getuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let pid = fork(0).unwrap();
        if pid == 0 {
            // SAFETY: the child only makes system calls, then _exits.
            unsafe {
                let code = (|| {
                    check(libc::unshare(libc::CLONE_NEWNS))?;
                    mount(
                        null(),
                        c"/".as_ptr(),
                        null(),
                        libc::MS_PRIVATE | libc::MS_REC,
                        null(),
                    )?;
                    mount(
                        c"tmpfs".as_ptr(),
                        c"/proc/sys/kernel".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        null(),
                    )?;
                    write_proc(ProcBase::Root, b"sys/kernel/domainname", b"x")
                })()
                .err()
                .unwrap_or(0);
                libc::_exit(code);
            }
        }
        let st = waitpid(pid).unwrap();
        assert!(libc::WIFEXITED(st));
        assert_eq!(libc::WEXITSTATUS(st), libc::EXDEV);
    }
}

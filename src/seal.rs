//! Keeping the runtime binary out of the container's reach (CVE-2019-5736).
//!
//! The container's init process is a clone of the calling process, so
//! until it execs the user's program its `/proc/<pid>/exe` is the caller's
//! binary. A container process that opened that link could overwrite the
//! host's runtime. [`ensure_sealed`] re-executes the current program from
//! a sealed, read-only memfd copy (as youki does with the `pentacle`
//! crate, and runc with its `exeseal` memfd fallback), so what the
//! container can reach is that in-memory copy, which cannot be written and
//! disappears with the process.
//!
//! Where the caller may mount (root), no copy is made at all: the binary
//! is re-executed through a private, read-only overlayfs whose only
//! layers are the binary's directory and an empty one (runc's
//! `sealedOverlayfs`). The mount is detached (fsopen/fsmount, in no
//! mount namespace), cannot be made writable, and `/proc/<pid>/exe` leads
//! to it rather than to the host's file. Elsewhere (rootless, kernels
//! without overlayfs or the new mount API) the memfd copy is used.
//!
//! A binary that already runs from a read-only mount (installed on a
//! read-only /usr, or bind-mounted read-only onto itself) is not
//! re-executed at all: that is the cheapest setup for a node.
//!
//! The `rcrun` binary calls it before `exec`, after its ELF entry point
//! has usually done the overlay re-exec already, before the C library's
//! start-up (which it would otherwise pay twice). `create` and `run` need
//! it only for the containers the exec trampoline does not cover
//! (`process::trampoline`): [`crate::Runtime::create`] returns
//! [`crate::Error::Unsealed`] for those, and the CLI then calls it. A
//! program that embeds the library and runs such containers, or uses
//! [`crate::Runtime::exec`], calls it at the top of `main`, before it
//! starts threads.
//!
//! The copy is the whole cost of sealing (about 1.5 to 3 ms for a 4 MB
//! binary: one shmem page allocated and charged per 4 KiB), so it is done
//! with the fewest system calls: one `sendfile` of the known size, the
//! seals in one `fcntl`, and `execveat` on the memfd itself (no `/proc`
//! lookup, no copy of the environment). Memfds sealed by `pentacle` (an
//! embedder that seals itself) are recognised as sealed too.

use std::ffi::{CString, OsString};
use std::io::{Error, ErrorKind, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU8, Ordering};

#[doc(hidden)] // plumbing of the runtime and its tests
/// The seals a copy must carry to count as sealed (pentacle's defaults,
/// available since Linux 3.17).
pub const MUST_SEAL: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
/// Added when the kernel knows them: `F_SEAL_FUTURE_WRITE` (5.1) and
/// `F_SEAL_EXEC` (6.3, keeps the mode bits from changing).
const F_SEAL_FUTURE_WRITE: libc::c_int = 0x0010;
const F_SEAL_EXEC: libc::c_int = 0x0020;
/// `memfd_create` flag (6.3): the memfd may be executed even when
/// `vm.memfd_noexec` asks for non-executable memfds by default.
const MFD_EXEC: libc::c_uint = 0x0010;

#[doc(hidden)] // plumbing of the runtime and its tests
/// The empty bottom layer of the overlay the binary is re-executed
/// through (its top layer is the binary's own directory).
pub const EXE_LOWER_DIR: &std::ffi::CStr = c"/run/rcrun-exe-lower";
#[doc(hidden)] // plumbing of the runtime and its tests
/// The overlay's mount attributes: `MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
/// MOUNT_ATTR_NODEV`.
pub const OVERLAY_ATTR: libc::c_uint = 0x1 | 0x2 | 0x4;

#[doc(hidden)] // plumbing of the runtime and its tests
/// The variable through which the entry point's re-exec (the `rcrun`
/// binary's `cli/early.rs`) tells the new image the number of the overlay
/// mount's fd, which it keeps open across the exec; see [`ensure_sealed`].
pub const MOUNT_FD_ENV: &str = "RCRUN_SEALED_MOUNT_FD";

/// 0: not known yet, 1: sealed, 2: not sealed. The answer cannot change
/// without an exec, which resets it.
static SEALED: AtomicU8 = AtomicU8::new(0);

/// Re-executes the current program from a sealed memfd unless it already
/// runs from one. Returns only when the process is sealed.
///
/// # Errors
/// The I/O error of reading `/proc/self/exe`, creating the memfd or exec.
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     rcrun::seal::ensure_sealed()?;
///     // ... start threads, create containers ...
///     Ok(())
/// }
/// ```
pub fn ensure_sealed() -> Result<()> {
    if SEALED.load(Ordering::Relaxed) == 1 {
        return Ok(());
    }
    let exe = open_exe()?;
    if has_seals(&exe) || on_read_only_mount(&exe) {
        SEALED.store(1, Ordering::Relaxed);
        name_after_argv0();
        adopt_mount(&exe);
        return Ok(());
    }
    if let Ok(fd) = overlay_exe() {
        drop(exe);
        let e = exec_fd(&fd);
        // Not executable through the overlay (a noexec or odd lower
        // filesystem): the copy below still works.
        drop(fd);
        let exe = open_exe()?;
        let memfd = sealed_copy(&exe).map_err(|_| e)?;
        return Err(exec_fd(&memfd));
    }
    let memfd = sealed_copy(&exe)?;
    drop(exe);
    Err(exec_fd(&memfd))
}

/// Takes over the overlay mount the entry point's re-exec kept open
/// ([`MOUNT_FD_ENV`]): close-on-exec from now on, and otherwise left open
/// until this process exits. Closing a detached mount's last fd
/// dissolves it, which waits for an expedited RCU grace period (about
/// 0.05 ms); the entry point leaves that to a moment when nobody waits
/// for this process. The fd is only adopted if it is the root of the
/// mount this binary runs from (the same mount id; overlayfs may report
/// a file's st_dev as its lower layer's): the overlay is private to this
/// process, so nothing else can be.
fn adopt_mount(exe: &OwnedFd) {
    let Some(v) = std::env::var_os(MOUNT_FD_ENV) else {
        return;
    };
    // Single-threaded still (ensure_sealed's contract); hooks and the
    // container never see it anyway (their environments are the spec's).
    std::env::remove_var(MOUNT_FD_ENV);
    let Some(fd) = v.to_str().and_then(|s| s.parse::<i32>().ok()) else {
        return;
    };
    let ours = fd > 2
        && matches!((mount_of(fd), mount_of(exe.as_raw_fd())), (Some((m, dir)), Some((e, _)))
            if m == e && dir);
    // SAFETY: fcntl on the fd just checked to be ours.
    if ours {
        // Left open: it closes with this process, or at a child's exec.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// The id of the mount `fd` is on, and whether it is a directory;
/// None for a closed fd, or a kernel without the mount id (before 5.8).
fn mount_of(fd: libc::c_int) -> Option<(u64, bool)> {
    // SAFETY: statx of the fd itself (AT_EMPTY_PATH) into a zeroed
    // struct we own; EBADF for a closed fd.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_MNT_ID | libc::STATX_TYPE;
    let r = unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, mask, &mut stx) };
    (r == 0 && stx.stx_mask & libc::STATX_MNT_ID != 0).then_some((
        stx.stx_mnt_id,
        u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFDIR,
    ))
}

/// True when `f` was reached through a read-only mount: the overlay of
/// [`overlay_exe`] after the re-exec, or a binary the operator installed
/// on a read-only mount (a read-only /usr, or `mount --bind -o ro` of the
/// file onto itself), which then needs no re-exec at all. Whatever opens
/// `/proc/<pid>/exe` goes through that same mount and gets EROFS.
fn on_read_only_mount(f: &OwnedFd) -> bool {
    // SAFETY: fstatvfs into a zeroed struct we own.
    let mut vst: libc::statvfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatvfs(f.as_raw_fd(), &mut vst) } == 0;
    ok && vst.f_flag & libc::ST_RDONLY != 0
}

/// An `O_PATH` fd of this binary seen through a detached, read-only
/// overlayfs (lowerdir = its directory over an empty one).
fn overlay_exe() -> Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let fail = || Error::last_os_error();
    let owned = |fd: libc::c_long| -> Result<OwnedFd> {
        if fd < 0 {
            return Err(fail());
        }
        // SAFETY: a new fd the kernel just gave us.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    };
    let path = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::from(ErrorKind::InvalidInput));
    };
    // The second (bottom) layer only has to exist, be empty of surprises
    // (the top layer wins every name) and not overlap the first.
    let empty = std::path::Path::new(std::ffi::OsStr::from_bytes(EXE_LOWER_DIR.to_bytes()));
    match std::fs::create_dir(empty) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let esc = |p: &std::path::Path| {
        let mut v = Vec::new();
        for &b in p.as_os_str().as_bytes() {
            if b == b'\\' || b == b':' {
                v.push(b'\\');
            }
            v.push(b);
        }
        v
    };
    let mut lower = esc(dir);
    lower.push(b':');
    lower.extend(esc(empty));
    let lower = CString::new(lower).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    let name = CString::new(name.as_bytes()).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY (the syscalls below): NUL-terminated strings that outlive
    // each call; every returned fd is owned at once.
    let ctx =
        owned(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })?;
    let set = |k: &std::ffi::CStr, v: &std::ffi::CStr| {
        // SAFETY: as above.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                ctx.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if r < 0 {
            Err(fail())
        } else {
            Ok(())
        }
    };
    set(c"lowerdir", &lower)?;
    // Quiet dmesg; older kernels lack the option.
    let _ = set(c"xino", c"off");
    // SAFETY: as above.
    if unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            0usize,
            0usize,
            0,
        )
    } < 0
    {
        return Err(fail());
    }
    // SAFETY: as above.
    let mnt = owned(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            OVERLAY_ATTR,
        )
    })?;
    // SAFETY: as above.
    owned(unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    } as libc::c_long)
}

/// True when the current program runs from a sealed memfd.
///
/// ```no_run
/// rcrun::seal::ensure_sealed().expect("sealed");
/// assert!(rcrun::seal::is_sealed());
/// ```
pub fn is_sealed() -> bool {
    match SEALED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let sealed = open_exe()
                .map(|f| has_seals(&f) || on_read_only_mount(&f))
                .unwrap_or(false);
            SEALED.store(if sealed { 1 } else { 2 }, Ordering::Relaxed);
            sealed
        }
    }
}

fn open_exe() -> Result<OwnedFd> {
    // SAFETY: a constant C string; the fd is owned by the result.
    let fd = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn has_seals(f: &OwnedFd) -> bool {
    // SAFETY: fcntl on an fd we own; EINVAL for files that are not memfds.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & MUST_SEAL == MUST_SEAL
}

/// A sealed, executable memfd holding a copy of `exe`.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd> {
    sealed_memfd(c"rcrun", |memfd| {
        // SAFETY: fstat into a zeroed stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(exe.as_raw_fd(), &mut st) } < 0 {
            return Err(Error::last_os_error());
        }
        copy_all(exe, memfd, st.st_size as usize)
    })
}

/// A new executable memfd named `name`, filled by `fill` and then sealed
/// against any change ([`MUST_SEAL`], and the newer seals where the
/// kernel has them).
pub(crate) fn sealed_memfd(
    name: &std::ffi::CStr,
    fill: impl FnOnce(&OwnedFd) -> Result<()>,
) -> Result<OwnedFd> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: a NUL-terminated name and flags; the fd is owned below.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), base | MFD_EXEC) };
    if fd < 0 && Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Before Linux 6.3: no MFD_EXEC, and memfds are executable.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), base) };
    }
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: a new fd nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    fill(&memfd)?;

    // One fcntl for every seal; the newer ones are dropped on EINVAL
    // (older kernels) and only the 3.17 set is required.
    for seals in [
        MUST_SEAL | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC,
        MUST_SEAL | F_SEAL_FUTURE_WRITE,
        MUST_SEAL,
    ] {
        // SAFETY: fcntl on our memfd.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == 0 {
            break;
        }
        let e = Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) || seals == MUST_SEAL {
            return Err(e);
        }
    }
    if !has_seals(&memfd) {
        return Err(Error::other("the memfd could not be sealed"));
    }
    Ok(memfd)
}

/// Copies `len` bytes from the start of `from` into `to` in the kernel
/// (`sendfile`; `copy_file_range` would fail with EXDEV into a memfd),
/// with a read/write loop when sendfile is not available.
fn copy_all(from: &OwnedFd, to: &OwnedFd, len: usize) -> Result<()> {
    let mut off: libc::off_t = 0;
    let mut left = len;
    while left > 0 {
        // SAFETY: sendfile between two fds we own, offset on our stack.
        let n = unsafe { libc::sendfile(to.as_raw_fd(), from.as_raw_fd(), &mut off, left) };
        if n < 0 {
            let e = Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINVAL | libc::ENOSYS) if off == 0 => return copy_rw(from, to),
                _ => return Err(e),
            }
        }
        if n == 0 {
            break; // the file got shorter: copy what there is
        }
        left = left.saturating_sub(n as usize);
    }
    // The file may have grown since fstat: copy the rest.
    loop {
        // SAFETY: as above.
        let n = unsafe { libc::sendfile(to.as_raw_fd(), from.as_raw_fd(), &mut off, 1 << 20) };
        if n < 0 {
            let e = Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(());
        }
    }
}

fn copy_rw(from: &OwnedFd, to: &OwnedFd) -> Result<()> {
    use std::io::{Read, Write};
    let mut r = std::fs::File::from(from.try_clone()?);
    let mut w = std::fs::File::from(to.try_clone()?);
    use std::io::Seek;
    r.seek(std::io::SeekFrom::Start(0))?;
    w.set_len(0)?;
    w.seek(std::io::SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n])?;
    }
}

/// Executes `memfd` with this process's arguments and environment;
/// returns only on failure.
fn exec_fd(memfd: &OwnedFd) -> Error {
    let args: Vec<CString> = match std::env::args_os()
        .map(|a: OsString| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
    {
        Ok(a) => a,
        Err(e) => return Error::new(ErrorKind::InvalidInput, e),
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    extern "C" {
        static environ: *const *const libc::c_char;
    }
    // std's Command::exec restores SIGPIPE's default before exec; so do
    // we (the new image's runtime ignores it again, as before).
    // SAFETY: resetting one signal disposition; execveat with valid,
    // NUL-terminated argv and the process's own environ.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::syscall(
            libc::SYS_execveat,
            memfd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        );
    }
    let e = Error::last_os_error();
    // SAFETY: as above; back to what the Rust runtime set.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    e
}

/// A process exec'd from an fd is named after the fd number ("4"): give
/// it its program's name back, so that `ps` and the waiting init show
/// `rcrun`.
fn name_after_argv0() {
    let Some(a0) = std::env::args_os().next() else {
        return;
    };
    let b = a0.as_bytes();
    let base = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
    let mut name = [0u8; 16];
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    if n > 0 && !name[..n].contains(&0) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
}

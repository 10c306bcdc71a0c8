//! Applying a [`RootfsPlan`] inside the container's mount namespace.
//!
//! Runs in the init process between clone and exec: async-signal-safe
//! system calls on data prepared by the runtime, nothing else.

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr::null;

use super::plan::{DeviceOp, MountOp, OnProc, PathPlan, RootfsPlan};
use crate::failure::{At, Fail, Stage};
use crate::sys::{self, check, close, fd_path, mount, open_in_root, Errno};

/// What to create when a path is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    Nothing,
    Dir,
    File,
}

/// Opens `p` inside `root` as an O_PATH fd, creating missing components
/// (directories, and a file for the last one when asked). Each created
/// component is created relative to its already-resolved parent and then
/// resolved again under RESOLVE_IN_ROOT, so symlinks cannot redirect the
/// creation outside the rootfs.
pub(crate) fn resolve(root: RawFd, p: &PathPlan, create: Create) -> Result<RawFd, Errno> {
    match open_in_root(root, &p.full, libc::O_PATH) {
        Err(libc::ENOENT) if create != Create::Nothing => {}
        r => return r,
    }
    // SAFETY: dup of an fd we own.
    let mut parent = check(unsafe { libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 0) })?;
    let n = p.prefixes.len();
    for i in 0..n {
        let fd = match open_in_root(root, &p.prefixes[i], libc::O_PATH) {
            Err(libc::ENOENT) => {
                let name = p.names[i].as_ptr();
                let r = if i + 1 == n && create == Create::File {
                    // SAFETY: parent is a valid dirfd, name NUL-terminated.
                    let f = unsafe {
                        libc::openat(
                            parent,
                            name,
                            libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_WRONLY
                                | libc::O_CLOEXEC
                                | libc::O_NOFOLLOW,
                            0o644,
                        )
                    };
                    close(f);
                    if f < 0 {
                        Err(sys::errno())
                    } else {
                        Ok(())
                    }
                } else {
                    // SAFETY: as above.
                    check(unsafe { libc::mkdirat(parent, name, 0o755) }).map(drop)
                };
                match r {
                    Ok(()) | Err(libc::EEXIST) => open_in_root(root, &p.prefixes[i], libc::O_PATH),
                    Err(e) => Err(e),
                }
            }
            r => r,
        };
        close(parent);
        parent = fd?;
    }
    Ok(parent)
}

/// Makes the mount tree private to the container and the rootfs a mount
/// point; returns an O_PATH fd of the rootfs.
pub(crate) fn prepare(plan: &RootfsPlan) -> Result<RawFd, Fail> {
    let root = c"/";
    mount(null(), root.as_ptr(), null(), plan.propagation, null()).at(Stage::RootPropagation, 0)?;
    mount(
        null(),
        plan.parent_mount.as_ptr(),
        null(),
        libc::MS_PRIVATE,
        null(),
    )
    .at(Stage::RootPropagation, 2)?;
    let r = plan.rootfs.as_ptr();
    mount(r, r, c"bind".as_ptr(), libc::MS_BIND | libc::MS_REC, null()).at(Stage::RootBind, 0)?;
    // SAFETY: r is NUL-terminated.
    check(unsafe { libc::open(r, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) })
        .at(Stage::RootBind, 0)
}

fn mount_one(root: RawFd, m: &MountOp) -> Result<(), Fail> {
    let i = m.index as u32;
    let create = if m.file { Create::File } else { Create::Dir };
    if m.pseudo {
        refuse_non_directory(root, m).at(Stage::PseudoTarget, i)?;
    }
    let fd = resolve(root, &m.dest, create).at(Stage::MountTarget, i)?;
    if let Err(e) = check_proc_target(fd, m) {
        close(fd);
        return Err(e).at(Stage::MountTarget, i);
    }
    let mut buf = [0u8; 32];
    let target = fd_path(&mut buf, fd);
    // tmpcopyup: hold the directory the tmpfs will cover, to copy from.
    let lower = if m.copyup {
        // SAFETY: target is a NUL-terminated /proc/self/fd path.
        let r = check(unsafe {
            libc::open(target, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
        });
        if r.is_err() {
            close(fd);
        }
        Some(r.at(Stage::Mount, i)?)
    } else {
        None
    };
    let opt = |c: &Option<std::ffi::CString>| c.as_ref().map_or(null(), |c| c.as_ptr());
    let mut r = if m.source_fd >= 0 {
        move_tree(m.source_fd, fd)
    } else {
        mount(
            opt(&m.source),
            target,
            opt(&m.fstype),
            m.flags,
            opt(&m.data),
        )
    };
    let mut sysfs_bound = false;
    if r == Err(libc::EPERM) && m.sysfs_fallback {
        r = mount(
            c"/sys".as_ptr(),
            target,
            null(),
            libc::MS_BIND | libc::MS_REC,
            null(),
        );
        sysfs_bound = r.is_ok();
    }
    close(fd);
    if sysfs_bound {
        // A bind ignores ro, nosuid, nodev and noexec (CVE-2023-25809):
        // apply them to the host's /sys and everything below it.
        sysfs_bind_flags(root, m).at(Stage::Remount, i)?;
    }
    if let Some(lower) = lower {
        let copied = r.and_then(|_| {
            let upper = resolve(root, &m.dest, Create::Nothing)?;
            // SAFETY: opening the directory on top (the new tmpfs) by its fd.
            let dir = check(unsafe {
                libc::open(
                    fd_path(&mut buf, upper),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            });
            close(upper);
            let dir = dir?;
            let r = copy_attrs(lower, dir).and_then(|_| copy_tree(lower, dir, 0));
            close(dir);
            r
        });
        close(lower);
        copied.at(Stage::Mount, i)?;
    }
    r.at(Stage::Mount, i)?;
    if !m.children.is_empty() || m.tree_flags != 0 {
        let fd = resolve(root, &m.dest, Create::Nothing).at(Stage::MountTarget, i)?;
        let r = fill_tree(fd, m);
        close(fd);
        r.at(Stage::Mount, i)?;
    }
    // Re-resolve: the new mount now sits on top of the path.
    if m.remount || !m.propagation.is_empty() {
        let fd = resolve(root, &m.dest, Create::Nothing).at(Stage::MountTarget, i)?;
        let target = fd_path(&mut buf, fd);
        let mut r = Ok(());
        if m.remount {
            r = mount(
                null(),
                target,
                null(),
                m.flags | libc::MS_REMOUNT | libc::MS_BIND | locked_flags(fd),
                null(),
            );
        }
        for &p in &m.propagation {
            if r.is_ok() {
                r = mount(null(), target, null(), p, null());
            }
        }
        close(fd);
        r.at(Stage::Remount, i)?;
    }
    if m.rec_attr != (0, 0) {
        let fd = resolve(root, &m.dest, Create::Nothing).at(Stage::MountTarget, i)?;
        let r = set_tree_attr(fd, m.rec_attr.0, m.rec_attr.1);
        close(fd);
        r.at(Stage::Remount, i)?;
    }
    Ok(())
}

/// A proc or sysfs destination that exists must be a directory, not a
/// symlink (looked at, not followed) or a file, as runc requires: mounting
/// through a symlink the image planted has been an attack before.
fn refuse_non_directory(root: RawFd, m: &MountOp) -> Result<(), Errno> {
    let fd = match sys::open_in_root(root, &m.dest.full, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(_) => return Ok(()), // missing: made as a directory
    };
    // SAFETY: all-zero stat is a valid out-buffer; fd is ours.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = check(unsafe { libc::fstat(fd, &mut st) });
    close(fd);
    r?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        Ok(())
    } else {
        Err(libc::ENOTDIR)
    }
}

/// Gives the rbind of the host's /sys that replaced `m`'s sysfs the
/// flags `m` asks for: a remount of the bind (keeping the flags the
/// kernel locked), as runc does, then the same flags on every submount
/// (/sys/fs/cgroup, /sys/kernel/...) with one recursive mount_setattr(2)
/// where the kernel has it (Linux 5.12).
fn sysfs_bind_flags(root: RawFd, m: &MountOp) -> Result<(), Errno> {
    let flags = m.flags & (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    if flags == 0 {
        return Ok(());
    }
    let fd = resolve(root, &m.dest, Create::Nothing)?;
    let mut buf = [0u8; 32];
    let r = mount(
        null(),
        fd_path(&mut buf, fd),
        null(),
        flags | libc::MS_REMOUNT | libc::MS_BIND | locked_flags(fd),
        null(),
    )
    .and_then(|_| match set_tree_flags(fd, flags) {
        Err(libc::ENOSYS) => Ok(()),
        r => r,
    });
    close(fd);
    r
}

/// Sets `flags` (`MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`) on
/// the mount `dir` and every mount below it: mount_setattr(2) with
/// `AT_RECURSIVE`; ENOSYS before Linux 5.12.
fn set_tree_flags(dir: RawFd, flags: libc::c_ulong) -> Result<(), Errno> {
    let mut set = 0;
    for (ms, at) in [
        (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            set |= at;
        }
    }
    set_tree_attr(dir, set, 0)
}

/// mount_setattr(2) with `AT_RECURSIVE` on the mount `dir` and every
/// mount below it: `MOUNT_ATTR_*` bits `set` and `clr` (runc's `rro`,
/// `rnosuid`, ...). ENOSYS before Linux 5.12.
fn set_tree_attr(dir: RawFd, set: u64, clr: u64) -> Result<(), Errno> {
    let mut attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: dir is a valid fd, attr a valid mount_attr of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dir,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(sys::errno())
    }
}

/// Refuses (EXDEV) a resolved destination `fd` on a procfs unless the
/// plan allows this mount there (runc's `checkProcMount`, after
/// resolution): a symlink in the image (`/vol -> /proc/sys/kernel`) or an
/// earlier mount must not carry a volume over procfs files the init
/// writes or the kernel reads (CVE-2019-16884, CVE-2025-52881).
fn check_proc_target(fd: RawFd, m: &MountOp) -> Result<(), Errno> {
    if !sys::on_procfs(fd)? {
        return Ok(());
    }
    let ok = match m.on_proc {
        OnProc::Never => false,
        OnProc::Root => sys::is_procfs_root(fd)?,
        OnProc::File => true,
    };
    if ok {
        Ok(())
    } else {
        Err(libc::EXDEV)
    }
}

/// Binds `m.children` into the fresh mount `dir` and applies
/// `m.tree_flags` to it and all of them. The mount is new and only this
/// process can reach it, so names are made and opened directly (no
/// symlink can be there yet).
fn fill_tree(dir: RawFd, m: &MountOp) -> Result<(), Errno> {
    let mut buf = [0u8; 32];
    let open = |name: &CStr| {
        // SAFETY: dir is a valid fd, name NUL-terminated.
        check(unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
    };
    for (name, src) in &m.children {
        // SAFETY: as above.
        check(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) })?;
        let fd = open(name)?;
        let r = mount(
            src.as_ptr(),
            fd_path(&mut buf, fd),
            null(),
            libc::MS_BIND | libc::MS_REC,
            null(),
        );
        close(fd);
        r?;
    }
    if m.tree_flags == 0 {
        return Ok(());
    }
    match set_tree_flags(dir, m.tree_flags) {
        Err(libc::ENOSYS) => {}
        r => return r,
    }
    // Before Linux 5.12: a remount of each bind, then of the mount itself.
    for (name, _) in &m.children {
        let fd = open(name)?;
        let r = mount(
            null(),
            fd_path(&mut buf, fd),
            null(),
            m.tree_flags | libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC | locked_flags(fd),
            null(),
        );
        close(fd);
        r?;
    }
    mount(
        null(),
        fd_path(&mut buf, dir),
        null(),
        m.tree_flags | m.flags | libc::MS_REMOUNT,
        null(),
    )
}

/// Gives `dst` (a directory fd) the owner and mode of `src`.
fn copy_attrs(src: RawFd, dst: RawFd) -> Result<(), Errno> {
    // SAFETY: an all-zero stat is a valid out-buffer; fds are valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(src, &mut st) })?;
    check(unsafe { libc::fchown(dst, st.st_uid, st.st_gid) })?;
    check(unsafe { libc::fchmod(dst, st.st_mode & 0o7777) }).map(drop)
}

/// Copies the tree under the directory `src` into the directory `dst`
/// (tmpcopyup): files, directories, symlinks and special files, with
/// their owners and modes. Fixed stack buffers, no allocation; nothing is
/// followed (every open is relative to its parent with O_NOFOLLOW).
fn copy_tree(src: RawFd, dst: RawFd, depth: u32) -> Result<(), Errno> {
    #[repr(C, align(8))]
    struct Dents([u8; 4096]);
    if depth > 64 {
        return Err(libc::ELOOP);
    }
    let mut d = Dents([0; 4096]);
    loop {
        // SAFETY: getdents64 into our buffer of its length.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, src, d.0.as_mut_ptr(), d.0.len()) };
        if n < 0 {
            return Err(sys::errno());
        }
        if n == 0 {
            return Ok(());
        }
        let mut off = 0usize;
        while off < n as usize {
            // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
            let reclen = u16::from_ne_bytes([d.0[off + 16], d.0[off + 17]]) as usize;
            let name_bytes = &d.0[off + 19..off + reclen];
            off += reclen;
            let Ok(name) = CStr::from_bytes_until_nul(name_bytes) else {
                continue;
            };
            if name == c"." || name == c".." {
                continue;
            }
            copy_entry(src, dst, name, depth)?;
        }
    }
}

fn copy_entry(src: RawFd, dst: RawFd, name: &CStr, depth: u32) -> Result<(), Errno> {
    let nf = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY (all calls below): fds are valid, name is NUL-terminated and
    // buffers are live stack values of the lengths passed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(src, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    let kind = st.st_mode & libc::S_IFMT;
    match kind {
        libc::S_IFDIR => {
            match check(unsafe { libc::mkdirat(dst, name.as_ptr(), 0o700) }) {
                Ok(_) | Err(libc::EEXIST) => {}
                Err(e) => return Err(e),
            }
            let s = check(unsafe {
                libc::openat(src, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | nf)
            })?;
            let r = check(unsafe {
                libc::openat(dst, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | nf)
            })
            .and_then(|t| {
                let r = copy_tree(s, t, depth + 1);
                close(t);
                r
            });
            close(s);
            r?;
        }
        libc::S_IFREG => {
            let s = check(unsafe { libc::openat(src, name.as_ptr(), libc::O_RDONLY | nf) })?;
            let r = check(unsafe {
                libc::openat(
                    dst,
                    name.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | nf,
                    0o600,
                )
            })
            .and_then(|t| {
                let mut r = Ok(());
                loop {
                    let n = unsafe { libc::sendfile(t, s, std::ptr::null_mut(), 1 << 30) };
                    if n < 0 {
                        r = Err(sys::errno());
                    }
                    if n <= 0 {
                        break;
                    }
                }
                close(t);
                r
            });
            close(s);
            r?;
        }
        libc::S_IFLNK => {
            let mut target = [0u8; 4096];
            let n = unsafe {
                libc::readlinkat(
                    src,
                    name.as_ptr(),
                    target.as_mut_ptr().cast(),
                    target.len() - 1,
                )
            };
            if n < 0 {
                return Err(sys::errno());
            }
            target[n as usize] = 0;
            check(unsafe { libc::symlinkat(target.as_ptr().cast(), dst, name.as_ptr()) })?;
        }
        _ => {
            check(unsafe { libc::mknodat(dst, name.as_ptr(), st.st_mode, st.st_rdev) })?;
        }
    }
    check(unsafe {
        libc::fchownat(
            dst,
            name.as_ptr(),
            st.st_uid,
            st.st_gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    if kind != libc::S_IFLNK {
        check(unsafe { libc::fchmodat(dst, name.as_ptr(), st.st_mode & 0o7777, 0) })?;
    }
    Ok(())
}

/// Flags a remount must keep: in a user namespace the kernel refuses to
/// clear nosuid/nodev/noexec that the host locked on the source mount.
fn locked_flags(fd: RawFd) -> libc::c_ulong {
    // SAFETY: an all-zero statvfs is a valid out-buffer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, st a valid out-pointer.
    if unsafe { libc::fstatvfs(fd, &mut st) } != 0 {
        return 0;
    }
    let mut f = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    f
}

/// Mounts every `mounts` entry, in order.
pub(crate) fn mount_all(plan: &RootfsPlan, root: RawFd) -> Result<(), Fail> {
    mount_some(&plan.mounts, root)
}

/// Makes the given mounts, in order.
pub(crate) fn mount_some(mounts: &[MountOp], root: RawFd) -> Result<(), Fail> {
    mounts.iter().try_for_each(|m| mount_one(root, m))
}

fn create_device(root: RawFd, d: &DeviceOp) -> Result<(), Errno> {
    if let Some(src) = &d.bind_from {
        let fd = resolve(root, &d.path, Create::File)?;
        let mut buf = [0u8; 32];
        let r = mount(
            src.as_ptr(),
            fd_path(&mut buf, fd),
            null(),
            libc::MS_BIND,
            null(),
        );
        close(fd);
        return r;
    }
    let Some(name) = d.path.names.last() else {
        return Err(libc::EINVAL);
    };
    // The parent of a device is /dev or a directory below it; resolve it
    // by walking the prefixes (all but the last).
    let dir = resolve_parent(root, &d.path)?;
    // SAFETY: dir is a valid dirfd, name NUL-terminated.
    let r = match check(unsafe { libc::mknodat(dir, name.as_ptr(), d.mode, d.dev) }) {
        Ok(_) => Ok(()),
        // config-linux.md: an existing file that is not the requested
        // device is an error.
        Err(libc::EEXIST) if same_device(dir, name, d) => Ok(()),
        Err(e) => Err(e),
    };
    let r = r
        .and_then(|_| {
            // SAFETY: as above.
            check(unsafe {
                libc::fchownat(dir, name.as_ptr(), d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW)
            })
        })
        .and_then(|_| {
            // SAFETY: as above; mknod applied the umask, set the exact mode.
            check(unsafe { libc::fchmodat(dir, name.as_ptr(), d.mode & 0o7777, 0) })
        })
        .map(drop);
    close(dir);
    r
}

fn same_device(dir: RawFd, name: &CStr, d: &DeviceOp) -> bool {
    // SAFETY: all-zero stat is a valid out-buffer; dir and name are valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0;
    let kind = d.mode & libc::S_IFMT;
    ok && st.st_mode & libc::S_IFMT == kind && (kind == libc::S_IFIFO || st.st_rdev == d.dev)
}

/// Resolves (creating) the directory that holds the last component of `p`.
fn resolve_parent(root: RawFd, p: &PathPlan) -> Result<RawFd, Errno> {
    let n = p.prefixes.len();
    if n < 2 {
        // SAFETY: dup of an fd we own.
        return check(unsafe { libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 0) });
    }
    // A borrowed view of the first n-1 components.
    let sub = PathPlanRef {
        full: &p.prefixes[n - 2],
        prefixes: &p.prefixes[..n - 1],
        names: &p.names[..n - 1],
    };
    sub.resolve_dir(root)
}

struct PathPlanRef<'a> {
    full: &'a CStr,
    prefixes: &'a [std::ffi::CString],
    names: &'a [std::ffi::CString],
}

impl PathPlanRef<'_> {
    fn resolve_dir(&self, root: RawFd) -> Result<RawFd, Errno> {
        if let Ok(fd) = open_in_root(root, self.full, libc::O_PATH | libc::O_DIRECTORY) {
            return Ok(fd);
        }
        // SAFETY: dup of an fd we own.
        let mut parent = check(unsafe { libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 0) })?;
        for (pre, name) in self.prefixes.iter().zip(self.names) {
            let fd = match open_in_root(root, pre, libc::O_PATH | libc::O_DIRECTORY) {
                Err(libc::ENOENT) => {
                    // SAFETY: parent is a valid dirfd, name NUL-terminated.
                    match check(unsafe { libc::mkdirat(parent, name.as_ptr(), 0o755) }) {
                        Ok(_) | Err(libc::EEXIST) => {
                            open_in_root(root, pre, libc::O_PATH | libc::O_DIRECTORY)
                        }
                        Err(e) => Err(e),
                    }
                }
                r => r,
            };
            close(parent);
            parent = fd?;
        }
        Ok(parent)
    }
}

/// Creates the default and configured devices, and /dev's symlinks.
pub(crate) fn setup_dev(plan: &RootfsPlan, root: RawFd) -> Result<(), Fail> {
    // /dev is a bind mount (of the host's /dev, possibly): making nodes in
    // it, or changing the mode and owner of what is there, would act on
    // the host's files. runc leaves such a /dev alone too (needsSetupDev).
    if !plan.setup_dev {
        return Ok(());
    }
    // SAFETY: umask cannot fail.
    let old = unsafe { libc::umask(0) };
    let r = plan
        .devices
        .iter()
        .enumerate()
        .try_for_each(|(i, d)| create_device(root, d).at(Stage::Device, i as u32));
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    r?;
    let dev = resolve(root, &plan.dev_dir, Create::Dir).at(Stage::DevSymlink, 0)?;
    let links: [(&CStr, &CStr); 5] = [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
    ];
    let mut r = Ok(());
    for (i, (target, name)) in links.iter().enumerate() {
        if *name == c"ptmx" {
            // SAFETY: dev is a valid dirfd.
            unsafe { libc::unlinkat(dev, name.as_ptr(), 0) };
        }
        // SAFETY: as above, strings NUL-terminated.
        match check(unsafe { libc::symlinkat(target.as_ptr(), dev, name.as_ptr()) }) {
            Ok(_) | Err(libc::EEXIST) => {}
            Err(e) => {
                r = Err(e).at(Stage::DevSymlink, i as u32);
                break;
            }
        }
    }
    if r.is_ok() {
        // SAFETY: as above.
        match check(unsafe { libc::mkdirat(dev, c"shm".as_ptr(), 0o1777) }) {
            Ok(_) => {
                // SAFETY: as above; mkdir applied the umask.
                unsafe { libc::fchmodat(dev, c"shm".as_ptr(), 0o1777, 0) };
            }
            Err(libc::EEXIST) => {}
            Err(e) => r = Err(e).at(Stage::DevSymlink, 5),
        }
    }
    close(dev);
    r
}

/// Detaches the host's procfs and sysfs mounts from this (the
/// container's) mount namespace, after stopping the unmount's
/// propagation; where that is not allowed (rootless), covers them with
/// an empty tmpfs (runc's msMoveRoot).
fn hide_host_proc_sys(plan: &RootfsPlan) -> Result<(), Errno> {
    for p in &plan.hide {
        match mount(
            null(),
            p.as_ptr(),
            null(),
            libc::MS_SLAVE | libc::MS_REC,
            null(),
        ) {
            // Gone, or no longer a mount point (under one detached before).
            Err(libc::ENOENT | libc::EINVAL) => continue,
            r => r?,
        }
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } < 0 {
            match sys::errno() {
                libc::EINVAL | libc::EPERM => {
                    mount(c"tmpfs".as_ptr(), p.as_ptr(), c"tmpfs".as_ptr(), 0, null())?
                }
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// pivot_root(2) into the rootfs (or chroot with --no-pivot).
pub(crate) fn enter(plan: &RootfsPlan, root: RawFd) -> Result<(), Fail> {
    // SAFETY: root is a valid directory fd.
    check(unsafe { libc::fchdir(root) }).at(Stage::PivotRoot, 0)?;
    let dot = c".".as_ptr();
    if plan.pivot {
        // SAFETY: constant path.
        let old_root = check(unsafe {
            libc::open(
                c"/".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
        .at(Stage::PivotRoot, 0)?;
        // SAFETY: plain syscall on NUL-terminated strings.
        let r = unsafe { libc::syscall(libc::SYS_pivot_root, dot, dot) };
        let r = if r < 0 { Err(sys::errno()) } else { Ok(()) };
        // The old root now sits on top of the new one. Step onto it (the
        // kernel does not promise what "." is after pivot_root), stop its
        // propagation to the host, then detach it.
        let r = r
            .and_then(|_| {
                // SAFETY: old_root is a valid directory fd.
                check(unsafe { libc::fchdir(old_root) }).map(drop)
            })
            .and_then(|_| mount(null(), dot, null(), libc::MS_SLAVE | libc::MS_REC, null()))
            .and_then(|_| {
                // SAFETY: as above.
                check(unsafe { libc::umount2(dot, libc::MNT_DETACH) }).map(drop)
            });
        close(old_root);
        r.at(Stage::PivotRoot, 1)?;
    } else {
        hide_host_proc_sys(plan).at(Stage::Chroot, 0)?;
        mount(dot, c"/".as_ptr(), null(), libc::MS_MOVE, null()).at(Stage::Chroot, 0)?;
        // SAFETY: as above.
        check(unsafe { libc::chroot(dot) }).at(Stage::Chroot, 1)?;
    }
    // SAFETY: as above.
    check(unsafe { libc::chdir(c"/".as_ptr()) }).at(Stage::PivotRoot, 3)?;
    if let Some(p) = plan.final_propagation {
        mount(null(), c"/".as_ptr(), null(), p, null()).at(Stage::RootPropagation, 1)?;
    }
    Ok(())
}

/// Masked and read-only paths, then the read-only root. Runs after
/// pivot_root, on the container's own paths.
/// A `/dev` asked for read-only becomes so last, once the mounts and
/// devices under it and the console (`/dev/console`, a pty of
/// `/dev/pts`) are in place, as runc does.
pub(crate) fn dev_readonly(plan: &RootfsPlan) -> Result<(), Fail> {
    if let Some((i, fl)) = plan.dev_readonly {
        let fl = fl | libc::MS_BIND | libc::MS_REMOUNT;
        mount(null(), c"/dev".as_ptr(), null(), fl, null()).at(Stage::Remount, i)?;
    }
    Ok(())
}

pub(crate) fn finish(plan: &RootfsPlan) -> Result<(), Fail> {
    for (i, p) in plan.readonly_paths.iter().enumerate() {
        readonly_path(p).at(Stage::ReadonlyPath, i as u32)?;
    }
    if !plan.masked.is_empty() {
        mask_paths(plan)?;
    }
    if plan.readonly {
        // SAFETY: an all-zero statvfs is a valid out-buffer.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: "/" is NUL-terminated, st a valid out-pointer.
        unsafe { libc::statvfs(c"/".as_ptr(), &mut st) };
        let mut fl = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        for (s, m) in [
            (libc::ST_NOSUID, libc::MS_NOSUID),
            (libc::ST_NODEV, libc::MS_NODEV),
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
        ] {
            if st.f_flag & s != 0 {
                fl |= m;
            }
        }
        mount(null(), c"/".as_ptr(), null(), fl, null()).at(Stage::ReadonlyRoot, 0)?;
    }
    Ok(())
}

fn readonly_path(p: &CStr) -> Result<(), Errno> {
    match mount(
        p.as_ptr(),
        p.as_ptr(),
        null(),
        libc::MS_BIND | libc::MS_REC,
        null(),
    ) {
        Err(libc::ENOENT) => return Ok(()),
        r => r?,
    }
    // SAFETY: p is NUL-terminated.
    let fd = check(unsafe { libc::open(p.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    let fl = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC | locked_flags(fd);
    close(fd);
    mount(null(), p.as_ptr(), null(), fl, null())
}

/// Binds a verified /dev/null over masked files and an empty read-only
/// tmpfs over masked directories. /dev/null is opened once and checked to
/// be the real character device 1:3 (a symlink or another file planted
/// there must not be what gets bound: CVE-2025-31133); the bind is made
/// from that fd with open_tree(2)/move_mount(2), so the path is not
/// looked up again.
fn mask_paths(plan: &RootfsPlan) -> Result<(), Fail> {
    // SAFETY: constant path.
    let null_fd = check(unsafe {
        libc::open(
            c"/dev/null".as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
    .at(Stage::MaskedPath, u32::MAX)?;
    // SAFETY: all-zero stat is a valid out-buffer; null_fd is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstat(null_fd, &mut st) } == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && st.st_rdev == libc::makedev(1, 3);
    if !ok {
        close(null_fd);
        return Err(libc::EPERM).at(Stage::MaskedPath, u32::MAX);
    }
    let mut res = Ok(());
    for (i, p) in plan.masked.iter().enumerate() {
        if let Err(e) = mask_one(p, null_fd) {
            res = Err(e).at(Stage::MaskedPath, i as u32);
            break;
        }
    }
    close(null_fd);
    res
}

fn mask_one(p: &CStr, null_fd: RawFd) -> Result<(), Errno> {
    // SAFETY: all-zero stat is a valid out-buffer; p NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    match check(unsafe { libc::stat(p.as_ptr(), &mut st) }) {
        Err(libc::ENOENT) => return Ok(()),
        r => r?,
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return mount(
            c"tmpfs".as_ptr(),
            p.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_RDONLY,
            null(),
        );
    }
    bind_fd(null_fd, p)
}

/// Bind-mounts the file `src` refers to onto `target`, from the fd
/// itself (open_tree(2) + move_mount(2)): no path is looked up for the
/// source, and no /proc is needed.
/// Moves the detached mount `tree` (open_tree(2) by the runtime) onto
/// the resolved directory or file `target`.
fn move_tree(tree: RawFd, target: RawFd) -> Result<(), Errno> {
    // SAFETY: plain syscall on two valid fds and empty paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            target,
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

pub(crate) fn bind_fd(src: RawFd, target: &CStr) -> Result<(), Errno> {
    // SAFETY: plain syscalls on valid fds and NUL-terminated strings.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            src,
            c"".as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32,
        )
    };
    if tree < 0 {
        return Err(sys::errno());
    }
    let tree = tree as RawFd;
    // SAFETY: as above.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    let r = if r < 0 { Err(sys::errno()) } else { Ok(()) };
    close(tree);
    r
}

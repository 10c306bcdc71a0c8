//! Applies one layer's tar stream to a directory, as the OCI image spec
//! says (image-spec layer.md), without ever writing outside it.
//!
//! Every parent directory is opened with `openat2(RESOLVE_IN_ROOT)` from
//! the target's root: `..`, absolute symlinks and symlinks planted by an
//! earlier member or layer all resolve inside the target. The member's
//! own name is then created with `*at` calls that never follow a final
//! symlink (`O_NOFOLLOW|O_EXCL`, `AT_SYMLINK_NOFOLLOW`, `linkat` without
//! `AT_SYMLINK_FOLLOW`). Members naming `..` are refused; absolute names
//! are taken from the target's root, as tar does.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::ImageError;

/// How whiteouts (`.wh.NAME`, `.wh..wh..opq`) are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whiteouts {
    /// Onto a flattened rootfs: remove what lower layers put there.
    Apply,
    /// Into a layer of its own for overlayfs: a 0/0 character device,
    /// and `trusted.overlay.opaque=y` on opaque directories.
    Overlay,
}

const WH: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Longest member path accepted.
const MAX_PATH: usize = 4096;

/// What a layer held.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub entries: u64,
    pub bytes: u64,
}

pub(crate) struct Applier<'a> {
    root: OwnedFd,
    mode: Whiteouts,
    layer: &'a str,
    /// Paths this layer wrote (whiteouts only hide lower layers).
    written: HashSet<Vec<u8>>,
    /// Directory mtimes, set once nothing more is written in them.
    dir_times: Vec<(Vec<u8>, i64)>,
    /// The last parent directory opened.
    cache: Option<(Vec<u8>, OwnedFd)>,
    buf: Vec<u8>,
    counts: Counts,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(root: &Path, mode: Whiteouts, layer: &'a str) -> Result<Self, ImageError> {
        let root_fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ImageError::io(root)(e.into()))?;
        Ok(Applier {
            root: root_fd,
            mode,
            layer,
            written: HashSet::new(),
            dir_times: Vec::new(),
            cache: None,
            buf: vec![0; 256 << 10],
            counts: Counts::default(),
        })
    }

    /// Applies every member of the tar stream `r`.
    pub(crate) fn apply(mut self, r: impl Read) -> Result<Counts, ImageError> {
        let mut ar = tar::Archive::new(r);
        let entries = ar.entries().map_err(|e| self.tar_err(e))?;
        for e in entries {
            let mut e = match e {
                Ok(e) => e,
                // Every member so far was whole (a short one is an error
                // below): only the last one's padding and the end-of-archive
                // blocks are missing, as in umoci 0.4's layers. Go's
                // archive/tar (umoci, containerd) accepts that; so do we.
                Err(err) if is_eof(&err) && self.counts.entries > 0 => {
                    log::debug!("layer {}: the tar ends without its trailer", self.layer);
                    break;
                }
                Err(err) => return Err(self.tar_err(err)),
            };
            self.member(&mut e)?;
            self.counts.entries += 1;
        }
        // Directory mtimes last: writing into a directory changes it.
        for (p, t) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let (parent, name) = split(&p);
            if let Ok(pfd) = self.open_parent(parent, false) {
                let ts = TimeSpec::new(t, 0);
                let _ = utimensat(&pfd, name, &ts, &ts, UtimensatFlags::NoFollowSymlink);
            }
        }
        Ok(self.counts)
    }

    fn tar_err(&self, source: std::io::Error) -> ImageError {
        ImageError::Tar {
            layer: self.layer.to_string(),
            source,
        }
    }

    fn refuse(&self, member: &[u8], why: impl std::fmt::Display) -> ImageError {
        ImageError::Member {
            layer: self.layer.to_string(),
            member: String::from_utf8_lossy(&member[..member.len().min(256)]).into_owned(),
            why: why.to_string(),
        }
    }

    fn member<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = e.path_bytes().into_owned();
        let path = normalize(&raw).map_err(|why| self.refuse(&raw, why))?;
        if path.is_empty() {
            return Ok(()); // the root itself
        }
        let (parent, name) = split(&path);
        let name_b = name.as_bytes();
        let kind = e.header().entry_type();
        if name_b == OPAQUE {
            return self.opaque(parent).map_err(|err| self.refuse(&raw, err));
        }
        if let Some(hidden) = name_b.strip_prefix(WH) {
            if hidden.starts_with(WH) || hidden.is_empty() {
                return Ok(()); // AUFS metadata (.wh..wh.plnk, ...)
            }
            if hidden == b"." || hidden == b".." {
                // `.wh..` would remove the parent (or its parent).
                return Err(self.refuse(&raw, "whiteout of . or .."));
            }
            return self
                .whiteout(parent, OsStr::from_bytes(hidden))
                .map_err(|err| self.refuse(&raw, err));
        }
        let pfd = self
            .open_parent(parent, true)
            .map_err(|err| self.refuse(&raw, err))?;
        let h = e.header();
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let mtime = h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
        let res: Result<(), String> = (|| {
            use tar::EntryType as T;
            match kind {
                T::Regular | T::Continuous => {
                    self.clear(&pfd, name, false)?;
                    let fd = openat(
                        &pfd,
                        name,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(|e| format!("create: {e}"))?;
                    let mut f = File::from(fd);
                    let want = e.size();
                    let mut got = 0u64;
                    loop {
                        let n = e.read(&mut self.buf).map_err(|e| format!("read: {e}"))?;
                        if n == 0 {
                            break;
                        }
                        f.write_all(&self.buf[..n])
                            .map_err(|e| format!("write: {e}"))?;
                        got += n as u64;
                    }
                    if got != want {
                        return Err(format!("truncated: {got} of {want} bytes"));
                    }
                    self.counts.bytes += got;
                    fchown(&f, owner.0, owner.1).map_err(|e| format!("chown: {e}"))?;
                    // After chown, which clears set-id bits.
                    fchmod(&f, mode).map_err(|e| format!("chmod: {e}"))?;
                    set_xattrs(&f, e);
                    let ts = TimeSpec::new(mtime, 0);
                    futimens(&f, &ts, &ts).map_err(|e| format!("utimes: {e}"))?;
                }
                T::Directory => {
                    self.clear(&pfd, name, true)?;
                    match nix::sys::stat::mkdirat(&pfd, name, Mode::from_bits_truncate(0o700)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(format!("mkdir: {e}")),
                    }
                    let d = openat(
                        &pfd,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| format!("open: {e}"))?;
                    fchown(&d, owner.0, owner.1).map_err(|e| format!("chown: {e}"))?;
                    fchmod(&d, mode).map_err(|e| format!("chmod: {e}"))?;
                    set_xattrs(&File::from(d), e);
                    self.dir_times.push((path.clone(), mtime));
                }
                T::Symlink => {
                    let target = e
                        .link_name_bytes()
                        .ok_or("a symlink without a target")?
                        .into_owned();
                    self.clear(&pfd, name, false)?;
                    symlinkat(OsStr::from_bytes(&target), &pfd, name)
                        .map_err(|e| format!("symlink: {e}"))?;
                    fchownat(&pfd, name, owner.0, owner.1, nofollow)
                        .map_err(|e| format!("chown: {e}"))?;
                    let ts = TimeSpec::new(mtime, 0);
                    let _ = utimensat(&pfd, name, &ts, &ts, UtimensatFlags::NoFollowSymlink);
                }
                T::Link => {
                    let target = e
                        .link_name_bytes()
                        .ok_or("a hardlink without a target")?
                        .into_owned();
                    let t = normalize(&target).map_err(|w| {
                        format!(
                            "hardlink target {:?}: {w}",
                            String::from_utf8_lossy(&target)
                        )
                    })?;
                    let (tp, tn) = split(&t);
                    let tfd = self
                        .open_parent(tp, false)
                        .map_err(|e| format!("hardlink target: {e}"))?;
                    self.clear(&pfd, name, false)?;
                    // Flags 0: a symlink target is linked, never followed.
                    linkat(&tfd, tn, &pfd, name, AtFlags::empty()).map_err(|e| {
                        format!("hardlink to {:?}: {e}", String::from_utf8_lossy(&t))
                    })?;
                }
                T::Char | T::Block | T::Fifo => {
                    let (sflag, dev) = match kind {
                        T::Char => (SFlag::S_IFCHR, dev(e)),
                        T::Block => (SFlag::S_IFBLK, dev(e)),
                        _ => (SFlag::S_IFIFO, 0),
                    };
                    self.clear(&pfd, name, false)?;
                    mknodat(&pfd, name, sflag, mode, dev).map_err(|e| format!("mknod: {e}"))?;
                    fchownat(&pfd, name, owner.0, owner.1, nofollow)
                        .map_err(|e| format!("chown: {e}"))?;
                    fchmodat(&pfd, name, mode, FchmodatFlags::FollowSymlink)
                        .map_err(|e| format!("chmod: {e}"))?;
                    let ts = TimeSpec::new(mtime, 0);
                    let _ = utimensat(&pfd, name, &ts, &ts, UtimensatFlags::NoFollowSymlink);
                }
                T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
                other => return Err(format!("unsupported member type {other:?}")),
            }
            Ok(())
        })();
        res.map_err(|why| self.refuse(&raw, why))?;
        if self.mode == Whiteouts::Apply {
            self.written.insert(path);
        }
        Ok(())
    }

    /// Opens directory `parent` inside the root, creating missing
    /// components when `create` (a tar need not list every directory).
    fn open_parent(&mut self, parent: &[u8], create: bool) -> Result<OwnedFd, String> {
        if let Some((p, fd)) = &self.cache {
            if p == parent {
                return fd.try_clone().map_err(|e| e.to_string());
            }
        }
        let fd = match self.resolve(parent) {
            Err(Errno::ENOENT) if create => self.mkdir_in_root(parent)?,
            r => r.map_err(|e| format!("parent {:?}: {e}", String::from_utf8_lossy(parent)))?,
        };
        let keep = fd.try_clone().map_err(|e| e.to_string())?;
        self.cache = Some((parent.to_vec(), keep));
        Ok(fd)
    }

    /// `mkdir -p` inside the root: symlinks met on the way, dangling
    /// ones included, are followed as if the root were `/` (as
    /// containerd's securejoin does), and the directories they name are
    /// made there.
    fn mkdir_in_root(&self, path: &[u8]) -> Result<OwnedFd, String> {
        let comps =
            |p: &[u8]| -> Vec<Vec<u8>> { p.split(|&b| b == b'/').map(<[u8]>::to_vec).collect() };
        let mut queue: std::collections::VecDeque<Vec<u8>> = comps(path).into();
        let mut cur: Vec<Vec<u8>> = Vec::new();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            // `cur` holds no symlink: every component was checked.
            let parent = self
                .resolve(&cur.join(&b'/'))
                .map_err(|e| format!("mkdir: {e}"))?;
            let name = OsStr::from_bytes(&c);
            match nix::fcntl::readlinkat(&parent, name) {
                Ok(target) => {
                    hops += 1;
                    if hops > 40 {
                        return Err("mkdir: too many symlinks".into());
                    }
                    let t = target.as_bytes();
                    if t.starts_with(b"/") {
                        cur.clear();
                    }
                    for x in comps(t).into_iter().rev() {
                        queue.push_front(x);
                    }
                    continue;
                }
                Err(Errno::EINVAL) => {} // there, and not a symlink
                Err(Errno::ENOENT) => {
                    match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(format!("mkdir {name:?}: {e}")),
                    }
                }
                Err(e) => return Err(format!("mkdir {name:?}: {e}")),
            }
            cur.push(c);
        }
        self.resolve(&cur.join(&b'/'))
            .map_err(|e| format!("mkdir: {e}"))
    }

    fn resolve(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        if path.is_empty() {
            return self.root.try_clone().map_err(|_| Errno::EMFILE);
        }
        openat2(&self.root, OsStr::from_bytes(path), how())
    }

    /// Makes room for `name`: anything there goes, except a directory
    /// that a directory member keeps.
    fn clear(&mut self, pfd: &OwnedFd, name: &OsStr, keep_dir: bool) -> Result<(), String> {
        match unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir) {
            Err(Errno::ENOENT) => Ok(()),
            Ok(()) => {
                // It may have been a symlink the cached parent went through.
                self.cache = None;
                Ok(())
            }
            Err(Errno::EISDIR) | Err(Errno::EPERM) if keep_dir => Ok(()),
            Err(Errno::EISDIR) | Err(Errno::EPERM) => {
                self.cache = None;
                remove_all(pfd, name).map_err(|e| format!("replace a directory: {e}"))
            }
            Err(e) => Err(format!("unlink: {e}")),
        }
    }

    fn whiteout(&mut self, parent: &[u8], name: &OsStr) -> Result<(), String> {
        match self.mode {
            Whiteouts::Overlay => {
                let pfd = self.open_parent(parent, true)?;
                self.clear(&pfd, name, false)?;
                mknodat(&pfd, name, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| format!("whiteout: {e}"))
            }
            Whiteouts::Apply => {
                let mut full = parent.to_vec();
                if !full.is_empty() {
                    full.push(b'/');
                }
                full.extend_from_slice(name.as_bytes());
                if self.written.contains(&full) {
                    return Ok(()); // only lower layers are hidden
                }
                let pfd = match self.resolve(parent) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
                    Err(e) => return Err(format!("parent: {e}")),
                };
                self.cache = None;
                remove_all(&pfd, name).map_err(|e| format!("whiteout: {e}"))
            }
        }
    }

    fn opaque(&mut self, dir: &[u8]) -> Result<(), String> {
        match self.mode {
            Whiteouts::Overlay => {
                self.open_parent(dir, true)?;
                let d = openat2(
                    &self.root,
                    OsStr::from_bytes(dir),
                    OpenHow::new()
                        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
                )
                .map_err(|e| format!("open: {e}"))?;
                use xattr::FileExt;
                File::from(d)
                    .set_xattr("trusted.overlay.opaque", b"y")
                    .map_err(|e| format!("opaque: {e}"))
            }
            Whiteouts::Apply => {
                self.cache = None;
                let keep = self.written.clone();
                let fd = match self.resolve(dir) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => return Ok(()),
                    Err(e) => return Err(format!("open: {e}")),
                };
                prune_lower(&fd, dir, &keep).map_err(|e| format!("opaque: {e}"))
            }
        }
    }
}

fn how() -> OpenHow {
    OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn dev<R: Read>(e: &tar::Entry<'_, R>) -> u64 {
    let h = e.header();
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    nix::sys::stat::makedev(major.into(), minor.into())
}

/// `SCHILY.xattr.*` PAX records, where the filesystem takes them.
fn set_xattrs<R: Read>(f: &File, e: &mut tar::Entry<'_, R>) {
    use xattr::FileExt;
    let Ok(Some(exts)) = e.pax_extensions() else {
        return;
    };
    for x in exts.flatten() {
        // overlayfs' own attributes (redirect, opaque, metacopy) are the
        // store's to set, never a layer's.
        let name = x.key_bytes().strip_prefix(b"SCHILY.xattr.");
        if let Some(name) = name.filter(|n| !n.starts_with(b"trusted.overlay.")) {
            let _ = f.set_xattr(OsStr::from_bytes(name), x.value_bytes());
        }
    }
}

/// The member's path, relative to the root, without `.` components.
/// `..` is refused; a leading `/` is dropped, as tar does.
pub(crate) fn normalize(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.len() > MAX_PATH {
        return Err("path too long");
    }
    if raw.contains(&0) {
        return Err("NUL in path");
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path leaves the layer (..)"),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

fn split(path: &[u8]) -> (&[u8], &OsStr) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], OsStr::from_bytes(&path[i + 1..])),
        None => (&[], OsStr::from_bytes(path)),
    }
}

/// Removes `name` in `dir` and everything under it, never following a
/// symlink (every step is an `*at` call with `O_NOFOLLOW`).
pub(crate) fn remove_all(dir: &impl AsFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    for child in children(&fd)? {
        remove_all(&fd, &child)?;
    }
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

fn children(fd: &OwnedFd) -> nix::Result<Vec<OsString>> {
    // A readable fd of its own (`fd` may be O_PATH, and Dir consumes it).
    let rd = openat(
        fd,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(rd)?;
    let mut v = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(v)
}

/// Under an opaque directory: removes what this layer did not write.
fn prune_lower(fd: &OwnedFd, at: &[u8], keep: &HashSet<Vec<u8>>) -> nix::Result<()> {
    for child in children(fd)? {
        let mut p = at.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(child.as_bytes());
        if !keep.contains(&p) {
            remove_all(fd, &child)?;
        } else if let Ok(sub) = openat(
            fd,
            child.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            prune_lower(&sub, &p, keep)?;
        }
    }
    Ok(())
}

/// The tar crate reports a stream that ends early as UnexpectedEof, or as
/// "unexpected EOF ..." of kind Other when skipping padding.
fn is_eof(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string().starts_with("unexpected EOF")
}

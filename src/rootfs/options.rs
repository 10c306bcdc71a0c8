//! Mount options as runc accepts them in `mounts[].options`.

use libc::c_ulong;

/// Mount options split into what mount(2) takes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2) (MS_RDONLY, MS_NOSUID, MS_BIND, ...).
    pub flags: c_ulong,
    /// Propagation changes to apply after mounting (MS_SHARED, MS_SLAVE|MS_REC, ...).
    pub propagation: Vec<c_ulong>,
    /// Filesystem-specific options, comma separated (the `data` argument).
    pub data: String,
    /// `tmpcopyup`: a tmpfs starts with a copy of what the rootfs has at
    /// its destination (runc's extension, which podman uses).
    pub copyup: bool,
    /// The recursive options (`rro`, `rnosuid`, ...): `MOUNT_ATTR_*`
    /// bits to set and to clear on the mount and every mount below it
    /// with mount_setattr(2) (Linux 5.12).
    pub rec_set: u64,
    /// See `rec_set`.
    pub rec_clr: u64,
}

impl MountOptions {
    /// True for `bind` and `rbind` mounts.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

/// Why an option was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct UnsupportedOption(pub String);

/// Splits `options` into flags, propagation and data. Unknown options are
/// passed to the filesystem as data, as runc does.
///
/// # Errors
/// [`UnsupportedOption`] for options rcrun recognises but does not implement
/// (id-mapped mounts).
///
/// ```
/// use rcrun::rootfs::options::parse;
/// let o = parse(&["nosuid", "noexec", "mode=755", "size=65536k"]).unwrap();
/// assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
/// assert_eq!(o.data, "mode=755,size=65536k");
/// ```
pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, UnsupportedOption> {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        let (set, clear): (c_ulong, c_ulong) = match opt {
            "async" => (0, libc::MS_SYNCHRONOUS),
            "atime" => (0, libc::MS_NOATIME),
            "bind" => (libc::MS_BIND, 0),
            "defaults" => (0, 0),
            "dev" => (0, libc::MS_NODEV),
            "diratime" => (0, libc::MS_NODIRATIME),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "iversion" => (libc::MS_I_VERSION, 0),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "loud" => (0, libc::MS_SILENT),
            "mand" => (libc::MS_MANDLOCK, 0),
            "noatime" => (libc::MS_NOATIME, 0),
            "nodev" => (libc::MS_NODEV, 0),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "noexec" => (libc::MS_NOEXEC, 0),
            "noiversion" => (0, libc::MS_I_VERSION),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "nomand" => (0, libc::MS_MANDLOCK),
            "norelatime" => (0, libc::MS_RELATIME),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "nosuid" => (libc::MS_NOSUID, 0),
            "nosymfollow" => (libc::MS_NOSYMFOLLOW, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "silent" => (libc::MS_SILENT, 0),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "suid" => (0, libc::MS_NOSUID),
            "symfollow" => (0, libc::MS_NOSYMFOLLOW),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "private" | "shared" | "slave" | "unbindable" | "rprivate" | "rshared" | "rslave"
            | "runbindable" => {
                o.propagation.push(propagation(opt).expect("listed"));
                continue;
            }
            "tmpcopyup" => {
                o.copyup = true;
                continue;
            }
            "idmap" | "ridmap" => return Err(UnsupportedOption(opt.to_string())),
            _ if recursive(opt).is_some() => {
                let (clear, attr) = recursive(opt).expect("just matched");
                if clear {
                    o.rec_clr |= attr;
                    o.rec_set &= !attr;
                } else {
                    // The atime modes are one field: clear it, then set.
                    if attr & ATIME_MODES != 0 || opt == "rrelatime" {
                        o.rec_clr |= libc::MOUNT_ATTR__ATIME;
                        o.rec_set &= !libc::MOUNT_ATTR__ATIME;
                    }
                    o.rec_set |= attr;
                    o.rec_clr &= !attr | libc::MOUNT_ATTR__ATIME;
                }
                continue;
            }
            _ => {
                data.push(opt);
                continue;
            }
        };
        o.flags = (o.flags | set) & !clear;
    }
    o.data = data.join(",");
    Ok(o)
}

const ATIME_MODES: u64 = libc::MOUNT_ATTR_NOATIME | libc::MOUNT_ATTR_STRICTATIME;

/// A recursive option as runc takes it: whether it clears, and the
/// `MOUNT_ATTR_*` bit (`rrelatime` is the atime mode 0).
fn recursive(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (false, libc::MOUNT_ATTR_RDONLY),
        "rrw" => (true, libc::MOUNT_ATTR_RDONLY),
        "rnosuid" => (false, libc::MOUNT_ATTR_NOSUID),
        "rsuid" => (true, libc::MOUNT_ATTR_NOSUID),
        "rnodev" => (false, libc::MOUNT_ATTR_NODEV),
        "rdev" => (true, libc::MOUNT_ATTR_NODEV),
        "rnoexec" => (false, libc::MOUNT_ATTR_NOEXEC),
        "rexec" => (true, libc::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (false, libc::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (true, libc::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (false, libc::MOUNT_ATTR_RELATIME),
        "rnorelatime" => (true, libc::MOUNT_ATTR_RELATIME),
        "rnoatime" => (false, libc::MOUNT_ATTR_NOATIME),
        "ratime" => (true, libc::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (false, libc::MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (true, libc::MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (false, libc::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (true, libc::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// The mount(2) flags of a propagation name (`rootfsPropagation` or a
/// mount option).
pub fn propagation(name: &str) -> Option<c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "unbindable" => libc::MS_UNBINDABLE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_clear_and_set() {
        let o = parse(&["ro", "rw", "nosuid", "suid", "nodev"]).unwrap();
        assert_eq!(o.flags, libc::MS_NODEV);
        assert!(o.data.is_empty());
    }

    #[test]
    fn bind_and_propagation() {
        let o = parse(&["rbind", "rprivate", "ro"]).unwrap();
        assert!(o.is_bind());
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn data_and_unsupported() {
        let o = parse(&["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]).unwrap();
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        assert_eq!(parse(&["idmap"]), Err(UnsupportedOption("idmap".into())));
        let o = parse(&["rbind", "rro", "rnosuid", "rnoatime", "rdev"]).unwrap();
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC);
        assert_eq!(
            o.rec_set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clr, libc::MOUNT_ATTR__ATIME | libc::MOUNT_ATTR_NODEV);
        let o = parse(&["rro", "rrw"]).unwrap();
        assert_eq!((o.rec_set, o.rec_clr), (0, libc::MOUNT_ATTR_RDONLY));
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(propagation("bogus"), None);
    }
}

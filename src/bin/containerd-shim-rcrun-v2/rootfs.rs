//! The rootfs mounts containerd passes with `Create` (a snapshotter's
//! overlay or bind), made on BUNDLE/rootfs and removed on `Delete`.

use std::path::Path;

use containerd_shim::protos::api::Mount;

/// Mounts `mounts` on `bundle`/rootfs in order; on failure, unmounts what
/// was mounted.
pub fn mount(bundle: &Path, mounts: &[Mount]) -> Result<(), String> {
    let target = bundle.join("rootfs");
    for m in mounts {
        if let Err(e) = mount_one(m, &target) {
            unmount(bundle);
            return Err(format!(
                "mounting {} ({}) on {}: {e}",
                m.source,
                m.type_,
                target.display()
            ));
        }
    }
    Ok(())
}

/// One mount, in the shim's own mount namespace (containerd-shim's
/// `mount_rootfs` forks from the threaded shim and waits through its own
/// reaper; this needs neither).
fn mount_one(m: &Mount, target: &Path) -> Result<(), String> {
    use nix::mount::MsFlags;
    let o = rcrun::rootfs::options::parse(&m.options).map_err(|e| format!("option {}", e.0))?;
    let flags = MsFlags::from_bits_truncate(o.flags);
    let data = Some(o.data.as_str()).filter(|d| !d.is_empty());
    let fstype = Some(m.type_.as_str()).filter(|t| !t.is_empty());
    let source = Some(m.source.as_str()).filter(|s| !s.is_empty());
    nix::mount::mount(source, target, fstype, flags, data).map_err(|e| e.to_string())?;
    // A bind mount takes MS_RDONLY (and the like) only on a remount.
    let per_mount =
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if flags.contains(MsFlags::MS_BIND) && flags.intersects(per_mount) {
        let again = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (flags & per_mount);
        nix::mount::mount(None::<&str>, target, None::<&str>, again, None::<&str>)
            .map_err(|e| format!("remount: {e}"))?;
    }
    for p in &o.propagation {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::from_bits_truncate(*p),
            None::<&str>,
        )
        .map_err(|e| format!("propagation: {e}"))?;
    }
    Ok(())
}

/// Unmounts everything on `bundle`/rootfs (nothing mounted: nothing done).
pub fn unmount(bundle: &Path) {
    let target = bundle.join("rootfs");
    // Each call removes the top mount; a few stack at most.
    for _ in 0..16 {
        if nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

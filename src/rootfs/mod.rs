//! The container's root filesystem: mounts, devices, masked and read-only
//! paths, pivot_root.
//!
//! `plan` turns the spec into a `RootfsPlan` in the runtime process
//! (allocating, reading the host); `setup` applies it inside the new
//! mount namespace with async-signal-safe system calls only. Every path
//! inside the rootfs is resolved with `openat2(RESOLVE_IN_ROOT)` from a
//! file descriptor of the rootfs, never by joining strings.

pub mod options;
pub(crate) mod plan;
pub(crate) mod setup;

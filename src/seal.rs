//! Keeping the runtime binary out of the container's reach (CVE-2019-5736).
//!
//! The container's init process is a clone of the calling process, so
//! until it execs the user's program its `/proc/<pid>/exe` is the caller's
//! binary. A container process that opened that link could overwrite the
//! host's runtime. [`ensure_sealed`] re-executes the current program from
//! a sealed, read-only memfd copy (via the `pentacle` crate, as youki
//! does), so what the container can reach is that in-memory copy, which
//! cannot be written and disappears with the process.
//!
//! The `rcrun` binary calls it before `create` and `run`. A program that
//! embeds the library must call it at the top of `main`, before it starts
//! threads; [`crate::Runtime::create`] refuses to start a container from
//! an unsealed process unless the embedder opts out explicitly.

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
pub fn ensure_sealed() -> std::io::Result<()> {
    pentacle::ensure_sealed()
}

/// True when the current program runs from a sealed memfd.
pub fn is_sealed() -> bool {
    pentacle::is_sealed()
}

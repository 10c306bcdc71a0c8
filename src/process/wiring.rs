//! The runtime's side of a [`super::plan::ChildPlan`]: the fds, flags
//! and buffers that link the init to the runtime (sync socket, exec fifo,
//! error file, console socket, stdio, cgroup `tasks` files, the
//! trampoline), set by the spawner and the container layer, while the
//! rest of the plan comes from the config.

use std::os::fd::RawFd;

/// See the module's documentation.
#[derive(Debug)]
pub(crate) struct Wiring {
    /// The init's end of the sync socket.
    pub sync_fd: RawFd,
    /// The `tasks` files of the container's v1 cgroups: the init writes
    /// `0` to each before anything else (see `CgroupSet::open_join`).
    pub cgroup_tasks: Vec<RawFd>,
    /// Their paths, for error messages.
    pub cgroup_task_paths: Vec<String>,
    /// The exec fifo the init waits on for `start` (-1 for `run`).
    pub fifo_fd: RawFd,
    /// Without a fifo (`run`): wait for the runtime's go after READY.
    pub go_after_ready: bool,
    /// Stop once in the namespaces until the runtime answers NS_READY:
    /// it writes the id maps, moves the init into a cgroup that
    /// CLONE_INTO_CGROUP could not, starts the grandchild's wait (joined
    /// pid namespace) or sends the state for hooks that run in the
    /// container. Without any of those the round trip is skipped (set by
    /// the spawner).
    pub ns_handshake: bool,
    /// Join the v1 cgroups late: the runtime creates them while the init
    /// makes `rootfs.mounts[..cgroup_at]`, then sends their `tasks` files
    /// (msg::CGROUPS); the init writes itself to each and only then
    /// enters its cgroup namespace. The two CPUs' worth of set-up overlap.
    pub late_cgroups: bool,
    /// The runtime places the init in its cgroup after the clone (the
    /// systemd driver: systemd moves it into a new scope). It joins none
    /// at birth and waits (the namespace handshake) until it is there:
    /// its cgroup namespace is rooted where it is when it goes on.
    pub placed_by_runtime: bool,
    /// A file in the state directory for failures after `start`.
    pub err_fd: RawFd,
    /// The exec trampoline's sealed memfd ([`super::trampoline`]): the
    /// init executes it, and it the user's program. None when the runtime
    /// runs sealed itself (or for `exec`).
    pub trampoline: Option<std::os::fd::OwnedFd>,
    /// The trampoline's argv: its header (written by the init), the
    /// program's path (found by the init), then `process.argv`.
    pub trampoline_argv: Vec<*const libc::c_char>,
    /// The trampoline's header, written by the init.
    pub trampoline_header: [u8; super::trampoline::HEADER_CAP],
    /// Where the init sends its pty master (-1 without a terminal).
    pub console_fd: RawFd,
    /// The fds the init puts at 0, 1 and 2 before anything else (-1:
    /// keep the runtime's own), set by the spawner from [`crate::Stdio`].
    pub stdio: [RawFd; 3],
    /// Receives the state JSON for hooks (4-byte message kind first).
    pub msg_buf: Vec<u8>,
    /// The length of the state JSON in `msg_buf`.
    pub state_len: usize,
}

impl Default for Wiring {
    fn default() -> Wiring {
        Wiring {
            sync_fd: -1,
            cgroup_tasks: Vec::new(),
            cgroup_task_paths: Vec::new(),
            fifo_fd: -1,
            go_after_ready: false,
            ns_handshake: true,
            late_cgroups: false,
            placed_by_runtime: false,
            err_fd: -1,
            trampoline: None,
            trampoline_argv: Vec::new(),
            trampoline_header: [0; super::trampoline::HEADER_CAP],
            console_fd: -1,
            stdio: [-1; 3],
            msg_buf: Vec::new(),
            state_len: 0,
        }
    }
}

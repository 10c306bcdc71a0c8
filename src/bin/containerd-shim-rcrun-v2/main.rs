//! `containerd-shim-rcrun-v2`: containerd's runtime v2 shim on the rcrun
//! library (`--features shim`).
//!
//! containerd starts it as `io.containerd.rcrun.v2` (`ctr run --runtime
//! io.containerd.rcrun.v2`, or a CRI runtime handler whose `runtime_type`
//! names it). The `start` action spawns the serving shim, one per pod (the
//! CRI sandbox id groups a pod's containers, as runc's shim does) and
//! prints its socket; the serving shim answers the task service
//! in-process through [`rcrun::Runtime`], with no rcrun binary run per
//! request.
//!
//! The path from a request to a container: [`task`] (the ttrpc task
//! service) → [`tasks`] (the containers and processes this shim holds,
//! their exits) → `rcrun::Runtime`; [`stdio`] wires containerd's fifos and
//! consoles, [`rootfs`] mounts what containerd passes, [`metrics`] turns
//! the library's stats into containerd's cgroup metrics, [`publish`]
//! forwards events in order, [`exits`] turns the reaped children into
//! exits, and [`memory`] gives back the executable's pages once idle.

mod exits;
mod memory;
mod metrics;
mod publish;
mod rootfs;
mod serve;
mod shim;
mod stdio;
mod task;
mod tasks;

/// The runtime name containerd knows the shim by.
const RUNTIME_ID: &str = "io.containerd.rcrun.v2";

fn main() {
    // The serving shim (the only invocation given `-socket`) forks the
    // containers: it runs sealed, so that a container process that reaches
    // /proc/<shim>/exe finds a sealed copy, never the host's binary. It
    // seals before any thread exists (the ttrpc server's come later). The
    // `start`, `delete` and `-info` invocations fork no container and must
    // keep their path (`start` spawns the binary by it).
    if std::env::args().any(|a| a == "-socket" || a == "--socket") {
        if let Err(e) = rcrun::seal::ensure_sealed() {
            eprintln!("{RUNTIME_ID}: sealing the shim: {e}");
            std::process::exit(1);
        }
    }
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Ok(flags) = containerd_shim::parse(&args) {
        let r = if flags.action == "start" && !flags.namespace.is_empty() {
            shim::start(&flags).map_err(|e| e.to_string())
        } else if !flags.socket.is_empty() && flags.action.is_empty() {
            serve::serve(&flags)
        } else {
            return containerd_shim::run::<shim::Service>(RUNTIME_ID, None);
        };
        if let Err(e) = r {
            eprintln!("{RUNTIME_ID}: {e}");
            std::process::exit(1);
        }
        return;
    }
    containerd_shim::run::<shim::Service>(RUNTIME_ID, None)
}

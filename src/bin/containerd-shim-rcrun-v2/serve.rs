//! The serving shim: the ttrpc server of the task service, the reaper, and
//! the wait for the last container to go.
//!
//! containerd-shim's own serving loop is not used: it serves only version
//! 3 of the task API (containerd 2), where Debian's containerd 1.6 (and
//! 1.7) call version 2, the same messages under another name; and its
//! reaper hands on exit codes where the library takes wait statuses.

use std::io::ErrorKind;
use std::os::fd::IntoRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use containerd_shim::protos::shim::shim_ttrpc::create_task;
use containerd_shim::protos::ttrpc::Server;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{ExitSignal, Flags, Task};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGPIPE, SIGTERM};
use signal_hook::iterator::Signals;

use crate::task::TaskService;

/// Serves `flags.socket` until `Shutdown` finds no container left.
pub fn serve(flags: &Flags) -> Result<(), String> {
    // Before any thread: the handlers exist for every thread, and SIGPIPE
    // (a fifo whose reader left) never kills the shim.
    let signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGPIPE]).map_err(|e| e.to_string())?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("subreaper: {e}"))?;
    // containerd's `log` fifo in the bundle; without one, no log.
    if let Err(e) = containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)
    {
        eprintln!("no shim log: {e}");
    }
    let path = flags
        .socket
        .strip_prefix("unix://")
        .unwrap_or(&flags.socket);
    let Some(listener) = listen(path)? else {
        // The pod's shim serves already: containerd is given its address.
        write_address(&flags.socket).map_err(|e| e.to_string())?;
        started();
        return Ok(());
    };
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").map_err(|_| "TTRPC_ADDRESS is not set")?;
    let publisher = RemotePublisher::new(&ttrpc_address).map_err(|e| e.to_string())?;
    let exit = Arc::new(ExitSignal::default());
    let reaper = rcrun::Reaper::new();
    let service = TaskService::new(&flags.namespace, publisher, exit.clone(), reaper.clone());
    crate::exits::start(signals, reaper, service.tasks());
    let service: Arc<dyn Task + Send + Sync> = Arc::new(service);
    let mut methods = create_task(service.clone());
    for (name, handler) in create_task(service) {
        methods.insert(
            name.replace("/containerd.task.v3.", "/containerd.task.v2."),
            handler,
        );
    }
    let mut server = Server::new()
        .add_listener(listener.into_raw_fd())
        .map(|s| s.register_service(methods))
        .map_err(|e| e.to_string())?;
    server.start().map_err(|e| e.to_string())?;
    started();
    log::info!("serving {}", flags.socket);
    exit.wait();
    server.shutdown();
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Binds the socket; `None` when a live shim listens there already (a
/// dead one's socket is replaced).
fn listen(path: &str) -> Result<Option<UnixListener>, String> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path)
                .map(Some)
                .map_err(|e| format!("{path}: {e}"))
        }
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Closes the pipe on stdout that the `start` invocation reads to its end:
/// it then prints the address to containerd.
fn started() {
    // SAFETY: dup2 of the process's own stderr onto its stdout.
    unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
}

//! The reaper: the serving shim is a subreaper, so its children (the
//! library's intermediate processes and hooks, containers' inits and exec
//! processes) and the orphans of containers without a pid namespace are
//! reaped here. Each wait status goes to the library's [`rcrun::Reaper`]
//! first (its own waits take theirs from there), then to [`Tasks`].

use std::sync::Arc;

use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;

use crate::tasks::Tasks;

/// Starts the thread, which handles `signals` (SIGCHLD reaps; the others
/// are ignored: containerd stops the shim through `Shutdown`).
pub fn start(mut signals: Signals, reaper: rcrun::Reaper, tasks: Arc<Tasks>) {
    std::thread::Builder::new()
        .name("reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGCHLD {
                    reap(&reaper, &tasks);
                }
            }
        })
        .expect("spawning the reaper thread");
}

fn reap(reaper: &rcrun::Reaper, tasks: &Tasks) {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) };
        if pid <= 0 {
            return;
        }
        reaper.record(pid, st);
        let code = if libc::WIFSIGNALED(st) {
            128 + libc::WTERMSIG(st)
        } else {
            libc::WEXITSTATUS(st)
        };
        tasks.exited(pid, code);
    }
}

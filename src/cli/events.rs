use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::{
    anyhow_lite::{Error, Result},
    Global,
};

/// The events command displays information about the container: by
/// default a stream of resource statistics every --interval and an "oom"
/// event whenever the kernel OOM-kills a process of it, until the
/// container stops; with --stats, one statistics event.
#[derive(Debug, Args)]
pub struct Events {
    /// Set the stats collection interval
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// The container id
    pub id: String,
}

/// Blocks until the kernel reports an OOM kill in `cg`, sending one
/// message per kill; returns when the cgroup goes away.
fn watch_oom(cg: rcrun::cgroups::CgroupSet, tx: mpsc::Sender<()>) {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    if cg.v2 {
        let Some(leaf) = cg.leaves.first() else {
            return;
        };
        let Ok(ino) = Inotify::init(InitFlags::IN_CLOEXEC) else {
            return;
        };
        if ino
            .add_watch(&leaf.join("memory.events"), AddWatchFlags::IN_MODIFY)
            .is_err()
        {
            return;
        }
        let mut seen = cg.oom_kills();
        while ino.read_events().is_ok() {
            let now = cg.oom_kills();
            for _ in seen..now {
                if tx.send(()).is_err() {
                    return;
                }
            }
            seen = now;
        }
        return;
    }
    // v1: an eventfd registered for memory.oom_control.
    let Some(i) = cg
        .controllers
        .iter()
        .position(|c| c.iter().any(|c| c == "memory"))
    else {
        return;
    };
    let dir = &cg.leaves[i];
    let Ok(efd) = nix::sys::eventfd::EventFd::from_value_and_flags(
        0,
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
    ) else {
        return;
    };
    let Ok(oom) = std::fs::File::open(dir.join("memory.oom_control")) else {
        return;
    };
    if std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), oom.as_raw_fd()),
    )
    .is_err()
    {
        return;
    }
    while efd.read().is_ok() {
        // The eventfd also fires when the cgroup is removed.
        if !dir.exists() || tx.send(()).is_err() {
            return;
        }
    }
}

impl Events {
    pub fn run(self, g: &Global) -> Result<i32> {
        let rt = g.runtime();
        let stats = |rt: &rcrun::Runtime| -> Result<String> {
            let s = rt.stats(&self.id)?;
            Ok(json!({"type": "stats", "id": self.id, "data": s}).to_string())
        };
        if self.stats {
            outln!("{}", stats(&rt)?);
            return Ok(0);
        }
        if rt.state(&self.id)?.status == rcrun::Status::Stopped {
            return Err(Error(format!(
                "container {} is stopped: no events",
                self.id
            )));
        }
        let (tx, rx) = mpsc::channel();
        let cg = rt.cgroup(&self.id)?;
        std::thread::spawn(move || watch_oom(cg, tx));
        loop {
            match rx.recv_timeout(self.interval) {
                Ok(()) => outln!("{}", json!({"type": "oom", "id": self.id})),
                Err(mpsc::RecvTimeoutError::Timeout)
                | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    match rt.state(&self.id) {
                        Ok(s) if s.status != rcrun::Status::Stopped => outln!("{}", stats(&rt)?),
                        _ => return Ok(0),
                    }
                    if rx.try_recv() == Err(mpsc::TryRecvError::Disconnected) {
                        std::thread::sleep(self.interval);
                    }
                }
            }
        }
    }
}

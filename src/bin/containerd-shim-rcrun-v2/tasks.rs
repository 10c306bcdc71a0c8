//! The containers and processes this shim holds, and their exits.
//!
//! Every exit the shim reaps comes to [`Tasks::exited`]. It is matched to
//! the process that had the pid; an exit that comes before the process is
//! known (a program that exits at once, before `exec` returned its pid) is
//! kept aside and claimed when the pid is. Events are queued under the
//! lock, so containerd sees a process's start before its exit.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use containerd_shim::protos::events::task::{TaskExecStarted, TaskExit, TaskStart};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::topics::{
    TASK_EXEC_STARTED_EVENT_TOPIC, TASK_EXIT_EVENT_TOPIC, TASK_START_EVENT_TOPIC,
};

use crate::publish::Publisher;
use crate::stdio::{Io, Paths};

/// A process's exit as containerd records it.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// The exit code, or 128 + the signal that killed it.
    pub code: u32,
    pub at: SystemTime,
}

/// A process: a container's init or one of its execs.
#[derive(Default)]
pub struct Proc {
    /// 0 until it runs (an exec between `Exec` and `Start`).
    pub pid: i32,
    pub exit: Option<Exit>,
    pub io: Io,
    pub paths: Paths,
    /// An exec's process until `Start` runs it.
    pub spec: Option<rcrun::oci_spec::runtime::Process>,
    /// Its start is being reported: an exit is kept, not yet published.
    pub holding: bool,
}

/// A container and its exec processes.
pub struct Ctr {
    pub bundle: String,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
}

impl Ctr {
    pub fn proc(&self, eid: &str) -> Option<&Proc> {
        if eid.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(eid)
        }
    }

    pub fn proc_mut(&mut self, eid: &str) -> Option<&mut Proc> {
        if eid.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(eid)
        }
    }
}

#[derive(Default)]
pub struct Inner {
    pub ctrs: HashMap<String, Ctr>,
    /// Exits of pids not (yet) known: when observed.
    unclaimed: HashMap<i32, (Exit, Instant)>,
}

/// How many unclaimed exits are kept (the library's own short-lived
/// children, whose statuses it takes from the reaper, end up here too).
const UNCLAIMED_CAP: usize = 1024;

/// The shim's containers, shared by the task service and the exit thread.
pub struct Tasks {
    inner: Mutex<Inner>,
    exited: Condvar,
    pub events: Publisher,
}

impl Tasks {
    pub fn new(events: Publisher) -> Tasks {
        Tasks {
            inner: Mutex::default(),
            exited: Condvar::new(),
            events,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A child of the shim exited with `code` (128 + signal if killed).
    pub fn exited(&self, pid: i32, code: i32) {
        let exit = Exit {
            code: code as u32,
            at: SystemTime::now(),
        };
        let mut g = self.lock();
        let found = g.ctrs.iter_mut().find_map(|(id, c)| {
            if c.init.pid == pid && c.init.exit.is_none() {
                return Some((id.clone(), String::new(), &mut c.init));
            }
            c.execs
                .iter_mut()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
                .map(|(eid, p)| (id.clone(), eid.clone(), p))
        });
        match found {
            Some((id, eid, p)) => {
                p.exit = Some(exit);
                if !p.holding {
                    self.publish_exit(&id, &eid, pid, exit);
                }
            }
            None => {
                if g.unclaimed.len() >= UNCLAIMED_CAP {
                    let oldest = g
                        .unclaimed
                        .iter()
                        .min_by_key(|(_, (_, t))| *t)
                        .map(|(p, _)| *p);
                    oldest.map(|p| g.unclaimed.remove(&p));
                }
                g.unclaimed.insert(pid, (exit, Instant::now()));
            }
        }
        drop(g);
        self.exited.notify_all();
    }

    /// Marks the process as starting: its exit, if it comes now, is
    /// published by [`Tasks::started`], after the start.
    pub fn hold(&self, id: &str, eid: &str) {
        if let Some(p) = self.lock().ctrs.get_mut(id).and_then(|c| c.proc_mut(eid)) {
            p.holding = true;
        }
    }

    /// The process started with `pid` (at `since`, before the library made
    /// it: an older unclaimed exit of that pid is another process's).
    /// Publishes the start, then the exit if it came already.
    pub fn started(&self, id: &str, eid: &str, pid: i32, since: Instant, io: Option<Io>) {
        let mut g = self.lock();
        let claimed = match g.unclaimed.remove(&pid) {
            Some((e, t)) if t >= since => Some(e),
            _ => None,
        };
        let Some(p) = g.ctrs.get_mut(id).and_then(|c| c.proc_mut(eid)) else {
            return;
        };
        p.pid = pid;
        p.holding = false;
        if let Some(io) = io {
            p.io = io;
        }
        if p.exit.is_none() {
            p.exit = claimed;
        }
        let exit = p.exit;
        if eid.is_empty() {
            self.events.send(
                TASK_START_EVENT_TOPIC,
                TaskStart {
                    container_id: id.into(),
                    pid: pid as u32,
                    ..Default::default()
                },
            );
        } else {
            self.events.send(
                TASK_EXEC_STARTED_EVENT_TOPIC,
                TaskExecStarted {
                    container_id: id.into(),
                    exec_id: eid.into(),
                    pid: pid as u32,
                    ..Default::default()
                },
            );
        }
        if let Some(e) = exit {
            self.publish_exit(id, eid, pid, e);
        }
        drop(g);
        self.exited.notify_all();
    }

    /// Claims an exit of the init `pid` that came before the container was
    /// recorded (an init that failed at once).
    pub fn claim(&self, pid: i32, since: Instant) -> Option<Exit> {
        match self.lock().unclaimed.remove(&pid) {
            Some((e, t)) if t >= since => Some(e),
            _ => None,
        }
    }

    fn publish_exit(&self, id: &str, eid: &str, pid: i32, e: Exit) {
        self.events.send(
            TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: id.into(),
                id: if eid.is_empty() {
                    id.into()
                } else {
                    eid.into()
                },
                pid: pid as u32,
                exit_status: e.code,
                exited_at: MessageField::some(timestamp(e.at)),
                ..Default::default()
            },
        );
    }

    /// Waits until the process exits (for at most `timeout`, if given);
    /// `None` if it is gone or the time is up.
    pub fn wait(&self, id: &str, eid: &str, timeout: Option<std::time::Duration>) -> Option<Exit> {
        let end = timeout.map(|t| Instant::now() + t);
        let mut g = self.lock();
        loop {
            let p = g.ctrs.get(id)?.proc(eid)?;
            if let Some(e) = p.exit {
                return Some(e);
            }
            g = match end {
                None => self.exited.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(end) => {
                    let left = end.checked_duration_since(Instant::now())?;
                    let r = self.exited.wait_timeout(g, left);
                    r.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

/// `at` as protobuf's timestamp.
pub fn timestamp(at: SystemTime) -> Timestamp {
    let d = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

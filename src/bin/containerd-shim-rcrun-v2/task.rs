//! containerd's task service (`containerd.task.v2.Task`) over the rcrun
//! library: each request is a call of [`rcrun::Runtime`], in-process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use containerd_shim::api::{self, Empty, Options, Status};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskPaused, TaskResumed,
};
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::topics::*;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use rcrun::oci_spec::runtime::{LinuxResources, Process};

use crate::publish::Publisher;
use crate::stdio::{Io, Paths, Wiring};
use crate::tasks::{timestamp, Ctr, Exit, Proc, Tasks};

/// The task service of one shim (one pod).
pub struct TaskService {
    rt: rcrun::Runtime,
    tasks: Arc<Tasks>,
    exit: Arc<ExitSignal>,
}

/// A ttrpc error with containerd's code.
fn status(code: Code, msg: impl ToString) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg))
}

/// The library's error as containerd's (errdefs) code.
fn lib_err(e: rcrun::Error) -> ttrpc::Error {
    let code = match &e {
        rcrun::Error::Store(rcrun::StoreError::NotFound(_)) | rcrun::Error::ExecNotFound { .. } => {
            Code::NOT_FOUND
        }
        rcrun::Error::Store(rcrun::StoreError::Exists(_)) | rcrun::Error::ExecInUse { .. } => {
            Code::ALREADY_EXISTS
        }
        rcrun::Error::InvalidStatus { .. } => Code::FAILED_PRECONDITION,
        rcrun::Error::Spec(_) | rcrun::Error::InvalidSignal(_) => Code::INVALID_ARGUMENT,
        rcrun::Error::Unsupported(_) => Code::UNIMPLEMENTED,
        _ => Code::UNKNOWN,
    };
    status(code, e)
}

fn not_found(id: &str, eid: &str) -> ttrpc::Error {
    match eid {
        "" => status(Code::NOT_FOUND, format!("container {id}: not found")),
        _ => status(Code::NOT_FOUND, format!("process {eid} of {id}: not found")),
    }
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> ttrpc::Error + '_ {
    move |e| status(Code::UNKNOWN, format!("{what}: {e}"))
}

impl TaskService {
    /// The service of containerd's namespace `ns`; `reaper` gets the
    /// statuses the shim reaps ([`crate::exits`]).
    pub fn new(
        ns: &str,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
        reaper: rcrun::Reaper,
    ) -> TaskService {
        let tasks = Arc::new(Tasks::new(Publisher::start(publisher, ns)));
        TaskService {
            // The D-Bus client for the scopes of containers made with
            // the systemd driver (chosen per container in Create).
            rt: rcrun::Runtime::new(crate::shim::state_root(ns))
                .with_reaper(reaper)
                .with_systemd_cgroup(false),
            tasks,
            exit,
        }
    }

    /// The containers, for the reaper.
    pub fn tasks(&self) -> Arc<Tasks> {
        self.tasks.clone()
    }

    /// The library's process for an exec request (JSON in an Any).
    fn exec_spec(req: &api::ExecProcessRequest) -> TtrpcResult<Process> {
        let any = req
            .spec
            .as_ref()
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "exec: no process spec"))?;
        serde_json::from_slice(&any.value).map_err(|e| {
            status(
                Code::INVALID_ARGUMENT,
                format!("exec: the process spec: {e}"),
            )
        })
    }

    fn create_init(&self, req: &api::CreateTaskRequest, paths: &Paths) -> TtrpcResult<(i32, Io)> {
        let mut opts = rcrun::CreateOptions::default();
        // The systemd cgroup driver: runc's SystemdCgroup option (ctr's
        // --runc-systemd-cgroup), or a cgroupsPath of its form, which is
        // how containerd's CRI passes a slice parent to a runtime whose
        // options are not runc's (as this one's are, to the CRI).
        let mut systemd = cgroups_path(Path::new(&req.bundle))
            .is_some_and(|p| rcrun::cgroups::systemd::is_unit_path(&p));
        let runc_options = req
            .options
            .as_ref()
            .filter(|a| !a.value.is_empty() && a.type_url.ends_with("containerd.runc.v1.Options"));
        if let Some(any) = runc_options {
            let o = Options::parse_from_bytes(&any.value)
                .map_err(|e| status(Code::INVALID_ARGUMENT, format!("runtime options: {e}")))?;
            systemd |= o.systemd_cgroup;
            opts.no_pivot = o.no_pivot_root;
            opts.no_new_keyring = o.no_new_keyring;
        }
        let (wiring, pending) = Io::open(paths).map_err(io_err("stdio"))?;
        match wiring {
            Wiring::Fds(s) => opts.stdio = s,
            Wiring::Console(s) => opts.console = Some(s.into()),
        }
        let c = self
            .rt
            .clone()
            .with_systemd_cgroup(systemd)
            .create(&req.id, Path::new(&req.bundle), opts)
            .map_err(lib_err)?;
        match pending.attach() {
            Ok(io) => Ok((c.pid(), io)),
            Err(e) => {
                let _ = self.rt.delete(&req.id, true);
                Err(lib_err(e))
            }
        }
    }

    fn start_exec(&self, id: &str, eid: &str) -> TtrpcResult<u32> {
        let (spec, paths) = {
            let mut g = self.tasks.lock();
            let p = g
                .ctrs
                .get_mut(id)
                .and_then(|c| c.execs.get_mut(eid))
                .ok_or_else(|| not_found(id, eid))?;
            let spec = p.spec.take().ok_or_else(|| {
                status(
                    Code::FAILED_PRECONDITION,
                    format!("process {eid}: already started"),
                )
            })?;
            (spec, p.paths.clone())
        };
        let (wiring, pending) = Io::open(&paths).map_err(io_err("stdio"))?;
        let mut opts = rcrun::ExecOptions {
            id: Some(eid.to_string()),
            ..rcrun::ExecOptions::new(spec)
        };
        match wiring {
            Wiring::Fds(s) => opts.stdio = s,
            Wiring::Console(s) => opts.console = Some(s.into()),
        }
        let since = Instant::now();
        let c = self.rt.exec(id, opts).map_err(lib_err)?;
        let io = pending.attach().map_err(lib_err)?;
        self.tasks.started(id, eid, c.pid(), since, Some(io));
        Ok(c.pid() as u32)
    }

    /// Pause or Resume, and its event.
    fn freeze(&self, id: String, frozen: bool) -> TtrpcResult<Empty> {
        if frozen {
            self.rt.pause(&id).map_err(lib_err)?;
            let ev = TaskPaused {
                container_id: id,
                ..Default::default()
            };
            self.tasks.events.send(TASK_PAUSED_EVENT_TOPIC, ev);
        } else {
            self.rt.resume(&id).map_err(lib_err)?;
            let ev = TaskResumed {
                container_id: id,
                ..Default::default()
            };
            self.tasks.events.send(TASK_RESUMED_EVENT_TOPIC, ev);
        }
        Ok(Empty::new())
    }

    /// `f` of the process `eid` of `id` (the init if empty).
    fn with_proc<T>(&self, id: &str, eid: &str, f: impl FnOnce(&Proc) -> T) -> TtrpcResult<T> {
        let g = self.tasks.lock();
        let p = g
            .ctrs
            .get(id)
            .and_then(|c| c.proc(eid))
            .ok_or_else(|| not_found(id, eid))?;
        Ok(f(p))
    }

    fn exit_of(&self, id: &str, eid: &str) -> TtrpcResult<(u32, Option<Exit>)> {
        self.with_proc(id, eid, |p| (p.pid as u32, p.exit))
    }
}

fn exit_fields(
    e: Option<Exit>,
) -> (
    u32,
    MessageField<containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp>,
) {
    match e {
        Some(e) => (e.code, MessageField::some(timestamp(e.at))),
        None => (0, MessageField::none()),
    }
}

impl containerd_shim::Task for TaskService {
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "restoring a checkpoint is not supported by rcrun",
            ));
        }
        if self.tasks.lock().ctrs.contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {}: already exists", req.id),
            ));
        }
        let bundle = Path::new(&req.bundle);
        crate::rootfs::mount(bundle, &req.rootfs).map_err(|e| status(Code::UNKNOWN, e))?;
        let since = Instant::now();
        let paths = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let (pid, io) = match self.create_init(&req, &paths) {
            Ok(r) => r,
            Err(e) => {
                crate::rootfs::unmount(bundle);
                return Err(e);
            }
        };
        let init = Proc {
            pid,
            exit: self.tasks.claim(pid, since),
            io,
            paths,
            ..Default::default()
        };
        let mut g = self.tasks.lock();
        g.ctrs.insert(
            req.id.clone(),
            Ctr {
                bundle: req.bundle.clone(),
                init,
                execs: Default::default(),
            },
        );
        self.tasks.events.send(
            TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid: pid as u32,
                ..Default::default()
            },
        );
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let pid = if req.exec_id.is_empty() {
            let (pid, _) = self.exit_of(&req.id, "")?;
            self.tasks.hold(&req.id, "");
            let r = self.rt.start(&req.id);
            // Released (and a held exit published) either way.
            self.tasks.started(
                &req.id,
                "",
                pid as i32,
                Instant::now() - Duration::from_secs(3600),
                None,
            );
            r.map_err(lib_err)?;
            pid
        } else {
            self.start_exec(&req.id, &req.exec_id)?
        };
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (id, eid) = (req.id.as_str(), req.exec_id.as_str());
        if !eid.is_empty() {
            let mut g = self.tasks.lock();
            let c = g.ctrs.get_mut(id).ok_or_else(|| not_found(id, ""))?;
            let p = c.execs.get(eid).ok_or_else(|| not_found(id, eid))?;
            if p.pid != 0 && p.exit.is_none() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("process {eid}: still running"),
                ));
            }
            let p = c.execs.remove(eid).expect("found");
            let (exit_status, exited_at) = exit_fields(p.exit);
            return Ok(api::DeleteResponse {
                pid: p.pid as u32,
                exit_status,
                exited_at,
                ..Default::default()
            });
        }
        let (pid, exit) = self.exit_of(id, "")?;
        if exit.is_none() {
            match self.rt.state(id).map_err(lib_err)?.status {
                rcrun::Status::Created | rcrun::Status::Creating | rcrun::Status::Stopped => {}
                s => {
                    return Err(status(
                        Code::FAILED_PRECONDITION,
                        format!("container {id} is {s}: cannot delete it"),
                    ));
                }
            }
        }
        self.rt.delete(id, true).map_err(lib_err)?;
        // A created container's init dies with the delete.
        let exit = exit.or_else(|| self.tasks.wait(id, "", Some(Duration::from_secs(2))));
        let c = self.tasks.lock().ctrs.remove(id);
        if let Some(c) = &c {
            crate::rootfs::unmount(Path::new(&c.bundle));
        }
        let (exit_status, exited_at) = exit_fields(exit);
        self.tasks.events.send(
            TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: id.into(),
                pid,
                exit_status,
                exited_at: exited_at.clone(),
                id: id.into(),
                ..Default::default()
            },
        );
        Ok(api::DeleteResponse {
            pid,
            exit_status,
            exited_at,
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        self.tasks.events.touch();
        let pids = self.rt.pids(&req.id).map_err(lib_err)?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim::protos::api::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        self.freeze(req.id, true)
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        self.freeze(req.id, false)
    }

    fn checkpoint(&self, _: &TtrpcContext, _: api::CheckpointTaskRequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        Err(status(
            Code::UNIMPLEMENTED,
            "checkpoint is not implemented by rcrun (no CRIU support)",
        ))
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        let (id, eid) = (req.id.as_str(), req.exec_id.as_str());
        let (_, exit) = self.exit_of(id, eid)?;
        // runc's shim: a finished process cannot be signalled ("not
        // found"), except `kill --all`, which reaches what it left.
        if exit.is_some() && !req.all {
            return Err(status(
                Code::NOT_FOUND,
                format!(
                    "process {}: already finished",
                    if eid.is_empty() { id } else { eid }
                ),
            ));
        }
        let sig = req.signal as i32;
        if eid.is_empty() {
            self.rt.kill(id, sig, req.all).map_err(lib_err)?;
        } else {
            self.rt.kill_exec(id, eid, sig).map_err(lib_err)?;
        }
        Ok(Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let spec = Self::exec_spec(&req)?;
        let (id, eid) = (req.id.clone(), req.exec_id.clone());
        rcrun::validate_id(&eid).map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        let mut g = self.tasks.lock();
        let c = g.ctrs.get_mut(&id).ok_or_else(|| not_found(&id, ""))?;
        if c.init.exit.is_some() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {id}: stopped"),
            ));
        }
        if c.execs.contains_key(&eid) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("process {eid}: already exists"),
            ));
        }
        c.execs.insert(
            eid.clone(),
            Proc {
                spec: Some(spec),
                paths: Paths {
                    stdin: req.stdin,
                    stdout: req.stdout,
                    stderr: req.stderr,
                    terminal: req.terminal,
                },
                ..Default::default()
            },
        );
        self.tasks.events.send(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: id,
                exec_id: eid,
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        self.with_proc(&req.id, &req.exec_id, |p| {
            p.io.resize(req.width, req.height)
        })?
        .map_err(lib_err)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        self.with_proc(&req.id, &req.exec_id, |p| p.io.close_stdin())?;
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        let any = req
            .resources
            .as_ref()
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "update: no resources"))?;
        let res: LinuxResources = serde_json::from_slice(&any.value).map_err(|e| {
            status(
                Code::INVALID_ARGUMENT,
                format!("update: the resources: {e}"),
            )
        })?;
        self.rt.update(&req.id, &res).map_err(lib_err)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        self.tasks.events.touch();
        let e = self
            .tasks
            .wait(&req.id, &req.exec_id, None)
            .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
        let (exit_status, exited_at) = exit_fields(Some(e));
        Ok(api::WaitResponse {
            exit_status,
            exited_at,
            ..Default::default()
        })
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        self.tasks.events.touch();
        let stats = self.rt.stats(&req.id).map_err(lib_err)?;
        let v2 = self.rt.cgroup(&req.id).map_err(lib_err)?.v2;
        let any = crate::metrics::to_any(&stats, v2).map_err(|e| status(Code::UNKNOWN, e))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        self.tasks.events.touch();
        let (id, eid) = (req.id.as_str(), req.exec_id.as_str());
        let (bundle, pid, exit, paths) = {
            let g = self.tasks.lock();
            let c = g.ctrs.get(id).ok_or_else(|| not_found(id, ""))?;
            let p = c.proc(eid).ok_or_else(|| not_found(id, eid))?;
            (c.bundle.clone(), p.pid, p.exit, p.paths.clone())
        };
        let st = if exit.is_some() {
            Status::STOPPED
        } else if !eid.is_empty() {
            if pid == 0 {
                Status::CREATED
            } else {
                Status::RUNNING
            }
        } else {
            match self.rt.state(id).map_err(lib_err)?.status {
                rcrun::Status::Creating | rcrun::Status::Created => Status::CREATED,
                rcrun::Status::Running => Status::RUNNING,
                rcrun::Status::Paused => Status::PAUSED,
                rcrun::Status::Stopped => Status::STOPPED,
            }
        };
        let (exit_status, exited_at) = exit_fields(exit);
        Ok(api::StateResponse {
            id: if eid.is_empty() {
                id.into()
            } else {
                eid.into()
            },
            bundle,
            pid: pid as u32,
            status: st.into(),
            stdin: paths.stdin,
            stdout: paths.stdout,
            stderr: paths.stderr,
            terminal: paths.terminal,
            exit_status,
            exited_at,
            exec_id: eid.into(),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        self.tasks.events.touch();
        let task_pid = self
            .tasks
            .lock()
            .ctrs
            .get(&req.id)
            .map_or(0, |c| c.init.pid as u32);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: api::ShutdownRequest) -> TtrpcResult<Empty> {
        self.tasks.events.touch();
        // The pod's shim stays while it holds a container.
        if self.tasks.lock().ctrs.is_empty() {
            self.exit.signal();
        }
        Ok(Empty::new())
    }
}

/// The bundle's `linux.cgroupsPath`, if it has one.
fn cgroups_path(bundle: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Spec {
        linux: Option<Linux>,
    }
    #[derive(serde::Deserialize)]
    struct Linux {
        #[serde(rename = "cgroupsPath")]
        cgroups_path: Option<String>,
    }
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice::<Spec>(&text)
        .ok()?
        .linux?
        .cgroups_path
}

//! containerd-shim-rcrun-v2 driven as containerd drives it (`--features
//! shim`): the `start` and `delete` actions, the task service over ttrpc,
//! and the events the shim publishes, received by the test.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use common::shim::{ctx, is_mounted, state_root, Containerd};
use containerd_shim::api::{self, Status};
use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::events::task::{TaskDelete, TaskExit};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim_sync::TaskClient;
use containerd_shim::protos::ttrpc;
use serde_json::json;

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// A fifo and containerd's reading end of it (opened first, as
/// containerd's cio does).
fn out_fifo(dir: &Path, name: &str) -> (String, File) {
    let p = dir.join(name);
    mkfifo(&p);
    let r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&p)
        .unwrap();
    // Blocking again: the test reads to end-of-file.
    nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .unwrap();
    (p.display().to_string(), r)
}

fn read_all(mut f: File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

fn create(c: &TaskClient, id: &str, bundle: &Path, stdout: &str, stdin: &str) -> u32 {
    let req = common::shim::create_request(id, bundle, stdout, stdin, None);
    c.create(ctx(), &req).unwrap().pid
}

fn start(c: &TaskClient, id: &str, eid: &str) -> u32 {
    let req = api::StartRequest {
        id: id.into(),
        exec_id: eid.into(),
        ..Default::default()
    };
    c.start(ctx(), &req).unwrap().pid
}

fn wait(c: &TaskClient, id: &str, eid: &str) -> u32 {
    let req = api::WaitRequest {
        id: id.into(),
        exec_id: eid.into(),
        ..Default::default()
    };
    let r = c.wait(ctx(), &req).unwrap();
    assert!(r.exited_at.seconds > 0, "no exit time");
    r.exit_status
}

fn state(c: &TaskClient, id: &str, eid: &str) -> api::StateResponse {
    let req = api::StateRequest {
        id: id.into(),
        exec_id: eid.into(),
        ..Default::default()
    };
    c.state(ctx(), &req).unwrap()
}

fn delete(c: &TaskClient, id: &str, eid: &str) -> api::DeleteResponse {
    let req = api::DeleteRequest {
        id: id.into(),
        exec_id: eid.into(),
        ..Default::default()
    };
    c.delete(ctx(), &req).unwrap()
}

fn kill(c: &TaskClient, id: &str, eid: &str, signal: i32, all: bool) {
    let req = api::KillRequest {
        id: id.into(),
        exec_id: eid.into(),
        signal: signal as u32,
        all,
        ..Default::default()
    };
    c.kill(ctx(), &req).unwrap();
}

fn exec(
    c: &TaskClient,
    id: &str,
    eid: &str,
    script: &str,
    terminal: bool,
    stdin: &str,
    stdout: &str,
) {
    let mut p = common::base_config(Path::new("rootfs"), "x", script)["process"].clone();
    p["terminal"] = json!(terminal);
    let req = api::ExecProcessRequest {
        id: id.into(),
        exec_id: eid.into(),
        terminal,
        stdin: stdin.into(),
        stdout: stdout.into(),
        spec: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: serde_json::to_vec(&p).unwrap(),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.exec(ctx(), &req).unwrap();
}

fn shutdown(c: &TaskClient) {
    let _ = c.shutdown(ctx(), &api::ShutdownRequest::default());
}

fn gone(pid: i32) -> bool {
    // A zombie of ours does not count; the shim is not our child.
    for _ in 0..600 {
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn exit_of(events: &[(String, Any)], id: &str) -> Option<TaskExit> {
    events
        .iter()
        .filter(|(t, _)| t == "/tasks/exit")
        .map(|(_, a)| TaskExit::parse_from_bytes(&a.value).unwrap())
        .find(|e| e.id == id)
}

#[test]
fn lifecycle_exec_exits_events_and_cleanup() {
    let cd = Containerd::new();
    let (id, b) = cd.bundle(
        "trap 'exit 42' TERM; echo started; while :; do sleep 0.05; done",
        |_| {},
    );
    let address = cd.start_shim(&b, &id);
    let c = cd.connect(&address);
    let shim = cd.shim_pid(&c);
    let (out, reader) = out_fifo(cd.dir.path(), "init-out");
    let pid = create(&c, &id, &b, &out, "");
    assert!(
        is_mounted(&b.join("rootfs")),
        "the rootfs mount was not made"
    );
    assert_eq!(state(&c, &id, "").status.enum_value(), Ok(Status::CREATED));
    assert_eq!(start(&c, &id, ""), pid);
    assert_eq!(state(&c, &id, "").status.enum_value(), Ok(Status::RUNNING));
    let pids = c
        .pids(
            ctx(),
            &api::PidsRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(pids.processes.iter().any(|p| p.pid == pid), "{pids:?}");

    // An exec that exits at once: its exit still follows its start.
    let (xout, xreader) = out_fifo(cd.dir.path(), "exec-out");
    exec(&c, &id, "x1", "echo from-exec; exit 3", false, "", &xout);
    assert_eq!(
        state(&c, &id, "x1").status.enum_value(),
        Ok(Status::CREATED)
    );
    let xpid = start(&c, &id, "x1");
    assert_eq!(wait(&c, &id, "x1"), 3);
    assert_eq!(read_all(xreader), "from-exec\n");
    assert_eq!(
        state(&c, &id, "x1").status.enum_value(),
        Ok(Status::STOPPED)
    );
    assert_eq!(delete(&c, &id, "x1").exit_status, 3);

    // The container sees no fd of the shim's (its ttrpc sockets, the log,
    // the fifos of others): an exec lists its own fds.
    let (fout, freader) = out_fifo(cd.dir.path(), "fds-out");
    exec(
        &c,
        &id,
        "fds",
        "ls /proc/self/fd | tr '\\n' ' '",
        false,
        "",
        &fout,
    );
    start(&c, &id, "fds");
    assert_eq!(wait(&c, &id, "fds"), 0);
    assert_eq!(read_all(freader), "0 1 2 3 ");
    delete(&c, &id, "fds");
    // The binary the shim runs from cannot be written through its
    // /proc/PID/exe (sealed: a read-only overlay or a sealed memfd).
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{shim}/exe"))
        .unwrap_err();
    assert!(
        matches!(
            e.raw_os_error(),
            Some(libc::EROFS | libc::EPERM | libc::ETXTBSY)
        ),
        "{e}"
    );
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(
        !exe.starts_with(env!("CARGO_MANIFEST_DIR")),
        "the shim runs unsealed: {exe:?}"
    );

    kill(&c, &id, "", libc::SIGTERM, false);
    assert_eq!(wait(&c, &id, ""), 42);
    assert_eq!(read_all(reader), "started\n");
    // A finished process cannot be signalled (runc's shim: not found).
    let e = c
        .kill(
            ctx(),
            &api::KillRequest {
                id: id.clone(),
                signal: 9,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(e, ttrpc::Error::RpcStatus(ref s) if s.code() == ttrpc::Code::NOT_FOUND),
        "{e:?}"
    );
    let d = delete(&c, &id, "");
    assert_eq!((d.pid, d.exit_status), (pid, 42));
    assert!(
        !is_mounted(&b.join("rootfs")),
        "delete left the rootfs mounted"
    );
    assert!(
        !state_root(&cd.ns).join(&id).exists(),
        "delete left the container's state"
    );

    let ev = cd
        .events
        .until(|e| e.iter().any(|(t, _)| t == "/tasks/delete"));
    let topics: Vec<&str> = ev.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit",
            "/tasks/delete"
        ],
    );
    let x = exit_of(&ev, "x1").unwrap();
    assert_eq!(
        (x.container_id.as_str(), x.pid, x.exit_status),
        (id.as_str(), xpid, 3)
    );
    let i = exit_of(&ev, &id).unwrap();
    assert_eq!((i.pid, i.exit_status), (pid, 42));
    assert!(i.exited_at.seconds > 0);
    let del = TaskDelete::parse_from_bytes(&ev.last().unwrap().1.value).unwrap();
    assert_eq!(del.exit_status, 42);

    // The last container gone, Shutdown ends the shim and its socket.
    shutdown(&c);
    assert!(gone(shim), "the shim did not exit after Shutdown");
    assert!(!Path::new(address.trim_start_matches("unix://")).exists());
}

#[test]
fn stdin_close_io_and_a_terminal_resized() {
    let cd = Containerd::new();
    let (id, b) = cd.bundle("cat; echo cat-done", |_| {});
    let c = cd.connect(&cd.start_shim(&b, &id));
    let inp = cd.dir.path().join("in");
    mkfifo(&inp);
    let (out, reader) = out_fifo(cd.dir.path(), "out");
    // containerd's writer, opened when the shim's reader is (the shim
    // opens it in the background).
    let inp2 = inp.clone();
    let writer =
        std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(inp2).unwrap());
    create(&c, &id, &b, &out, inp.to_str().unwrap());
    let mut w = writer.join().unwrap();
    start(&c, &id, "");
    w.write_all(b"abc\n").unwrap();
    // CloseIO ends the process's input although containerd's writer
    // stays open.
    let req = api::CloseIORequest {
        id: id.clone(),
        stdin: true,
        ..Default::default()
    };
    // Give cat the line first: the copy thread forwards what was written.
    let mut got = String::new();
    let mut r = reader;
    let mut buf = [0u8; 64];
    while !got.contains("abc") {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "no output");
        got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    c.close_io(ctx(), &req).unwrap();
    assert_eq!(wait(&c, &id, ""), 0);
    got.push_str(&read_all(r));
    assert_eq!(got, "abc\ncat-done\n");
    drop(w);

    // A terminal: the size set by ResizePty is what the process sees.
    let (id2, b2) = cd.bundle("sleep 1000", |_| {});
    let c2 = cd.connect(&cd.start_shim(&b2, &id2));
    create(&c2, &id2, &b2, "", "");
    start(&c2, &id2, "");
    let tin = cd.dir.path().join("tin");
    mkfifo(&tin);
    let (tout, treader) = out_fifo(cd.dir.path(), "tout");
    exec(
        &c2,
        &id2,
        "t1",
        "read x; stty size",
        true,
        tin.to_str().unwrap(),
        &tout,
    );
    let tin2 = tin.clone();
    let writer =
        std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(tin2).unwrap());
    start(&c2, &id2, "t1");
    let mut w = writer.join().unwrap();
    let req = api::ResizePtyRequest {
        id: id2.clone(),
        exec_id: "t1".into(),
        width: 101,
        height: 33,
        ..Default::default()
    };
    c2.resize_pty(ctx(), &req).unwrap();
    w.write_all(b"\n").unwrap();
    assert_eq!(wait(&c2, &id2, "t1"), 0);
    let text = read_all(treader);
    assert!(text.contains("33 101"), "{text:?}");
    kill(&c2, &id2, "", libc::SIGKILL, false);
    assert_eq!(wait(&c2, &id2, ""), 137);
}

#[test]
fn pause_update_stats_kill_all_and_checkpoint() {
    let cd = Containerd::new();
    let (id, b) = cd.bundle("sleep 1000 & sleep 1001 & wait", |_| {});
    let c = cd.connect(&cd.start_shim(&b, &id));
    create(&c, &id, &b, "", "");
    start(&c, &id, "");
    // The shell and its two sleeps (they start after Start returns).
    for _ in 0..600 {
        let r = c.pids(
            ctx(),
            &api::PidsRequest {
                id: id.clone(),
                ..Default::default()
            },
        );
        if r.unwrap().processes.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    c.pause(
        ctx(),
        &api::PauseRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(state(&c, &id, "").status.enum_value(), Ok(Status::PAUSED));
    c.resume(
        ctx(),
        &api::ResumeRequest {
            id: id.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(state(&c, &id, "").status.enum_value(), Ok(Status::RUNNING));

    let limit = 64u64 << 20;
    let res = json!({"memory": {"limit": limit}});
    let req = api::UpdateTaskRequest {
        id: id.clone(),
        resources: MessageField::some(Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
            value: serde_json::to_vec(&res).unwrap(),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.update(ctx(), &req).unwrap();
    let st = c
        .stats(
            ctx(),
            &api::StatsRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let any = st.stats.into_option().unwrap();
    if common::cgroup_v2() {
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage_limit, limit);
        assert!(m.memory.usage > 0);
        assert_eq!(m.pids.current, 3);
    } else {
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage.limit, limit);
        assert!(m.memory.usage.usage > 0);
        assert_eq!(m.pids.current, 3);
        assert!(m.cpu.usage.total > 0);
    }

    let e = c
        .checkpoint(
            ctx(),
            &api::CheckpointTaskRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(e, ttrpc::Error::RpcStatus(ref s) if s.code() == ttrpc::Code::UNIMPLEMENTED),
        "{e:?}"
    );

    let pids: Vec<i32> = c
        .pids(
            ctx(),
            &api::PidsRequest {
                id: id.clone(),
                ..Default::default()
            },
        )
        .unwrap()
        .processes
        .iter()
        .map(|p| p.pid as i32)
        .collect();
    assert_eq!(pids.len(), 3);
    kill(&c, &id, "", libc::SIGKILL, true);
    assert_eq!(wait(&c, &id, ""), 137);
    assert!(pids.iter().all(|&p| gone(p)));
    let ev = cd
        .events
        .until(|e| e.iter().any(|(t, _)| t == "/tasks/exit"));
    assert!(
        ev.iter().any(|(t, _)| t == "/tasks/paused")
            && ev.iter().any(|(t, _)| t == "/tasks/resumed")
    );
}

#[test]
fn one_shim_per_pod_and_delete_after_a_dead_shim() {
    let cd = Containerd::new();
    let pod = common::unique("pod");
    let ann =
        |c: &mut serde_json::Value| c["annotations"] = json!({"io.kubernetes.cri.sandbox-id": pod});
    let (id1, b1) = cd.bundle("sleep 1000", ann);
    let (id2, b2) = cd.bundle("sleep 1000", ann);
    let (a1, a2) = (cd.start_shim(&b1, &id1), cd.start_shim(&b2, &id2));
    assert_eq!(a1, a2, "two shims for one pod");
    let c = cd.connect(&a1);
    let shim = cd.shim_pid(&c);
    for (id, b) in [(&id1, &b1), (&id2, &b2)] {
        create(&c, id, b, "", "");
        start(&c, id, "");
    }
    kill(&c, &id1, "", libc::SIGKILL, false);
    wait(&c, &id1, "");
    delete(&c, &id1, "");
    // containerd asks every task's shim to shut down after its delete:
    // the pod's shim stays for the other container.
    shutdown(&c);
    assert_eq!(state(&c, &id2, "").status.enum_value(), Ok(Status::RUNNING));

    // The shim dies (OOM-killed, say); containerd runs `delete` in the
    // bundle: the container is removed, its rootfs unmounted.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(gone(shim));
    let d = cd.delete_shim(&b2, &id2);
    assert_eq!(d.exit_status, 137);
    assert!(!is_mounted(&b2.join("rootfs")));
    assert!(!state_root(&cd.ns).join(&id2).exists());
}

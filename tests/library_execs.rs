//! Exec processes with ids (recorded under their container, signalled
//! and waited for one by one, from any process, cleaned up by delete),
//! and pty resize of the init and of an exec'd process, seen from
//! inside with `stty size`.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use common::library::Guard;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rcrun::{CreateOptions, Error, ExecOptions, Runtime};

fn setup<'a>(
    rt: &'a Runtime,
    dir: &Path,
    name: &str,
    script: &str,
    terminal: bool,
) -> (Guard<'a>, PathBuf) {
    common::library::bundle(rt, dir, name, script, |c| {
        c["process"]["terminal"] = serde_json::json!(terminal)
    })
}

fn process(script: &str, terminal: bool) -> rcrun::oci_spec::runtime::Process {
    let mut cfg = common::base_config(common::rootfs(), "x", script);
    cfg["process"]["terminal"] = serde_json::json!(terminal);
    serde_json::from_value(cfg["process"].clone()).unwrap()
}

fn with_id(script: &str, eid: &str) -> ExecOptions {
    ExecOptions {
        id: Some(eid.into()),
        ..ExecOptions::new(process(script, false))
    }
}

fn two_exec_processes_signalled_separately(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "execs", "sleep 100", false);
    let _init = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    let e1 = rt.exec(&g.id, with_id("sleep 100", "e1")).unwrap();
    let e2 = rt.exec(&g.id, with_id("sleep 100", "e2")).unwrap();
    assert_eq!(rt.exec_ids(&g.id).unwrap(), ["e1", "e2"]);
    let e = rt.exec(&g.id, with_id("true", "e1")).unwrap_err();
    assert!(matches!(e, Error::ExecInUse { .. }), "{e}");
    let e = rt.kill_exec(&g.id, "nope", libc::SIGKILL).unwrap_err();
    assert!(matches!(e, Error::ExecNotFound { .. }), "{e}");

    rt.kill_exec(&g.id, "e1", libc::SIGKILL).unwrap();
    assert_eq!(e1.wait().unwrap().signal(), Some(libc::SIGKILL));
    let s1 = rt.exec_state(&g.id, "e1").unwrap();
    assert!(!s1.running);
    assert_eq!(s1.exit.and_then(|e| e.signal()), Some(libc::SIGKILL));
    let s2 = rt.exec_state(&g.id, "e2").unwrap();
    assert!(s2.running && s2.exit.is_none() && s2.pid == e2.pid());
    assert_eq!(e2.try_wait().unwrap(), None);

    // From another runtime (another process could do the same).
    let other = Runtime::new(rt.root());
    let h2 = other.open_exec(&g.id, "e2").unwrap();
    assert_eq!(h2.pid(), e2.pid());
    other.kill_exec(&g.id, "e2", libc::SIGTERM).unwrap();
    assert_eq!(e2.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert_eq!(h2.wait().unwrap().signal(), Some(libc::SIGTERM));
    // A finished exec id can be used again.
    let again = rt.exec(&g.id, with_id("exit 5", "e1")).unwrap();
    assert_eq!(again.wait().unwrap().code(), Some(5));
    assert_eq!(
        rt.exec_state(&g.id, "e1").unwrap().exit.unwrap().code(),
        Some(5)
    );

    // Ids are checked as container ids everywhere: a tenant's id cannot
    // name a file outside the container's records (a forged record there
    // would have kill_exec signal a host process).
    let forged = dir.join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    std::fs::write(
        forged.join("process.json"),
        format!(
            r#"{{"pid":{},"start_time":0,"terminal":false}}"#,
            std::process::id()
        ),
    )
    .unwrap();
    let up = format!("../../../{}", forged.display());
    for e in [
        rt.exec(&g.id, with_id("true", &up)).map(drop).unwrap_err(),
        rt.exec_state(&g.id, &up).map(drop).unwrap_err(),
        rt.kill_exec(&g.id, &up, 0).unwrap_err(),
        rt.open_exec(&g.id, &up).map(drop).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Store(_)), "{e}");
    }
    // An id that ends like a file of another's does not collide with it.
    let a = rt.exec(&g.id, with_id("exit 3", "x")).unwrap();
    let b = rt.exec(&g.id, with_id("exit 4", "x.exit")).unwrap();
    assert_eq!(a.wait().unwrap().code(), Some(3));
    assert_eq!(b.wait().unwrap().code(), Some(4));
    assert_eq!(
        rt.exec_state(&g.id, "x").unwrap().exit.unwrap().code(),
        Some(3)
    );
    assert_eq!(
        rt.exec_state(&g.id, "x.exit").unwrap().exit.unwrap().code(),
        Some(4)
    );
    assert_eq!(rt.exec_ids(&g.id).unwrap(), ["e1", "e2", "x", "x.exit"]);

    rt.delete(&g.id, true).unwrap();
    assert!(rt.exec_ids(&g.id).is_err(), "delete leaves exec records");
}

/// Reads from `master` until `want` shows up (or 30 s pass).
fn read_until(master: &mut std::fs::File, want: &str) -> String {
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !text.contains(want) && std::time::Instant::now() < deadline {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 512];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text
}

fn console_pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (a.into(), b.into())
}

fn resize_seen_from_inside(rt: &Runtime, dir: &Path) {
    // The script waits for a line, so the size is set before it looks.
    let script = "read x; stty size; sleep 100";
    let (g, b) = setup(rt, dir, "resize", script, true);
    let (ours, theirs) = console_pair();
    let opts = CreateOptions {
        console: Some(theirs),
        ..CreateOptions::default()
    };
    let _init = rt.run(&g.id, &b, opts).unwrap();
    let mut master = std::fs::File::from(rcrun::console::recv_pty(&ours).unwrap());
    rcrun::console::resize(&master, 33, 101).unwrap();
    master.write_all(b"go\n").unwrap();
    let out = read_until(&mut master, "33 101");
    assert!(out.contains("33 101"), "{out:?}");

    let (ours, theirs) = console_pair();
    let opts = ExecOptions {
        console: Some(theirs),
        id: Some("tty".into()),
        ..ExecOptions::new(process("read x; stty size", true))
    };
    let p = rt.exec(&g.id, opts).unwrap();
    let mut emaster = std::fs::File::from(rcrun::console::recv_pty(&ours).unwrap());
    rcrun::console::resize(&emaster, 20, 70).unwrap();
    emaster.write_all(b"go\n").unwrap();
    let out = read_until(&mut emaster, "20 70");
    assert!(out.contains("20 70"), "{out:?}");
    assert_eq!(p.wait().unwrap().code(), Some(0));
    // The init's terminal kept its own size.
    rcrun::console::resize(&master, 33, 101).unwrap();
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.execs")
        .tempdir()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    use common::library::Test;
    let tests: [(&str, Test); 2] = [
        (
            "two_exec_processes_signalled_separately",
            two_exec_processes_signalled_separately,
        ),
        ("resize_seen_from_inside", resize_seen_from_inside),
    ];
    if common::library::run(&tests, &rt, dir.path()) > 0 {
        std::process::exit(1);
    }
}

//! Exit statuses through the library: typed, waited for through a pidfd
//! from any thread, recorded in the container's state so that another
//! `Runtime` (another process) reads them, and unknown, never 0, when
//! nobody observed the exit.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use common::library::Guard;

use std::path::{Path, PathBuf};

use rcrun::{CreateOptions, Runtime, Status};

fn setup<'a>(rt: &'a Runtime, dir: &Path, name: &str, script: &str) -> (Guard<'a>, PathBuf) {
    common::library::bundle(rt, dir, name, script, |_| {})
}

fn code_recorded_and_read_by_another_runtime(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "exit-code", "exit 5");
    let c = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    let st = c.wait().unwrap();
    assert_eq!((st.code(), st.signal()), (Some(5), None));
    assert!(!st.success());
    // Waiting again gives the same status, not an error.
    assert_eq!(c.wait().unwrap(), st);
    assert_eq!(c.try_wait().unwrap(), Some(st));
    let other = Runtime::new(rt.root());
    let state = other.state(&g.id).unwrap();
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.exit, Some(st));
}

fn signal_through_try_wait_and_two_threads(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "exit-signal", "sleep 100");
    let c = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    assert_eq!(c.try_wait().unwrap(), None);
    assert_eq!(rt.state(&g.id).unwrap().exit, None, "running");
    let got = std::thread::scope(|s| {
        let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| c.wait().unwrap())).collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        rt.kill(&g.id, libc::SIGKILL, false).unwrap();
        waiters
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(got[0], got[1]);
    assert_eq!(
        (got[0].signal(), got[0].code()),
        (Some(libc::SIGKILL), None)
    );
    assert_eq!(got[0].shell_code(), 128 + libc::SIGKILL);
    assert_eq!(
        Runtime::new(rt.root()).state(&g.id).unwrap().exit,
        Some(got[0])
    );
}

fn unobserved_exit_reads_as_unknown(rt: &Runtime, dir: &Path) {
    // `rcrun run -d` exits at once; the init's parent is then not a
    // process that records anything. Its exit 0 must not read as known.
    let (g, b) = setup(rt, dir, "exit-unknown", "exit 0");
    let o = std::process::Command::new(common::RCRUN)
        .arg("--root")
        .arg(rt.root())
        .args(["run", "-d", "-b", b.to_str().unwrap(), &g.id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    common::assert_ok(&o);
    let t = std::time::Instant::now();
    while rt.state(&g.id).unwrap().status != Status::Stopped {
        assert!(t.elapsed().as_secs() < 60, "never stopped");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(rt.state(&g.id).unwrap().exit, None);
}

fn open_after_the_creating_process_is_gone(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "exit-open", "sleep 100");
    // The container inherits the command's stdio: not pipes this test
    // would read to their end.
    let st = std::process::Command::new(common::RCRUN)
        .arg("--root")
        .arg(rt.root())
        .args(["run", "-d", "-b", b.to_str().unwrap(), &g.id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let c = Runtime::new(rt.root()).open(&g.id).unwrap();
    assert_eq!(c.id(), g.id);
    assert_eq!(c.pid(), rt.state(&g.id).unwrap().pid);
    assert!(c.pidfd().is_some());
    assert_eq!(c.try_wait().unwrap(), None, "running");
    rt.kill(&g.id, libc::SIGKILL, false).unwrap();
    // Not our child and nobody recorded it: unknown, never 0.
    let e = c.wait().unwrap_err();
    assert!(matches!(e, rcrun::Error::ExitUnknown { .. }), "{e}");
    assert_eq!(rt.state(&g.id).unwrap().status, Status::Stopped);
}

fn open_reads_what_the_parent_recorded(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "exit-open-rec", "exit 6");
    let c = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    let st = c.wait().unwrap();
    let h = Runtime::new(rt.root()).open(&g.id).unwrap();
    assert_eq!(h.wait().unwrap(), st);
    assert_eq!(h.try_wait().unwrap(), Some(st));
    assert_eq!(st.code(), Some(6));
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.exits")
        .tempdir()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    use common::library::Test;
    let tests: [(&str, Test); 5] = [
        (
            "code_recorded_and_read_by_another_runtime",
            code_recorded_and_read_by_another_runtime,
        ),
        (
            "signal_through_try_wait_and_two_threads",
            signal_through_try_wait_and_two_threads,
        ),
        (
            "unobserved_exit_reads_as_unknown",
            unobserved_exit_reads_as_unknown,
        ),
        (
            "open_after_the_creating_process_is_gone",
            open_after_the_creating_process_is_gone,
        ),
        (
            "open_reads_what_the_parent_recorded",
            open_reads_what_the_parent_recorded,
        ),
    ];
    if common::library::run(&tests, &rt, dir.path()) > 0 {
        std::process::exit(1);
    }
}

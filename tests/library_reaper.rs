//! A caller that reaps every child itself (a subreaper shim's
//! `waitpid(-1)` loop, as containerd-shim's reaper) and hands the
//! statuses to the library through `rcrun::Reaper`: create with hooks,
//! exit statuses, exec, a failed exec, a failing hook, a hook's timeout
//! and delete all work and report the right statuses, never ECHILD.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use common::library::bundle as setup;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rcrun::{CreateOptions, ExecOptions, Reaper, Runtime};
use serde_json::json;

/// A host hook: `sh -c script`.
fn hook(script: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

fn lifecycle_with_hooks(rt: &Runtime, dir: &Path) {
    for i in 0..5 {
        one_lifecycle_with_hooks(rt, dir, i);
    }
}

fn one_lifecycle_with_hooks(rt: &Runtime, dir: &Path, i: usize) {
    let marks = dir.join(format!("marks{i}"));
    let m = marks.display();
    let (g, b) = setup(rt, dir, "reap-hooks", "exit 3", |c| {
        c["hooks"] = json!({
            "prestart": [hook(&format!("echo prestart >> {m}"))],
            "createRuntime": [hook(&format!("echo createRuntime >> {m}"))],
            "poststart": [hook(&format!("echo poststart >> {m}"))],
            "poststop": [hook(&format!("echo poststop >> {m}"))],
        });
    });
    let c = rt.create(&g.id, &b, CreateOptions::default()).unwrap();
    rt.start(&g.id).unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(3));
    assert_eq!(
        rt.state(&g.id).unwrap().exit.and_then(|e| e.code()),
        Some(3)
    );
    rt.delete(&g.id, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        "prestart\ncreateRuntime\npoststart\npoststop\n"
    );
}

fn failing_and_timed_out_hooks_report_their_status(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "reap-hookfail", "true", |c| {
        c["hooks"] = json!({"createRuntime": [hook("exit 7")]});
    });
    let e = rt
        .create(&g.id, &b, CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("exit status 7"), "{e}");
    let (g, b) = setup(rt, dir, "reap-hooktimeout", "true", |c| {
        let mut h = hook("sleep 100");
        h["timeout"] = json!(1);
        c["hooks"] = json!({"prestart": [h]});
    });
    let e = rt
        .create(&g.id, &b, CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("timed out") || e.contains("timeout"), "{e}");
}

/// An init that fails during its set-up after the intermediate process
/// (made when a namespace is joined by path) handed over its pid and was
/// reaped: create returns the error. It used to wait forever, through the
/// caller's reaper, for statuses it had taken already or would never see
/// (found by containerd's CRI through the shim: a pod joins its netns).
fn a_failed_init_returns(rt: &Runtime, dir: &Path) {
    let (a, ab) = setup(rt, dir, "reap-netns", "sleep 100", |_| {});
    let holder = rt.run(&a.id, &ab, CreateOptions::default()).unwrap();
    let netns = format!("/proc/{}/ns/net", holder.pid());
    let (g, b) = setup(rt, dir, "reap-initfail", "true", |c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(netns);
            }
        }
        c["linux"]["sysctl"] = json!({"net.ipv4.no_such_key": "1"});
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = rt.create(&g.id, &b, CreateOptions::default());
            let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
        });
        // A hang, not a timing: create failed in milliseconds here.
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| {
                // The scope would wait for the hung thread: end here.
                println!(
                    "test a_failed_init_returns ... FAILED: create hung after its init failed"
                );
                std::process::exit(1)
            });
        let e = r.unwrap_err();
        assert!(e.contains("no_such_key"), "{e}");
    });
    rt.kill(&a.id, libc::SIGKILL, false).unwrap();
    holder.wait().unwrap();
}

fn exec_and_a_failed_exec(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "reap-exec", "sleep 100", |_| {});
    let c = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    let base: rcrun::oci_spec::runtime::Process = serde_json::from_value(
        common::base_config(common::rootfs(), "x", "exit 4")["process"].clone(),
    )
    .unwrap();
    let opts = ExecOptions::new;
    for _ in 0..20 {
        let p = rt.exec(&g.id, opts(base.clone())).unwrap();
        assert_eq!(p.wait().unwrap().code(), Some(4));
    }
    let mut missing = base.clone();
    missing.set_args(Some(vec!["/no/such/program".into()]));
    let e = rt.exec(&g.id, opts(missing)).unwrap_err().to_string();
    assert!(e.contains("/no/such/program"), "{e}");
    assert!(!e.contains("No child processes"), "{e}");
    rt.kill(&g.id, libc::SIGKILL, false).unwrap();
    let st = c.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
    rt.delete(&g.id, false).unwrap();
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.reaper")
        .tempdir()
        .unwrap();
    // The test's own commands (building the rootfs) before the reaper,
    // which would take their statuses from std::process.
    common::rootfs();
    // The caller's reaper: every child of this process, as soon as it
    // exits, whoever made it.
    let reaper = Reaper::new();
    let stop = Arc::new(AtomicBool::new(false));
    let reaped = Arc::new(AtomicUsize::new(0));
    let thread = {
        let (reaper, stop, reaped) = (reaper.clone(), stop.clone(), reaped.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut st = 0;
                // SAFETY: waitpid with a valid out-pointer. Blocking: it
                // races the library's own waits for every child.
                let pid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
                if pid > 0 {
                    reaper.record(pid, st);
                    reaped.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        })
    };
    let rt = Runtime::new(dir.path().join("state")).with_reaper(reaper);
    use common::library::Test;
    let tests: [(&str, Test); 4] = [
        ("lifecycle_with_hooks", lifecycle_with_hooks),
        (
            "failing_and_timed_out_hooks_report_their_status",
            failing_and_timed_out_hooks_report_their_status,
        ),
        ("exec_and_a_failed_exec", exec_and_a_failed_exec),
        ("a_failed_init_returns", a_failed_init_returns),
    ];
    let mut failed = 0;
    for (name, t) in tests {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t(&rt, dir.path())));
        println!(
            "test {name} ... {}",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        failed += usize::from(r.is_err());
    }
    stop.store(true, Ordering::Relaxed);
    // Wake the reaper with one last child of ours.
    let _ = std::process::Command::new("true").spawn();
    thread.join().unwrap();
    // The reaper did take the library's children (else this proves nothing).
    let n = reaped.load(Ordering::Relaxed);
    println!("the caller's reaper reaped {n} processes");
    if n < 3 {
        println!("test the_callers_reaper_took_the_children ... FAILED");
        failed += 1;
    }
    println!("{} passed, {failed} failed", tests.len() + 1 - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

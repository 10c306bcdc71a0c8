//! The library from a multithreaded caller (a node agent): containers are
//! created from several threads at once while other threads hammer the
//! allocator and locks. The init process runs only async-signal-safe code
//! after clone, so nothing here can deadlock on a lock held by a thread
//! that does not exist in the child.
//!
//! harness = false: sealing re-executes this binary (through a read-only
//! overlay, or from a memfd), which
//! must happen before any thread starts.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcrun::{CreateOptions, Runtime};

fn bundle(dir: &std::path::Path, cgroup: &str, script: &str) -> std::path::PathBuf {
    let b = dir.join(cgroup);
    std::fs::create_dir_all(&b).unwrap();
    let cfg = common::base_config(common::rootfs(), cgroup, script);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    b
}

/// create → start → wait → delete through the library; returns the exit code.
fn one(rt: &Runtime, dir: &std::path::Path, n: usize) -> i32 {
    let id = format!("lib-{}-{n}", std::process::id());
    let b = bundle(
        dir,
        &format!("rcrun-test-{id}"),
        &format!("exit {}", n % 50),
    );
    let c = rt
        .create(&id, &b, CreateOptions::default())
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(rt.state(&id).unwrap().status, rcrun::Status::Created);
    rt.start(&id).unwrap();
    let code = c.wait().unwrap();
    let st = rt.state(&id).unwrap();
    assert_eq!(st.status, rcrun::Status::Stopped);
    // The exit, recorded by the wait, is in the state.
    assert_eq!(st.exit, Some(code));
    rt.delete(&id, false).unwrap();
    code.code().unwrap()
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    assert!(rcrun::seal::is_sealed());
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.lib")
        .tempdir()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));

    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(Vec::<u8>::new()));
    let churn: Vec<_> = (0..4)
        .map(|_| {
            let (stop, shared) = (stop.clone(), shared.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let v: Vec<Vec<u8>> = (1..64).map(|i| vec![i as u8; i * 97]).collect();
                    let mut g = shared.lock().unwrap();
                    g.extend_from_slice(&v[7]);
                    g.truncate(1024);
                }
            })
        })
        .collect();

    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (rt, dir, done, failed) = (&rt, dir.path(), &done, &failed);
            s.spawn(move || {
                for i in 0..10 {
                    let n = t * 10 + i;
                    let r =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(rt, dir, n)));
                    match r {
                        Ok(code) if code == (n % 50) as i32 => done.fetch_add(1, Ordering::Relaxed),
                        Ok(code) => {
                            eprintln!("container {n}: exit {code}, want {}", n % 50);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
    });
    stop.store(true, Ordering::Relaxed);
    for c in churn {
        c.join().unwrap();
    }
    let (ok, bad) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let cg_root = if common::cgroup_v2() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/pids"
    };
    let leftovers: Vec<_> = std::fs::read_dir(cg_root)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("rcrun-test-lib-{}-", std::process::id()))
        })
        .collect();
    println!("{ok} passed, {bad} failed");
    if bad > 0 || ok != 40 || !leftovers.is_empty() || !rt.list().unwrap().is_empty() {
        eprintln!("leftover cgroups: {leftovers:?}");
        std::process::exit(1);
    }
}

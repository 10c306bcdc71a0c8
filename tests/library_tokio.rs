//! The library from a tokio program (cargo feature `tokio`), in the
//! documented pattern: seal in a plain `main` before any thread, then
//! build the tokio runtime; the blocking calls (create, run, start,
//! delete) go to `spawn_blocking`, and exits arrive through
//! `AsyncEvents` without blocking a worker.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use rcrun::events::{AsyncEvents, Event, Events};
use rcrun::{CreateOptions, Runtime};

fn main() {
    // 1. Plain main: seal first, while this is the only thread.
    rcrun::seal::ensure_sealed().expect("seal");
    common::rootfs();
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.tokio")
        .tempdir()
        .unwrap();
    // 2. Then the tokio runtime (its worker threads start here).
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    let ids: Vec<(String, String)> = (0..5)
        .map(|i| {
            let id = common::unique(&format!("tokio{i}"));
            (id.clone(), format!("rcrun-test-{id}"))
        })
        .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio.block_on(async {
            let mut events = AsyncEvents::new(Events::new(&rt).unwrap()).unwrap();
            // A timer task keeps running while the event source waits: no
            // worker is blocked.
            let ticks = tokio::spawn(async {
                let mut n = 0u32;
                for _ in 0..5 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    n += 1;
                }
                n
            });
            for (i, (id, cgroup)) in ids.iter().enumerate() {
                let b = dir.path().join(id);
                std::fs::create_dir_all(&b).unwrap();
                let cfg = common::base_config(
                    common::rootfs(),
                    cgroup,
                    &format!("sleep 0.{}; exit {i}", i + 2),
                );
                std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
                let (rt2, id2) = (rt.clone(), id.clone());
                // run blocks for the container's set-up (milliseconds).
                let c = tokio::task::spawn_blocking(move || {
                    rt2.run(&id2, &b, CreateOptions::default())
                })
                .await
                .unwrap()
                .unwrap();
                events.get_mut().watch(c).unwrap();
            }
            let mut codes = Vec::new();
            while let Some(e) = events.next().await {
                if let Event::Exit { id, status, .. } = e.unwrap() {
                    let i = ids.iter().position(|(x, _)| *x == id).unwrap();
                    codes.push((i, status.unwrap().code().unwrap()));
                }
            }
            codes.sort();
            assert_eq!(codes, (0..5).map(|i| (i, i as i32)).collect::<Vec<_>>());
            assert_eq!(ticks.await.unwrap(), 5);
        })
    }));
    for (id, cgroup) in &ids {
        let _ = rt.delete(id, true);
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(cgroup));
        }
    }
    println!(
        "test exits_through_async_events ... {}",
        if result.is_ok() { "ok" } else { "FAILED" }
    );
    if result.is_err() {
        std::process::exit(1);
    }
    println!("1 passed, 0 failed");
}

//! rcrun::events: one epoll-based source for many containers. 200
//! containers watched from one thread, each exit reported once with its
//! status, an OOM kill reported once, statistics on a timer, the source's
//! fd in the caller's own poll loop, and no thread per container.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcrun::events::{Event, Events};
use rcrun::{CreateOptions, Runtime, Stdio};
use serde_json::json;

/// The containers of a test: deleted (with their cgroups) when dropped.
struct Guards<'a> {
    rt: &'a Runtime,
    ids: Vec<(String, String)>,
}

impl Drop for Guards<'_> {
    fn drop(&mut self) {
        for (id, cgroup) in &self.ids {
            let _ = self.rt.delete(id, true);
            for h in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(h.path().join(cgroup));
            }
        }
    }
}

impl<'a> Guards<'a> {
    fn new(rt: &'a Runtime) -> Guards<'a> {
        Guards {
            rt,
            ids: Vec::new(),
        }
    }

    /// A bundle running `script`; the id is recorded for clean-up.
    fn bundle(
        &mut self,
        dir: &Path,
        name: &str,
        script: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (String, PathBuf) {
        let id = common::unique(name);
        let cgroup = format!("rcrun-test-{id}");
        let b = dir.join(&id);
        std::fs::create_dir_all(&b).unwrap();
        let mut cfg = common::base_config(common::rootfs(), &cgroup, script);
        edit(&mut cfg);
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        self.ids.push((id.clone(), cgroup));
        (id, b)
    }
}

/// A container reading its stdin until EOF from the returned fd's
/// closing, then running `then`.
fn gated(
    rt: &Runtime,
    g: &mut Guards,
    dir: &Path,
    name: &str,
    then: &str,
) -> (String, OwnedFd, rcrun::Container) {
    gated_with(rt, g, dir, name, then, |_| {})
}

fn gated_with(
    rt: &Runtime,
    g: &mut Guards,
    dir: &Path,
    name: &str,
    then: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (String, OwnedFd, rcrun::Container) {
    let (id, b) = g.bundle(dir, name, &format!("cat >/dev/null; {then}"), edit);
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let opts = CreateOptions {
        stdio: Stdio {
            stdin: Some(r),
            ..Stdio::default()
        },
        ..CreateOptions::default()
    };
    let c = rt
        .run(&id, &b, opts)
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    (id, w, c)
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn two_hundred_exits_and_an_oom_kill_on_one_thread(rt: &Runtime, dir: &Path) {
    const N: usize = 200;
    let mut g = Guards::new(rt);
    let mut events = Events::new(rt).unwrap();
    let before = threads();
    let mut gates = Vec::new();
    let mut want = HashMap::new();
    for i in 0..N {
        let code = (i % 7) as i32;
        let (id, w, c) = gated(rt, &mut g, dir, "ev", &format!("exit {code}"));
        events.watch(c).unwrap();
        want.insert(id, code);
        gates.push(w);
    }
    // One more, OOM-killed: `tail` is killed, sh goes on and exits 9.
    let (oom_id, w, c) = gated_with(rt, &mut g, dir, "ev-oom", "tail /dev/zero; exit 9", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    });
    events.watch(c).unwrap();
    want.insert(oom_id.clone(), 9);
    gates.push(w);
    assert_eq!(events.len(), N + 1);
    assert_eq!(threads(), before, "a thread per container");
    drop(gates); // every container's stdin reaches EOF
    let mut exits: HashMap<String, Vec<i32>> = HashMap::new();
    let mut ooms: Vec<(String, u64)> = Vec::new();
    for e in &mut events {
        match e.unwrap() {
            Event::Exit { id, status, .. } => {
                let st = status.unwrap_or_else(|| panic!("{id}: our child, status unknown"));
                exits.entry(id).or_default().push(st.code().unwrap());
            }
            Event::Oom { id, kills } => ooms.push((id, kills)),
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(threads(), before, "a thread per container");
    assert!(events.is_empty());
    assert_eq!(exits.len(), N + 1);
    for (id, code) in &want {
        assert_eq!(exits[id], vec![*code], "{id}");
    }
    assert_eq!(ooms, vec![(oom_id, 1)]);
}

fn stats_on_a_timer_through_the_callers_poll(rt: &Runtime, dir: &Path) {
    let mut g = Guards::new(rt);
    let mut events = Events::new(rt).unwrap();
    events.stats_every(Duration::from_millis(100)).unwrap();
    let (id, w, c) = gated(rt, &mut g, dir, "ev-stats", "exit 0");
    events.watch(c).unwrap();
    // The caller's own loop: poll the source's fd, then take what is ready.
    let mut got = None;
    for _ in 0..100 {
        let mut fds = [nix::poll::PollFd::new(
            events.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        assert_eq!(n, 1, "the fd never became readable");
        if let Some(Event::Stats { id: sid, stats }) = events.try_next().unwrap() {
            got = Some((sid, stats));
            break;
        }
    }
    let (sid, stats) = got.expect("no stats event");
    assert_eq!(sid, id);
    let v = serde_json::to_value(&*stats).unwrap();
    assert!(v["pids"]["current"].as_u64().unwrap() >= 1, "{v}");
    let line: serde_json::Value = serde_json::from_str(
        &Event::Stats {
            id: id.clone(),
            stats,
        }
        .to_json(),
    )
    .unwrap();
    assert_eq!(
        (line["type"].as_str(), line["id"].as_str()),
        (Some("stats"), Some(id.as_str()))
    );
    drop(w);
    loop {
        match events.next_timeout(Some(Duration::from_secs(30))).unwrap() {
            Some(Event::Exit {
                id: eid, status, ..
            }) => {
                assert_eq!(eid, id);
                assert_eq!(status.unwrap().code(), Some(0));
                break;
            }
            Some(_) => {}
            None => panic!("no exit"),
        }
    }
}

fn a_container_of_another_process_exits_with_an_unknown_status(rt: &Runtime, dir: &Path) {
    let mut g = Guards::new(rt);
    let (id, b) = g.bundle(dir, "ev-other", "sleep 100", |_| {});
    let st = std::process::Command::new(common::RCRUN)
        .arg("--root")
        .arg(rt.root())
        .args(["run", "-d", "-b", b.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut events = Events::new(rt).unwrap();
    events.watch_id(&id).unwrap();
    assert!(events.try_next().unwrap().is_none());
    rt.kill(&id, libc::SIGKILL, false).unwrap();
    match events.next() {
        Some(Ok(Event::Exit {
            id: eid, status, ..
        })) => {
            assert_eq!(eid, id);
            assert_eq!(
                status, None,
                "not our child and not recorded: unknown, never 0"
            );
        }
        e => panic!("{e:?}"),
    }
    assert!(events.next().is_none());
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    // 200 containers: their pidfds, OOM fds and the test's pipes.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    common::rootfs();
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.events")
        .tempdir()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    use common::library::Test;
    let tests: [(&str, Test); 3] = [
        (
            "two_hundred_exits_and_an_oom_kill_on_one_thread",
            two_hundred_exits_and_an_oom_kill_on_one_thread,
        ),
        (
            "stats_on_a_timer_through_the_callers_poll",
            stats_on_a_timer_through_the_callers_poll,
        ),
        (
            "a_container_of_another_process_exits_with_an_unknown_status",
            a_container_of_another_process_exits_with_an_unknown_status,
        ),
    ];
    if common::library::run(&tests, &rt, dir.path()) > 0 {
        std::process::exit(1);
    }
}

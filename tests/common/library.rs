//! Helpers of the library tests (harness = false): containers made
//! through rcrun's library and removed with their cgroups when dropped,
//! and a small runner that reports each test as cargo's harness does.

use std::path::{Path, PathBuf};

use rcrun::Runtime;
use serde_json::Value;

/// A container of a library test: deleted (with --force) and its cgroup
/// directories removed when dropped, whatever happened.
pub struct Guard<'a> {
    pub rt: &'a Runtime,
    pub id: String,
    pub cgroup: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.rt.delete(&self.id, true);
        remove_cgroup(&self.cgroup);
    }
}

/// Removes the (empty) directory `cgroup` in every hierarchy.
pub fn remove_cgroup(cgroup: &str) {
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join(cgroup));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(cgroup));
}

/// A bundle under `dir` running `sh -c script` (the config as `edit`
/// leaves it), with a unique id and cgroup, and its guard.
pub fn bundle<'a>(
    rt: &'a Runtime,
    dir: &Path,
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut Value),
) -> (Guard<'a>, PathBuf) {
    let id = super::unique(name);
    let cgroup = format!("rcrun-test-{id}");
    let b = dir.join(&id);
    std::fs::create_dir_all(&b).unwrap();
    let mut cfg = super::base_config(super::rootfs(), &cgroup, script);
    edit(&mut cfg);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    (Guard { rt, id, cgroup }, b)
}

/// A library test: the runtime and a scratch directory.
pub type Test = fn(&Runtime, &Path);

/// Runs `tests` one by one, each caught if it panics, and prints their
/// results; returns how many failed.
pub fn run(tests: &[(&str, Test)], rt: &Runtime, dir: &Path) -> usize {
    let mut failed = 0;
    for (name, t) in tests {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t(rt, dir)));
        println!(
            "test {name} ... {}",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        failed += usize::from(r.is_err());
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    failed
}

//! The image store: `rcrun image import/ls/rm/prune`, `run --image` on an
//! overlay rootfs that delete removes (also after the container died),
//! concurrent imports unpacking each layer once, and images made by
//! Debian's umoci and skopeo as second, independent producers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::image::*;
use common::*;
use serde_json::json;

struct Store {
    dir: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Store {
    fn new() -> Store {
        Store {
            dir: tempfile::Builder::new()
                .prefix("rcrun-store.")
                .tempdir()
                .unwrap(),
            ids: Default::default(),
        }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("images")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rcrun"));
        c.arg("--root").arg(self.state());
        c.args(args);
        c.stdin(Stdio::null());
        c
    }
    fn image(&self, args: &[&str]) -> Output {
        let root = self.root();
        let mut a = vec!["image", "--image-root", root.to_str().unwrap()];
        a.extend_from_slice(args);
        self.cmd(&a).output().unwrap()
    }
    /// `run --image IMAGE ID [extra] -- CMD`.
    fn run(&self, image: &str, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
        self.ids.borrow_mut().push(id.to_string());
        let root = self.root();
        let mut a = vec![
            "run",
            "--image",
            image,
            "--image-root",
            root.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.push(id);
        a.push("--");
        a.extend_from_slice(cmd);
        let (out, err) = (
            tempfile::NamedTempFile::new().unwrap(),
            tempfile::NamedTempFile::new().unwrap(),
        );
        // Files, not pipes: a detached container keeps its stdio open.
        let status = self
            .cmd(&a)
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(out.path()).unwrap(),
            stderr: std::fs::read(err.path()).unwrap(),
        }
    }
    fn layer_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root().join("layers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        v.sort();
        v
    }
    fn mounted(&self) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(self.dir.path().to_str().unwrap())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
            for h in [
                "pids", "memory", "cpu", "freezer", "devices", "blkio", "cpuset", "unified", "",
            ] {
                let d = Path::new("/sys/fs/cgroup").join(h).join("rcrun");
                let _ = std::fs::remove_dir(d.join(id));
                let _ = std::fs::remove_dir(d); // the shared parent, when empty
            }
        }
        // Whatever a failed test left mounted.
        for m in std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
        {
            if let Some(p) = m
                .split(' ')
                .nth(4)
                .filter(|p| p.starts_with(self.dir.path().to_str().unwrap()))
            {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

fn layers() -> Vec<Layer> {
    vec![
        base_layer(rootfs())
            .dir("data")
            .file("data/a", b"lower\n")
            .file("data/gone", b"x"),
        Layer::new()
            .file("data/a", b"upper\n")
            .file("data/.wh.gone", b""),
        Layer::new().file("late", b"3\n"),
    ]
}

#[test]
fn run_image_runs_on_an_overlay_that_delete_removes() {
    let s = Store::new();
    let lay = s.dir.path().join("app");
    layout(
        &lay,
        "v1",
        &layers(),
        Comp::Gzip,
        json!({"Cmd": ["false"], "WorkingDir": "/data"}),
    );
    let id = unique("img");
    let src = format!("oci:{}:v1", lay.display());
    // The image's Cmd replaced; its rootfs is the overlay of three layers.
    let o = s.run(&src, &id, &[], &["sh", "-c", "cat a /late; test -e gone || echo gone; grep ' / / ' /proc/self/mountinfo | grep -c overlay; echo w > /data/new"]);
    assert_ok(&o);
    assert_eq!(stdout(&o), "upper\n3\ngone\n1\n");
    assert!(
        !s.root().join("containers").join(&id).exists(),
        "the container's directory stayed"
    );
    assert!(!s.mounted(), "the overlay stayed mounted");
    assert_eq!(s.layer_dirs().len(), 3);

    // Listed under the layout's name and tag.
    let o = s.image(&["ls", "--format", "json"]);
    assert_ok(&o);
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ls[0]["name"], "app:v1");
    assert_eq!(ls[0]["layers"].as_array().unwrap().len(), 3);

    // Two containers from the stored image share its layers; each has its
    // own upper layer.
    let (a, b) = (unique("img"), unique("img"));
    for id in [&a, &b] {
        assert_ok(&s.run("app:v1", id, &["--detach"], &["sleep", "100"]));
    }
    assert_eq!(s.layer_dirs().len(), 3, "a layer was unpacked again");
    let pid: i32 = {
        let o = s.cmd(&["state", &a]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["pid"].as_i64().unwrap() as i32
    };
    std::fs::write(format!("/proc/{pid}/root/data/mine"), "a").unwrap();
    assert!(!s
        .root()
        .join("containers")
        .join(&b)
        .join("rootfs/data/mine")
        .exists());

    // The name goes; the layers stay while containers use them.
    assert_ok(&s.image(&["rm", "app:v1"]));
    let o = s.image(&["prune"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("0 layers"), "{}", stdout(&o));
    assert_eq!(s.layer_dirs().len(), 3);

    // A container that died (its init killed): delete still cleans up.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let mut waited = 0;
    while std::path::Path::new(&format!("/proc/{pid}/root/data")).exists() && waited < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    assert_ok(&s.cmd(&["delete", &a]).output().unwrap());
    assert_ok(&s.cmd(&["delete", "--force", &b]).output().unwrap());
    assert!(!s.mounted());
    assert_eq!(entries(&s.root().join("containers")), 0);
    let o = s.image(&["prune"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("3 layers"), "{}", stdout(&o));
    assert!(s.layer_dirs().is_empty());
    assert_eq!(entries(&s.root().join("blobs/sha256")), 0);
}

#[test]
fn a_failed_run_leaves_no_rootfs_behind() {
    let s = Store::new();
    let lay = s.dir.path().join("app");
    layout(&lay, "v1", &layers(), Comp::Zstd, json!({"Cmd": ["sh"]}));
    let id = unique("img");
    let o = s.run(
        &format!("oci:{}:v1", lay.display()),
        &id,
        &[],
        &["/no/such/program"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/program"), "{}", stderr(&o));
    assert!(!s.mounted());
    assert_eq!(entries(&s.root().join("containers")), 0);
}

#[test]
fn concurrent_imports_unpack_each_layer_once() {
    let s = Store::new();
    let lay = s.dir.path().join("app");
    layout(&lay, "v1", &layers(), Comp::Gzip, json!({"Cmd": ["sh"]}));
    let src = format!("oci:{}:v1", lay.display());
    let kids: Vec<_> = (0..6)
        .map(|i| {
            let root = s.root();
            Command::new(env!("CARGO_BIN_EXE_rcrun"))
                .args([
                    "image",
                    "--image-root",
                    root.to_str().unwrap(),
                    "import",
                    &src,
                    "--name",
                    &format!("n{i}:v1"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let dirs = s.layer_dirs();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    assert!(dirs.iter().all(|d| !d.starts_with(".tmp")));
    let o = s.image(&["ls", "--format", "json"]);
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 6);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Every path under `root` with its type and content.
fn tree(root: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            use std::os::unix::fs::MetadataExt;
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!(
                    "{:x}",
                    sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
                        std::fs::read(&p).unwrap()
                    ))
                )
            };
            out.push(format!(
                "{rel} {what} {:o} {}:{}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn images_made_by_umoci_and_skopeo_unpack_as_umoci_unpacks_them() {
    assert!(
        have("umoci") && have("skopeo"),
        "umoci and skopeo are installed by scripts/lib/deps.sh"
    );
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    let run = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(Command::new("umoci").args(["init", "--layout"]).arg(&lay));
    run(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:t", lay.display())));
    // Two layers: the busybox rootfs, then a change and a deletion.
    run(Command::new("umoci")
        .args(["insert", "--image"])
        .arg(format!("{}:t", lay.display()))
        .arg(rootfs().join("bin"))
        .arg("/bin"));
    let extra = t.path().join("extra");
    std::fs::create_dir_all(extra.join("etc")).unwrap();
    std::fs::write(extra.join("etc/motd"), "hi\n").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image"])
        .arg(format!("{}:t", lay.display()))
        .arg(&extra)
        .arg("/"));
    run(Command::new("umoci")
        .args(["insert", "--whiteout", "--image"])
        .arg(format!("{}:t", lay.display()))
        .arg("/bin/ls"));
    run(Command::new("umoci")
        .args(["config", "--config.cmd", "sh", "--image"])
        .arg(format!("{}:t", lay.display())));

    let ours = t.path().join("ours");
    let o = Command::new(env!("CARGO_BIN_EXE_rcrun"))
        .args(["image", "unpack", &format!("oci:{}:t", lay.display())])
        .arg(&ours)
        .output()
        .unwrap();
    assert_ok(&o);
    let theirs = t.path().join("theirs");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", lay.display()))
        .arg(&theirs));
    assert!(!ours.join("rootfs/bin/ls").exists() && ours.join("rootfs/bin/busybox").exists());
    assert_eq!(tree(&ours.join("rootfs")), tree(&theirs.join("rootfs")));

    // skopeo writes the same image as a docker archive.
    let ar = t.path().join("d.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:t", lay.display()))
        .arg(format!("docker-archive:{}:example/t:1", ar.display())));
    let d = t.path().join("docker");
    let o = Command::new(env!("CARGO_BIN_EXE_rcrun"))
        .args([
            "image",
            "unpack",
            &format!("docker-archive:{}", ar.display()),
        ])
        .arg(&d)
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(tree(&d.join("rootfs")), tree(&theirs.join("rootfs")));
}

#[test]
fn the_library_runs_a_prepared_image_and_delete_releases_it() {
    use rcrun::image::{ImageStore, Source, UnpackOptions};
    let s = Store::new();
    let lay = s.dir.path().join("app");
    layout(
        &lay,
        "v1",
        &layers(),
        Comp::Gzip,
        json!({"Cmd": ["sh", "-c", "cat /data/a > /data/copy"]}),
    );
    let store = ImageStore::open(s.root()).unwrap();
    let info = store
        .import(
            &Source::parse(&format!("oci:{}:v1", lay.display())).unwrap(),
            None,
        )
        .unwrap();
    assert_eq!(info.name, "app:v1");
    let id = unique("lib");
    s.ids.borrow_mut().push(id.clone());
    let p = store.prepare("app:v1", &id, &UnpackOptions::new()).unwrap();
    own_cgroup(p.bundle(), &id);
    let rt = rcrun::Runtime::new(s.state());
    let opts = rcrun::CreateOptions {
        image: Some(p.clone()),
        allow_unsealed: true,
        ..Default::default()
    };
    let c = rt.run(&id, p.bundle(), opts).unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(0));
    // The upper layer holds the container's write until delete.
    assert_eq!(
        std::fs::read_to_string(p.bundle().join("upper/data/copy")).unwrap(),
        "upper\n"
    );
    rt.delete(&id, false).unwrap();
    assert!(!p.bundle().exists());
    assert!(!s.mounted());
    let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/pids/rcrun-test-{id}"));
}

#[test]
fn the_store_is_roots_alone_and_names_are_exact() {
    use std::os::unix::fs::PermissionsExt;
    let s = Store::new();
    let lay = s.dir.path().join("app");
    layout(&lay, "v1", &layers(), Comp::Gzip, json!({"Cmd": ["sh"]}));
    let src = format!("oci:{}:v1", lay.display());
    assert_ok(&s.image(&["import", &src]));
    // Stored layers hold set-id files and devices: no other user's.
    let mode = std::fs::metadata(s.root()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // A name cannot carry a second tag to shadow another by suffix.
    assert_err(
        &s.image(&["import", &src, "--name", "evil:app:v1"]),
        "one tag at most",
    );
    // Lookups are exact: `v1` is not `app:v1`.
    let b = s.dir.path().join("b");
    assert_err(
        &s.image(&["unpack", "v1", b.to_str().unwrap()]),
        "image v1:latest: not found",
    );
    // A forged record cannot make release remove another directory.
    let victim = s.dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let p: rcrun::image::Prepared =
        serde_json::from_value(json!({"dir": victim, "image": "x"})).unwrap();
    assert!(p.release().is_err());
    let p: rcrun::image::Prepared =
        serde_json::from_value(json!({"dir": s.dir.path().join("containers/x"), "image": "x"}))
            .unwrap();
    std::fs::create_dir_all(s.dir.path().join("containers/x")).unwrap();
    assert!(p.release().is_err(), "no image.json: not prepare's");
    assert!(victim.exists() && s.dir.path().join("containers/x").exists());
}

#[test]
fn a_docker_archive_with_a_compressed_layer_is_stored_by_its_own_digest() {
    let s = Store::new();
    let t = s.dir.path();
    let tar = Layer::new().file("hello", b"hi\n").tar();
    let (gz, _) = compress(&tar, Comp::Gzip);
    let cfg = image_config(&[tar], json!({"Cmd": ["sh"]}));
    let ar = t.join("d.tar");
    let mut b = ::tar::Builder::new(std::fs::File::create(&ar).unwrap());
    for (name, data) in [("c.json", &cfg[..]), ("l/layer.tar", &gz[..])] {
        let mut h = ::tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    let m = serde_json::to_vec(
        &json!([{"Config": "c.json", "RepoTags": ["dk:1"], "Layers": ["l/layer.tar"]}]),
    )
    .unwrap();
    let mut h = ::tar::Header::new_gnu();
    h.set_size(m.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", &m[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    assert_ok(&s.image(&["import", &format!("docker-archive:{}", ar.display())]));
    assert!(s.root().join("blobs/sha256").join(&sha(&gz)[7..]).is_file());
    // And it unpacks again from the store, every digest checked.
    let out = t.join("bundle");
    assert_ok(&s.image(&["unpack", "dk:1", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(out.join("rootfs/hello")).unwrap(), b"hi\n");
}

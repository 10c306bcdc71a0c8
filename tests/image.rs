//! `rcrun image unpack`: OCI layouts (directory and archive) and docker
//! archives flattened into bundles, every layer verified, the OCI layer
//! semantics applied, and hostile layers kept inside the rootfs.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::image::*;
use common::*;
use serde_json::json;

fn rcrun(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rcrun"))
        .args(args)
        .output()
        .expect("spawn rcrun")
}

fn unpack(src: &str, bundle: &Path) -> std::process::Output {
    // No store is opened (or made) for a source outside it.
    let root = "/nonexistent-rcrun-root";
    let o = rcrun(&[
        "image",
        "unpack",
        "--image-root",
        root,
        src,
        bundle.to_str().unwrap(),
    ]);
    assert!(!Path::new(root).exists(), "unpack made an image store");
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Three layers exercising the spec's semantics.
fn semantic_layers() -> Vec<Layer> {
    vec![
        base_layer(rootfs())
            .dir("data")
            .file("data/keep", b"lower")
            .file("data/gone", b"lower")
            .dir("opq")
            .file("opq/lower-only", b"x")
            .dir("opq/sub")
            .file("opq/sub/deep", b"x"),
        Layer::new()
            .file(".wh.nothing-here", b"")
            .file("data/.wh.gone", b"")
            .dir("opq")
            .file("opq/new", b"upper")
            .file("opq/.wh..wh..opq", b"")
            .file("data/keep", b"upper")
            .hardlink("data/keep-link", "data/keep")
            .fifo("data/fifo")
            .chardev("data/null", 1, 3)
            .owned("data/suid", 1234, 5678, b"#!/bin/sh\n"),
        Layer::new()
            .file("data/.wh.keep-link", b"")
            .file_xattr("data/tagged", "user.rcrun", "yes", b"x")
            .many("many", 3000)
            .file("late", b"3\n"),
    ]
}

fn check_semantics(r: &Path) {
    let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
    assert_eq!(read("data/keep"), "upper");
    assert!(!r.join("data/gone").exists(), "whiteout not applied");
    assert!(!r.join("data/keep-link").exists(), "third layer's whiteout");
    assert_eq!(read("opq/new"), "upper");
    assert!(
        !r.join("opq/lower-only").exists(),
        "opaque dir kept a lower file"
    );
    assert!(!r.join("opq/sub").exists(), "opaque dir kept a lower dir");
    assert!(!r.join(".wh.nothing-here").exists() && !r.join("opq/.wh..wh..opq").exists());
    let m = std::fs::symlink_metadata(r.join("data/fifo")).unwrap();
    assert!(m.file_type().is_fifo());
    let m = std::fs::symlink_metadata(r.join("data/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    let m = std::fs::metadata(r.join("data/suid")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755, "setuid bit lost");
    assert_eq!(m.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(read("late"), "3\n");
    assert_eq!(read("many/29/f2999"), "2999\n");
    assert_eq!(std::fs::read_dir(r.join("many")).unwrap().count(), 30);
    // Where the filesystem takes user xattrs (ext4 and tmpfs do).
    let x = xattr::get(r.join("data/tagged"), "user.rcrun").unwrap();
    assert_eq!(x.as_deref(), Some(&b"yes"[..]));
    // Set once the layer is written (no later layer writes in it).
    assert_eq!(
        std::fs::metadata(r.join("opq")).unwrap().mtime(),
        1_700_000_000,
        "directory mtime"
    );
}

#[test]
fn layers_flatten_as_the_image_spec_says_from_every_source_and_compression() {
    let t = tempfile::tempdir().unwrap();
    let cfg = json!({"Cmd": ["cat", "/late"], "User": "web", "WorkingDir": "/data", "Labels": {"app": "x"}});
    let mut trees = vec![];
    for (i, c) in [Comp::Gzip, Comp::None, Comp::Zstd].into_iter().enumerate() {
        let lay = t.path().join(format!("layout{i}"));
        layout(&lay, "v1", &semantic_layers(), c, cfg.clone());
        let b = t.path().join(format!("b{i}"));
        let o = unpack(&format!("oci:{}:v1", s(&lay)), &b);
        assert_ok(&o);
        check_semantics(&b.join("rootfs"));
        trees.push(b.join("rootfs"));
        if c == Comp::Gzip {
            // The same layout packed as a tar.
            let ar = t.path().join("oci.tar");
            pack(&lay, &ar);
            let b = t.path().join("b-archive");
            assert_ok(&unpack(&format!("oci-archive:{}:v1", s(&ar)), &b));
            check_semantics(&b.join("rootfs"));
            // The config.
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
            assert_eq!(v["process"]["args"], json!(["cat", "/late"]));
            assert_eq!(v["process"]["cwd"], "/data");
            assert_eq!(v["process"]["user"]["uid"], 1000);
            assert_eq!(v["process"]["user"]["gid"], 100);
            assert_eq!(v["process"]["user"]["additionalGids"], json!([33]));
            assert_eq!(v["process"]["terminal"], false);
            assert_eq!(v["annotations"]["app"], "x");
        }
    }
    let ar = t.path().join("docker.tar");
    docker_archive(
        &ar,
        "example/app:v1",
        &semantic_layers(),
        json!({"Cmd": ["sh"]}),
    );
    let b = t.path().join("b-docker");
    assert_ok(&unpack(
        &format!("docker-archive:{}:example/app:v1", s(&ar)),
        &b,
    ));
    check_semantics(&b.join("rootfs"));
    let b = t.path().join("b-docker2");
    assert_ok(&unpack(&format!("docker-archive:{}", s(&ar)), &b));
    // A hardlink is one inode.
    let l = t.path().join("hl");
    layout(
        &l,
        "v1",
        &[Layer::new().file("a", b"1").hardlink("b", "a")],
        Comp::Gzip,
        json!({"Cmd": ["x"]}),
    );
    let b = t.path().join("b-hl");
    assert_ok(&unpack(&format!("oci:{}", s(&l)), &b));
    let (a, bb) = (
        std::fs::metadata(b.join("rootfs/a")).unwrap(),
        std::fs::metadata(b.join("rootfs/b")).unwrap(),
    );
    assert_eq!(a.ino(), bb.ino());
}

#[test]
fn a_bundle_from_an_image_runs() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    layout(
        &lay,
        "v1",
        &semantic_layers(),
        Comp::Gzip,
        json!({"Entrypoint": ["sh", "-c"], "Cmd": ["cat /late; id -u; pwd"], "User": "web", "WorkingDir": "/data"}),
    );
    let b = t.path().join("bundle");
    assert_ok(&unpack(&format!("oci:{}:v1", s(&lay)), &b));
    let id = unique("img");
    own_cgroup(&b, &id);
    let root = t.path().join("state");
    let o = Command::new(env!("CARGO_BIN_EXE_rcrun"))
        .args(["--root", s(&root), "run", "--bundle", s(&b), &id])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(stdout(&o), "3\n1000\n/data\n");
}

#[test]
fn a_corrupt_blob_or_diff_id_is_refused_and_nothing_is_left() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    layout(
        &lay,
        "v1",
        &semantic_layers(),
        Comp::Gzip,
        json!({"Cmd": ["sh"]}),
    );
    let (m, _) = first_manifest(&lay);
    let layer = m["layers"][1]["digest"].as_str().unwrap().to_string();
    let p = lay.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let b = t.path().join("bundle");
    let o = unpack(&format!("oci:{}:v1", s(&lay)), &b);
    assert_err(&o, &layer);
    assert!(
        !b.join("rootfs").exists()
            && !b.join("config.json").exists()
            && !b.join(".rootfs.tmp").exists()
    );

    // A layer whose content is intact but whose diffID in the config is not.
    let lay2 = t.path().join("layout2");
    layout(
        &lay2,
        "v1",
        &[Layer::new().file("a", b"1")],
        Comp::Gzip,
        json!({"Cmd": ["sh"]}),
    );
    let (mut m, _) = first_manifest(&lay2);
    let mut c = blob_json(&lay2, &m["config"]["digest"]);
    c["rootfs"]["diff_ids"][0] = json!(format!("sha256:{}", "0".repeat(64)));
    let c = serde_json::to_vec(&c).unwrap();
    m["config"] = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put_blob(&lay2, &c), "size": c.len()});
    let mb = serde_json::to_vec(&m).unwrap();
    let idx = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put_blob(&lay2, &mb), "size": mb.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(lay2.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let b = t.path().join("bundle2");
    assert_err(&unpack(&format!("oci:{}:v1", s(&lay2)), &b), "diffID");
    assert!(!b.join("rootfs").exists());
}

/// A host directory the attacks aim at, with a canary in it.
struct Target(tempfile::TempDir);

impl Target {
    fn new() -> Target {
        let d = tempfile::Builder::new()
            .prefix("rcrun-host-target.")
            .tempdir()
            .unwrap();
        std::fs::write(d.path().join("canary"), "host").unwrap();
        Target(d)
    }
    fn path(&self) -> PathBuf {
        self.0.path().to_path_buf()
    }
    /// The host directory holds only its canary, unchanged.
    fn untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("canary")],
            "the host directory was written"
        );
        assert_eq!(
            std::fs::read_to_string(self.0.path().join("canary")).unwrap(),
            "host"
        );
    }
}

/// Unpacks `layers`; returns the output and the bundle.
fn attack(layers: Vec<Layer>) -> (std::process::Output, PathBuf, tempfile::TempDir) {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    layout(&lay, "v1", &layers, Comp::Gzip, json!({"Cmd": ["sh"]}));
    let b = t.path().join("bundle");
    let o = unpack(&format!("oci:{}:v1", s(&lay)), &b);
    (o, b, t)
}

/// `../` climbs to the host's / from wherever the bundle is.
fn up(target: &Path) -> String {
    format!("../../../../../../../../..{}", target.display())
}

#[test]
fn hostile_dotdot_members_are_refused() {
    let h = Target::new();
    let (o, b, _t) = attack(vec![
        Layer::new().file(&format!("{}/pwned", up(&h.path())), b"x")
    ]);
    assert_err(&o, "path leaves the layer (..)");
    assert!(!b.join("rootfs").exists());
    h.untouched();
    // Hidden in a hardlink's target.
    let (o, _b, _t) = attack(vec![
        Layer::new().hardlink("hl", &format!("{}/canary", up(&h.path())))
    ]);
    assert_err(&o, "hardlink target");
    assert_eq!(
        std::fs::metadata(h.path().join("canary")).unwrap().nlink(),
        1
    );
    h.untouched();
    // A whiteout of `..` would remove the parent of the rootfs' parent.
    let (o, b, _t) = attack(vec![Layer::new().dir("a").file("a/.wh..", b"")]);
    assert_err(&o, "whiteout of . or ..");
    assert!(b.exists(), "the bundle directory was removed");
}

#[test]
fn hostile_absolute_names_and_symlinks_stay_inside_the_rootfs() {
    let h = Target::new();
    let hp = h.path();
    let hs = hp.to_str().unwrap().trim_start_matches('/').to_string();
    let (o, b, _t) = attack(vec![
        // An absolute member name.
        Layer::new()
            .file(&format!("{}/abs", hp.display()), b"x")
            // A symlink to the host directory, written through.
            .symlink("abs-link", hp.to_str().unwrap())
            .file("abs-link/through-abs", b"x")
            .symlink("rel-link", &up(&hp))
            .file("rel-link/through-rel", b"x")
            // A hardlink through a symlink.
            .hardlink("hl", "abs-link/canary"),
    ]);
    // The hardlink's target resolves inside the rootfs, where no canary is.
    assert_err(&o, "hardlink to");
    h.untouched();
    assert_eq!(std::fs::metadata(hp.join("canary")).unwrap().nlink(), 1);
    assert!(!b.join("rootfs").exists());

    let (o, b, _t) = attack(vec![Layer::new()
        .file(&format!("{}/abs", hp.display()), b"x")
        .symlink("abs-link", hp.to_str().unwrap())
        .file("abs-link/through-abs", b"x")
        .symlink("rel-link", &up(&hp))
        .file("rel-link/through-rel", b"x")]);
    assert_ok(&o);
    h.untouched();
    let r = b.join("rootfs");
    for f in ["abs", "through-abs", "through-rel"] {
        assert!(
            r.join(&hs).join(f).is_file(),
            "{f} not neutralised into the rootfs"
        );
    }
}

#[test]
fn hostile_symlinks_planted_by_an_earlier_layer_stay_inside_the_rootfs() {
    let h = Target::new();
    let hp = h.path();
    let hs = hp.to_str().unwrap().trim_start_matches('/').to_string();
    let (o, b, _t) = attack(vec![
        Layer::new()
            .dir("etc")
            .file("etc/passwd", b"root")
            .dir("d")
            .file("d/f", b"1"),
        // The directory d becomes a symlink to the host; etc too.
        Layer::new()
            .symlink("d", hp.to_str().unwrap())
            .symlink("etc", &up(&hp)),
        // Later layers write through them, and replace the canary.
        Layer::new()
            .file("d/x", b"x")
            .file("etc/passwd", b"pwned")
            .file("d/canary", b"pwned")
            .file("d/.wh.canary", b""),
    ]);
    assert_ok(&o);
    h.untouched();
    let r = b.join("rootfs");
    assert!(std::fs::symlink_metadata(r.join("d"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(r.join(&hs).join("passwd")).unwrap(),
        "pwned"
    );
    assert!(r.join(&hs).join("x").is_file());
}

#[test]
fn absurd_headers_are_refused_and_nothing_is_left() {
    let (o, b, _t) = attack(vec![Layer::new()
        .file("ok", b"1")
        .lying_size("huge", 1 << 60)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("layer sha256:"), "{}", stderr(&o));
    assert!(!b.join("rootfs").exists() && !b.join(".rootfs.tmp").exists());
    // A member cut short is refused...
    let (o, b, _t) = attack(vec![Layer::new()
        .file("ok", b"1")
        .file("short", b"0123456789")
        .cut_last(4)]);
    assert_err(&o, "truncated: 6 of 10 bytes");
    assert!(!b.join("rootfs").exists());
    // ...but a tar whose last member is whole and whose trailer is
    // missing (umoci 0.4 writes those) is taken, as Go's archive/tar does.
    let (o, b, _t) = attack(vec![Layer::new()
        .file("ok", b"1")
        .file("whole", b"0123456789")
        .cut_last(0)]);
    assert_ok(&o);
    assert_eq!(
        std::fs::read(b.join("rootfs/whole")).unwrap(),
        b"0123456789"
    );
    // Garbage where a tar should be.
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    layout(
        &lay,
        "v1",
        &[Layer::new().file("a", b"1")],
        Comp::None,
        json!({"Cmd": ["sh"]}),
    );
    let o = unpack(&format!("oci:{}:nope", s(&lay)), &t.path().join("b"));
    assert_err(&o, "image nope: not found");
}

#[test]
fn a_multi_platform_index_gives_the_hosts_image_or_the_one_asked() {
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("multi");
    std::fs::create_dir_all(&lay).unwrap();
    std::fs::write(lay.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let arch = |a: &str| {
        let mut d = manifest(
            &lay,
            &[Layer::new().file("arch", a.as_bytes())],
            Comp::Gzip,
            json!({"Cmd": ["sh"]}),
        );
        d["platform"] = json!({"os": "linux", "architecture": a});
        d
    };
    let (host, other) = (arch(host_arch()), arch("s390x"));
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other.clone(), host.clone()],
    }))
    .unwrap();
    let d = put_blob(&lay, &idx);
    std::fs::write(
        lay.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": idx.len(),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": other["digest"], "size": other["size"]},
        ]}))
        .unwrap(),
    )
    .unwrap();
    let run = |extra: &[&str], src: String, b: &str| {
        let b = t.path().join(b);
        let mut a = vec!["image", "unpack"];
        a.extend_from_slice(extra);
        a.push(&src);
        a.push(s(&b));
        (rcrun(&a), b)
    };
    let (o, b) = run(&[], format!("oci:{}:multi", s(&lay)), "host");
    assert_ok(&o);
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/arch")).unwrap(),
        host_arch()
    );
    let (o, b) = run(
        &["--platform", "linux/s390x"],
        format!("oci:{}:multi", s(&lay)),
        "other",
    );
    assert_ok(&o);
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/arch")).unwrap(),
        "s390x"
    );
    let (o, _) = run(
        &["--platform", "linux/mips64"],
        format!("oci:{}:multi", s(&lay)),
        "none",
    );
    assert_err(&o, "for linux/mips64: not found");
    // By digest.
    let (o, b) = run(
        &[],
        format!("oci:{}@{}", s(&lay), other["digest"].as_str().unwrap()),
        "digest",
    );
    assert_ok(&o);
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/arch")).unwrap(),
        "s390x"
    );
}

/// `image unpack oci:LAYOUT:v1 BUNDLE`, killed after 60 s (exit 124):
/// for inputs that could make it block.
fn unpack_bounded(lay: &Path, bundle: &Path) -> std::process::Output {
    Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_rcrun"), "image", "unpack"])
        .arg(format!("oci:{}:v1", s(lay)))
        .arg(bundle)
        .output()
        .unwrap()
}

#[test]
fn hostile_metadata_cannot_hang_exhaust_or_read_the_host() {
    // /etc/passwd a fifo: User resolution must not block on it.
    let t = tempfile::tempdir().unwrap();
    let lay = t.path().join("layout");
    layout(
        &lay,
        "v1",
        &[Layer::new().dir("etc").fifo("etc/passwd")],
        Comp::Gzip,
        json!({"Cmd": ["sh"], "User": "web"}),
    );
    let o = unpack_bounded(&lay, &t.path().join("b"));
    assert_err(&o, "no user \"web\"");
    // A GNU long name of 8 MiB (the tar crate would read it whole).
    let (o, b, _t) = attack(vec![Layer::new().file("ok", b"1").long_name(8 << 20)]);
    assert_err(&o, "of 8388608 bytes (at most 1048576)");
    assert!(!b.join("rootfs").exists());
    // A layout whose blob is a symlink to a device, or to a host file.
    for target in ["/dev/zero", "/etc/hostname"] {
        let t = tempfile::tempdir().unwrap();
        let lay = t.path().join("layout");
        layout(
            &lay,
            "v1",
            &[Layer::new().file("a", b"1")],
            Comp::Gzip,
            json!({"Cmd": ["sh"]}),
        );
        let (m, _) = first_manifest(&lay);
        let l = lay
            .join("blobs/sha256")
            .join(&m["layers"][0]["digest"].as_str().unwrap()[7..]);
        std::fs::remove_file(&l).unwrap();
        std::os::unix::fs::symlink(target, &l).unwrap();
        let o = unpack_bounded(&lay, &t.path().join("b"));
        assert!(
            !o.status.success() && o.status.code() != Some(124),
            "{target}: {o:?}"
        );
        assert!(
            stderr(&o).contains("Too many levels of symbolic links"),
            "{}",
            stderr(&o)
        );
    }
}

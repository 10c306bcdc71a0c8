//! Writes OCI image layouts and `docker save` archives for the image
//! tests: layers built member by member (hostile ones included, with raw
//! names the tar crate's own setters would refuse).

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use serde_json::json;
use sha2::{Digest as _, Sha256};

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// One layer's tar, member by member.
#[derive(Default)]
pub struct Layer {
    b: Vec<u8>,
    /// Cut the tar there, trailer and all.
    cut: Option<usize>,
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    fn push(
        &mut self,
        name: &[u8],
        kind: tar::EntryType,
        mode: u32,
        link: Option<&[u8]>,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        // Raw bytes: no checks, so hostile names go in as they are.
        let old = h.as_old_mut();
        assert!(name.len() < 100 && link.map_or(0, |l| l.len()) < 100);
        old.name[..name.len()].copy_from_slice(name);
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l);
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.extend_from_slice(h.as_bytes());
        self.b.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.b.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Layer {
        self.push(name.as_bytes(), tar::EntryType::Regular, 0o644, None, data);
        self
    }

    pub fn file_mode(mut self, name: &str, mode: u32, data: &[u8]) -> Layer {
        self.push(name.as_bytes(), tar::EntryType::Regular, mode, None, data);
        self
    }

    pub fn owned(mut self, name: &str, uid: u64, gid: u64, data: &[u8]) -> Layer {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o4755);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.extend_from_slice(h.as_bytes());
        self.b.extend_from_slice(data);
        self.b
            .extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        self
    }

    /// A file with an extended attribute (a PAX `SCHILY.xattr` record).
    pub fn file_xattr(mut self, name: &str, key: &str, value: &str, data: &[u8]) -> Layer {
        let rec = format!("SCHILY.xattr.{key}={value}\n");
        // The record's length counts its own digits.
        let mut len = rec.len() + 3;
        while format!("{len} {rec}").len() != len {
            len += 1;
        }
        let pax = format!("{len} {rec}");
        self.push(
            b"PaxHeader",
            tar::EntryType::XHeader,
            0o644,
            None,
            pax.as_bytes(),
        );
        self.file(name, data)
    }

    /// `n` small files under `dir/`, a hundred per subdirectory.
    pub fn many(mut self, dir: &str, n: usize) -> Layer {
        for i in 0..n {
            if i % 100 == 0 {
                self = self.dir(&format!("{dir}/{}", i / 100));
            }
            self = self.file(
                &format!("{dir}/{}/f{i}", i / 100),
                format!("{i}\n").as_bytes(),
            );
        }
        self
    }

    pub fn dir(mut self, name: &str) -> Layer {
        self.push(name.as_bytes(), tar::EntryType::Directory, 0o755, None, b"");
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Layer {
        self.push(
            name.as_bytes(),
            tar::EntryType::Symlink,
            0o777,
            Some(target.as_bytes()),
            b"",
        );
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> Layer {
        self.push(
            name.as_bytes(),
            tar::EntryType::Link,
            0o644,
            Some(target.as_bytes()),
            b"",
        );
        self
    }

    /// A GNU long-name header of `n` bytes before a small file.
    pub fn long_name(mut self, n: usize) -> Layer {
        self.push(
            b"././@LongLink",
            tar::EntryType::GNULongName,
            0o644,
            None,
            &vec![b'a'; n],
        );
        self.file("after", b"x")
    }

    pub fn fifo(mut self, name: &str) -> Layer {
        self.push(name.as_bytes(), tar::EntryType::Fifo, 0o600, None, b"");
        self
    }

    pub fn chardev(mut self, name: &str, major: u32, minor: u32) -> Layer {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_size(0);
        h.set_cksum();
        self.b.extend_from_slice(h.as_bytes());
        self
    }

    /// A header that claims `size` bytes it does not have.
    pub fn lying_size(mut self, name: &str, size: u64) -> Layer {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_cksum();
        self.b.extend_from_slice(h.as_bytes());
        self.b.extend_from_slice(&[b'x'; 512]);
        self
    }

    /// The tar ends `n` bytes into the last member's data: no padding,
    /// no trailer.
    pub fn cut_last(mut self, n: usize) -> Layer {
        self.cut = Some(n);
        self
    }

    pub fn tar(&self) -> Vec<u8> {
        let mut t = self.b.clone();
        match self.cut {
            Some(n) => {
                // Drop the padding of the last member, then cut.
                while t.last() == Some(&0) {
                    t.pop();
                }
                t.truncate(t.len() - n);
            }
            None => t.extend_from_slice(&[0u8; 1024]),
        }
        t
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(tar: &[u8], c: Comp) -> (Vec<u8>, &'static str) {
    match c {
        Comp::None => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            (
                e.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Comp::Zstd => (
            zstd::stream::encode_all(tar, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

pub fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let p = layout.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    d
}

pub fn image_config(tars: &[Vec<u8>], config: serde_json::Value) -> Vec<u8> {
    let diff: Vec<String> = tars.iter().map(|t| sha(t)).collect();
    serde_json::to_vec(&json!({
        "architecture": host_arch(), "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff},
    }))
    .unwrap()
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Writes the manifest of `layers` (compressed with `c`) into `layout`;
/// returns its descriptor.
pub fn manifest(
    layout: &Path,
    layers: &[Layer],
    c: Comp,
    config: serde_json::Value,
) -> serde_json::Value {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| l.tar()).collect();
    let cfg = image_config(&tars, config);
    let cd = put_blob(layout, &cfg);
    let ls: Vec<_> = tars
        .iter()
        .map(|t| {
            let (b, mt) = compress(t, c);
            json!({"mediaType": mt, "digest": put_blob(layout, &b), "size": b.len()})
        })
        .collect();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
        "layers": ls,
    }))
    .unwrap();
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put_blob(layout, &m), "size": m.len()})
}

/// An OCI layout at `dir` with one image tagged `tag`.
pub fn layout(
    dir: &Path,
    tag: &str,
    layers: &[Layer],
    c: Comp,
    config: serde_json::Value,
) -> serde_json::Value {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut d = manifest(dir, layers, c, config);
    d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [d.clone()]})).unwrap(),
    )
    .unwrap();
    d
}

/// Packs directory `dir` as a tar at `out` (an oci-archive).
pub fn pack(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

/// A `docker save` archive of `layers` tagged `tag`.
pub fn docker_archive(out: &Path, tag: &str, layers: &[Layer], config: serde_json::Value) {
    let tars: Vec<Vec<u8>> = layers.iter().map(|l| l.tar()).collect();
    let cfg = image_config(&tars, config);
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    let cname = format!("{}.json", &sha(&cfg)[7..]);
    add(&cname, &cfg);
    let mut names = vec![];
    for t in &tars {
        let n = format!("{}/layer.tar", &sha(t)[7..19]);
        add(&n, t);
        names.push(n);
    }
    let m = json!([{"Config": cname, "RepoTags": [tag], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&m).unwrap());
    b.finish().unwrap();
}

/// A busybox-like base: /bin/busybox and its applet links, /etc/passwd.
pub fn base_layer(rootfs: &Path) -> Layer {
    let bb = std::fs::read(rootfs.join("bin/busybox")).unwrap();
    let mut l = Layer::new()
        .dir("bin")
        .dir("etc")
        .dir("tmp")
        .dir("proc")
        .dir("sys")
        .dir("dev")
        .file_mode("bin/busybox", 0o755, &bb)
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nweb:x:1000:100:web:/:/bin/sh\n",
        )
        .file("etc/group", b"root:x:0:\nusers:x:100:\nwww:x:33:web\n");
    for a in [
        "sh", "cat", "ls", "id", "echo", "stat", "test", "readlink", "sleep", "pwd",
    ] {
        l = l.symlink(&format!("bin/{a}"), "busybox");
    }
    l
}

/// Points the bundle's config.json at the test's own cgroup
/// (`/rcrun-test-ID`), as every test does.
pub fn own_cgroup(bundle: &Path, id: &str) {
    let cfg = bundle.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["linux"]["cgroupsPath"] = json!(format!("/rcrun-test-{id}"));
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// How many entries directory `d` holds.
pub fn entries(d: &Path) -> usize {
    std::fs::read_dir(d).unwrap().count()
}

/// Blob `digest` (`sha256:...`) of a layout, read as JSON.
pub fn blob_json(layout: &Path, digest: &serde_json::Value) -> serde_json::Value {
    let d = &digest.as_str().unwrap()[7..];
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(d)).unwrap()).unwrap()
}

/// The manifest of a layout's first image (and its digest).
pub fn first_manifest(layout: &Path) -> (serde_json::Value, serde_json::Value) {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let d = idx["manifests"][0]["digest"].clone();
    (blob_json(layout, &d), d)
}

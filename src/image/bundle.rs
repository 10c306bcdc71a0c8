//! A bundle's config.json from an image config (image-spec
//! conversion.md), on top of rcrun's default spec.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::ImageError;

/// What the caller asks beyond the image config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// Replaces the image's Cmd (the Entrypoint stays), as `docker run`.
    pub args: Vec<String>,
    pub terminal: bool,
}

/// The spec for an image whose rootfs (already in place, for /etc/passwd
/// and /etc/group) is `rootfs`.
pub(crate) fn spec_for(config: &[u8], rootfs: &Path, o: &Overrides) -> Result<Spec, ImageError> {
    let img: ImageConfiguration =
        serde_json::from_slice(config).map_err(|e| ImageError::invalid("image config", e))?;
    let c = img.config().clone().unwrap_or_default();
    let mut args: Vec<String> = c.entrypoint().clone().unwrap_or_default();
    if o.args.is_empty() {
        args.extend(c.cmd().clone().unwrap_or_default());
    } else {
        args.extend(o.args.iter().cloned());
    }
    if args.is_empty() {
        return Err(ImageError::invalid(
            "image config",
            "no Entrypoint and no Cmd: give the command to run",
        ));
    }
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    if o.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = c
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or("/".into());
    let (uid, gid, extra) = resolve_user(rootfs, c.user().as_deref().unwrap_or(""))?;

    let mut ann = serde_json::Map::new();
    for (k, v) in c.labels().clone().unwrap_or_default() {
        ann.insert(k, json!(v));
    }
    let mut put = |k: &str, v: String| {
        ann.insert(format!("org.opencontainers.image.{k}"), json!(v));
    };
    put("os", img.os().to_string());
    put("architecture", img.architecture().to_string());
    if let Some(a) = img.author() {
        put("author", a.clone());
    }
    if let Some(t) = img.created() {
        put("created", t.clone());
    }
    if let Some(s) = c.stop_signal() {
        put("stopSignal", s.clone());
    }
    if let Some(p) = c.exposed_ports().as_ref().filter(|p| !p.is_empty()) {
        let mut p = p.clone();
        p.sort();
        put("exposedPorts", p.join(","));
    }

    let spec = crate::spec::default_spec(false);
    let mut v = serde_json::to_value(&spec).expect("a spec serializes");
    v["root"] = json!({"path": "rootfs", "readonly": false});
    v["process"]["terminal"] = json!(o.terminal);
    v["process"]["args"] = json!(args);
    v["process"]["env"] = json!(env);
    v["process"]["cwd"] = json!(cwd);
    let mut user = json!({"uid": uid, "gid": gid});
    if !extra.is_empty() {
        user["additionalGids"] = json!(extra);
    }
    v["process"]["user"] = user;
    v["annotations"] = Value::Object(ann);
    serde_json::from_value(v).map_err(|e| ImageError::invalid("generated config.json", e))
}

/// Reads `/etc/<name>` of the rootfs, resolved inside it (an image's
/// /etc/passwd may be a symlink to anywhere).
fn etc(rootfs: &Path, name: &str) -> String {
    // O_PATH first: a fifo or a device there is never opened (a fifo
    // would block, a device is the host's); only a regular file is read.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let Ok(root) = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = openat2(
        &root,
        OsStr::from_bytes(format!("etc/{name}").as_bytes()),
        how,
    ) else {
        return String::new();
    };
    let regular =
        nix::sys::stat::fstat(&fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG);
    if !regular {
        return String::new();
    }
    // Reopened through the O_PATH fd: the very file checked.
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    let Ok(f) = std::fs::File::open(proc_path) else {
        return String::new();
    };
    let mut s = String::new();
    let _ = f.take(4 << 20).read_to_string(&mut s);
    s
}

/// `User` (name, uid, name:group, uid:gid, ...) as Docker resolves it:
/// names through the rootfs's /etc/passwd and /etc/group; a user's
/// supplementary groups from /etc/group.
pub(crate) fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32, Vec<u32>), ImageError> {
    if user.is_empty() {
        return Ok((0, 0, vec![]));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = etc(rootfs, "passwd");
    let group = etc(rootfs, "group");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let bad = |why: String| ImageError::invalid(format!("image config User {user:?}"), why);
    let (uid, name, mut gid) = match (&entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| bad("bad uid in /etc/passwd".into()))?,
            Some(f[0].to_string()),
            f[3].parse().unwrap_or(0),
        ),
        (None, Ok(n)) => (n, None, 0),
        (None, Err(_)) => return Err(bad(format!("no user {u:?} in the image's /etc/passwd"))),
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| bad(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut extra = vec![];
    if let (Some(n), None) = (&name, g) {
        for f in group.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !extra.contains(&id) {
                        extra.push(id);
                    }
                }
            }
        }
    }
    Ok((uid, gid, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:100:web:/home/web:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nusers:x:100:\nwww:x:33:web\naudio:x:29:other,web\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn users_resolve_as_docker_does() {
        let r = rootfs();
        let p = r.path();
        assert_eq!(resolve_user(p, "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(p, "web").unwrap(), (1000, 100, vec![33, 29]));
        assert_eq!(resolve_user(p, "1000").unwrap(), (1000, 100, vec![33, 29]));
        assert_eq!(resolve_user(p, "web:www").unwrap(), (1000, 33, vec![]));
        assert_eq!(resolve_user(p, "4242:7").unwrap(), (4242, 7, vec![]));
        assert_eq!(resolve_user(p, "4242").unwrap(), (4242, 0, vec![]));
        let e = resolve_user(p, "nobody").unwrap_err().to_string();
        assert!(e.contains("no user \"nobody\""), "{e}");
        let e = resolve_user(p, "web:nogroup").unwrap_err().to_string();
        assert!(e.contains("no group \"nogroup\""), "{e}");
    }

    #[test]
    fn a_passwd_symlink_is_read_inside_the_rootfs() {
        let r = rootfs();
        let p = r.path();
        std::fs::remove_file(p.join("etc/passwd")).unwrap();
        // Outside the rootfs this names the host's own file.
        std::os::unix::fs::symlink("/etc/../../../../etc/passwd", p.join("etc/passwd")).unwrap();
        let e = resolve_user(p, "root").unwrap_err().to_string();
        assert!(e.contains("no user"), "read the host's passwd: {e}");
    }

    #[test]
    fn config_maps_to_the_spec() {
        let r = rootfs();
        let cfg = json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "User": "web", "Env": ["A=1"], "Entrypoint": ["/bin/app"], "Cmd": ["--x"],
                "WorkingDir": "/srv", "Labels": {"l": "v"}, "StopSignal": "SIGQUIT",
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        let raw = serde_json::to_vec(&cfg).unwrap();
        let s = spec_for(&raw, r.path(), &Overrides::default()).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["process"]["args"], json!(["/bin/app", "--x"]));
        assert_eq!(v["process"]["cwd"], "/srv");
        assert_eq!(v["process"]["terminal"], false);
        assert_eq!(v["process"]["user"]["uid"], 1000);
        assert!(v["process"]["env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH="));
        assert_eq!(v["annotations"]["l"], "v");
        assert_eq!(
            v["annotations"]["org.opencontainers.image.stopSignal"],
            "SIGQUIT"
        );
        assert_eq!(
            v["annotations"]["org.opencontainers.image.exposedPorts"],
            "53/udp,80/tcp"
        );
        let o = Overrides {
            args: vec!["sh".into()],
            terminal: true,
        };
        let v = serde_json::to_value(spec_for(&raw, r.path(), &o).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], json!(["/bin/app", "sh"]));
        assert_eq!(v["process"]["terminal"], true);
    }
}

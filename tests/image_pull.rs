//! rcrun::image::pull against Debian's docker-registry on 127.0.0.1: each
//! test starts its own registry (storage, config and certificates in a temp
//! dir, killed on drop), fills it with skopeo from an OCI layout made with
//! umoci, and pulls from it.
//!
//! Needs docker-registry, skopeo, umoci and openssl (scripts/lib/deps.sh).
//!
//!   cargo test --features pull --test image_pull

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcrun::image::pull::{pull, PullError, PullOptions, Pulled};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

const REPO: &str = "test/app";

/// Runs a command; panics with its stderr when it fails.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it installed? scripts/lib/deps.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes (or adds to) the OCI layout `DIR/img`: image `tag` for
/// linux/`arch`, one layer per file.
fn make_image(dir: &Path, tag: &str, arch: &str, files: &[(&str, &str)]) -> PathBuf {
    let layout = dir.join("img");
    if !layout.exists() {
        run(Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout));
    }
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    let src = dir.join("src").join(tag);
    fs::create_dir_all(&src).unwrap();
    for (name, content) in files {
        let f = src.join(name.replace('/', "_"));
        fs::write(&f, content).unwrap();
        run(Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&f)
            .arg(format!("/{name}")));
    }
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--architecture",
        arch,
    ]));
    layout
}

/// A docker-registry's authentication.
enum Auth {
    None,
    /// htpasswd with one user.
    Htpasswd(&'static str, &'static str),
    /// A token realm (URL) and the bundle of its signing certificates.
    Token(String, PathBuf),
}

/// A docker-registry process on 127.0.0.1, its storage and config in a
/// temp dir; killed and removed on drop.
struct Registry {
    child: Child,
    port: u16,
    tls: bool,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry; `tls` is the server's certificate and key.
    fn start(auth: Auth, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let mut auth_yml = String::new();
        match &auth {
            Auth::None => {}
            Auth::Htpasswd(user, pass) => {
                let file = dir.path().join("htpasswd");
                let hash = bcrypt::hash(pass, 4).unwrap();
                fs::write(&file, format!("{user}:{hash}\n")).unwrap();
                auth_yml = format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                );
            }
            Auth::Token(realm, bundle) => {
                auth_yml = format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    bundle.display()
                );
            }
        }
        let tls_yml = match tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let log = dir.path().join("registry.log");
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n{tls_yml}{auth_yml}",
                    storage.display()
                ),
            )
            .unwrap();
            let out = fs::File::create(&log).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("docker-registry (apt-get install docker-registry)");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry {
                        child,
                        port,
                        tls: tls.is_some(),
                        dir,
                    };
                }
                thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn reference(&self, tag: &str) -> String {
        format!("{}/{REPO}:{tag}", self.host())
    }

    /// skopeo copy of `layout:tag` to REPO:tag, with `args` (credentials).
    fn push(&self, layout: &Path, tag: &str, args: &[&str]) {
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(args)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}", self.reference(tag))));
    }

    /// The manifest as the registry serves it (skopeo inspect --raw).
    fn raw_manifest(&self, tag: &str, args: &[&str]) -> Vec<u8> {
        run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .args(args)
            .arg(format!("docker://{}", self.reference(tag))))
    }

    /// The registry's file for a blob.
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The access log's lines.
    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap()
    }

    /// How many blob GETs the registry served, from its access log.
    fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }

    /// A plain HTTP request (no TLS, no auth): (status, body).
    fn http(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        assert!(!self.tls);
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host(),
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp[9..12].parse().unwrap();
        (status, resp)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks that the layout has the manifest, its config and its layers,
/// each under its own sha256, and nothing half-written.
fn check_layout(layout: &Path, pulled: &Pulled) -> serde_json::Value {
    let blobs = layout.join("blobs/sha256");
    let read = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let data = fs::read(blobs.join(hex)).unwrap_or_else(|e| panic!("blob {digest}: {e}"));
        assert_eq!(sha256_hex(&data), hex, "blob {digest}: wrong content");
        data
    };
    let data = read(&pulled.manifest.digest);
    assert_eq!(data.len() as u64, pulled.manifest.size);
    let manifest: serde_json::Value = serde_json::from_slice(&data).unwrap();
    let mut descs = vec![manifest["config"].clone()];
    descs.extend(manifest["layers"].as_array().unwrap().iter().cloned());
    assert!(descs.len() >= 3, "config and at least 2 layers: {manifest}");
    for d in &descs {
        let blob = read(d["digest"].as_str().unwrap());
        assert_eq!(blob.len() as u64, d["size"].as_u64().unwrap());
    }
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert!(!layout.join("index.json").exists());
    assert_no_temp_files(layout);
    manifest
}

fn assert_no_temp_files(layout: &Path) {
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "temporary file left: {name}");
    }
}

/// Each blob's (mtime, inode).
fn blob_stamps(layout: &Path) -> HashMap<String, (SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().into_string().unwrap(),
                (m.modified().unwrap(), m.ino()),
            )
        })
        .collect()
}

fn opts() -> PullOptions {
    PullOptions::new().insecure_http(true).quiet(true)
}

#[test]
fn anonymous_http_by_tag_and_by_digest() {
    let work = tempfile::tempdir().unwrap();
    let img = make_image(
        work.path(),
        "v1",
        "amd64",
        &[("hello.txt", "hello\n"), ("etc/motd", "a second layer\n")],
    );
    let reg = Registry::start(Auth::None, None);
    reg.push(&img, "v1", &[]);
    let raw = reg.raw_manifest("v1", &[]);
    let digest = format!("sha256:{}", sha256_hex(&raw));

    let layout = work.path().join("layout");
    let pulled = pull(&reg.reference("v1"), &layout, &opts()).unwrap();
    assert_eq!(pulled.manifest.digest, digest);
    assert_eq!(pulled.manifest.size, raw.len() as u64);
    assert_eq!(
        pulled.manifest.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(pulled.reference, reg.reference("v1"));
    let manifest = check_layout(&layout, &pulled);
    assert_eq!(
        reg.blob_gets(),
        manifest["layers"].as_array().unwrap().len() + 1
    );

    // Again: nothing fetched, nothing rewritten.
    let stamps = blob_stamps(&layout);
    let gets = reg.blob_gets();
    let again = pull(&reg.reference("v1"), &layout, &opts()).unwrap();
    assert_eq!(again, pulled);
    assert_eq!(reg.blob_gets(), gets, "a second pull fetched blobs");
    assert_eq!(blob_stamps(&layout), stamps);

    // By digest, into another layout (created with its parents).
    let by_digest = format!("{}/{REPO}@{digest}", reg.host());
    let layout2 = work.path().join("deeper/layout2");
    let pulled2 = pull(&by_digest, &layout2, &opts()).unwrap();
    assert_eq!(pulled2.manifest, pulled.manifest);
    assert_eq!(pulled2.reference, by_digest);
    check_layout(&layout2, &pulled2);

    // An unknown tag, an unknown digest: errors naming the reference.
    let e = pull(&reg.reference("nope"), &layout2, &opts()).unwrap_err();
    assert!(e.to_string().contains(&reg.reference("nope")), "{e}");
    let unknown = format!("{}/{REPO}@sha256:{}", reg.host(), "0".repeat(64));
    let e = pull(&unknown, &layout2, &opts()).unwrap_err();
    assert!(e.to_string().contains(&unknown), "{e}");
    let e = pull("not a reference", &layout2, &opts()).unwrap_err();
    assert!(matches!(e, PullError::InvalidReference { .. }), "{e}");
}

#[test]
fn multi_platform_index() {
    let work = tempfile::tempdir().unwrap();
    let img = make_image(
        work.path(),
        "amd",
        "amd64",
        &[("bin/tool", "amd64 tool\n"), ("etc/os", "amd64 os\n")],
    );
    make_image(
        work.path(),
        "arm",
        "arm64",
        &[("bin/tool", "arm64 tool\n"), ("etc/os", "arm64 os\n")],
    );
    let reg = Registry::start(Auth::None, None);
    reg.push(&img, "amd", &[]);
    reg.push(&img, "arm", &[]);
    let (amd, arm) = (reg.raw_manifest("amd", &[]), reg.raw_manifest("arm", &[]));
    let entry = |m: &[u8], arch: &str, variant: &str| {
        let mut platform = serde_json::json!({ "os": "linux", "architecture": arch });
        if !variant.is_empty() {
            platform["variant"] = variant.into();
        }
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(m)),
            "size": m.len(),
            "platform": platform,
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64", ""), entry(&arm, "arm64", "v8")],
    }))
    .unwrap();
    let (status, resp) = reg.http(
        "PUT",
        &format!("/v2/{REPO}/manifests/multi"),
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    assert_eq!(status, 201, "{resp}");
    let index_hex = sha256_hex(&index);

    let host = if std::env::consts::ARCH == "aarch64" {
        &arm
    } else {
        &amd
    };
    let layout = work.path().join("layout");
    let pulled = pull(&reg.reference("multi"), &layout, &opts()).unwrap();
    assert_eq!(
        pulled.manifest.digest,
        format!("sha256:{}", sha256_hex(host))
    );
    check_layout(&layout, &pulled);
    assert!(layout.join("blobs/sha256").join(&index_hex).exists());

    let pulled = pull(
        &reg.reference("multi"),
        &layout,
        &opts().platform("linux/arm64"),
    )
    .unwrap();
    assert_eq!(
        pulled.manifest.digest,
        format!("sha256:{}", sha256_hex(&arm))
    );
    let manifest = check_layout(&layout, &pulled);
    let config = &manifest["config"]["digest"].as_str().unwrap()[7..];
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(config)).unwrap())
            .unwrap();
    assert_eq!(config["architecture"], "arm64");

    let e = pull(
        &reg.reference("multi"),
        &layout,
        &opts().platform("linux/s390x"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PullError::NoPlatform { .. }), "{msg}");
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm64/v8") && msg.contains(&index_hex),
        "{msg}"
    );
    let e = pull(&reg.reference("multi"), &layout, &opts().platform("linux")).unwrap_err();
    assert!(matches!(e, PullError::InvalidPlatform { .. }), "{e}");
}

/// openssl: a CA and a server certificate for 127.0.0.1 it signed:
/// (ca.pem, server.pem, server.key).
fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=rcrun test CA"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args(["req", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.pem")));
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

#[test]
fn basic_auth_over_tls() {
    let work = tempfile::tempdir().unwrap();
    let img = make_image(
        work.path(),
        "v1",
        "amd64",
        &[("a", "first\n"), ("b", "second\n")],
    );
    let (ca, cert, key) = make_tls(work.path());
    let reg = Registry::start(Auth::Htpasswd("alice", "s3cret"), Some((&cert, &key)));
    reg.push(&img, "v1", &["--dest-creds", "alice:s3cret"]);
    let raw = reg.raw_manifest("v1", &["--creds", "alice:s3cret"]);
    let reference = reg.reference("v1");
    let layout = work.path().join("layout");
    let tls = || PullOptions::new().quiet(true).ca_cert(&ca);

    let e = pull(&reference, &layout, &tls().basic_auth("alice", "wrong")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PullError::Unauthorized { .. }), "{msg}");
    assert!(msg.contains(&reference) && msg.contains("401"), "{msg}");
    let e = pull(&reference, &layout, &tls()).unwrap_err();
    assert!(matches!(e, PullError::Unauthorized { .. }), "{e}");

    let e = pull(
        &reference,
        &layout,
        &PullOptions::new().quiet(true).basic_auth("alice", "s3cret"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&reference) && msg.contains("certificate"),
        "{msg}"
    );

    let pulled = pull(&reference, &layout, &tls().basic_auth("alice", "s3cret")).unwrap();
    assert_eq!(
        pulled.manifest.digest,
        format!("sha256:{}", sha256_hex(&raw))
    );
    check_layout(&layout, &pulled);

    let e = pull(
        &reference,
        &layout,
        &tls().ca_cert(work.path().join("missing.pem")),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

/// A token realm on 127.0.0.1: signs RS256 JWTs (openssl) for the scopes
/// asked, with its certificate in the `x5c` header; records each request.
struct Realm {
    port: u16,
    dir: PathBuf,
    /// Every request.
    seen: Arc<Mutex<Vec<TokenRequest>>>,
    /// Whether a token is given without credentials.
    anonymous: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A request the realm served.
#[derive(Clone)]
struct TokenRequest {
    query: Vec<(String, String)>,
    /// The Authorization header.
    auth: String,
    agent: String,
}

const REALM_USER: (&str, &str) = ("alice", "t0ken-pass");

impl Realm {
    fn start(dir: &Path) -> Realm {
        let dir = dir.to_path_buf();
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=rcrun test token issuer"])
            .arg("-keyout")
            .arg(dir.join("token.key"))
            .arg("-out")
            .arg(dir.join("token.pem")));
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("token.pem")));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let anonymous = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, anonymous, stop, key) = (
                seen.clone(),
                anonymous.clone(),
                stop.clone(),
                dir.join("token.key"),
            );
            let x5c = base64::engine::general_purpose::STANDARD.encode(der);
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let _ = serve_token(conn, &key, &x5c, &seen, anonymous.load(Ordering::SeqCst));
                }
            })
        };
        Realm {
            port,
            dir,
            seen,
            anonymous,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for Realm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap();
                out.push(h);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// One token request.
fn serve_token(
    mut conn: TcpStream,
    key: &Path,
    x5c: &str,
    seen: &Mutex<Vec<TokenRequest>>,
    anonymous: bool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split(' ').nth(1).unwrap_or("").to_string();
    let (mut auth, mut agent) = (String::new(), String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "authorization" => auth = value.trim().to_string(),
                "user-agent" => agent = value.trim().to_string(),
                _ => {}
            }
        }
    }
    let query: Vec<(String, String)> = target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    seen.lock().unwrap().push(TokenRequest {
        query: query.clone(),
        auth: auth.clone(),
        agent,
    });
    let b64 = base64::engine::general_purpose::STANDARD;
    let good = format!(
        "Basic {}",
        b64.encode(format!("{}:{}", REALM_USER.0, REALM_USER.1))
    );
    let (status, body) = if auth == good || (auth.is_empty() && anonymous) {
        let access: Vec<serde_json::Value> = query
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let token = sign_jwt(key, x5c, access);
        (
            "200 OK",
            serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 })
                .to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"details":"wrong credentials"}"#.to_string(),
        )
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// A JWT the registry accepts: RS256, signed with openssl.
fn sign_jwt(key: &Path, x5c: &str, access: Vec<serde_json::Value>) -> String {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [x5c] });
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": REALM_USER.0, "aud": "test-registry",
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("{now}-{}", std::process::id()), "access": access,
    });
    let input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("{input}.{}", url.encode(out.stdout))
}

#[test]
fn bearer_token_challenge() {
    let work = tempfile::tempdir().unwrap();
    let img = make_image(
        work.path(),
        "v1",
        "amd64",
        &[("a", "token one\n"), ("b", "token two\n")],
    );
    let realm = Realm::start(work.path());
    let reg = Registry::start(Auth::Token(realm.url(), realm.dir.join("token.pem")), None);
    let creds = format!("{}:{}", REALM_USER.0, REALM_USER.1);
    reg.push(&img, "v1", &["--dest-creds", &creds]);
    let raw = reg.raw_manifest("v1", &["--creds", &creds]);
    let reference = reg.reference("v1");
    let ours = |realm: &Realm| {
        realm
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.agent.starts_with("rcrun/"))
            .cloned()
            .collect::<Vec<_>>()
    };

    // With credentials sent to the realm.
    let layout = work.path().join("layout");
    let pulled = pull(
        &reference,
        &layout,
        &opts().basic_auth(REALM_USER.0, REALM_USER.1),
    )
    .unwrap();
    assert_eq!(
        pulled.manifest.digest,
        format!("sha256:{}", sha256_hex(&raw))
    );
    check_layout(&layout, &pulled);
    let seen = ours(&realm);
    assert!(!seen.is_empty(), "the realm saw no request from rcrun");
    for TokenRequest { query, auth, .. } in &seen {
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(q("scope"), Some(format!("repository:{REPO}:pull").as_str()));
        assert_eq!(q("service"), Some("test-registry"));
        assert!(auth.starts_with("Basic "), "{auth}");
    }

    // Wrong credentials, or none where the realm wants some.
    let e = pull(&reference, &layout, &opts().basic_auth("alice", "bad")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PullError::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains(&reference) && msg.contains("wrong credentials"),
        "{msg}"
    );
    let e = pull(&reference, &layout, &opts()).unwrap_err();
    assert!(matches!(e, PullError::Unauthorized { .. }), "{e}");

    // Anonymous tokens.
    realm.anonymous.store(true, Ordering::SeqCst);
    let n = ours(&realm).len();
    let layout2 = work.path().join("layout2");
    let pulled2 = pull(&reference, &layout2, &opts()).unwrap();
    assert_eq!(pulled2.manifest, pulled.manifest);
    check_layout(&layout2, &pulled2);
    let seen = ours(&realm);
    assert!(seen.len() > n);
    for TokenRequest { query, auth, .. } in &seen[n..] {
        assert!(auth.is_empty(), "{auth}");
        assert!(query.contains(&("scope".into(), format!("repository:{REPO}:pull"))));
    }
}

#[test]
fn corrupt_blob_refused() {
    let work = tempfile::tempdir().unwrap();
    let img = make_image(
        work.path(),
        "v1",
        "amd64",
        &[
            ("good", "intact layer\n"),
            ("bad", "this layer gets corrupted\n"),
        ],
    );
    let reg = Registry::start(Auth::None, None);
    reg.push(&img, "v1", &[]);
    let manifest: serde_json::Value = serde_json::from_slice(&reg.raw_manifest("v1", &[])).unwrap();
    let digest = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = reg.blob_data(&digest);
    let mut bytes = fs::read(&data).unwrap();
    for b in &mut bytes {
        *b ^= 0x5a; // same length, other content
    }
    fs::write(&data, &bytes).unwrap();

    let layout = work.path().join("layout");
    let e = pull(&reg.reference("v1"), &layout, &opts()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PullError::DigestMismatch { .. }), "{msg}");
    assert!(msg.contains(&digest), "{msg}");
    assert!(!layout.join("blobs/sha256").join(&digest[7..]).exists());
    assert_no_temp_files(&layout);
    // Neither is the manifest stored: its blobs are not all there.
    let raw = reg.raw_manifest("v1", &[]);
    assert!(!layout.join("blobs/sha256").join(sha256_hex(&raw)).exists());
}

/// `rcrun image pull` into the store, then `run --image` of what it pulled,
/// and a stored name not yet there pulled by `run --image` itself.
#[test]
fn cli_pull_then_run_image() {
    use common::image::{base_layer, layout, Comp, Layer};
    let work = tempfile::tempdir().unwrap();
    let lay = work.path().join("app");
    layout(
        &lay,
        "v1",
        &[
            base_layer(common::rootfs()),
            Layer::new().file("msg", b"pulled\n"),
        ],
        Comp::Gzip,
        serde_json::json!({"Cmd": ["cat", "/msg"]}),
    );
    let lay2 = work.path().join("app2");
    layout(
        &lay2,
        "v2",
        &[
            base_layer(common::rootfs()),
            Layer::new().file("msg2", b"second\n"),
        ],
        Comp::Gzip,
        serde_json::json!({"Cmd": ["cat", "/msg2"]}),
    );
    let reg = Registry::start(Auth::None, None);
    reg.push(&lay, "v1", &[]);
    reg.push(&lay2, "v2", &[]);
    let root = work.path().join("images");
    let state = work.path().join("state");
    let rcrun = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rcrun"))
            .arg("--root")
            .arg(&state)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let r = root.to_str().unwrap();
    let out = rcrun(&[
        "image",
        "--image-root",
        r,
        "pull",
        "--insecure-http",
        &reg.reference("v1"),
    ]);
    assert!(
        out.starts_with(&format!("{} sha256:", reg.reference("v1"))),
        "{out}"
    );
    let ids = [common::unique("pull"), common::unique("pull")];
    struct Clean<'a>(&'a [String]);
    impl Drop for Clean<'_> {
        fn drop(&mut self) {
            for id in self.0 {
                for h in [
                    "pids", "memory", "cpu", "freezer", "devices", "blkio", "cpuset", "unified", "",
                ] {
                    let d = Path::new("/sys/fs/cgroup").join(h).join("rcrun");
                    let _ = fs::remove_dir(d.join(id));
                    let _ = fs::remove_dir(d);
                }
            }
        }
    }
    let _c = Clean(&ids);
    let out = rcrun(&[
        "run",
        "--image",
        &reg.reference("v1"),
        "--image-root",
        r,
        &ids[0],
    ]);
    assert_eq!(out, "pulled\n");
    // Not in the store: run --image pulls it (plain HTTP to a registry
    // on 127.0.0.1, as dockerd).
    let out = rcrun(&[
        "run",
        "--image",
        &reg.reference("v2"),
        "--image-root",
        r,
        &ids[1],
    ]);
    assert_eq!(out, "second\n");
    let ls = rcrun(&["image", "--image-root", r, "ls"]);
    assert!(ls.contains(&reg.reference("v2")), "{ls}");
    assert!(fs::read_dir(root.join("containers"))
        .unwrap()
        .next()
        .is_none());
}

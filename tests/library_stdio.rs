//! The library's `Stdio`: a container's (and an exec'd process's)
//! standard streams are pipes and fifos the caller owns, and closing the
//! caller's end of stdin gives the process end-of-file.
//!
//! harness = false: sealing re-executes this binary before any thread.

mod common;

use common::library::Guard;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcrun::{CreateOptions, ExecOptions, Runtime, Stdio};

fn setup<'a>(rt: &'a Runtime, dir: &Path, name: &str, script: &str) -> (Guard<'a>, PathBuf) {
    common::library::bundle(rt, dir, name, script, |_| {})
}

/// A pipe: the read end as a file, the write end to give away.
fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r.into(), w)
}

/// A pipe: the read end to give away, the write end as a file.
fn feed_pipe() -> (OwnedFd, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r, w.into())
}

fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    s
}

fn output_through_pipes(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "stdio-pipes", "echo out; echo err >&2; exit 3");
    let ((out, w1), (err, w2)) = (pipe(), pipe());
    let opts = CreateOptions {
        stdio: Stdio {
            stdout: Some(w1),
            stderr: Some(w2),
            stdin: None,
        },
        ..CreateOptions::default()
    };
    let c = rt.run(&g.id, &b, opts).unwrap();
    // EOF comes only when no copy of the write ends is left: neither the
    // caller's (moved into the options) nor the runtime's.
    assert_eq!(read_all(out), "out\n");
    assert_eq!(read_all(err), "err\n");
    assert_eq!(c.wait().unwrap().code(), Some(3));
}

fn output_through_a_fifo(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "stdio-fifo", "echo through-the-fifo");
    let fifo = dir.join(format!("{}.fifo", g.id));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // As containerd opens its fifos: the reader first, non-blocking.
    let r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let opts = CreateOptions {
        stdio: Stdio {
            stdout: Some(w.into()),
            ..Stdio::default()
        },
        ..CreateOptions::default()
    };
    let c = rt.create(&g.id, &b, opts).unwrap();
    rt.start(&g.id).unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(0));
    let mut r = r;
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "through-the-fifo\n");
}

fn stdin_end_of_file(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "stdio-stdin", "cat; echo after-eof");
    let (inp, mut feed) = feed_pipe();
    let (out, w) = pipe();
    let opts = CreateOptions {
        stdio: Stdio {
            stdin: Some(inp),
            stdout: Some(w),
            stderr: None,
        },
        ..CreateOptions::default()
    };
    let c = rt.run(&g.id, &b, opts).unwrap();
    feed.write_all(b"hello\n").unwrap();
    drop(feed); // the container's cat sees EOF only if nobody else holds it
    assert_eq!(read_all(out), "hello\nafter-eof\n");
    assert_eq!(c.wait().unwrap().code(), Some(0));
}

fn exec_gets_its_own_streams(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "stdio-exec", "sleep 100");
    let c = rt.run(&g.id, &b, CreateOptions::default()).unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    let mut process: rcrun::oci_spec::runtime::Process =
        serde_json::from_value(spec["process"].clone()).unwrap();
    process.set_args(Some(vec![
        "sh".into(),
        "-c".into(),
        "read line; echo got:$line; echo to-err >&2; exit 7".into(),
    ]));
    for n in 0..2 {
        let (inp, mut feed) = feed_pipe();
        let ((out, w1), (err, w2)) = (pipe(), pipe());
        let p = rt
            .exec(
                &g.id,
                ExecOptions {
                    stdio: Stdio {
                        stdin: Some(inp),
                        stdout: Some(w1),
                        stderr: Some(w2),
                    },
                    ..ExecOptions::new(process.clone())
                },
            )
            .unwrap();
        writeln!(feed, "line{n}").unwrap();
        drop(feed);
        assert_eq!(read_all(out), format!("got:line{n}\n"));
        assert_eq!(read_all(err), "to-err\n");
        assert_eq!(p.wait().unwrap().code(), Some(7));
    }
    rt.kill(&g.id, libc::SIGKILL, false).unwrap();
    c.wait().unwrap();
}

fn refused_with_a_terminal(rt: &Runtime, dir: &Path) {
    let (g, b) = setup(rt, dir, "stdio-tty", "true");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    cfg["process"]["terminal"] = serde_json::json!(true);
    std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (_out, w) = pipe();
    let (_keep, console) = std::os::unix::net::UnixStream::pair().unwrap();
    let opts = CreateOptions {
        console: Some(console.into()),
        stdio: Stdio {
            stdout: Some(w),
            ..Stdio::default()
        },
        ..CreateOptions::default()
    };
    let e = rt.create(&g.id, &b, opts).unwrap_err();
    assert!(matches!(e, rcrun::Error::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("terminal"), "{e}");
    // Nothing half-done: no state, no cgroup.
    assert!(rt.state(&g.id).is_err());
    assert!(!Path::new("/sys/fs/cgroup/memory").join(&g.cgroup).exists());
    assert!(!Path::new("/sys/fs/cgroup").join(&g.cgroup).exists());
}

fn main() {
    rcrun::seal::ensure_sealed().expect("seal");
    let dir = tempfile::Builder::new()
        .prefix("rcrun-test.stdio")
        .tempdir()
        .unwrap();
    let rt = Runtime::new(dir.path().join("state"));
    use common::library::Test;
    let tests: [(&str, Test); 5] = [
        ("output_through_pipes", output_through_pipes),
        ("output_through_a_fifo", output_through_a_fifo),
        ("stdin_end_of_file", stdin_end_of_file),
        ("exec_gets_its_own_streams", exec_gets_its_own_streams),
        ("refused_with_a_terminal", refused_with_a_terminal),
    ];
    if common::library::run(&tests, &rt, dir.path()) > 0 {
        std::process::exit(1);
    }
}

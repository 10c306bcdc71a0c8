//! A process's standard streams from the paths containerd gives: fifos
//! (containerd reads and writes the other ends), `file://` paths, or none.
//!
//! Without a terminal the process writes straight into the stdout and
//! stderr fifos (no copying; the shim keeps no copy, so containerd sees
//! end-of-file when the process and its children are done), and reads its
//! stdin from a pipe that a thread fills from the stdin fifo, so that
//! `CloseIO` can end the input. With a terminal, two threads copy between
//! the fifos and the pty master, which stays here for `ResizePty`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// The paths containerd gives for a process (empty: none).
#[derive(Clone, Debug, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What the library gets for the process: its fds, or the socket that
/// receives the pty master.
pub enum Wiring {
    Fds(rcrun::Stdio),
    Console(UnixStream),
}

/// The shim's side of a process's streams.
#[derive(Default)]
pub struct Io {
    /// Where the process's input goes: the stdin pipe (no terminal) or a
    /// copy of the pty master; dropped by `CloseIO` (no terminal: the
    /// process reads end-of-file).
    stdin: Arc<Mutex<Option<File>>>,
    /// The pty master, for `ResizePty`.
    console: Option<OwnedFd>,
}

impl Io {
    /// Opens the streams of `paths`; the wiring goes to the library, and
    /// once the process exists, [`Io::attach`] takes the pty if there is
    /// one.
    pub fn open(paths: &Paths) -> std::io::Result<(Wiring, Pending)> {
        if paths.terminal {
            let (ours, theirs) = UnixStream::pair()?;
            let pending = Pending {
                paths: paths.clone(),
                console: Some(ours),
                io: Io::default(),
            };
            return Ok((Wiring::Console(theirs), pending));
        }
        let io = Io::default();
        let stdin = if paths.stdin.is_empty() {
            Some(dev_null()?)
        } else {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            *io.stdin.lock().unwrap_or_else(|e| e.into_inner()) = Some(File::from(w));
            copy_in(&paths.stdin, io.stdin.clone())?;
            Some(r)
        };
        let stdout = open_out(&paths.stdout)?;
        let stderr = if paths.stderr == paths.stdout && !paths.stdout.is_empty() {
            stdout.try_clone()?
        } else {
            open_out(&paths.stderr)?
        };
        let stdio = rcrun::Stdio {
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let pending = Pending {
            paths: paths.clone(),
            console: None,
            io,
        };
        Ok((Wiring::Fds(stdio), pending))
    }

    /// Ends the process's input (`CloseIO`).
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Sets the terminal's size (`ResizePty`); nothing without one.
    pub fn resize(&self, cols: u32, rows: u32) -> rcrun::Result<()> {
        match &self.console {
            Some(m) => rcrun::console::resize(m, clamp(rows), clamp(cols)),
            None => Ok(()),
        }
    }
}

fn clamp(n: u32) -> u16 {
    n.min(u16::MAX.into()) as u16
}

/// Streams opened before the process exists.
pub struct Pending {
    paths: Paths,
    console: Option<UnixStream>,
    io: Io,
}

impl Pending {
    /// Once the library made the process: receives the pty master, if
    /// any, and starts copying between it and the fifos.
    pub fn attach(mut self) -> rcrun::Result<Io> {
        let Some(sock) = self.console.take() else {
            return Ok(self.io);
        };
        let master = rcrun::console::recv_pty(&OwnedFd::from(sock))?;
        let io_err = |e: std::io::Error| rcrun::Error::Io {
            context: "the console's streams".into(),
            source: e,
        };
        let out = File::from(open_out(&self.paths.stdout).map_err(io_err)?);
        copy(File::from(master.try_clone().map_err(io_err)?), out).map_err(io_err)?;
        if !self.paths.stdin.is_empty() {
            let input = File::from(master.try_clone().map_err(io_err)?);
            *self.io.stdin.lock().unwrap_or_else(|e| e.into_inner()) = Some(input);
            copy_in(&self.paths.stdin, self.io.stdin.clone()).map_err(io_err)?;
        }
        self.io.console = Some(master);
        Ok(self.io)
    }
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(File::open("/dev/null")?.into())
}

/// A write end for `path`: a fifo (opened without waiting for its
/// reader, then reopened write-only so that the process holds no read
/// end), a `file://` path (appended to), or /dev/null for none.
pub fn open_out(path: &str) -> std::io::Result<OwnedFd> {
    if path.is_empty() {
        return Ok(OpenOptions::new().write(true).open("/dev/null")?.into());
    }
    if let Some(p) = path.strip_prefix("file://") {
        return Ok(OpenOptions::new().append(true).create(true).open(p)?.into());
    }
    if path.contains("://") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{path}: rcrun's shim takes fifos and file:// paths, not logging binaries"),
        ));
    }
    // O_RDWR on a fifo never waits; /proc/self/fd reopens it write-only
    // at once because a reader (this very fd) exists.
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    let w = OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", rw.as_raw_fd()))?;
    Ok(w.into())
}

/// Copies the stdin fifo at `path` into `sink` until containerd closes
/// it, then drops the sink (the process reads end-of-file).
fn copy_in(path: &str, sink: Arc<Mutex<Option<File>>>) -> std::io::Result<()> {
    let path = path.to_string();
    spawn("stdin", move || {
        // Waits for containerd's writer, which it opens with the task.
        let Ok(mut from) = File::open(&path) else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = sink.lock().unwrap_or_else(|e| e.into_inner());
            let Some(to) = guard.as_mut() else { break };
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        sink.lock().unwrap_or_else(|e| e.into_inner()).take();
    })
}

/// Copies `from` into `to` until end-of-file or an error (EIO: the pty's
/// last slave closed).
fn copy(mut from: File, mut to: File) -> std::io::Result<()> {
    spawn("stdout", move || {
        let _ = std::io::copy(&mut from, &mut to);
    })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(drop)
}

//! The console socket protocol (runc's docs/terminals.md).
//!
//! With `process.terminal`, the init process opens a pty inside the
//! container and sends the master to an AF_UNIX socket with SCM_RIGHTS,
//! the pty's name as payload. `--console-socket PATH` names the socket of
//! a listener (conmon, containerd's shim); `run` in the foreground makes
//! its own pair and copies between the pty and its own stdio.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::Error;

/// Connects to the listener at `path`.
///
/// ```no_run
/// # fn main() -> rcrun::Result<()> {
/// let sock = rcrun::console::connect("/run/conmon/console.sock".as_ref())?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Io`] naming the socket.
pub fn connect(path: &Path) -> Result<OwnedFd, Error> {
    let s = UnixStream::connect(path)
        .map_err(|e| Error::io(format!("--console-socket {}", path.display()), e))?;
    Ok(OwnedFd::from(s))
}

/// Receives a pty master sent by the init process on `sock`.
///
/// ```no_run
/// # fn main() -> rcrun::Result<()> {
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
/// let opts = rcrun::CreateOptions { console: Some(theirs.into()), ..Default::default() };
/// let rt = rcrun::Runtime::new("/run/my-agent");
/// rt.run("tty", "/srv/bundles/tty".as_ref(), opts)?;
/// let master = rcrun::console::recv_pty(&ours.into())?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Io`] when nothing (or no fd) arrives.
pub fn recv_pty(sock: &OwnedFd) -> Result<OwnedFd, Error> {
    let mut name = [0u8; 4096];
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // SAFETY: an all-zero msghdr is valid; it points into live buffers.
    unsafe {
        let mut m: libc::msghdr = std::mem::zeroed();
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf.0.as_mut_ptr().cast();
        m.msg_controllen = cbuf.0.len();
        if libc::recvmsg(sock.as_raw_fd(), &mut m, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(Error::io(
                "receiving the pty",
                std::io::Error::last_os_error(),
            ));
        }
        let c = libc::CMSG_FIRSTHDR(&m);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(Error::io(
                "receiving the pty",
                std::io::Error::other("no fd received"),
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Sets the size of the terminal whose pty master is `master` (the init's
/// or an exec'd process's, as [`recv_pty`] received it): the processes on
/// it get SIGWINCH and see `rows` x `cols` (what containerd's
/// ResizePty does).
///
/// ```no_run
/// # fn f(master: std::os::fd::OwnedFd) -> Result<(), rcrun::Error> {
/// rcrun::console::resize(&master, 40, 120)?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Io`] when `master` is not a terminal.
pub fn resize(master: &impl std::os::fd::AsFd, rows: u16, cols: u16) -> Result<(), Error> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own for the call.
    let r = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(Error::io(
            "resizing the pty",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[doc(hidden)] // plumbing of the runtime and its tests
/// Copies stdin to the pty and the pty to stdout until the pty closes
/// (the container's processes have all closed it). Puts a terminal stdin
/// in raw mode meanwhile.
pub fn proxy(master: OwnedFd) {
    use nix::sys::termios;
    let stdin = std::io::stdin();
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        // Give the pty the terminal's size.
        if let Ok(ws) = winsize(0) {
            // SAFETY: valid fd and winsize.
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    }
    let mut out = std::fs::File::from(master.try_clone().expect("dup pty"));
    let mut inp = std::fs::File::from(master);
    std::thread::spawn(move || {
        let mut b = [0u8; 8192];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut b) {
            if n == 0 || inp.write_all(&b[..n]).is_err() {
                break;
            }
        }
    });
    let mut b = [0u8; 8192];
    let mut stdout = std::io::stdout();
    // EIO once every slave fd is closed.
    while let Ok(n) = out.read(&mut b) {
        if n == 0 || stdout.write_all(&b[..n]).is_err() {
            break;
        }
        let _ = stdout.flush();
    }
    if let Some(t) = saved {
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &t);
    }
}

fn winsize(fd: i32) -> std::io::Result<libc::winsize> {
    // SAFETY: all-zero winsize is a valid out-buffer.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ws)
}

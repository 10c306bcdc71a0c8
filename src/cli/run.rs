use std::os::fd::OwnedFd;

use clap::Args;

use super::{anyhow_lite::Result, CreateFlags, Global};

/// The run command creates an instance of a container for a bundle and
/// starts it. In the foreground (the default) rcrun waits for the
/// container, forwards the signals it receives to it, exits with its exit
/// status (128+N when it was killed by signal N) and deletes it unless
/// --keep is given.
#[derive(Debug, Args)]
pub struct Run {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits
    #[arg(long)]
    pub keep: bool,
    /// Disable the use of the subreaper used to reap reparented processes
    #[arg(long)]
    pub no_subreaper: bool,
    /// Run an image instead of a bundle: a stored NAME[:TAG], or oci:DIR[:TAG],
    /// oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (imported first).
    /// Its rootfs is an overlay of the stored layers, removed on delete
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The image store's root directory (with --image)
    #[arg(long, value_name = "DIR", default_value = rcrun::image::DEFAULT_ROOT, requires = "image")]
    pub image_root: std::path::PathBuf,
    /// With --image: run the process on a terminal
    #[arg(short, long, requires = "image")]
    pub tty: bool,
    /// With --image: the command to run instead of the image's Cmd (after --)
    #[arg(last = true, value_name = "COMMAND", requires = "image")]
    pub command: Vec<String>,
}

impl Run {
    /// `--image`: the image found (or imported) and prepared as the
    /// container's bundle.
    fn prepare_image(&self, image: &str) -> Result<rcrun::image::Prepared> {
        use rcrun::image::{ImageStore, Source, UnpackOptions};
        let store = ImageStore::open(&self.image_root)?;
        let mut opts = UnpackOptions::new();
        opts.args = self.command.clone();
        opts.terminal = self.tty;
        opts.progress = true;
        let name = match Source::parse(image)? {
            #[cfg(feature = "pull")]
            Source::Stored(n) if !store.list()?.iter().any(|i| i.name == n) => {
                // Find or pull; as dockerd, a registry on this machine
                // speaks plain HTTP.
                let host = n.split('/').next().unwrap_or("");
                let local = host.starts_with("localhost") || host.starts_with("127.");
                let o = rcrun::image::pull::PullOptions::new().insecure_http(local);
                store.pull(&n, &o)?.name
            }
            Source::Stored(n) => n,
            src => store.import_with(&src, None, &opts)?.name,
        };
        Ok(store.prepare(&name, &self.flags.id, &opts)?)
    }
}

/// Signals rcrun passes on to the container in the foreground.
pub(super) fn forwarded() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut s = SigSet::empty();
    for sig in Signal::iterator() {
        if !matches!(
            sig,
            Signal::SIGCHLD
                | Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGURG
                | Signal::SIGWINCH
                | Signal::SIGPIPE
        ) {
            s.add(sig);
        }
    }
    s
}

/// A container process in the foreground: rcrun's signals go to it and
/// its terminal, if any, is copied to and from rcrun's stdio.
pub(super) struct Foreground {
    pid: i32,
    /// The blocked signals as a signalfd, and the process as a pidfd:
    /// [`Foreground::wait`] forwards the one until the other is readable,
    /// on the main thread. Without pidfds (Linux < 5.3) a thread forwards.
    fds: Option<(nix::sys::signalfd::SignalFd, OwnedFd)>,
    proxy: Option<std::thread::JoinHandle<()>>,
}

impl Foreground {
    /// `sigs` must be blocked already (see [`forwarded`]); `console` is
    /// the socket the pty arrives on when the process has a terminal.
    pub(super) fn attach(
        c: &rcrun::Container,
        sigs: nix::sys::signal::SigSet,
        console: Option<OwnedFd>,
    ) -> Result<Foreground> {
        let pid = c.pid();
        let fds = c.pidfd().and_then(|p| {
            let flags = nix::sys::signalfd::SfdFlags::SFD_CLOEXEC
                | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK;
            Some((
                nix::sys::signalfd::SignalFd::with_flags(&sigs, flags).ok()?,
                p,
            ))
        });
        if fds.is_none() {
            std::thread::spawn(move || loop {
                if let Ok(s) = sigs.wait() {
                    // SAFETY: plain kill of the container's process.
                    unsafe { libc::kill(pid, s as i32) };
                }
            });
        }
        let proxy = match console.filter(|_| c.terminal()) {
            Some(sock) => {
                let master = rcrun::console::recv_pty(&sock)?;
                Some(std::thread::spawn(move || rcrun::console::proxy(master)))
            }
            None => None,
        };
        Ok(Foreground { pid, fds, proxy })
    }

    /// Forwards signals until the process exits; returns its status as
    /// [`rcrun::Container::wait`] does.
    pub(super) fn wait(&self, c: &rcrun::Container) -> Result<i32> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        if let Some((sfd, pidfd)) = &self.fds {
            loop {
                let mut p = [
                    PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut p, PollTimeout::NONE) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(std::io::Error::from(e).into()),
                    Ok(_) => {}
                }
                if p[0].any().unwrap_or(true) {
                    break;
                }
                while let Ok(Some(info)) = sfd.read_signal() {
                    // SAFETY: plain kill of the container's process.
                    unsafe { libc::kill(self.pid, info.ssi_signo as i32) };
                }
            }
        }
        Ok(c.wait()?.shell_code())
    }

    /// Drains what the process wrote before its pty closed.
    pub(super) fn finish(self) {
        if let Some(p) = self.proxy {
            let _ = p.join();
        }
    }
}

impl Run {
    /// `IMAGES`: whether this binary has the image code (`rcrun-image`);
    /// `rcrun` hands `run --image` over before it gets here.
    pub fn run<const IMAGES: bool>(self, g: &Global) -> Result<i32> {
        let rt = g.runtime();
        let id = self.flags.id.clone();
        let mut opts = self.flags.options();
        // Before any signal is blocked: an image takes a while to import,
        // and ^C must stop it.
        let mut bundle = self.flags.bundle.clone();
        if let Some(image) = self.image.as_ref().filter(|_| IMAGES) {
            let p = self.prepare_image(image)?;
            bundle = p.bundle().to_path_buf();
            opts.image = Some(p);
        }
        // In the foreground without --console-socket, offer a socket of our
        // own; the library uses it only if the container has a terminal.
        let mut console: Option<OwnedFd> = None;
        if !self.detach && opts.console_socket.is_none() {
            let (a, b) = std::os::unix::net::UnixStream::pair()?;
            opts.console = Some(a.into());
            console = Some(b.into());
        }
        if !self.detach && !self.no_subreaper {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
        let sigs = forwarded();
        if !self.detach {
            // Blocked here, taken by the forwarding thread; the container's
            // init resets its mask.
            sigs.thread_block()?;
        }
        let prepared = opts.image.clone();
        let r = rt.run(&id, &bundle, opts);
        if let (Err(_), Some(p)) = (&r, &prepared) {
            // Before a sealed re-execution prepares it again.
            p.release()?;
        }
        let c = super::or_reseal(r)?;
        if self.detach {
            return Ok(0);
        }
        let fg = Foreground::attach(&c, sigs, console)?;
        let code = fg.wait(&c)?;
        if !self.keep {
            rt.delete(&id, true)?;
        }
        fg.finish();
        Ok(code)
    }
}

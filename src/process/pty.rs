//! The container process's terminal, from the init's side: a pty pair in
//! the container's devpts, the master handed to the console socket, the
//! peer made the controlling terminal and stdio. Runs between clone and
//! exec: async-signal-safe, as everything in `child`.

use super::plan::ChildPlan;
use crate::sys::{self, check, close, send_fd, Errno};

/// Opens a pty pair in the container's devpts, sends the master to the
/// console socket (runc's protocol: SCM_RIGHTS, the pty name as payload)
/// and makes the peer the controlling terminal and stdio.
pub(crate) fn console(p: &ChildPlan) -> Result<(), Errno> {
    // SAFETY: constant path.
    let master = check(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let r = (|| {
        let unlock: libc::c_int = 0;
        let mut n: libc::c_uint = 0;
        // SAFETY: ioctls on our master fd with valid argument pointers.
        unsafe {
            check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
            check(libc::ioctl(master, libc::TIOCGPTN, &mut n))?;
        }
        // SAFETY: TIOCGPTPEER opens the peer without a path lookup.
        let slave = check(unsafe {
            libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY)
        })?;
        if let Some(ws) = &p.process.console_size {
            // SAFETY: ws is a valid winsize.
            unsafe { libc::ioctl(slave, libc::TIOCSWINSZ, ws as *const libc::winsize) };
        }
        let mut name = [0u8; 32];
        let len = pts_name(&mut name, n);
        send_fd(p.wiring.console_fd, &name[..len], master)?;
        // config-linux.md: /dev/console is the pty. Refuse a symlink
        // planted there (CVE-2025-52565): create a plain file, bind the
        // pty from its fd.
        let console = c"/dev/console";
        // SAFETY: constant path; O_EXCL never opens an existing device.
        let f = unsafe {
            libc::open(
                console.as_ptr(),
                libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_WRONLY
                    | libc::O_NOFOLLOW
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
                0o600,
            )
        };
        if f >= 0 {
            close(f);
        } else if sys::errno() == libc::EEXIST {
            // SAFETY: all-zero stat is a valid out-buffer.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            check(unsafe { libc::lstat(console.as_ptr(), &mut st) })?;
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(libc::ELOOP);
            }
        } else {
            return Err(sys::errno());
        }
        if p.rootfs.is_some() {
            crate::rootfs::setup::bind_fd(slave, c"/dev/console")?;
        }
        // SAFETY: fchown/ioctl/dup2 on our own fds.
        unsafe {
            // The owner only: the group stays devpts' (tty), as runc.
            libc::fchown(slave, p.process.uid, u32::MAX);
            check(libc::ioctl(slave, libc::TIOCSCTTY, 0))?;
            for fd in 0..3 {
                check(libc::dup2(slave, fd))?;
            }
        }
        if slave > 2 {
            close(slave);
        }
        Ok(())
    })();
    close(master);
    close(p.wiring.console_fd);
    r
}

fn pts_name(buf: &mut [u8; 32], n: u32) -> usize {
    sys::prefixed_number(buf, b"/dev/pts/", n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pts_names() {
        let mut b = [0u8; 32];
        let n = super::pts_name(&mut b, 0);
        assert_eq!(&b[..n], b"/dev/pts/0");
        let n = super::pts_name(&mut b, 4711);
        assert_eq!(&b[..n], b"/dev/pts/4711");
    }
}

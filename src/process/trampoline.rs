//! The exec trampoline: how a container's init starts the user's program
//! without the rcrun binary ever being the program of a process that runs
//! the container's code (CVE-2019-5736).
//!
//! The init is a clone of the runtime, so until it execs, its
//! `/proc/<pid>/exe` is the runtime's binary. While it sets the container
//! up it is non-dumpable: no container process without `CAP_SYS_PTRACE`
//! over the host's user namespace can open that link (or ptrace it, or
//! read its fds). The danger is the exec itself: a container whose
//! program is `#!/proc/self/exe` (or any path that resolves to the
//! executing process's own binary) would make the kernel run the runtime's
//! binary as the container's program, dumpable, and another container
//! process could then open it through `/proc/<pid>/exe` and overwrite the
//! host's file once it stops running.
//!
//! runc and crun close that hole by running the whole runtime from a
//! sealed copy (or a read-only overlay) of itself: a second exec of the
//! full binary for every container. rcrun instead has the init execute a
//! 1 KB program, `trampoline.c`, from a sealed memfd, and the trampoline
//! executes the user's program. Whatever that program resolves to, the
//! executing process's binary is then the sealed memfd, which cannot be
//! written. This is runc's former `runc-dmz` design, with the cases where
//! runc found it unsafe or unfaithful routed to the sealed runtime
//! instead ([`suffices`]).
//!
//! The init executes the trampoline as soon as the container is set up,
//! and the trampoline tells the runtime READY and waits for `start`
//! itself (the exec fifo, or the runtime's go for `run`): a created
//! container, which `exec` may join with any capability (`exec --cap
//! CAP_SYS_PTRACE`), never holds a process whose `/proc/<pid>/exe` is the
//! rcrun binary. Its command line carries, in `argv[0]`, the numbers of
//! the fds that must close when the user's program starts (the sync
//! socket, the error file, the exec fifo: that is how the runtime learns
//! that it started), the failure message to send if its `execve` fails,
//! and the messages of the wait; see `trampoline.c`.

use std::io::{Result, Write};
use std::os::fd::OwnedFd;

use oci_spec::runtime::{Capability, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Spec};

#[cfg(rcrun_trampoline)]
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trampoline"));
#[cfg(not(rcrun_trampoline))]
static PROGRAM: &[u8] = &[];

/// Whether this build has the trampoline (x86_64 Linux).
pub(crate) fn available() -> bool {
    !PROGRAM.is_empty()
}

/// The trampoline in a new sealed, executable memfd (close-on-exec: the
/// init executes it through the fd with `execveat`).
pub(crate) fn load() -> Result<OwnedFd> {
    crate::seal::sealed_memfd(c"rcrun-exec", |fd| {
        std::fs::File::from(fd.try_clone()?).write_all(PROGRAM)
    })
}

/// Whether the trampoline protects a container made from `spec` as well
/// as running the whole runtime sealed would; the reason why not
/// otherwise. It does not when:
/// - a process outside the container could see the init (no new pid
///   namespace: the host's, or one shared by path);
/// - the container's processes may hold `CAP_SYS_PTRACE` over the host's
///   user namespace (in the bounding set, no user namespace): they could
///   open the non-dumpable init's `/proc/<pid>/exe` while it sets up;
/// - a non-root user has permitted or effective capabilities that are not
///   ambient: the trampoline's exec would drop them before the user's
///   program is executed (a different result with `noNewPrivileges` and
///   file capabilities, or a program only their DAC overrides may run);
/// - an LSM label or AppArmor profile is set: it would apply to the
///   trampoline's exec, not the program's;
/// - startContainer hooks run: the init executes them from the container
///   too;
/// - a seccomp profile might refuse a system call that the init and the
///   trampoline make after it is loaded ([`AFTER_SECCOMP`]).
pub(crate) fn suffices(spec: &Spec) -> std::result::Result<(), &'static str> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let ns = |t| namespaces.into_iter().flatten().find(|n| n.typ() == t);
    if !ns(LinuxNamespaceType::Pid).is_some_and(|n| n.path().is_none()) {
        return Err("the container has no pid namespace of its own");
    }
    let Some(process) = spec.process() else {
        return Ok(());
    };
    let caps = process.capabilities().as_ref();
    let has = |set: Option<&std::collections::HashSet<Capability>>, c| {
        set.is_some_and(|s| s.contains(&c))
    };
    if ns(LinuxNamespaceType::User).is_none()
        && (caps.is_none()
            || has(
                caps.and_then(|c| c.bounding().as_ref()),
                Capability::SysPtrace,
            ))
    {
        return Err("its processes may have CAP_SYS_PTRACE");
    }
    if process.user().uid() != 0 {
        if let Some(c) = caps {
            let empty = Default::default();
            let ambient = c.ambient().as_ref().unwrap_or(&empty);
            let within = |s: &Option<std::collections::HashSet<Capability>>| {
                s.as_ref().is_none_or(|s| s.is_subset(ambient))
            };
            if !within(c.permitted()) || !within(c.effective()) {
                return Err("a non-root user has capabilities that are not ambient");
            }
        }
    }
    if process.apparmor_profile().is_some() || process.selinux_label().is_some() {
        return Err("an AppArmor profile or SELinux label is set");
    }
    if spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .is_some_and(|h| !h.is_empty())
    {
        return Err("startContainer hooks run in the container");
    }
    if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
        if !AFTER_SECCOMP.iter().all(|n| allows(s, n)) {
            return Err("the seccomp profile may refuse a system call of the exec trampoline");
        }
    }
    Ok(())
}

/// The system calls the init and the trampoline make after the seccomp
/// filter is loaded, beyond those of the wait for `start` (which the
/// init made before the trampoline existed): a filter that might refuse
/// one needs the sealed runtime.
pub(crate) const AFTER_SECCOMP: [&str; 3] = ["execveat", "fcntl", "prctl"];

/// Whether `profile` lets system call `name` through whatever its
/// arguments.
fn allows(profile: &LinuxSeccomp, name: &str) -> bool {
    let pass = |a: LinuxSeccompAction| {
        matches!(
            a,
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let mut rules = profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .peekable();
    if rules.peek().is_none() {
        return pass(profile.default_action());
    }
    let mut unconditional = false;
    for r in rules {
        if !pass(r.action()) {
            return false;
        }
        unconditional |= r.args().as_ref().is_none_or(|a| a.is_empty());
    }
    unconditional || pass(profile.default_action())
}

/// Room for the trampoline's `argv[0]`: seven numbers and their commas.
pub(crate) const HEADER_CAP: usize = 7 * 21;

/// Writes the trampoline's `argv[0]` into `out`, NUL-terminated: `kind`
/// and `stage` of the failure message, the sync socket, error file and
/// exec fifo fds (-1 for none), then the kinds of the READY message to
/// send and of the GO message to wait for (0 for none). Async-signal-safe
/// (no allocation): the init calls it between clone and exec.
pub(crate) fn header(out: &mut [u8; HEADER_CAP], nums: [i64; 7]) {
    let mut at = 0;
    for (i, n) in nums.into_iter().enumerate() {
        if i > 0 {
            out[at] = b',';
            at += 1;
        }
        if n < 0 {
            out[at] = b'-';
            at += 1;
        }
        let mut v = n.unsigned_abs();
        let start = at;
        loop {
            out[at] = b'0' + (v % 10) as u8;
            at += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        out[start..at].reverse();
    }
    out[at] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, RawFd};

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
                "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
                    "permitted": ["CAP_CHOWN"]}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        });
        merge(&mut base, v);
        serde_json::from_value(base).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    #[test]
    fn a_plain_container_needs_no_sealed_runtime() {
        assert_eq!(suffices(&spec(serde_json::json!({}))), Ok(()));
    }

    #[test]
    fn each_unsafe_case_needs_the_sealed_runtime() {
        use serde_json::json;
        for case in [
            json!({"linux": {"namespaces": [{"type": "mount"}]}}),
            json!({"process": null, "linux": {"namespaces": [{"type": "mount"}]}}),
            json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}),
            json!({"process": {"capabilities": {"bounding": ["CAP_SYS_PTRACE"]}}}),
            json!({"process": {"capabilities": null}}),
            json!({"process": {"user": {"uid": 1000, "gid": 0}}}),
            json!({"process": {"apparmorProfile": "docker-default"}}),
            json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}),
            json!({"hooks": {"startContainer": [{"path": "/bin/true"}]}}),
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["execve", "fcntl"], "action": "SCMP_ACT_ALLOW"}]}}}),
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["fcntl"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}]}}}),
        ] {
            assert!(suffices(&spec(case.clone())).is_err(), "{case}");
        }
    }

    #[test]
    fn the_safe_variants_of_those_cases_do_not() {
        use serde_json::json;
        for case in [
            // CAP_SYS_PTRACE in a user namespace is not over the host's.
            json!({"process": {"capabilities": {"bounding": ["CAP_SYS_PTRACE"]}},
                "linux": {"namespaces": [{"type": "pid"}, {"type": "user"}]}}),
            // A non-root user whose capabilities are all ambient.
            json!({"process": {"user": {"uid": 1000, "gid": 0}, "capabilities":
                {"ambient": ["CAP_CHOWN"]}}}),
            json!({"process": {"user": {"uid": 1000, "gid": 0}, "capabilities":
                {"effective": [], "permitted": []}}}),
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["execve", "execveat", "fcntl", "prctl"],
                    "action": "SCMP_ACT_ALLOW"}]}}}),
            json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}}}),
        ] {
            assert_eq!(suffices(&spec(case.clone())), Ok(()), "{case}");
        }
    }

    #[test]
    fn header_is_five_comma_separated_numbers() {
        let mut b = [0xffu8; HEADER_CAP];
        header(&mut b, [5, 31, 7, -1, i32::MAX as i64, 4, i64::MIN]);
        let end = b.iter().position(|&c| c == 0).unwrap();
        assert_eq!(&b[..end], b"5,31,7,-1,2147483647,4,-9223372036854775808");
        header(&mut b, [0; 7]);
        assert_eq!(&b[..14], b"0,0,0,0,0,0,0\0");
    }

    /// The trampoline itself, run from its sealed memfd: the program it
    /// is given runs with the given argv; when it cannot, the failure
    /// message reaches the socket and the file, and the fds it was told
    /// about close when the program starts.
    #[test]
    #[cfg(rcrun_trampoline)]
    fn the_trampoline_executes_the_program_or_reports_why_not() {
        use std::os::unix::process::CommandExt;
        let fd = load().unwrap();
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & crate::seal::MUST_SEAL, crate::seal::MUST_SEAL);
        let exe = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let err = tempfile::tempfile().unwrap();
        let (braw, eraw) = (b.as_raw_fd(), err.as_raw_fd());
        let run = |hdr: String, args: &[&str]| {
            let mut c = std::process::Command::new(&exe);
            c.arg0(hdr).args(args);
            // SAFETY: only fcntl in the child: clear close-on-exec.
            unsafe {
                c.pre_exec(move || {
                    libc::fcntl(braw, libc::F_SETFD, 0);
                    libc::fcntl(eraw, libc::F_SETFD, 0);
                    Ok(())
                })
            };
            c
        };
        let run = |hdr: String, args: &[&str]| run(hdr, args).output().unwrap();
        // The program runs with its own argv (argv[0] included); the
        // reported fds are closed in it (ls of its fds shows neither).
        let o = run(
            format!("5,9,{braw},{eraw},-1,0,0"),
            &[
                "/bin/sh",
                "my-sh",
                "-c",
                "tr '\\0' ' ' < /proc/$$/cmdline; echo; ls /proc/self/fd",
                "a",
            ],
        );
        assert!(o.status.success(), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with("my-sh -c "), "{out}");
        assert!(out.lines().next().unwrap().ends_with(" a "), "{out}");
        assert!(
            !out.lines()
                .any(|l| l == braw.to_string() || l == eraw.to_string()),
            "{out}"
        );
        // A program that cannot be executed: {kind, stage, 0, errno}.
        let o = run(format!("5,9,{braw},{eraw},-1,0,0"), &["/nonexistent", "x"]);
        assert_eq!(o.status.code(), Some(1));
        let mut m = [0u8; 16];
        assert_eq!(a.recv(&mut m).unwrap(), 16);
        let words: Vec<i32> = m
            .chunks(4)
            .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [5, 9, 0, libc::ENOENT]);
        let mut f = [0u8; 16];
        let n = unsafe { libc::pread(eraw, f.as_mut_ptr().cast(), 16, 0) };
        assert_eq!((n, f), (16, m));
    }

    /// The wait for `start` in the trampoline: it sends READY, waits for
    /// GO (`run`) or a byte on the exec fifo (`create`), is not dumpable
    /// meanwhile, and with no program exits with status 0.
    #[test]
    #[cfg(rcrun_trampoline)]
    fn the_trampoline_tells_ready_and_waits_for_start() {
        use std::io::Write;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        use std::os::unix::process::CommandExt;
        let fd = load().unwrap();
        let exe = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let braw = b.as_raw_fd();
        let dir = tempfile::tempdir().unwrap();
        // A fresh exec fifo, opened as `create` opens it.
        let new_fifo = |name: &str| {
            let path = dir.path().join(name);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
            let reader = std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
                .unwrap();
            (path, reader)
        };
        // As nobody, so that a dumpable process's /proc files would be
        // nobody's, not root's.
        let spawn = |hdr: String, args: &[&str], fraw: RawFd| {
            let mut c = std::process::Command::new(&exe);
            c.arg0(hdr).args(args).stdout(std::process::Stdio::piped());
            // SAFETY: only fcntl and setresuid in the child.
            unsafe {
                c.pre_exec(move || {
                    libc::fcntl(braw, libc::F_SETFD, 0);
                    if fraw >= 0 {
                        libc::fcntl(fraw, libc::F_SETFD, 0);
                    }
                    if libc::setresuid(65534, 65534, 65534) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                })
            };
            Reap(Some(c.spawn().unwrap()))
        };
        let kind = |m: &[u8]| i32::from_ne_bytes(m[..4].try_into().unwrap());
        let script = "grep -c . /proc/self/status >/dev/null; echo ran";
        // `run`: READY, then nothing happens until GO.
        let mut child = spawn(
            format!("5,9,{braw},-1,-1,4,6"),
            &["/bin/sh", "sh", "-c", script],
            -1,
        );
        let mut m = [0u8; 16];
        assert_eq!(a.recv(&mut m).unwrap(), 16);
        assert_eq!(kind(&m), 4);
        // It goes to sleep in its wait (it may still be on its way there).
        let sleeping = (0..2000).any(|_| {
            let st = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
            st.contains("State:\tS") || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                false
            }
        });
        assert!(sleeping);
        // Not dumpable: its /proc/<pid>/fd belongs to root, as the
        // init's did, not to its own user.
        let st = std::fs::metadata(format!("/proc/{}/fd", child.id())).unwrap();
        assert_eq!(st.uid(), 0);
        assert!(child.try_wait().unwrap().is_none());
        a.send(&6i32.to_ne_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stdout), "ran\n");
        // Anything but GO: it gives up.
        let child = spawn(
            format!("5,9,{braw},-1,-1,4,6"),
            &["/bin/sh", "sh", "-c", script],
            -1,
        );
        assert_eq!(a.recv(&mut m).unwrap(), 16);
        a.send(&5i32.to_ne_bytes()).unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!((o.status.code(), o.stdout.len()), (Some(1), 0));
        // `create`: READY, then the fifo; with no program, status 0.
        for (i, args) in [&["/bin/sh", "sh", "-c", script][..], &[]]
            .iter()
            .enumerate()
        {
            let (fifo, reader) = new_fifo(&i.to_string());
            let fraw = reader.as_raw_fd();
            let child = spawn(format!("5,9,{braw},-1,{fraw},4,0"), args, fraw);
            assert_eq!(a.recv(&mut m).unwrap(), 16);
            assert_eq!(kind(&m), 4);
            let mut w = std::fs::File::options().write(true).open(&fifo).unwrap();
            w.write_all(b"0").unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{o:?}");
            let want = if args.is_empty() { "" } else { "ran\n" };
            assert_eq!(String::from_utf8_lossy(&o.stdout), want);
        }
    }

    /// A child that is killed and reaped if the test fails first.
    struct Reap(Option<std::process::Child>);

    impl Reap {
        fn id(&self) -> u32 {
            self.0.as_ref().unwrap().id()
        }
        fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
            self.0.as_mut().unwrap().try_wait()
        }
        fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
            self.0.take().unwrap().wait_with_output()
        }
    }

    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

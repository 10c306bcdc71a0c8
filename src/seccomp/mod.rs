//! `linux.seccomp`: the filter is compiled by libseccomp in the runtime
//! (the field's standard library, through the libseccomp-rs binding) and
//! exported as classic BPF; the init process only loads those bytes with
//! seccomp(2), which is async-signal-safe.
//!
//! `SCMP_ACT_NOTIFY` loads the filter with a new listener fd: the init
//! passes it to the runtime over the sync socket, and the runtime sends
//! it, with the container process state, to `listenerPath`
//! (config-linux.md, "The Container Process State").

use std::io::{Read, Seek};
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::spec::SpecError;

mod enosys;

/// A compiled filter: the BPF program and the seccomp(2) flags.
#[derive(Debug)]
pub(crate) struct Filter {
    pub prog: Vec<libc::sock_filter>,
    pub flags: libc::c_ulong,
    /// Where the listener fd goes, when a rule is `SCMP_ACT_NOTIFY`.
    pub listener: Option<Listener>,
}

/// `linux.seccomp.listenerPath` and `listenerMetadata`.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub path: std::path::PathBuf,
    pub metadata: String,
}

/// SECCOMP_FILTER_FLAG_NEW_LISTENER: seccomp(2) returns a notify fd.
const FLAG_NEW_LISTENER: libc::c_ulong = 8;

/// The syscall that hands a notify filter's fd over: notifying it would
/// wait for a listener that cannot have the fd. (Those that follow, such
/// as close and recvfrom, wait until the runtime has handed it over and
/// the agent answers, as with runc.) `write` is refused too, as runc
/// does: no runc config can use it, and its message is runc's.
const NEEDED_BEFORE_HANDOVER: &[&str] = &["sendmsg", "write"];

fn invalid(field: impl Into<String>, reason: impl ToString) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.to_string(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<ScmpAction, SpecError> {
    // config-linux.md: an errno with an action that takes none is an error.
    if errno.is_some()
        && !matches!(
            a,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        )
    {
        return Err(invalid(
            field,
            format!("{a} takes no errno, but one is set"),
        ));
    }
    let errno = errno.map_or(libc::EPERM, |e| e as i32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn op(o: LinuxSeccompOperator, value_two: u64) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // OCI's MASKED_EQ: value is the mask, valueTwo the value.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two),
    }
}

/// How the comparisons `cmps` of a rule (one per `args` entry) become
/// libseccomp rules: all in one (they all must hold), unless two compare
/// the same argument, which libseccomp refuses; then, as runc, each is
/// a rule of its own (any one may hold).
fn rule_groups<'a>(
    args: &[oci_spec::runtime::LinuxSeccompArg],
    cmps: &'a [ScmpArgCompare],
) -> Vec<&'a [ScmpArgCompare]> {
    let mut seen = 0u64;
    let repeated = args.iter().any(|a| {
        let bit = 1u64 << (a.index() % 64);
        let again = seen & bit != 0;
        seen |= bit;
        again
    });
    if repeated {
        cmps.chunks(1).collect()
    } else {
        vec![cmps]
    }
}

/// Compiles `s` for the architectures it names (and the native one).
/// Unknown syscall names are skipped, as runc does (profiles list
/// syscalls of newer kernels).
pub(crate) fn compile(s: &LinuxSeccomp) -> Result<Filter, SpecError> {
    let lib = |field: &str| {
        let field = field.to_string();
        move |e: libseccomp::error::SeccompError| invalid(field.clone(), e)
    };
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    if default == ScmpAction::Notify {
        // The init could not even hand the listener fd over.
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut notify = false;
    let mut arches = vec![ScmpArch::Native];
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("linux.seccomp.defaultAction"))?;
    // We set no_new_privs ourselves when the config asks for it.
    ctx.set_ctl_nnp(false).map_err(lib("linux.seccomp"))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let name = a.to_string();
        let arch =
            ScmpArch::from_str(&name).map_err(lib(&format!("linux.seccomp.architectures[{i}]")))?;
        ctx.add_arch(arch)
            .map_err(lib(&format!("linux.seccomp.architectures[{i}]")))?;
        arches.push(arch);
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default
        }
        let cmps: Vec<ScmpArgCompare> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let (datum, two) = match a.op() {
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        (a.value_two().unwrap_or(0), a.value())
                    }
                    _ => (a.value(), 0),
                };
                ScmpArgCompare::new(a.index() as u32, op(a.op(), two), datum)
            })
            .collect();
        for name in sc.names() {
            if act == ScmpAction::Notify {
                if NEEDED_BEFORE_HANDOVER.contains(&name.as_str()) {
                    return Err(invalid(
                        format!("{field}.action"),
                        format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall (the runtime needs it to pass the listener fd)"),
                    ));
                }
                notify = true;
            }
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue;
            };
            for cmps in rule_groups(sc.args().as_deref().unwrap_or_default(), &cmps) {
                ctx.add_rule_conditional(act, nr, cmps)
                    .map_err(lib(&format!("{field} ({name})")))?;
            }
        }
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2, // SECCOMP_FILTER_FLAG_LOG
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1, // SECCOMP_FILTER_FLAG_TSYNC
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4, // SECCOMP_FILTER_FLAG_SPEC_ALLOW
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
        };
    }
    let listener = match (notify, s.listener_path()) {
        (true, Some(path)) => {
            flags |= FLAG_NEW_LISTENER;
            Some(Listener {
                path: path.clone(),
                metadata: s.listener_metadata().clone().unwrap_or_default(),
            })
        }
        (true, None) => {
            return Err(invalid(
                "linux.seccomp.listenerPath",
                "SCMP_ACT_NOTIFY needs a listenerPath",
            ))
        }
        (false, _) => None,
    };
    let fd =
        nix::sys::memfd::memfd_create(c"rcrun-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| invalid("linux.seccomp", e))?;
    ctx.export_bpf(&fd).map_err(lib("linux.seccomp"))?;
    let mut f = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| invalid("linux.seccomp", e))?;
    // The -ENOSYS stub goes first, unless the default already lets
    // calls through or is ENOSYS (see enosys.rs).
    let mut prog = Vec::new();
    if wants_enosys_stub(default) {
        let names = s.syscalls().iter().flatten().flat_map(|sc| sc.names());
        prog = enosys::stub(&enosys::Last::of(&arches, names.map(String::as_str)));
    }
    let n = std::mem::size_of::<libc::sock_filter>();
    prog.extend(bytes.chunks_exact(n).map(|c| libc::sock_filter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    }));
    Ok(Filter {
        prog,
        flags,
        listener,
    })
}

/// Whether syscalls newer than the profile should get ENOSYS rather
/// than `default` (runc's rule): not when it already lets them through
/// or is ENOSYS.
fn wants_enosys_stub(default: ScmpAction) -> bool {
    !matches!(
        default,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) && default != ScmpAction::Errno(libc::ENOSYS)
}

/// Loads the filter into the calling process and returns the listener fd
/// (with `SCMP_ACT_NOTIFY`) or 0. Async-signal-safe.
pub(crate) fn load(f: &Filter) -> Result<i32, i32> {
    let fprog = libc::sock_fprog {
        len: f.prog.len() as u16,
        filter: f.prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points into the filter, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1, /* SECCOMP_SET_MODE_FILTER */
            f.flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        Err(crate::sys::errno())
    } else {
        Ok(r as i32)
    }
}

/// Sends the listener fd and the container process state to the
/// listener at `l.path`, in one message over a stream socket.
pub(crate) fn hand_over(
    l: &Listener,
    pid: i32,
    state: &[u8],
    fd: std::os::fd::OwnedFd,
) -> Result<(), crate::Error> {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let field = || format!("linux.seccomp.listenerPath {}", l.path.display());
    let state: serde_json::Value = serde_json::from_slice(state)
        .map_err(|e| crate::Error::io(field(), std::io::Error::from(e)))?;
    let doc = serde_json::json!({
        "ociVersion": state["ociVersion"].clone(),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": l.metadata,
        "state": state,
    });
    let bytes = serde_json::to_vec(&doc).expect("JSON of plain values");
    // runc's words, which tools match.
    let sock = std::os::unix::net::UnixStream::connect(&l.path).map_err(|e| {
        crate::Error::io(
            format!("{}: failed to connect with seccomp agent", field()),
            e,
        )
    })?;
    let fds = [fd.as_raw_fd()];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| crate::Error::io(field(), std::io::Error::from(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_a_profile() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}
            ]
        }))
        .unwrap();
        let f = compile(&s).unwrap();
        assert!(f.prog.len() > 10);
    }

    #[test]
    fn two_conditions_on_one_argument_become_two_rules() {
        // libseccomp refuses them in one rule ("Invalid input"); runc ORs them.
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}
            ]}]
        }))
        .unwrap();
        assert!(compile(&s).is_ok());
    }

    #[test]
    fn errno_with_an_action_that_takes_none_is_an_error() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1
        }))
        .unwrap();
        assert!(compile(&s)
            .unwrap_err()
            .to_string()
            .contains("linux.seccomp.defaultAction"));
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]
        }))
        .unwrap();
        assert!(compile(&s)
            .unwrap_err()
            .to_string()
            .contains("linux.seccomp.syscalls[0].action"));
    }

    #[test]
    fn notify_needs_a_listener_and_spares_the_handover() {
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        let e = compile(&s).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        let e = compile(&s).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[1].action"), "{e}");
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock",
            "listenerMetadata": "m",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }))
        .unwrap();
        let f = compile(&s).unwrap();
        assert_eq!(f.flags & FLAG_NEW_LISTENER, FLAG_NEW_LISTENER);
        assert_eq!(f.listener.unwrap().metadata, "m");
    }

    /// Loads `f` in a forked child, makes each syscall (number, first
    /// argument) and returns the errno each gave (0 when it succeeded).
    fn errnos_under(f: &Filter, calls: &[(libc::c_long, libc::c_long)]) -> Vec<i32> {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child makes only raw syscalls (async-signal-safe)
        // and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            use std::os::fd::AsRawFd;
            // SAFETY: raw syscalls with plain arguments; the buffer lives
            // on this stack for the write.
            unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if load(f).is_err() {
                    libc::_exit(90);
                }
                let mut out = [0i32; 8];
                for (i, &(nr, a)) in calls.iter().enumerate() {
                    let r = libc::syscall(nr, a, 0, 0);
                    out[i] = if r < 0 { *libc::__errno_location() } else { 0 };
                }
                libc::write(w.as_raw_fd(), out.as_ptr().cast(), 4 * calls.len());
                libc::_exit(0);
            }
        }
        drop(w);
        let mut buf = Vec::new();
        std::fs::File::from(r).read_to_end(&mut buf).unwrap();
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
        );
        buf.chunks_exact(4)
            .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        // runc's patchbpf rule: above the largest number the profile names
        // (here exit_group, 231), ENOSYS; below it, the default.
        let s: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["write", "exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55}
            ]
        }))
        .unwrap();
        let f = compile(&s).unwrap();
        let got = errnos_under(
            &f,
            &[
                (libc::SYS_getpid, 0),
                (libc::SYS_mkdir, 0),
                (libc::SYS_getppid, 0),
                (1000, 0),
                (libc::SYS_clone3, 0),
                (0x4000_0000 | 1000, 0),
            ],
        );
        assert_eq!(
            got,
            [0, libc::EPERM, 55, libc::ENOSYS, libc::ENOSYS, libc::ENOSYS]
        );
    }

    #[test]
    fn no_stub_when_the_default_lets_calls_through_or_is_enosys() {
        assert!(!wants_enosys_stub(ScmpAction::Allow));
        assert!(!wants_enosys_stub(ScmpAction::Log));
        assert!(!wants_enosys_stub(ScmpAction::Trace(1)));
        assert!(!wants_enosys_stub(ScmpAction::Errno(libc::ENOSYS)));
        assert!(wants_enosys_stub(ScmpAction::Errno(libc::EPERM)));
        assert!(wants_enosys_stub(ScmpAction::KillProcess));
        assert!(wants_enosys_stub(ScmpAction::KillThread));
        assert!(wants_enosys_stub(ScmpAction::Trap));
    }
}

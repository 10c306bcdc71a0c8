use super::*;

/// Options of [`Runtime::exec`] (runc's `exec` flags).
#[derive(Debug)]
pub struct ExecOptions {
    /// The process to run (`--process`, or built from the flags).
    pub process: oci_spec::runtime::Process,
    /// `--console-socket` for a process with a terminal.
    pub console_socket: Option<PathBuf>,
    /// A connected socket for the pty instead (foreground `exec -t`).
    pub console: Option<OwnedFd>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--preserve-fds N`.
    pub preserve_fds: i32,
    /// `--ignore-paused`: exec into a paused container.
    pub ignore_paused: bool,
    /// `--cgroup`: join these existing sub-cgroups of the container's
    /// cgroup instead, each for the named v1 controllers (none: all).
    pub sub_cgroups: Vec<(Vec<String>, PathBuf)>,
    /// Standard streams for the process instead of the caller's
    /// (refused with a terminal).
    pub stdio: Stdio,
    /// An id for the process: it is then recorded under the container
    /// ([`Runtime::exec_state`], [`Runtime::kill_exec`],
    /// [`Runtime::open_exec`]) with its exit once observed. runc's exec
    /// has none.
    pub id: Option<String>,
}

impl ExecOptions {
    /// Options for running `process`, everything else as runc's `exec`
    /// without flags.
    ///
    /// ```
    /// let p = rcrun::oci_spec::runtime::Process::default();
    /// let opts = rcrun::ExecOptions { id: Some("probe-1".into()), ..rcrun::ExecOptions::new(p) };
    /// assert_eq!(opts.preserve_fds, 0);
    /// ```
    pub fn new(process: oci_spec::runtime::Process) -> ExecOptions {
        ExecOptions {
            process,
            console_socket: None,
            console: None,
            pid_file: None,
            preserve_fds: 0,
            ignore_paused: false,
            sub_cgroups: Vec::new(),
            stdio: Stdio::default(),
            id: None,
        }
    }
}

/// Runs `open`, which opens the namespace files of the recorded init's
/// pid, and returns its result only if they are the init's: the status
/// check before is no guarantee, as the init may exit and its pid be
/// reused at any time, and a vanished init would leave exec in the
/// runtime's own (the host's) namespaces. So: a pidfd first (it names
/// that very process from then on), the start time checked against the
/// record, the files opened, and the pidfd polled: not readable means
/// the process it names had not exited when the files were opened. On
/// kernels without pidfds (< 5.3) the start time is checked again after.
pub(super) fn join_init<T>(id: &str, rec: &Record, open: impl FnOnce() -> Result<T>) -> Result<T> {
    let stopped = || Error::InvalidStatus {
        id: id.into(),
        status: Status::Stopped,
        op: "exec in",
        hint: " (its init process exited)",
    };
    let pidfd = match sys::pidfd(rec.state.pid) {
        Ok(fd) => Some(fd),
        Err(libc::ESRCH) => return Err(stopped()),
        Err(_) => None,
    };
    if !alive(rec) {
        return Err(stopped());
    }
    let r = open();
    let exited = match &pidfd {
        Some(fd) => sys::poll_in(fd.as_raw_fd(), 0).unwrap_or(true),
        None => !alive(rec),
    };
    if exited {
        return Err(stopped());
    }
    r
}

impl Runtime {
    /// Runs another process in a created or running container
    /// (`runc exec`): it joins the init's namespaces and cgroup and gets
    /// its own user, capabilities, rlimits and terminal. Returns once the
    /// program runs; [`Container::wait`] gives its exit status.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let p = rt.config_process("web")?.expect("a process");
    /// let mut probe = p.clone();
    /// probe.set_args(Some(vec!["cat".into(), "/etc/hostname".into()]));
    /// let c = rt.exec("web", rcrun::ExecOptions::new(probe))?;
    /// assert!(c.wait()?.success());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidStatus`] for a stopped or paused container; the
    /// field at fault when the process cannot be set up or exec'd.
    pub fn exec(&self, id: &str, opts: ExecOptions) -> Result<Container> {
        if !crate::seal::is_sealed() {
            return Err(Error::Unsupported(
                "exec from an unsealed process (call rcrun::seal::ensure_sealed() first)",
            ));
        }
        let mut ok = vec![Status::Created, Status::Running];
        if opts.ignore_paused {
            ok.push(Status::Paused);
        }
        let (entry, rec, status) =
            self.open_with_status(id, "exec in", &ok)
                .map_err(|e| match e {
                    Error::InvalidStatus {
                        id,
                        status: Status::Paused,
                        op,
                        ..
                    } => Error::InvalidStatus {
                        id,
                        status: Status::Paused,
                        op,
                        // runc's words, which tools match.
                        hint:
                            " (cannot exec in a paused container; --ignore-paused joins it frozen)",
                    },
                    e => e,
                })?;
        // exec changes no state: do not hold the container's lock while the
        // process starts (it may wait in a frozen cgroup for `resume`).
        let dir = entry.dir().to_path_buf();
        drop(entry);
        if let Some(eid) = &opts.id {
            super::execs::reserve(&dir, id, eid)?;
        }
        let p = &opts.process;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(SpecError::Invalid {
                field: "process.args".into(),
                reason: "must name a program".into(),
            }
            .into());
        }
        crate::spec::check_process(p)?;
        let terminal = p.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && opts.console.is_none() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal needs --console-socket when detached".into(),
            }
            .into());
        }
        let mut plan = join_init(id, &rec, || {
            ChildPlan::build_exec(p, rec.seccomp.as_ref(), rec.state.pid, opts.preserve_fds)
        })?;
        let min_fd = 3 + opts.preserve_fds;
        let (console, stdio) = attach_streams(
            &mut plan,
            terminal,
            opts.console.as_ref(),
            opts.console_socket.as_deref(),
            &opts.stdio,
            min_fd,
        )?;
        let cgroup = rec.cgroup.sub(&opts.sub_cgroups)?;
        // The container's state, for a seccomp agent only (runc's
        // ContainerProcessState of an exec'd process): made when asked.
        let container_state = || {
            let mut st = rec.state.clone();
            st.status = status;
            serde_json::to_vec(&st.to_oci()).expect("state serializes")
        };
        let waiter = self.waiter();
        let spawned = spawn::spawn(
            &mut plan,
            &cgroup,
            &Callbacks {
                id_maps: None,
                state: &|_, _| container_state(),
                runtime_hooks: &|_| Ok(()),
                waiter: &waiter,
            },
        )?;
        drop((console, stdio));
        if let Err(e) = spawn::confirm_exec(&plan, &spawned) {
            let _ = waiter.wait(spawned.pid);
            return Err(e);
        }
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, spawned.pid)?;
        }
        let record = match &opts.id {
            Some(eid) => {
                super::execs::record(&dir, eid, spawned.pid, terminal)?;
                Some(super::execs::exit_path(&dir, eid)?)
            }
            None => None,
        };
        Ok(Container::new(id, spawned.pid, terminal, record, &waiter))
    }

    /// The process of the container's config (the base of `exec`).
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// if let Some(p) = rt.config_process("web")? {
    ///     println!("web runs {:?}", p.args());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub fn config_process(&self, id: &str) -> Result<Option<oci_spec::runtime::Process>> {
        Ok(self.peek(id)?.process)
    }
}

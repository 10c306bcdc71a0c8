use super::*;

/// Options of [`Runtime::create`] (runc's `create` flags).
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// `--console-socket`: where to send the pty master when
    /// `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// A socket already connected to the pty receiver, used instead of
    /// `console_socket` when the container has a terminal (`run` in the
    /// foreground passes one and proxies; ignored without a terminal).
    pub console: Option<OwnedFd>,
    /// `--pid-file`: write the init's pid there.
    pub pid_file: Option<PathBuf>,
    /// `--no-pivot`: chroot instead of pivot_root (for a ramfs root).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// `--preserve-fds N`: pass fds 3 to 3+N-1 to the container.
    pub preserve_fds: i32,
    /// From a process that is not sealed ([`crate::seal`]): exec the
    /// program directly, without the exec trampoline, whatever the
    /// container. Only for callers that accept that a program resolving to
    /// the executing binary (`#!/proc/self/exe`) would run theirs.
    pub allow_unsealed: bool,
    /// Standard streams for the container's process instead of the
    /// caller's (ignored without a `process`; refused with a terminal).
    pub stdio: Stdio,
    /// A rootfs prepared from a stored image
    /// ([`crate::image::ImageStore::prepare`]): recorded with the
    /// container, and released by [`Runtime::delete`]. If `create`
    /// fails, it is still the caller's to release.
    pub image: Option<crate::image::Prepared>,
}

/// The failure the init reported after `start`, if any.
/// A failure the init reported after `start` released it; an exec
/// failure in runc's words, as `run` and `exec` report it.
/// Whether a container created with `opts` from this process starts its
/// program through the exec trampoline: unless the process runs sealed
/// itself, or the caller accepts the risk.
pub(super) fn uses_trampoline(opts: &CreateOptions) -> bool {
    !opts.allow_unsealed && !crate::seal::is_sealed()
}

/// A container just created. For `run`, its init waits for the go on the
/// sync socket, which also reports a failed exec; `create` drops it (the
/// init waits for `start` on the exec fifo instead).
pub(super) struct Pending {
    plan: ChildPlan,
    spawned: spawn::Spawned,
    /// The record as written at the end of `create` (`run` needs it
    /// again and need not read it back).
    rec: Record,
    waiter: crate::exit::Waiter,
}

impl Pending {
    /// Lets the init run the startContainer hooks and exec the program;
    /// returns once it has exec'd (the socket closes) or failed.
    /// Returns the container's record.
    fn release(self) -> Result<Record> {
        spawn::send_go(self.spawned.sync.as_raw_fd(), &[])?;
        let r = spawn::confirm_exec(&self.plan, &self.spawned);
        if r.is_err() {
            // It died before the exec: reap it.
            let _ = self.waiter.wait(self.spawned.pid);
        }
        r.map(|()| self.rec)
    }
}

/// The exec fifo the init blocks on until `start` (opened non-blocking
/// for reading before any writer exists; the init polls it).
pub(super) fn open_exec_fifo(entry: &Entry, min_fd: i32) -> Result<OwnedFd> {
    let fifo = entry.fifo_path();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(fifo.display().to_string(), e))?;
    let ff = fs::File::options()
        .read(true)
        .custom_flags_nonblock()
        .open(&fifo)
        .map_err(|e| Error::io(fifo.display().to_string(), e))?;
    raise_fd(OwnedFd::from(ff), min_fd)
}

/// Where the init reports a failure after `start` (a startContainer hook
/// or the exec itself), for `start` to read.
pub(super) fn open_init_err(entry: &Entry, min_fd: i32) -> Result<OwnedFd> {
    let errp = entry.dir().join("init.err");
    let ef = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&errp)
        .map_err(|e| Error::io(errp.display().to_string(), e))?;
    raise_fd(OwnedFd::from(ef), min_fd)
}

/// Whether `res` asks for any limit beyond device rules.
pub(super) fn sets_limits(res: &oci_spec::runtime::LinuxResources) -> bool {
    let mut v = serde_json::to_value(res).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("devices");
        m.retain(|_, x| !x.is_null());
        return !m.is_empty();
    }
    false
}

impl Runtime {
    /// Creates container `id` from the bundle at `bundle`: namespaces,
    /// cgroup, mounts, devices, user and capabilities are in place and the
    /// init process waits for [`Runtime::start`]. On failure nothing is
    /// left behind: no process, state directory or cgroup.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.create("web", "/srv/bundles/web".as_ref(), rcrun::CreateOptions::default())?;
    /// rt.start(c.id())?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error`] naming the id, file or config field at fault.
    pub fn create(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        Ok(self.create_or_run(id, bundle, opts, false)?.0)
    }

    /// Creates and starts container `id` in one go (runc's `run`, the
    /// foreground part aside): as [`Runtime::create`] then
    /// [`Runtime::start`], but the init is released over its sync socket
    /// rather than through the exec fifo, and reports a failed exec there.
    /// On failure the container is deleted, poststop hooks included.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let c = rt.run("job", "/srv/bundles/job".as_ref(), rcrun::CreateOptions::default())?;
    /// println!("{}", c.wait()?);
    /// rt.delete("job", false)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Runtime::create`] and [`Runtime::start`].
    pub fn run(&self, id: &str, bundle: &Path, opts: CreateOptions) -> Result<Container> {
        let (c, pending) = self.create_or_run(id, bundle, opts, true)?;
        let res = pending.release().and_then(|rec| self.started(id, &rec));
        if let Err(e) = res {
            let _ = self.delete(id, true);
            return Err(e);
        }
        Ok(c)
    }

    /// `create` and `run`: reserves the id, then [`Self::set_up`]; on
    /// failure removes what was made (and runs poststop hooks after a
    /// failed createContainer hook, as runc). `at_once` (`run`): the init
    /// waits on its sync socket, not the exec fifo.
    pub(super) fn create_or_run(
        &self,
        id: &str,
        bundle: &Path,
        opts: CreateOptions,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        crate::store::validate_id(id)?;
        let b = Bundle::load(bundle)?;
        // Unless this process runs sealed, the init starts the program
        // through the exec trampoline; where that is not enough, the
        // caller must seal first (the CLI does, and calls again).
        if uses_trampoline(&opts) {
            if !trampoline::available() {
                return Err(Error::Unsealed {
                    id: id.into(),
                    reason: "this build has no exec trampoline",
                });
            }
            trampoline::suffices(&b.spec).map_err(|reason| Error::Unsealed {
                id: id.into(),
                reason,
            })?;
        }
        let terminal = b.terminal();
        if terminal && opts.console_socket.is_none() && opts.console.is_none() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "a terminal needs --console-socket when the container is detached".into(),
            }
            .into());
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(SpecError::Invalid {
                field: "process.terminal".into(),
                reason: "--console-socket was given but process.terminal is false".into(),
            }
            .into());
        }
        let entry = self.store.create(id)?;
        let mut cg = CgroupSet::default();
        match self.set_up(&entry, &b, &opts, &mut cg, at_once) {
            Ok(c) => Ok(c),
            Err(e) => {
                let _ = cg.remove_with(self.systemd.as_ref());
                // runtime.md: after a failed prestart, createRuntime or
                // createContainer hook the container is destroyed and the
                // poststop hooks run.
                let hook_failed = matches!(&e, Error::Hook(_))
                    || matches!(
                        &e,
                        Error::Init(InitError::Step {
                            stage: Stage::CreateContainerHook,
                            ..
                        })
                    );
                if hook_failed {
                    let mut st = self.peek(id).map(|r| r.state).ok();
                    if let Some(s) = st.as_mut() {
                        s.status = Status::Stopped;
                        s.pid = 0;
                    }
                    let json = st
                        .map(|s| serde_json::to_vec(&s.to_oci()).expect("state serializes"))
                        .unwrap_or_default();
                    let poststop = b.spec.hooks().as_ref().and_then(|h| h.poststop().as_ref());
                    for h in poststop.into_iter().flatten() {
                        if let Err(e) = hooks::run("poststop", h, &json, &self.waiter()) {
                            log::warn!("{e}");
                        }
                    }
                }
                let _ = entry.remove();
                Err(e)
            }
        }
    }

    /// Inside the reserved entry: the bundle's plan and cgroups, then
    /// [`Self::spawn_init`].
    pub(super) fn set_up(
        &self,
        entry: &Entry,
        b: &Bundle,
        opts: &CreateOptions,
        cg: &mut CgroupSet,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        let id = entry.id();
        let linux = b.spec.linux().as_ref().expect("validated");
        // One read of the mount table: the cgroup layout and the
        // rootfs's parent mount both come from it.
        let mountinfo = cgroups::read_mountinfo()?;
        let hier = Hierarchy::from_mountinfo(&mountinfo);
        let unit = match self.systemd_cgroup {
            true => Some(cgroups::systemd::Unit::parse(
                linux.cgroups_path().as_deref(),
                id,
            )?),
            false => None,
        };
        let inner = match &unit {
            Some(u) => {
                cgroups::systemd::check_booted(u)?;
                u.inner_path()
            }
            None => cgroups::inner_path(linux.cgroups_path().as_deref(), id)?,
        };
        // Every new container gets its device rules (a deny-all first),
        // with or without `linux.resources`.
        let apply = |cg: &CgroupSet| -> Result<()> {
            if !cg.leaves.is_empty() {
                let none = oci_spec::runtime::LinuxResources::default();
                cg.apply_all(linux.resources().as_ref().unwrap_or(&none))?;
            }
            Ok(())
        };
        // On a v1 host the init may join late (ChildPlan::late_cgroups):
        // the cgroups are then made while it mounts, once the plan says
        // it can. Otherwise they are made now.
        // With the systemd driver, systemd makes the cgroup once the init
        // is cloned (see `spawn_init`).
        let maybe_late = unit.is_none() && !self.is_rootless() && spawn::may_join_late(&hier);
        *cg = if maybe_late || unit.is_some() {
            CgroupSet::planned(&hier, &inner)
        } else {
            self.make_cgroups(&hier, &inner, linux)?
        };
        let mut plan = ChildPlan::build(
            b,
            id,
            PlanOptions {
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
            },
            &Host {
                hierarchy: &hier,
                cgroup: cg,
                mountinfo: &mountinfo,
            },
        )?;
        if uses_trampoline(opts) {
            let memfd = trampoline::load().map_err(|e| Error::io("the exec trampoline", e))?;
            plan.use_trampoline(memfd);
        }
        plan.wiring.late_cgroups = maybe_late && plan.can_join_cgroups_late();
        if plan.wiring.late_cgroups {
            // CLONE_INTO_CGROUP needs the cgroup2 leaf before the clone.
            cg.make(&inner, Part::Unified)?;
        } else if unit.is_none() {
            if maybe_late {
                cg.make(&inner, Part::All)?;
            }
            apply(cg)?;
        }
        plan.wiring.placed_by_runtime = unit.is_some();
        let place = Place { inner, unit };
        self.spawn_init(entry, b, opts, cg, &place, plan, apply, at_once)
    }

    /// The container's cgroups, made now (see `set_up`).
    pub(super) fn make_cgroups(
        &self,
        hier: &Hierarchy,
        inner: &Path,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<CgroupSet> {
        let mut set = CgroupSet::planned(hier, inner);
        Ok(match set.make(inner, Part::All) {
            Ok(()) => set,
            // Rootless, as runc: without a cgroupsPath and without the
            // right to create cgroups, run without one when no limits
            // are asked for (device rules aside: a user namespace cannot
            // create device nodes anyway).
            Err(e) if self.is_rootless() && linux.cgroups_path().is_none() && e.is_permission() => {
                if linux.resources().as_ref().is_some_and(sets_limits) {
                    return Err(crate::cgroups::CgroupError::Rootless(e.to_string()).into());
                }
                log::debug!("rootless: running without a cgroup ({e})");
                CgroupSet::default()
            }
            Err(e) => return Err(e.into()),
        })
    }

    /// Writes `rec` as a created container whose init is `pid`.
    pub(super) fn write_created(
        entry: &Entry,
        rec: &mut Record,
        state: &State,
        pid: i32,
    ) -> Result<()> {
        rec.state = State {
            pid,
            status: Status::Created,
            ..state.clone()
        };
        rec.init_start_time = proc_start_time(pid).map(|(t, _)| t).unwrap_or(0);
        entry.write(rec)?;
        Ok(())
    }

    /// `set_up` once the plan is made: the state, the init, and (when
    /// it joins late) the v1 cgroups while it mounts.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn spawn_init(
        &self,
        entry: &Entry,
        b: &Bundle,
        opts: &CreateOptions,
        cg: &mut CgroupSet,
        place: &Place,
        mut plan: ChildPlan,
        apply: impl Fn(&CgroupSet) -> Result<()>,
        at_once: bool,
    ) -> Result<(Container, Pending)> {
        let id = entry.id();
        let linux = b.spec.linux().as_ref().expect("validated");
        let min_fd = 3 + opts.preserve_fds;

        // `start` releases the init through the exec fifo and learns of a
        // later failure (startContainer hook, exec) from init.err; `run`
        // needs neither: it keeps the sync socket (release_at_once).
        let (fifo_fd, err_fd) = if at_once {
            plan.wiring.go_after_ready = true;
            (None, None)
        } else {
            let fifo_fd = open_exec_fifo(entry, min_fd)?;
            let err_fd = open_init_err(entry, min_fd)?;
            plan.wiring.fifo_fd = fifo_fd.as_raw_fd();
            plan.wiring.err_fd = err_fd.as_raw_fd();
            (Some(fifo_fd), Some(err_fd))
        };
        let terminal = b.terminal();
        let (console, stdio) = attach_streams(
            &mut plan,
            terminal,
            opts.console.as_ref(),
            opts.console_socket.as_deref(),
            &opts.stdio,
            min_fd,
        )?;

        let mut rec = first_record(id, b, cg);
        rec.image = opts.image.clone();
        let state = rec.state.clone();
        if !plan.wiring.late_cgroups {
            entry.write(&rec)?;
        }

        let new_user = plan.ns.new_user;
        let id_maps = new_user.then(|| {
            (
                namespaces::id_map(linux.uid_mappings().as_deref().unwrap_or_default()),
                namespaces::id_map(linux.gid_mappings().as_deref().unwrap_or_default()),
            )
        });
        let state_json = |pid: i32, status: Status| {
            let mut s = state.clone();
            s.pid = pid;
            s.status = status;
            serde_json::to_vec(&s.to_oci()).expect("state serializes")
        };
        let hooks = b.spec.hooks().as_ref();
        let waiter = self.waiter();
        let runtime_hooks = |pid: i32| -> Result<()> {
            let st = state_json(pid, Status::Creating);
            #[allow(deprecated)]
            let prestart = hooks.and_then(|h| h.prestart().as_ref());
            hooks::run_all("prestart", prestart, &st, &waiter)?;
            hooks::run_all(
                "createRuntime",
                hooks.and_then(|h| h.create_runtime().as_ref()),
                &st,
                &waiter,
            )?;
            Ok(())
        };
        let callbacks = Callbacks {
            id_maps,
            state: &state_json,
            runtime_hooks: &runtime_hooks,
            waiter: &waiter,
        };
        let cloned = spawn::clone_init(&mut plan, cg, &callbacks)?;
        if plan.wiring.late_cgroups {
            // An error here drops `cloned`, which kills it.
            cloned.make_late_cgroups(&mut plan, cg, &place.inner, &apply)?;
            rec.cgroup = cg.clone();
        } else if let (Some(unit), Some(bus)) = (&place.unit, &self.systemd) {
            // The init waits (its namespace handshake) until it is in
            // the scope: its cgroup namespace is rooted there.
            let res = linux.resources().as_ref();
            cg.start_scope(bus, unit, &place.inner, cloned.pid(), res)?;
            apply(cg)?;
            rec.cgroup = cg.clone();
        }
        // The record as it stands once the init is ready, written while
        // the init builds the container (off the critical path) when its
        // pid is known already: no fork into a pid or time namespace
        // follows (nor can it with late cgroups). Nobody reads it before
        // `create` returns: every reader takes the entry's lock, which is
        // held until then; on a failure the entry goes. An error here
        // drops `cloned`, which kills it.
        let mut written = 0;
        if !plan.ns.fork {
            written = cloned.pid();
            Self::write_created(entry, &mut rec, &state, written)?;
        }
        let spawned = cloned.drive(&plan, &callbacks)?;
        drop((fifo_fd, err_fd, console, stdio));
        let pid = spawned.pid;
        log::debug!(
            "container {id}: init {pid} is waiting for start (cgroup {:?})",
            cg.leaves
        );
        let kill = || waiter.kill_and_reap(pid);
        if pid != written {
            if let Err(e) = Self::write_created(entry, &mut rec, &state, pid) {
                kill();
                return Err(e);
            }
        }
        if let Some(pf) = &opts.pid_file {
            if let Err(e) = write_pid_file(pf, pid) {
                kill();
                return Err(e);
            }
        }
        let c = Container::new(
            id,
            pid,
            terminal,
            Some(entry.dir().join(EXIT_FILE)),
            &waiter,
        );
        Ok((
            c,
            Pending {
                plan,
                spawned,
                rec,
                waiter,
            },
        ))
    }
}

/// Where the container's cgroup is: its path below each hierarchy's
/// root and, with the systemd driver, the scope unit systemd makes there
/// once the init is cloned.
pub(super) struct Place {
    inner: std::path::PathBuf,
    unit: Option<cgroups::systemd::Unit>,
}

/// The record of a container being created: status `creating`, no pid
/// yet.
fn first_record(id: &str, b: &Bundle, cg: &CgroupSet) -> Record {
    let linux = b.spec.linux().as_ref().expect("validated");
    Record {
        state: State {
            oci_version: b.spec.version().clone(),
            id: id.to_string(),
            pid: 0,
            status: Status::Creating,
            bundle: b.path.clone(),
            rootfs: b.rootfs.clone(),
            created: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            // Filled in when the state is shown (owner_of).
            owner: String::new(),
            annotations: b.spec.annotations().clone().unwrap_or_default(),
            exit: None,
        },
        init_start_time: 0,
        cgroup: cg.clone(),
        hooks: b.spec.hooks().clone(),
        no_process: b.spec.process().is_none(),
        process: b.spec.process().clone(),
        seccomp: linux.seccomp().clone(),
        image: None,
        own_pid_ns: linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()),
    }
}

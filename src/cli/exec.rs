use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;
use oci_spec::runtime::{Capability, Process};

use super::run::{forwarded, Foreground};
use super::{
    anyhow_lite::{Error, Result},
    Global,
};

/// The exec command runs a new process inside an existing container:
/// it joins the namespaces and the cgroup of the container's init.
///
/// The process is described by --process (a JSON `process` object, as
/// containerd and podman pass it), or by COMMAND with the flags below,
/// starting from the container's own process (its env, user, cwd and
/// capabilities). In the foreground rcrun exits with the process's exit
/// status.
#[derive(Debug, Args)]
pub struct Exec {
    /// Path to a process.json
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Path to an AF_UNIX socket which will receive the pty master
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    pub detach: bool,
    /// Specify the file to write the process id to
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Set environment variables (KEY=VALUE)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Current working directory in the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Add a capability to the bounding set for the process
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set the no new privileges value for the process
    #[arg(long)]
    pub no_new_privs: bool,
    /// Set the apparmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Set the asm process label for the process commonly used with selinux
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Pass N additional file descriptors to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Allow exec in a paused container
    #[arg(long)]
    pub ignore_paused: bool,
    /// Run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long, value_name = "[CONTROLLER:]PATH")]
    pub cgroup: Vec<String>,
    /// The container id
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl Exec {
    fn process(&self, g: &Global) -> Result<Process> {
        if let Some(p) = &self.process {
            let data =
                std::fs::read(p).map_err(|e| Error(format!("--process {}: {e}", p.display())))?;
            let mut v: serde_json::Value = serde_json::from_slice(&data)
                .map_err(|e| Error(format!("--process {}: {e}", p.display())))?;
            // runc takes a process without `user` (uid 0) or `cwd` ("/").
            if let Some(o) = v.as_object_mut() {
                o.entry("user")
                    .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
                o.entry("cwd").or_insert_with(|| "/".into());
            }
            return serde_path_to_error::deserialize(v).map_err(|e| {
                Error(format!(
                    "--process {}: field {}: {}",
                    p.display(),
                    e.path(),
                    e.inner()
                ))
            });
        }
        if self.command.is_empty() {
            return Err(Error("exec: a command is required (or --process)".into()));
        }
        let mut p = g.runtime().config_process(&self.id)?.unwrap_or_default();
        p.set_args(Some(self.command.clone()));
        p.set_terminal(Some(self.tty));
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &self.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
        if let Some(cwd) = &self.cwd {
            p.set_cwd(cwd.clone());
        }
        if let Some(u) = &self.user {
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u.as_str(), None),
            };
            let mut user = p.user().clone();
            user.set_uid(
                uid.parse()
                    .map_err(|_| Error(format!("--user {u}: not UID[:GID]")))?,
            );
            user.set_gid(
                gid.map(str::parse)
                    .transpose()
                    .map_err(|_| Error(format!("--user {u}: not UID[:GID]")))?
                    .unwrap_or(0),
            );
            p.set_user(user);
        }
        if !self.additional_gids.is_empty() {
            let mut user = p.user().clone();
            user.set_additional_gids(Some(self.additional_gids.clone()));
            p.set_user(user);
        }
        if !self.cap.is_empty() {
            // Not `unwrap_or_default`: oci-spec's default is a non-empty
            // set in every field, inheritable and ambient included.
            let mut caps = match p.capabilities() {
                Some(c) => c.clone(),
                None => serde_json::from_value(serde_json::json!({}))
                    .map_err(|e| Error(format!("--cap: {e}")))?,
            };
            for c in &self.cap {
                let name = c.to_ascii_uppercase();
                let cap = Capability::from_str(name.strip_prefix("CAP_").unwrap_or(&name))
                    .or_else(|_| serde_json::from_value::<Capability>(serde_json::json!(name)))
                    .map_err(|_| Error(format!("--cap {c}: unknown capability")))?;
                let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                    let mut s = s.clone().unwrap_or_default();
                    s.insert(cap);
                    Some(s)
                };
                caps.set_bounding(add(caps.bounding()));
                caps.set_effective(add(caps.effective()));
                caps.set_permitted(add(caps.permitted()));
                // As runc (CVE-2022-29162): never the inheritable set, which
                // would hand the capability to any program with matching
                // file capabilities. Ambient needs it inheritable, so only
                // where the process already has an inheritable set.
                if caps.inheritable().is_some() {
                    caps.set_ambient(add(caps.ambient()));
                }
            }
            p.set_capabilities(Some(caps));
        }
        if self.no_new_privs {
            p.set_no_new_privileges(Some(true));
        }
        if let Some(a) = &self.apparmor {
            p.set_apparmor_profile(Some(a.clone()));
        }
        if let Some(l) = &self.process_label {
            p.set_selinux_label(Some(l.clone()));
        }
        Ok(p)
    }

    pub fn run(self, g: &Global) -> Result<i32> {
        let process = self.process(g)?;
        let terminal = process.terminal().unwrap_or(false);
        let mut console: Option<OwnedFd> = None;
        let mut own: Option<OwnedFd> = None;
        if terminal && !self.detach && self.console_socket.is_none() {
            let (a, b) = std::os::unix::net::UnixStream::pair()?;
            own = Some(a.into());
            console = Some(b.into());
        }
        let sigs = forwarded();
        if !self.detach {
            sigs.thread_block()?;
        }
        let c = g.runtime().exec(
            &self.id,
            rcrun::ExecOptions {
                process,
                console_socket: self.console_socket.clone(),
                console: own,
                pid_file: self.pid_file.clone(),
                preserve_fds: self.preserve_fds,
                ignore_paused: self.ignore_paused,
                sub_cgroups: self.cgroup.iter().map(|c| sub_cgroup(c)).collect(),
                stdio: rcrun::Stdio::default(),
                id: None,
            },
        )?;
        if self.detach {
            return Ok(0);
        }
        let fg = Foreground::attach(&c, sigs, console)?;
        let code = fg.wait(&c)?;
        fg.finish();
        Ok(code)
    }
}

/// `--cgroup [CONTROLLER[,CONTROLLER...]:]PATH` as (controllers, path):
/// no controllers means every hierarchy.
fn sub_cgroup(arg: &str) -> (Vec<String>, PathBuf) {
    match arg.split_once(':') {
        Some((c, p)) => (
            c.split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            PathBuf::from(p),
        ),
        None => (Vec::new(), PathBuf::from(arg)),
    }
}

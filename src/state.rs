//! Container status and the state record, as runc reports them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The lifecycle status of a container (runtime.md, plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is in progress.
    Creating,
    /// Created; the user process waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// The container's processes are frozen.
    Paused,
    /// The container process has exited.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The state of a container, serialized exactly as `runc state` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The OCI runtime spec version of the bundle.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// Host pid of the container's init process; 0 once stopped.
    pub pid: i32,
    /// Current status.
    pub status: Status,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created: String,
    /// Name of the user that created the container.
    pub owner: String,
    /// The bundle's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// How the init ended, once stopped, if a process observed it (the
    /// one that created it, through [`crate::Container::wait`]); `None`
    /// while it runs, or when nobody observed the exit: unknown, never 0.
    /// Not part of runc's state JSON.
    #[serde(skip)]
    pub exit: Option<crate::ExitStatus>,
}

impl State {
    /// The OCI `state` object that hooks receive on stdin.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// let s = rcrun::Runtime::new("/run/my-agent").state("web")?;
    /// println!("{}", serde_json::to_string(&s.to_oci()).expect("JSON"));
    /// # Ok(()) }
    /// ```
    pub fn to_oci(&self) -> oci_spec::runtime::State {
        use oci_spec::runtime::ContainerState as C;
        let mut s = oci_spec::runtime::State::default();
        s.set_version(self.oci_version.clone());
        s.set_id(self.id.clone());
        s.set_status(match self.status {
            Status::Creating => C::Creating,
            Status::Created => C::Created,
            Status::Running | Status::Paused => C::Running,
            Status::Stopped => C::Stopped,
        });
        if self.pid > 0 {
            s.set_pid(Some(self.pid));
        }
        s.set_bundle(self.bundle.clone());
        if !self.annotations.is_empty() {
            s.set_annotations(Some(self.annotations.clone()));
        }
        s
    }
}

/// What rcrun persists per container: the public state plus what later
/// operations need (hooks to run at start and delete, cgroup paths, and
/// the init's start time to tell it from a recycled pid).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The public part.
    #[serde(flatten)]
    pub state: State,
    /// Start time of the init process (field 22 of /proc/PID/stat).
    pub init_start_time: u64,
    /// The cgroup directories of the container.
    #[serde(default)]
    pub cgroup: crate::cgroups::CgroupSet,
    /// Hooks still to run (poststart, poststop).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The bundle has no `process`: `start` must fail.
    #[serde(default)]
    pub no_process: bool,
    /// The container's process, the base of `exec`'s defaults.
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// The container's seccomp profile, which `exec`'d processes get too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The init has a pid namespace of its own: its death ends every
    /// process of the container, so `delete` need not sweep the cgroup
    /// (which may hold another container's processes, as runc allows).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_pid_ns: bool,
    /// The image rootfs to release once the container is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::image::Prepared>,
}

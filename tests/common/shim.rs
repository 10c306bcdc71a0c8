//! Helpers of tests/shim.rs: containerd's side of the shim protocol. The
//! test plays containerd: it runs the shim's `start` action in a bundle,
//! talks ttrpc to the address printed, and serves the events socket
//! (TTRPC_ADDRESS) the shim publishes to.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::empty::Empty;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_sync::{create_events, Client, Events, TaskClient};
use containerd_shim::protos::ttrpc::{self, context, Server, TtrpcContext};

pub const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-rcrun-v2");

/// (topic, event) as forwarded.
type Log = Mutex<Vec<(String, Any)>>;

/// The events the shim forwarded.
#[derive(Clone, Default)]
pub struct Received(Arc<(Log, Condvar)>);

impl Events for Received {
    fn forward(&self, _: &TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
        let env = req.envelope.into_option().unwrap_or_default();
        let (lock, cv) = &*self.0;
        lock.lock()
            .unwrap()
            .push((env.topic, env.event.into_option().unwrap_or_default()));
        cv.notify_all();
        Ok(Empty::new())
    }
}

impl Received {
    /// The topics so far.
    pub fn topics(&self) -> Vec<String> {
        self.0
             .0
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Waits (up to a minute: a hang, not a timing) until `pred` holds for
    /// the events so far; returns them.
    pub fn until(&self, pred: impl Fn(&[(String, Any)]) -> bool) -> Vec<(String, Any)> {
        let (lock, cv) = &*self.0;
        let end = Instant::now() + Duration::from_secs(60);
        let mut g = lock.lock().unwrap();
        while !pred(&g) {
            let left = end
                .checked_duration_since(Instant::now())
                .expect("events never came");
            g = cv.wait_timeout(g, left).unwrap().0;
        }
        g.clone()
    }
}

/// A fake containerd: a namespace of its own, the events server, and
/// everything to clean up.
pub struct Containerd {
    pub ns: String,
    pub dir: tempfile::TempDir,
    pub events: Received,
    _server: Server,
    /// (bundle, id, cgroup) of every container made, for the cleanup.
    pub made: Mutex<Vec<(PathBuf, String, String)>>,
}

impl Containerd {
    pub fn new() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("rcrun-shim.")
            .tempdir()
            .unwrap();
        let ns = super::unique("shim-ns");
        let events = Received::default();
        let sock = dir.path().join("events.sock");
        let svc: Arc<dyn Events + Send + Sync> = Arc::new(events.clone());
        let mut server = Server::new()
            .bind(&format!("unix://{}", sock.display()))
            .unwrap()
            .register_service(create_events(svc));
        server.start().unwrap();
        Containerd {
            ns,
            dir,
            events,
            _server: server,
            made: Mutex::default(),
        }
    }

    /// A bundle running `sh -c script` whose rootfs the shim bind-mounts
    /// (as containerd passes a snapshot's mount), `edit`ed.
    pub fn bundle(
        &self,
        script: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (String, PathBuf) {
        let id = super::unique("shim");
        let cgroup = format!("rcrun-test-{id}");
        let b = self.dir.path().join(&id);
        std::fs::create_dir_all(b.join("rootfs")).unwrap();
        // The shim's log (containerd makes it a fifo and copies it).
        std::fs::write(b.join("log"), "").unwrap();
        let mut cfg = super::base_config(Path::new("rootfs"), &cgroup, script);
        edit(&mut cfg);
        std::fs::write(b.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
        self.made
            .lock()
            .unwrap()
            .push((b.clone(), id.clone(), cgroup));
        (id, b)
    }

    fn shim(&self, bundle: &Path, id: &str, action: &str) -> std::process::Output {
        Command::new(SHIM)
            .args([
                "-namespace",
                &self.ns,
                "-address",
                &self.grpc(),
                "-publish-binary",
                "/bin/false",
            ])
            .args(["-id", id, action])
            .current_dir(bundle)
            .env("TTRPC_ADDRESS", self.dir.path().join("events.sock"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// containerd's main socket, which only names the shims' sockets here.
    fn grpc(&self) -> String {
        self.dir
            .path()
            .join("containerd.sock")
            .display()
            .to_string()
    }

    /// The `start` action: the address of the pod's serving shim.
    pub fn start_shim(&self, bundle: &Path, id: &str) -> String {
        let o = self.shim(bundle, id, "start");
        assert!(
            o.status.success(),
            "start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The `delete` action, as containerd runs it after a shim died.
    pub fn delete_shim(&self, bundle: &Path, id: &str) -> containerd_shim::api::DeleteResponse {
        use containerd_shim::protos::protobuf::Message;
        let o = self.shim(bundle, id, "delete");
        assert!(
            o.status.success(),
            "delete: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        containerd_shim::api::DeleteResponse::parse_from_bytes(&o.stdout).unwrap()
    }

    pub fn connect(&self, address: &str) -> TaskClient {
        TaskClient::new(Client::connect(address).unwrap())
    }

    /// The pid of the shim serving `address` (its socket's owner).
    pub fn shim_pid(&self, c: &TaskClient) -> i32 {
        let r = c
            .connect(ctx(), &containerd_shim::api::ConnectRequest::default())
            .unwrap();
        r.shim_pid as i32
    }
}

/// A request context (containerd's deadline).
pub fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(30).as_nanos() as i64)
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Shims first (what they hold goes with them), then what a dead
        // shim leaves: the library's containers, mounts, cgroups.
        let made = self.made.lock().unwrap().clone();
        for (b, id, _) in &made {
            if let Ok(a) = std::fs::read_to_string(b.join("address")) {
                if let Ok(c) = Client::connect(&a) {
                    if let Ok(r) = TaskClient::new(c).connect(ctx(), &Default::default()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(r.shim_pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                let p = a.trim_start_matches("unix://");
                if std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                    let _ = std::fs::remove_file(p);
                }
            }
            let _ = rcrun::Runtime::new(state_root(&self.ns)).delete(id, true);
            let _ = nix::mount::umount2(&b.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
        }
        for (_, _, cg) in &made {
            super::library::remove_cgroup(cg);
        }
        let _ = std::fs::remove_dir_all(state_root(&self.ns));
    }
}

/// The shim's state root for namespace `ns`.
pub fn state_root(ns: &str) -> PathBuf {
    Path::new("/run/containerd/rcrun").join(ns)
}

/// Whether `path` is a mount point.
pub fn is_mounted(path: &Path) -> bool {
    let p = std::fs::canonicalize(path).unwrap_or(path.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
}

/// A Create request as containerd makes it: the rootfs as a bind mount
/// of the test rootfs (the shim mounts it), stdio fifos, runtime options.
#[allow(dead_code)]
pub fn create_request(
    id: &str,
    bundle: &Path,
    stdout: &str,
    stdin: &str,
    options: Option<containerd_shim::api::Options>,
) -> containerd_shim::api::CreateTaskRequest {
    use containerd_shim::protos::protobuf::Message;
    containerd_shim::api::CreateTaskRequest {
        id: id.into(),
        bundle: bundle.display().to_string(),
        rootfs: vec![containerd_shim::protos::api::Mount {
            type_: "bind".into(),
            source: super::rootfs().display().to_string(),
            options: vec!["rbind".into(), "ro".into()],
            ..Default::default()
        }],
        stdin: stdin.into(),
        stdout: stdout.into(),
        options: options
            .map(
                |o| containerd_shim::protos::protobuf::well_known_types::any::Any {
                    type_url: "containerd.runc.v1.Options".into(),
                    value: o.write_to_bytes().unwrap(),
                    ..Default::default()
                },
            )
            .into(),
        ..Default::default()
    }
}

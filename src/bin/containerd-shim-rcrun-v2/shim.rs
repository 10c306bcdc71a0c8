//! The shim's life: `start` (spawn the serving shim of the pod, print its
//! address), serving, and `delete` (clean up after a serving shim that
//! died).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim::{
    api::DeleteResponse, publisher::RemotePublisher, util::write_address, Config, Error,
    ExitSignal, Flags, StartOpts,
};

use crate::task::TaskService;

/// The annotation by which containerd's CRI plugin tells a container's pod
/// (the sandbox's own id on the sandbox): one shim serves the whole pod.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// Where the shim keeps the library's state of containerd's namespace
/// `ns` (runc's shim: /run/containerd/runc/NS).
pub fn state_root(ns: &str) -> PathBuf {
    Path::new("/run/containerd/rcrun").join(ns)
}

/// The shim binary's side of containerd's protocol.
pub struct Service {
    namespace: String,
    id: String,
    exit: Arc<ExitSignal>,
}

impl containerd_shim::Shim for Service {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        Service {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> Result<String, Error> {
        spawn(opts)
    }

    /// After the serving shim is gone: the container is removed by force
    /// and its rootfs unmounted; containerd records it as killed.
    fn delete_shim(&mut self) -> Result<DeleteResponse, Error> {
        let rt = rcrun::Runtime::new(state_root(&self.namespace)).with_systemd_cgroup(false);
        if let Err(e) = rt.delete(&self.id, true) {
            log::warn!("delete {}: {e}", self.id);
        }
        let bundle = std::env::current_dir().map_err(|e| Error::Other(e.to_string()))?;
        crate::rootfs::unmount(&bundle);
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: protobuf::MessageField::some(crate::tasks::timestamp(
                std::time::SystemTime::now(),
            )),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    /// Not called: the serving shim is [`crate::serve::serve`], which
    /// makes its service with the reaper.
    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        TaskService::new(
            &self.namespace,
            publisher,
            self.exit.clone(),
            rcrun::Reaper::new(),
        )
    }
}

/// Spawns the serving shim for the pod of the container in the bundle
/// (the working directory), or finds the one already serving it; returns
/// its address.
fn spawn(opts: StartOpts) -> Result<String, Error> {
    let grouping = pod_of("config.json".as_ref()).unwrap_or_else(|| opts.id.clone());
    let (_, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
    write_address(&address)?;
    Ok(address)
}

/// The `start` action. containerd-shim answers it in containerd 2's
/// bootstrap format, which containerd 1.6 and 1.7 (Debian's, and most
/// Kubernetes nodes') cannot read; every containerd reads the plain
/// socket address printed here (version 2 of the task API).
pub fn start(flags: &Flags) -> Result<(), Error> {
    // containerd passes the runtime options on stdin: read, not needed
    // here (Create carries them again).
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    let address = spawn(StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..Default::default()
    })?;
    print!("{address}");
    Ok(())
}

/// The pod (CRI sandbox) of the container whose config is at `config`.
fn pod_of(config: &Path) -> Option<String> {
    let spec = rcrun::oci_spec::runtime::Spec::load(config).ok()?;
    spec.annotations().as_ref()?.get(SANDBOX_ID).cloned()
}

use containerd_shim::protos::protobuf;

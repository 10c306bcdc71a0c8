//! Kubernetes' path (`--features shim`): containerd's CRI plugin with a
//! runtime handler `rcrun` (what a RuntimeClass names) whose runtime_type
//! is rcrun's shim, driven over the CRI as the kubelet drives it: a pod
//! with a locally built pause image on a CNI bridge the test owns, a
//! container in it, ExecSync, stats, a resource update, then stop and
//! remove. The containerd, its sockets, images, CNI config and IPAM data
//! live in a temp dir; everything is removed, even on failure.
//!
//! On a host booted with systemd (the cgroup v2 VM of scripts/test-v2.sh
//! boots it for this test and tests/systemd.rs), the handler has
//! `SystemdCgroup = true`, as the kubelet's systemd driver wants: the pod's
//! cgroup parent is a slice and every container a scope in it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use serde_json::json;
use tonic::transport::{Channel, Endpoint, Uri};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-rcrun-v2");
const PAUSE: &str = "docker.io/library/rcrun-pause:latest";
const APP: &str = "docker.io/library/rcrun-app:latest";

/// containerd with the CRI plugin, and all it leaves to clean.
struct Cri {
    dir: tempfile::TempDir,
    containerd: Child,
    bridge: String,
    /// The pods' cgroup parent: a cgroupfs path, or a slice.
    cgroup: String,
    /// systemd runs the host: the systemd cgroup driver is used.
    systemd: bool,
    netns_before: Vec<PathBuf>,
    had_state_root: bool,
}

fn netns() -> Vec<PathBuf> {
    std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

impl Cri {
    fn start() -> Cri {
        let dir = tempfile::Builder::new().prefix("rcri.").tempdir().unwrap();
        let d = dir.path();
        let tag = common::unique("c").replace('-', "");
        let bridge = format!("rcri{}", &tag[tag.len().saturating_sub(8)..]);
        let systemd = Path::new("/run/systemd/system").is_dir();
        let cgroup = match systemd {
            true => format!("rcrun-cri{tag}.slice"),
            false => format!("rcrun-test-cri-{tag}"),
        };
        for sub in ["root", "state", "cni/conf", "cni/ipam", "logs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // A bridge of the test's own, no masquerading: traffic stays
        // between the host and the test's pods.
        let conflist = json!({
            "cniVersion": "0.4.0", "name": "rcrun-cri",
            "plugins": [{
                "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                "ipam": {"type": "host-local", "dataDir": d.join("cni/ipam"),
                         "ranges": [[{"subnet": "10.231.77.0/24"}]]}
            }]
        });
        std::fs::write(d.join("cni/conf/10-rcrun.conflist"), conflist.to_string()).unwrap();
        let toml = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  disable_apparmor = true
  # No CAP_SYS_RESOURCE on the machines this runs on: the pause
  # container's -998 cannot be set; containerd clamps it to its own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rcrun]
      runtime_type = "io.containerd.rcrun.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rcrun.options]
        SystemdCgroup = {systemd}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni/conf"
"#,
            d = d.display()
        );
        std::fs::write(d.join("containerd.toml"), toml).unwrap();
        let shim_dir = Path::new(SHIM).parent().unwrap();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let containerd = Command::new("containerd")
            .arg("--config")
            .arg(d.join("containerd.toml"))
            .env("PATH", path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (apt install containerd: scripts/lib/deps.sh does)");
        let cri = Cri {
            netns_before: netns(),
            had_state_root: Path::new("/run/containerd/rcrun/k8s.io").exists(),
            dir,
            containerd,
            bridge,
            cgroup,
            systemd,
        };
        for _ in 0..300 {
            if cri.ctr(&["version"]).status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        cri.import(
            PAUSE,
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done",
            ],
        );
        cri.import(APP, &["sleep", "1000"]);
        cri
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("-a")
            .arg(self.sock())
            .args(["-n", "k8s.io"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A busybox image named `name` whose command is `cmd`, built here and
    /// imported into CRI's namespace.
    fn import(&self, name: &str, cmd: &[&str]) {
        use common::image::*;
        let mut layer = base_layer(common::rootfs());
        for a in ["ip", "hostname", "tr", "grep", "ping", "wc"] {
            layer = layer.symlink(&format!("bin/{a}"), "busybox");
        }
        let lay = self
            .dir
            .path()
            .join(format!("layout-{}", sha(name.as_bytes())));
        let config = json!({"Cmd": cmd, "Env": ["PATH=/bin"]});
        layout(&lay, "latest", &[layer], Comp::Gzip, config);
        let tar = lay.with_extension("tar");
        pack(&lay, &tar);
        let base = name.trim_end_matches(":latest");
        let o = self.ctr(&[
            "images",
            "import",
            "--base-name",
            base,
            tar.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    async fn client(&self) -> RuntimeServiceClient<Channel> {
        let sock = self.sock();
        let ch = Endpoint::try_from("http://[::]")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let sock = sock.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(sock).await?,
                    ))
                }
            }))
            .await
            .unwrap();
        RuntimeServiceClient::new(ch)
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.containerd.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.containerd.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
            let errs: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("level=error") || l.contains("level=warn"))
                .collect();
            eprintln!("containerd's errors and warnings:\n{}", errs.join("\n"));
        }
        // Shims (their command lines name our sockets) and the pods'
        // processes (in the pods' cgroup parent).
        let _ = Command::new("pkill").args(["-9", "-f", &d]).status();
        if self.systemd {
            // The slice, and any scope a failure left in it.
            let _ = Command::new("systemctl")
                .args(["stop", &self.cgroup])
                .status();
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let root = h.path().join(&self.cgroup);
            if let Ok(procs) = Command::new("find")
                .arg(&root)
                .args(["-name", "cgroup.procs"])
                .output()
            {
                for f in String::from_utf8_lossy(&procs.stdout).lines() {
                    for pid in std::fs::read_to_string(f).unwrap_or_default().lines() {
                        let _ = Command::new("kill").args(["-9", pid]).status();
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&d))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        for n in netns()
            .into_iter()
            .filter(|n| !self.netns_before.contains(n))
        {
            let _ = nix::mount::umount2(&n, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&n);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let root = h.path().join(&self.cgroup);
            if root.exists() {
                let _ = Command::new("find")
                    .arg(&root)
                    .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                    .status();
            }
        }
        if !self.had_state_root {
            let _ = std::fs::remove_dir_all("/run/containerd/rcrun/k8s.io");
        }
    }
}

fn sandbox_config(cri: &Cri, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: common::unique("uid"),
            namespace: "rcrun-test".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: cri.dir.path().join("logs").display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: match cri.systemd {
                true => cri.cgroup.clone(),
                false => format!("/{}", cri.cgroup),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_pod_on_rcrun_through_containerds_cri() {
    let cri = Cri::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = cri.client().await;
        let sandbox = sandbox_config(&cri, "web");
        let pod = c
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(sandbox.clone()),
                runtime_handler: "rcrun".into(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        let st = c
            .pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: pod.clone(), verbose: false })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(st.state, PodSandboxState::SandboxReady as i32);
        assert_eq!(st.runtime_handler, "rcrun");
        let ip = st.network.unwrap().ip;
        assert!(ip.starts_with("10.231.77."), "pod ip {ip}");

        let ctr = c
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata { name: "app".into(), attempt: 0 }),
                    image: Some(ImageSpec { image: APP.into(), ..Default::default() }),
                    command: vec!["sh".into(), "-c".into(), "echo app-started; exec sleep 1000".into()],
                    log_path: "app.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        c.start_container(StartContainerRequest { container_id: ctr.clone() })
            .await
            .expect("StartContainer");
        let status = |c: &mut RuntimeServiceClient<Channel>, id: String| {
            let mut c = c.clone();
            async move {
                c.container_status(ContainerStatusRequest { container_id: id, verbose: false })
                    .await
                    .unwrap()
                    .into_inner()
                    .status
                    .unwrap()
            }
        };
        assert_eq!(status(&mut c, ctr.clone()).await.state, ContainerState::ContainerRunning as i32);

        // The pod runs on rcrun's shim: the container's parent is it.
        let pid: i32 = {
            let out = cri.ctr(&["task", "ls"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            text.lines()
                .find(|l| l.starts_with(&ctr))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap()
                .parse()
                .unwrap()
        };
        let unit = format!("cri-containerd-{ctr}.scope");
        if cri.systemd {
            // The kubelet's systemd driver: a scope in the pod's slice.
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            assert_eq!(cg.trim(), format!("0::/rcrun.slice/{}/{unit}", cri.cgroup));
            assert_eq!(common::systemctl_show(&unit, "ActiveState"), "active");
        }
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("PPid:").map(|p| p.trim().to_string()))
            .unwrap();
        let shim_cmd = std::fs::read_to_string(format!("/proc/{ppid}/cmdline")).unwrap();
        assert!(shim_cmd.contains("containerd-shim-rcrun-v2"), "{shim_cmd:?}");

        // ExecSync: output captured, exit code, the pod's network inside.
        let r = c
            .exec_sync(ExecSyncRequest {
                container_id: ctr.clone(),
                cmd: vec!["sh".into(), "-c".into(), "echo hi; hostname; ip -4 addr show eth0; exit 3".into()],
                timeout: 30,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        let out = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.exit_code, 3, "{out}");
        assert!(out.starts_with("hi\nweb\n"), "{out}");
        assert!(out.contains(&format!("inet {ip}/24")), "{out}");
        // The host reaches its pod over the bridge.
        let ping = Command::new("busybox").args(["ping", "-c1", "-W5", &ip]).output().unwrap();
        assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));

        let stats = c
            .container_stats(ContainerStatsRequest { container_id: ctr.clone() })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .unwrap();
        assert!(stats.memory.unwrap().working_set_bytes.unwrap().value > 0);
        assert!(stats.cpu.unwrap().usage_core_nano_seconds.unwrap().value > 0);

        let limit = 96i64 << 20;
        c.update_container_resources(UpdateContainerResourcesRequest {
            container_id: ctr.clone(),
            linux: Some(LinuxContainerResources { memory_limit_in_bytes: limit, ..Default::default() }),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
        let r = c
            .exec_sync(ExecSyncRequest {
                container_id: ctr.clone(),
                cmd: vec!["sh".into(), "-c".into(), "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null".into()],
                timeout: 30,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), limit.to_string());
        if cri.systemd {
            assert_eq!(common::systemctl_show(&unit, "MemoryMax"), limit.to_string());
        }

        c.stop_container(StopContainerRequest { container_id: ctr.clone(), timeout: 2 })
            .await
            .expect("StopContainer");
        let s = status(&mut c, ctr.clone()).await;
        assert_eq!(s.state, ContainerState::ContainerExited as i32);
        // Ended by the stop's SIGTERM, or by its SIGKILL 2 s later.
        assert!(matches!(s.exit_code, 137 | 143), "exit code {}", s.exit_code);
        let log = std::fs::read_to_string(cri.dir.path().join("logs/app.log")).unwrap();
        assert!(log.contains("stdout F app-started"), "{log}");
        c.remove_container(RemoveContainerRequest { container_id: ctr.clone() })
            .await
            .expect("RemoveContainer");
        c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: pod.clone() })
            .await
            .expect("StopPodSandbox");
        c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod.clone() })
            .await
            .expect("RemovePodSandbox");
        let left = c.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items;
        assert!(left.is_empty(), "{left:?}");
        if cri.systemd {
            let st = common::systemctl_show(&unit, "ActiveState");
            assert!(st == "inactive" || st.is_empty(), "{unit} is {st}");
        }
        // The pod's shim is gone with its last container.
        assert!(!Path::new(&format!("/proc/{ppid}")).exists() || {
            std::thread::sleep(Duration::from_secs(2));
            !Path::new(&format!("/proc/{ppid}")).exists()
        });
    });
}

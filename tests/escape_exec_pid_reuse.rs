//! Attack class: `exec` into the wrong process. exec joins the namespaces
//! of the init's recorded pid; once the init has exited, that pid names
//! nothing (or, reused, another process), and exec ran in the runtime's
//! own namespaces, on the host, or in a stranger's. exec now opens a
//! pidfd of the pid, checks its start time against the record, opens the
//! namespace files and then checks that the pidfd's process has not
//! exited: the files are the init's, or exec fails.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A host process that is not the container's, killed on drop.
struct HostSleep(std::process::Child);

impl Drop for HostSleep {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kill_init(pid: i64) {
    // SAFETY: signalling the container's init, which we own.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

#[test]
fn exec_refused_when_the_recorded_pid_is_another_process() {
    let c = Ct::new("sleep 100");
    c.start();
    let pid = c.state()["pid"].as_i64().unwrap();
    let host = HostSleep(
        Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    kill_init(pid);
    // The record now names the host's `sleep` with the init's start time.
    let sf = c.root().join(&c.id).join("state.json");
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&sf).unwrap()).unwrap();
    rec["pid"] = serde_json::json!(host.0.id());
    std::fs::write(&sf, serde_json::to_vec(&rec).unwrap()).unwrap();
    let marker = c.path("marker");
    let o = c.rcrun(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        &format!("touch {}", marker.display()),
    ]);
    assert_err(&o, "is stopped: cannot exec in it");
    assert!(!marker.exists(), "exec ran on the host");
}

/// The init exits while exec opens its namespaces: strace stops exec at
/// its first access to the init's /proc/PID/ns/user for 3 s, the test
/// kills the init meanwhile. Before, the files that could no longer be
/// opened were skipped as "a namespace type this kernel lacks" and the
/// command ran in the runtime's namespaces: on the host.
#[test]
fn init_exiting_while_exec_joins_does_not_leave_exec_on_the_host() {
    let c = Ct::new("sleep 100");
    c.start();
    let pid = c.state()["pid"].as_i64().unwrap();
    let marker = c.path("marker");
    let trace = c.path("strace.out");
    let ns = format!("/proc/{pid}/ns/user");
    let exec = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .args(["-P", &ns, "-e", "trace=%file"])
        .args(["-e", "inject=%file:delay_enter=3000000"])
        .arg(RCRUN)
        .arg("--root")
        .arg(c.root())
        .args(["exec", &c.id, "sh", "-c"])
        .arg(format!("touch {}", marker.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (scripts/lib/deps.sh installs it)");
    let t = Instant::now();
    while !std::fs::read_to_string(&trace).is_ok_and(|s| s.contains(&ns)) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "exec never opened {ns}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_init(pid);
    let o = exec.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "exec succeeded: {err}");
    assert!(!marker.exists(), "exec ran on the host: {err}");
    assert!(err.contains("is stopped: cannot exec in it"), "{err}");
}

//! Attack class: undoing maskedPaths and readonlyPaths, or writing the
//! host's /proc and /sys, from inside a container with Docker's default
//! capabilities (no CAP_SYS_ADMIN): unmounting or remounting the masks,
//! re-mounting them from a new user and mount namespace (where the copied
//! mounts are locked), and writing through /proc/sys, /proc/sysrq-trigger
//! and a read-only /sys. Each attempt must fail and the host must keep its
//! values.

mod common;
use common::*;
use serde_json::json;

/// Docker's default capability set (moby's oci/caps/defaults.go).
const DOCKER_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn hardened(script: &str) -> Ct {
    let mut c = Ct::new(script);
    c.cfg["process"]["capabilities"] = json!({
        "bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS,
    });
    c.cfg["linux"]["maskedPaths"] = json!(MASKED);
    c.cfg["linux"]["readonlyPaths"] = json!(READONLY);
    c
}

/// Runs `attempt` in the container; each line of output is `ok` (the
/// defense held) or `ESCAPED <what>`.
fn attempts(script: &str) -> String {
    hardened(script).run_ok()
}

#[test]
fn masks_cannot_be_unmounted_or_remounted() {
    let out = attempts(
        "for p in /proc/keys /proc/timer_list /sys/firmware /proc/acpi; do \
           umount $p 2>/dev/null && echo ESCAPED umount $p; umount -l $p 2>/dev/null && echo ESCAPED umount -l $p; \
         done; \
         mount -o remount,rw /proc/sys 2>/dev/null && echo ESCAPED remount /proc/sys; \
         mount -o remount,rw,bind /proc/sysrq-trigger 2>/dev/null && echo ESCAPED remount sysrq; \
         mount -t proc proc /mnt 2>/dev/null && echo ESCAPED fresh proc; \
         mount -t sysfs sysfs /mnt 2>/dev/null && echo ESCAPED fresh sysfs; \
         test $(wc -c < /proc/timer_list) = 0 || echo ESCAPED timer_list readable; \
         test -z \"$(ls -A /sys/firmware)\" || echo ESCAPED masked dir has entries; \
         touch /proc/acpi/x 2>/dev/null && echo ESCAPED masked dir writable; \
         echo ok",
    );
    assert_eq!(out, "ok\n");
}

#[test]
fn a_new_user_namespace_cannot_unlock_the_masks() {
    // In a user namespace of its own the process has CAP_SYS_ADMIN over a
    // new mount namespace; the mounts copied into it are locked together.
    let out = attempts(
        "unshare -r -m sh -c '\
           id -u; \
           umount /proc/timer_list 2>/dev/null && echo ESCAPED umount timer_list; \
           umount /sys/firmware 2>/dev/null && echo ESCAPED umount firmware; \
           mount -o remount,rw,bind /proc/sys 2>/dev/null && echo ESCAPED remount proc/sys; \
           mount -o remount,rw /proc/sysrq-trigger 2>/dev/null && echo ESCAPED remount sysrq; \
           test $(wc -c < /proc/timer_list) = 0 || echo ESCAPED timer_list readable; \
           test -z \"$(ls -A /sys/firmware)\" || echo ESCAPED firmware listed; \
           echo ok'",
    );
    // "0" proves the user namespace was made: the attempts really ran.
    assert_eq!(out, "0\nok\n");
}

#[test]
fn proc_sys_sysrq_and_sys_stay_read_only() {
    let host_ratio = std::fs::read_to_string("/proc/sys/vm/overcommit_ratio").unwrap();
    let host_ksm = std::fs::read_to_string("/sys/kernel/mm/ksm/run").unwrap();
    // Each write puts back the value already there: harmless if it ever
    // succeeded, but it must not. sysrq 'h' only prints help.
    let out = attempts(
        "v=$(cat /proc/sys/vm/overcommit_ratio); echo $v > /proc/sys/vm/overcommit_ratio 2>/dev/null && echo ESCAPED proc/sys; \
         echo h > /proc/sysrq-trigger 2>/dev/null && echo ESCAPED sysrq; \
         v=$(cat /sys/kernel/mm/ksm/run); echo $v > /sys/kernel/mm/ksm/run 2>/dev/null && echo ESCAPED sys; \
         echo x > /sys/kernel/uevent_helper 2>/dev/null && echo ESCAPED uevent_helper; \
         grep -q ' /sys sysfs ro' /proc/mounts || echo ESCAPED sys not ro; \
         echo ok",
    );
    assert_eq!(out, "ok\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/overcommit_ratio").unwrap(),
        host_ratio
    );
    assert_eq!(
        std::fs::read_to_string("/sys/kernel/mm/ksm/run").unwrap(),
        host_ksm
    );
}

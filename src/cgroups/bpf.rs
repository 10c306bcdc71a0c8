//! Device access control on cgroup v2: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup, as
//! runc, crun and youki do. cgroup v2 has no devices.allow file, and no
//! well-kept crate assembles this small program, so it is written here:
//! about thirty instructions generated from the rules.
//!
//! The rules are applied in order and the last one that matches decides
//! (as crun's and youki's programs; runc's emulator differs only where a
//! rule punches a hole in an earlier wildcard, which it ignores: last
//! match is stricter there for deny rules). A request no rule matches is
//! denied: runc's emulator starts from deny-all, and the caller's list
//! starts with one anyway ([`super::resources::device_rules`]). A rule of
//! type `a` (or without a type) matches every device whatever its numbers
//! and access, as `a` in v1's devices.allow and in runc's emulator.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn access_mask(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The program for `rules`. Registers: r2 = device type, r3 = access,
/// r4 = major, r5 = minor (from struct bpf_cgroup_dev_ctx in r1).
pub fn program(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    // Last match wins: test the rules from the last to the first.
    for r in rules.iter().rev() {
        let mut checks: Vec<(u8, u8, i32)> = Vec::new(); // (reg, extra, value) as JNE tests
        let typ = match r.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DEV_CHAR,
            Some(LinuxDeviceType::B) => DEV_BLOCK,
            Some(LinuxDeviceType::P) => continue, // fifos are not device-controlled
            // `a`: every device, every access (v1's "a").
            _ => 0,
        };
        // A number is a device number (0..=u32::MAX), or absent / -1 for
        // any. Another one names no device: the rule can match nothing
        // (device_rules refuses it before; this keeps it from ever
        // becoming a wildcard).
        let number = |n: Option<i64>| match n {
            None | Some(-1) => Some(None),
            Some(n) => u32::try_from(n).ok().map(Some),
        };
        let (Some(major), Some(minor)) = (number(r.major()), number(r.minor())) else {
            continue;
        };
        if typ != 0 {
            checks.push((2, 0, typ));
            let acc = access_mask(r.access().as_deref().unwrap_or("rwm"));
            let all = ACC_MKNOD | ACC_READ | ACC_WRITE;
            if acc != all {
                // r6 = access & ~acc; the request must be a subset of the rule.
                checks.push((6, 1, !acc & all));
            }
            if let Some(m) = major {
                checks.push((4, 0, m as i32));
            }
            if let Some(m) = minor {
                checks.push((5, 0, m as i32));
            }
        }
        let unconditional = checks.is_empty();
        let mut block = Vec::new();
        for (reg, is_access, v) in checks {
            if is_access == 1 {
                block.push(insn(MOV32_X, 6, 3, 0, 0));
                block.push(insn(AND32_K, 6, 0, 0, v));
                block.push(insn(JNE_K, 6, 0, i16::MAX, 0));
            } else {
                block.push(insn(JNE_K, reg, 0, i16::MAX, v));
            }
        }
        block.push(insn(MOV32_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Jumps skip to the end of this block.
        let n = block.len();
        for (i, b) in block.iter_mut().enumerate() {
            if b.code == JNE_K {
                b.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
        // A rule that matches everything decides alone: what would follow
        // is unreachable, which the verifier refuses.
        if unconditional {
            return p;
        }
    }
    // No rule matched: deny (runc's emulator starts from deny-all).
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_int, attr: &mut [u64; 16]) -> std::io::Result<i64> {
    // SAFETY: attr is a zero-padded bpf_attr union of 128 bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u64 = 15;
const BPF_CGROUP_DEVICE: u64 = 6;
const BPF_F_ALLOW_MULTI: u64 = 2;

/// Loads the program into the kernel. On failure the verifier's last
/// words are in the error.
pub fn load(prog: &[Insn]) -> std::io::Result<OwnedFd> {
    let license = c"Apache";
    let mut log = vec![0u8; 1 << 16];
    let mut a = [0u64; 16];
    a[0] = BPF_PROG_TYPE_CGROUP_DEVICE | ((prog.len() as u64) << 32);
    a[1] = prog.as_ptr() as u64;
    a[2] = license.as_ptr() as u64;
    a[3] = 1 | ((log.len() as u64) << 32); // log_level, log_size
    a[4] = log.as_mut_ptr() as u64;
    let fd = bpf(BPF_PROG_LOAD, &mut a).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        let text = text.trim_end_matches('\0');
        let last = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ");
        std::io::Error::new(e.kind(), format!("{e} (verifier: {last})"))
    })?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches `prog` to the cgroup directory `cg`, then detaches the
/// programs that were there before (an update replaces the rules).
pub fn attach(cg: &std::path::Path, prog: &OwnedFd) -> std::io::Result<()> {
    let dir = std::fs::File::open(cg)?;
    let old = attached(dir.as_raw_fd())?;
    let mut a = [0u64; 16];
    a[0] = dir.as_raw_fd() as u64 | ((prog.as_raw_fd() as u64) << 32);
    a[1] = BPF_CGROUP_DEVICE | (BPF_F_ALLOW_MULTI << 32);
    bpf(BPF_PROG_ATTACH, &mut a)?;
    for id in old {
        let mut g = [0u64; 16];
        g[0] = u64::from(id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut g) else {
            continue;
        };
        // SAFETY: a new fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        let mut d = [0u64; 16];
        d[0] = dir.as_raw_fd() as u64 | ((fd.as_raw_fd() as u64) << 32);
        d[1] = BPF_CGROUP_DEVICE;
        bpf(BPF_PROG_DETACH, &mut d)?;
    }
    Ok(())
}

/// Ids of the device programs attached to the cgroup `dirfd`.
fn attached(dirfd: RawFd) -> std::io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut a = [0u64; 16];
    a[0] = dirfd as u64 | (BPF_CGROUP_DEVICE << 32);
    a[2] = ids.as_mut_ptr() as u64;
    a[3] = ids.len() as u64;
    bpf(BPF_PROG_QUERY, &mut a)?;
    let n = (a[3] & 0xffff_ffff) as usize;
    Ok(ids[..n.min(ids.len())].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn layout() {
        let p = program(&rules(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}
        ])));
        // prologue 6; allow rule: type, 3 access, major, minor, mov, exit = 8;
        // deny-all: mov, exit = 2, and nothing after it.
        assert_eq!(p.len(), 6 + 8 + 2);
        assert_eq!(p[6], insn(JNE_K, 2, 0, 7, DEV_CHAR));
        assert_eq!(p[12], insn(MOV32_K, 0, 0, 0, 1));
        assert_eq!(p[14], insn(MOV32_K, 0, 0, 0, 0));
        // Without a catch-all, a request no rule matches is denied.
        let p = program(&rules(
            serde_json::json!([{"allow": true, "type": "c", "major": 1, "minor": 3}]),
        ));
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p[p.len() - 3], insn(EXIT, 0, 0, 0, 0));
        assert_eq!(p[p.len() - 2], insn(MOV32_K, 0, 0, 0, 0));
        // Nor does an empty list allow anything.
        let p = program(&[]);
        assert_eq!(p[6..], [insn(MOV32_K, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    }

    /// A negative major or minor other than -1 never becomes a wildcard:
    /// the rule is left out. -1 is the wildcard, as an absent number.
    #[test]
    fn negative_numbers_match_nothing() {
        let p = program(&rules(serde_json::json!([
            {"allow": true, "type": "b", "major": -2, "minor": -2, "access": "rwm"}
        ])));
        assert_eq!(p.len(), 6 + 2);
        assert_eq!(p[6], insn(MOV32_K, 0, 0, 0, 0));
        let p = program(&rules(serde_json::json!([
            {"allow": true, "type": "b", "major": -1, "minor": 0, "access": "rwm"}
        ])));
        // type, minor, mov, exit: no major test.
        assert_eq!(p.len(), 6 + 4 + 2);
        assert_eq!(p[7], insn(JNE_K, 5, 0, 2, 0));
    }

    /// `a` matches every device, whatever its numbers, as in v1.
    #[test]
    fn type_a_is_every_device() {
        let p = program(&rules(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": false, "type": "a", "major": 8, "access": "r"}
        ])));
        assert_eq!(p.len(), 6 + 2);
        assert_eq!(p[6], insn(MOV32_K, 0, 0, 0, 0));
    }

    /// The kernel's verifier accepts the program (the suite runs as root).
    #[test]
    fn verifier_accepts_it() {
        let p = program(&rules(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "b", "access": "r"},
            {"allow": true, "type": "c", "major": 136, "access": "rw"}
        ])));
        load(&p).expect("BPF_PROG_LOAD");
        // Without a catch-all, and empty.
        let p = program(&rules(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ])));
        load(&p).expect("BPF_PROG_LOAD");
        load(&program(&[])).expect("BPF_PROG_LOAD");
    }
}

//! The -ENOSYS stub, as runc's `patchbpf`: a few classic-BPF
//! instructions put before libseccomp's program so that a syscall newer
//! than every syscall the profile names fails with ENOSYS instead of the
//! profile's default action.
//!
//! Why: a profile written before a syscall existed cannot allow it, and
//! its default (usually EPERM) tells the C library the call exists but is
//! forbidden, so the library does not fall back to the older call (glibc
//! tries `clone3`, `faccessat2`, `openat2` first). ENOSYS, "this kernel
//! lacks it", makes it fall back. The rule is runc's: per architecture,
//! "newer" means a number above the largest the profile names for that
//! architecture; nothing changes when the default action already lets
//! calls through (allow, log, trace) or is ENOSYS itself.
//!
//! The stub is, for each architecture the filter covers:
//! ```text
//!     ld  [4]                      ; seccomp_data.arch
//!     jeq ARCH_1, sec_1            ; ... one per architecture
//!     ja  filter
//! sec_1:
//!     ld  [0]                      ; seccomp_data.nr
//!     jgt LAST_1, enosys, to_filter
//! to_filter:
//!     ja  filter
//! enosys:
//!     ret ERRNO(ENOSYS)
//! ```
//! x86_64 and x32 share an audit architecture (x32 sets bit 30 of the
//! number): that section first tests the bit and compares with the
//! largest number of the mode the call was made in, or goes straight to
//! the filter when the profile does not cover that mode.

use libseccomp::{ScmpArch, ScmpSyscall};

/// `__X32_SYSCALL_BIT`.
const X32_BIT: u32 = 0x4000_0000;
/// SECCOMP_RET_ERRNO | ENOSYS.
const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets of `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// The largest syscall number the profile names, per architecture: the
/// key is the kernel's AUDIT_ARCH value; x86_64 and x32 share one entry.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Last {
    /// (audit arch, largest number in the native mode, largest in x32 mode)
    arches: Vec<(u32, Option<u32>, Option<u32>)>,
}

impl Last {
    /// Looks up every name in `names` for every architecture in `arches`
    /// (libseccomp's tables); names unknown to an architecture are skipped
    /// and so are architectures the stub does not know (they keep the
    /// filter's own behaviour).
    pub(super) fn of<'a>(
        arches: &[ScmpArch],
        names: impl Iterator<Item = &'a str> + Clone,
    ) -> Last {
        let mut last = Last::default();
        for &arch in arches {
            let Some((audit, x32)) = audit_arch(arch) else {
                continue;
            };
            let max = names
                .clone()
                .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
                .map(i32::from)
                .filter(|&nr| nr >= 0)
                .max()
                .map(|nr| nr as u32);
            let Some(max) = max else { continue };
            let entry = match last.arches.iter_mut().find(|e| e.0 == audit) {
                Some(e) => e,
                None => {
                    last.arches.push((audit, None, None));
                    last.arches.last_mut().expect("just pushed")
                }
            };
            let slot = if x32 { &mut entry.2 } else { &mut entry.1 };
            *slot = Some(slot.map_or(max, |m| m.max(max)));
        }
        last
    }
}

/// The kernel's AUDIT_ARCH value for `arch` (libseccomp's SCMP_ARCH_*
/// values are those, except x32, which the kernel reports as x86_64),
/// and whether it is the x32 mode of it.
fn audit_arch(arch: ScmpArch) -> Option<(u32, bool)> {
    const X86_64: u32 = 0xC000_003E;
    Some(match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => (0x4000_0003, false),
        ScmpArch::X8664 => (X86_64, false),
        ScmpArch::X32 => (X86_64, true),
        ScmpArch::Arm => (0x4000_0028, false),
        ScmpArch::Aarch64 => (0xC000_00B7, false),
        ScmpArch::Riscv64 => (0xC000_00F3, false),
        ScmpArch::Ppc64 => (0x8000_0015, false),
        ScmpArch::Ppc64Le => (0xC000_0015, false),
        ScmpArch::Ppc => (0x0000_0014, false),
        _ => return None,
    })
}

/// Where a jump goes while the stub is being laid out.
#[derive(Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// A label, resolved once the stub is complete.
    Label(usize),
    /// The first instruction of libseccomp's program, after the stub.
    Filter,
}

struct Asm {
    ins: Vec<(u16, To, To, u32)>,
    labels: Vec<usize>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }
    fn here(&mut self, l: usize) {
        self.labels[l] = self.ins.len();
    }
    fn op(&mut self, code: u16, jt: To, jf: To, k: u32) {
        self.ins.push((code, jt, jf, k));
    }
    /// The instructions, jumps resolved; `None` if a conditional jump
    /// would not fit in its 8 bits (the stub is a few instructions per
    /// architecture, so only for an absurd number of them).
    fn finish(self) -> Option<Vec<libc::sock_filter>> {
        let end = self.ins.len();
        let target = |t: To, i: usize| -> usize {
            match t {
                To::Next => i + 1,
                To::Label(l) => self.labels[l],
                To::Filter => end,
            }
        };
        self.ins
            .iter()
            .enumerate()
            .map(|(i, &(code, jt, jf, k))| {
                if code == JA {
                    let off = target(jt, i) - (i + 1);
                    return Some(libc::sock_filter {
                        code,
                        jt: 0,
                        jf: 0,
                        k: u32::try_from(off).ok()?,
                    });
                }
                let off = |t| u8::try_from(target(t, i) - (i + 1)).ok();
                Some(libc::sock_filter {
                    code,
                    jt: off(jt)?,
                    jf: off(jf)?,
                    k,
                })
            })
            .collect()
    }
}

/// The stub for `last`, to go before the filter; empty when no
/// architecture has a largest syscall.
pub(super) fn stub(last: &Last) -> Vec<libc::sock_filter> {
    if last.arches.is_empty() {
        return Vec::new();
    }
    let mut a = Asm {
        ins: Vec::new(),
        labels: Vec::new(),
    };
    let sections: Vec<usize> = last.arches.iter().map(|_| a.label()).collect();
    a.op(LD_W_ABS, To::Next, To::Next, DATA_ARCH);
    for (&(audit, _, _), &sec) in last.arches.iter().zip(&sections) {
        a.op(JEQ_K, To::Label(sec), To::Next, audit);
    }
    a.op(JA, To::Filter, To::Filter, 0);
    for (&(audit, native, x32), &sec) in last.arches.iter().zip(&sections) {
        let (to_filter, enosys) = (a.label(), a.label());
        a.here(sec);
        a.op(LD_W_ABS, To::Next, To::Next, DATA_NR);
        let check = |a: &mut Asm, max: Option<u32>| match max {
            Some(max) => a.op(JGT_K, To::Label(enosys), To::Label(to_filter), max),
            None => a.op(JA, To::Label(to_filter), To::Label(to_filter), 0),
        };
        if audit_arch(ScmpArch::X32).is_some_and(|(x, _)| x == audit) {
            let x32_mode = a.label();
            a.op(JSET_K, To::Label(x32_mode), To::Next, X32_BIT);
            check(&mut a, native);
            a.here(x32_mode);
            check(&mut a, x32);
        } else {
            check(&mut a, native);
        }
        a.here(to_filter);
        a.op(JA, To::Filter, To::Filter, 0);
        a.here(enosys);
        a.op(RET_K, To::Next, To::Next, RET_ENOSYS);
    }
    a.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_and_x32_share_an_entry_with_a_largest_number_each() {
        let names = ["read", "getpid", "exit_group"];
        let last = Last::of(
            &[
                ScmpArch::X8664,
                ScmpArch::X32,
                ScmpArch::X86,
                ScmpArch::X8664,
            ],
            names.iter().copied(),
        );
        let x86_64 = last.arches.iter().find(|e| e.0 == 0xC000_003E).unwrap();
        assert_eq!(x86_64.1, Some(libc::SYS_exit_group as u32));
        assert!(x86_64.2.is_some_and(|n| n & X32_BIT != 0), "{last:?}");
        let x86 = last.arches.iter().find(|e| e.0 == 0x4000_0003).unwrap();
        assert_eq!(x86.1, Some(252)); // exit_group on i386
        assert_eq!(last.arches.len(), 2);
    }

    #[test]
    fn no_known_name_no_stub() {
        let last = Last::of(&[ScmpArch::X8664], ["no_such_call"].iter().copied());
        assert!(stub(&last).is_empty());
    }

    #[test]
    fn every_jump_lands_inside_the_stub_or_on_the_filter() {
        let names = ["read", "getpid", "exit_group"];
        let arches = [
            ScmpArch::X8664,
            ScmpArch::X32,
            ScmpArch::X86,
            ScmpArch::Aarch64,
        ];
        let prog = stub(&Last::of(&arches, names.iter().copied()));
        for (i, ins) in prog.iter().enumerate() {
            let targets = if ins.code == JA {
                vec![i + 1 + ins.k as usize]
            } else if ins.code & 0x07 == 0x05 {
                vec![i + 1 + ins.jt as usize, i + 1 + ins.jf as usize]
            } else {
                vec![]
            };
            assert!(targets.iter().all(|&t| t <= prog.len()), "{i}: {targets:?}");
        }
        assert_eq!(prog.last().unwrap().code, RET_K);
    }
}

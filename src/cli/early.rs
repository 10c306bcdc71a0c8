//! The binary's ELF entry point: the sealed re-exec before the C library
//! starts.
//!
//! `exec` must run from a read-only view of the binary (CVE-2019-5736,
//! [`rcrun::seal`]; `create` and `run` use the exec trampoline instead). Done from `main`, that costs
//! a whole program start for nothing: glibc's start-up in the process
//! about to be replaced (on a virtual machine, about 50 `cpuid`
//! instructions that each trap to the hypervisor: 0.3 ms here) and the
//! Rust runtime's. So the linker's entry point is `rcrun_entry` below
//! (build.rs passes `--entry`), which runs first, with nothing set up: it
//! looks at the arguments and, for those commands, mounts the same
//! detached read-only overlayfs as [`rcrun::seal::ensure_sealed`] and
//! executes the binary through it with raw system calls. Anything else,
//! and any failure, falls through to the C library's `_start` with the
//! registers and stack as the kernel (or the dynamic loader) left them;
//! `main` then seals the slow way (a memfd copy where overlayfs cannot be
//! mounted, as for a rootless user), so this is only ever a shortcut.
//! The overlay's mount fd stays open across the exec (its number in
//! `RCRUN_SEALED_MOUNT_FD`): closing it dissolves the detached mount,
//! which waits for an RCU grace period, so the new image closes it (see
//! `rcrun::seal::ensure_sealed`) at a moment nobody waits for.
//!
//! Until `_start` has run there is no thread pointer, no `errno`, no
//! resolved IFUNC (`memcpy`, `memcmp`) and, in a static PIE, no
//! relocations. The code below therefore calls no C library function,
//! makes its system calls with the `syscall` instruction, copies bytes
//! with volatile writes (so that the compiler cannot turn a loop into a
//! `memcpy` call), has no bounds checks that could panic and holds no
//! tables of pointers.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::mem::MaybeUninit;
use std::ptr;

// The kernel (or ld.so) enters with %rsp at argc and, after ld.so, %rdx
// holding a function for atexit: both are kept for `_start`.
std::arch::global_asm!(
    ".globl rcrun_entry",
    ".type rcrun_entry,@function",
    "rcrun_entry:",
    "mov rbx, rsp",
    "mov r12, rdx",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {early}",
    "mov rsp, rbx",
    "mov rdx, r12",
    "jmp _start",
    ".size rcrun_entry, .-rcrun_entry",
    early = sym early,
);

/// One system call; returns the kernel's result (a negative errno on
/// failure).
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[inline(always)]
unsafe fn sys(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for `nr`; `syscall`
    // clobbers only rcx and r11 and touches no stack of ours.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn close(fd: isize) {
    // SAFETY: closing an fd this code opened.
    unsafe { sys(libc::SYS_close, fd as usize, 0, 0, 0, 0) };
}

/// Whether the NUL-terminated `p` equals `s`.
///
/// # Safety
/// `p` must point to a NUL-terminated string.
unsafe fn is(p: *const u8, s: &[u8]) -> bool {
    // SAFETY: p is NUL-terminated; when it starts with s, its first
    // s.len() bytes are not NUL, so the next one is still in it.
    unsafe { starts_with(p, s) && *p.add(s.len()) == 0 }
}

/// Whether the NUL-terminated `p` starts with `s`.
///
/// # Safety
/// `p` must point to a NUL-terminated string.
unsafe fn starts_with(p: *const u8, s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        // SAFETY: a mismatch (at the latest p's NUL) ends the loop before
        // reading past it.
        if unsafe { *p.add(i) } != s[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Appends `s` at `out[*at]` unless it would pass `cap`; false if it
/// would.
///
/// # Safety
/// `out` must be valid for writes of `cap` bytes.
unsafe fn put(out: *mut u8, cap: usize, at: &mut usize, s: &[u8]) -> bool {
    if s.len() > cap - *at {
        return false;
    }
    for &b in s {
        // SAFETY: *at < cap, checked above; volatile keeps this a loop.
        unsafe { ptr::write_volatile(out.add(*at), b) };
        *at += 1;
    }
    true
}

/// The kernel's `struct statfs` on x86_64 (the libc crate keeps
/// `f_flags` private): f_type to f_frsize, then the mount flags.
#[repr(C)]
struct KernelStatfs {
    _head: [u64; 10],
    f_flags: i64,
    _spare: [i64; 4],
}

const PATH_CAP: usize = 4096;
/// The directory, every byte possibly escaped, a colon, the empty layer.
const LOWER_CAP: usize = 2 * PATH_CAP + 64;

/// Re-executes the binary through a read-only overlay when the command
/// line asks for `create`, `run` or `exec` (the same test as `main`'s) and
/// the binary is not read-only already; returns otherwise.
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel set up: argc, then
/// argv and envp, each NULL-terminated.
unsafe extern "C" fn early(sp: *const usize) {
    // SAFETY: the kernel's initial stack layout.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    // SAFETY: envp follows argv's NULL.
    let envp = unsafe { argv.add(argc + 1) };
    let mut wanted = false;
    for i in 1..argc {
        // SAFETY: argv has argc NUL-terminated strings.
        let a = unsafe { *argv.add(i) };
        // SAFETY: as above.
        if unsafe { is(a, b"exec") } {
            wanted = true;
            break;
        }
    }
    if !wanted {
        return;
    }
    // SAFETY: everything passed below is a NUL-terminated constant, a
    // buffer on this stack with its true size, or an fd opened here.
    unsafe {
        let exe = c"/proc/self/exe".as_ptr() as usize;
        let fd = sys(
            libc::SYS_open,
            exe,
            (libc::O_RDONLY | libc::O_CLOEXEC) as usize,
            0,
            0,
            0,
        );
        if fd < 0 {
            return;
        }
        // Already on a read-only mount (after this very re-exec, or an
        // install on a read-only /usr), or a sealed memfd: nothing to do.
        let done = read_only_or_sealed(fd);
        close(fd);
        if done {
            return;
        }

        let mut path = MaybeUninit::<[u8; PATH_CAP]>::uninit();
        let p = path.as_mut_ptr() as *mut u8;
        let n = sys(libc::SYS_readlink, exe, p as usize, PATH_CAP - 1, 0, 0);
        if n <= 0 || n as usize >= PATH_CAP - 1 || *p != b'/' {
            return;
        }
        let n = n as usize;
        ptr::write_volatile(p.add(n), 0);
        let mut slash = n;
        while slash > 0 && *p.add(slash - 1) != b'/' {
            slash -= 1;
        }
        // p[..slash - 1] is the directory ("" for "/"), p[slash..n] the name.
        let name = p.add(slash);
        if slash == n {
            return;
        }
        let mut lower = MaybeUninit::<[u8; LOWER_CAP]>::uninit();
        let l = lower.as_mut_ptr() as *mut u8;
        let mut at = 0;
        if slash == 1 && !put(l, LOWER_CAP, &mut at, b"/") {
            return;
        }
        for i in 0..slash - 1 {
            let b = *p.add(i);
            if (b == b'\\' || b == b':') && !put(l, LOWER_CAP, &mut at, b"\\") {
                return;
            }
            if !put(l, LOWER_CAP, &mut at, &[b]) {
                return;
            }
        }
        let empty = rcrun::seal::EXE_LOWER_DIR.to_bytes_with_nul();
        if !put(l, LOWER_CAP, &mut at, b":") || !put(l, LOWER_CAP, &mut at, empty) {
            return;
        }
        let m = sys(libc::SYS_mkdir, empty.as_ptr() as usize, 0o777, 0, 0, 0);
        if m < 0 && m != -(libc::EEXIST as isize) {
            return;
        }
        let mnt = mount_overlay(l);
        if mnt < 0 {
            return;
        }
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let bin = sys(
            libc::SYS_openat,
            mnt as usize,
            name as usize,
            flags as usize,
            0,
            0,
        );
        if bin < 0 {
            close(mnt);
            return;
        }
        // Closing the mount's fd here would dissolve the detached mount
        // and wait for an RCU grace period. The new image gets it
        // instead, its number in the environment (rcrun::seal::
        // MOUNT_FD_ENV), and closes it while nobody waits for it. With
        // an environment too large to copy here, it is closed now.
        let mut env = MaybeUninit::<[usize; ENV_CAP + 2]>::uninit();
        let e = env.as_mut_ptr() as *mut usize;
        let mut var = MaybeUninit::<[u8; VAR_CAP]>::uninit();
        let v = var.as_mut_ptr() as *mut u8;
        // The new image takes it only if it can tell it is its own (by
        // mount id, since Linux 5.8) and it is not one of the standard
        // fds (a caller may have left them closed).
        let known = mnt > 2 && has_mount_id(mnt);
        let (envp, kept) = match known.then(|| with_mount_fd(envp, e, v, mnt)).flatten() {
            Some(new) => (new, true),
            None => {
                close(mnt);
                (envp, false)
            }
        };
        sys(
            libc::SYS_execveat,
            bin as usize,
            c"".as_ptr() as usize,
            argv as usize,
            envp as usize,
            libc::AT_EMPTY_PATH as usize,
        );
        // Not executable through the overlay: main copies it to a memfd.
        close(bin);
        if kept {
            close(mnt);
        }
    }
}

/// Whether `fd` (the executable) is on a read-only mount or a memfd
/// with every seal rcrun needs.
///
/// # Safety
/// `fd` is an open fd; only raw syscalls on stack buffers.
unsafe fn read_only_or_sealed(fd: isize) -> bool {
    let mut st = MaybeUninit::<KernelStatfs>::uninit();
    // SAFETY: st is a buffer of the kernel's statfs size on this stack.
    let ro = unsafe {
        sys(
            libc::SYS_fstatfs,
            fd as usize,
            st.as_mut_ptr() as usize,
            0,
            0,
            0,
        ) == 0
            && (*st.as_ptr()).f_flags & libc::ST_RDONLY as i64 != 0
    };
    // SAFETY: plain fcntl on an open fd.
    let seals = unsafe {
        sys(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_GET_SEALS as usize,
            0,
            0,
            0,
        )
    };
    ro || (seals >= 0 && seals as libc::c_int & rcrun::seal::MUST_SEAL == rcrun::seal::MUST_SEAL)
}

/// A detached read-only overlay mount whose only layer is `lower` (a
/// NUL-terminated `lowerdir=` value); its fd, or a negative errno.
///
/// # Safety
/// `lower` is NUL-terminated; only raw syscalls on constants and it.
unsafe fn mount_overlay(lower: *const u8) -> isize {
    // SAFETY: constant NUL-terminated strings and `lower`.
    unsafe {
        let ctx = sys(libc::SYS_fsopen, c"overlay".as_ptr() as usize, 1, 0, 0, 0);
        if ctx < 0 {
            return ctx;
        }
        const SET_STRING: usize = 1;
        const CMD_CREATE: usize = 6;
        let set = |k: &std::ffi::CStr, v: usize| {
            sys(
                libc::SYS_fsconfig,
                ctx as usize,
                SET_STRING,
                k.as_ptr() as usize,
                v,
                0,
            )
        };
        let r = set(c"lowerdir", lower as usize);
        if r < 0 {
            close(ctx);
            return r;
        }
        set(c"xino", c"off".as_ptr() as usize);
        let r = sys(libc::SYS_fsconfig, ctx as usize, CMD_CREATE, 0, 0, 0);
        if r < 0 {
            close(ctx);
            return r;
        }
        // Not close-on-exec: the new image closes it later (see early).
        let mnt = sys(
            libc::SYS_fsmount,
            ctx as usize,
            0,
            rcrun::seal::OVERLAY_ATTR as usize,
            0,
            0,
        );
        close(ctx);
        mnt
    }
}

/// Whether the kernel reports the mount id of `fd` (`STATX_MNT_ID`).
fn has_mount_id(fd: isize) -> bool {
    let mut stx = MaybeUninit::<libc::statx>::uninit();
    // SAFETY: statx of the fd itself into a buffer of its size.
    unsafe {
        sys(
            libc::SYS_statx,
            fd as usize,
            c"".as_ptr() as usize,
            libc::AT_EMPTY_PATH as usize,
            libc::STATX_MNT_ID as usize,
            stx.as_mut_ptr() as usize,
        ) == 0
            && (*stx.as_ptr()).stx_mask & libc::STATX_MNT_ID != 0
    }
}

/// The most environment entries copied to add the mount's fd.
const ENV_CAP: usize = 1024;
/// `RCRUN_SEALED_MOUNT_FD=`, up to 10 digits and a NUL.
const VAR_CAP: usize = 64;

/// Builds in `out` (room for ENV_CAP + 2 pointers) the environment
/// `envp` plus `MOUNT_FD_ENV=fd`, written into `var` (VAR_CAP bytes);
/// None if `envp` has more than ENV_CAP entries.
///
/// # Safety
/// `envp` must be a NULL-terminated array of C strings; `out` and `var`
/// must be valid for writes of their sizes.
unsafe fn with_mount_fd(
    envp: *const *const u8,
    out: *mut usize,
    var: *mut u8,
    fd: isize,
) -> Option<*const *const u8> {
    let name = rcrun::seal::MOUNT_FD_ENV.as_bytes();
    let (mut i, mut n) = (0, 0);
    // SAFETY: envp is NULL-terminated; n < ENV_CAP + 2 at every write.
    unsafe {
        while !(*envp.add(i)).is_null() {
            let p = *envp.add(i);
            i += 1;
            // One of ours from elsewhere (a caller's) would be taken for
            // this one: leave it out.
            if starts_with(p, name) && *p.add(name.len()) == b'=' {
                continue;
            }
            if n == ENV_CAP {
                return None;
            }
            ptr::write_volatile(out.add(n), p as usize);
            n += 1;
        }
    }
    let mut at = 0;
    // SAFETY: var has VAR_CAP bytes; put checks the room.
    unsafe {
        if !put(var, VAR_CAP, &mut at, name) || !put(var, VAR_CAP, &mut at, b"=") {
            return None;
        }
    }
    let mut digits = MaybeUninit::<[u8; 20]>::uninit();
    let dp = digits.as_mut_ptr() as *mut u8;
    let mut k = 0;
    let mut x = fd as u64;
    loop {
        // SAFETY: k < 20: a u64 has at most 20 digits.
        unsafe { ptr::write_volatile(dp.add(k), b'0' + (x % 10) as u8) };
        k += 1;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    while k > 0 {
        k -= 1;
        // SAFETY: written above; k < 20.
        let d = unsafe { *dp.add(k) };
        // SAFETY: var has VAR_CAP bytes; put checks the room.
        if !unsafe { put(var, VAR_CAP, &mut at, &[d]) } {
            return None;
        }
    }
    // SAFETY: as above.
    if !unsafe { put(var, VAR_CAP, &mut at, &[0]) } {
        return None;
    }
    // SAFETY: n <= ENV_CAP, so n + 1 < ENV_CAP + 2.
    unsafe {
        ptr::write_volatile(out.add(n), var as usize);
        ptr::write_volatile(out.add(n + 1), 0);
    }
    Some(out as *const *const u8)
}

//! Records the git commit for `rcrun --version` (dockerd parses its
//! `commit:` line), or the package version when built outside git.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("v{}", std::env::var("CARGO_PKG_VERSION").unwrap()));
    println!("cargo:rustc-env=RCRUN_COMMIT={commit}");
    // The binary starts in src/cli/early.rs, which re-executes it sealed
    // before the C library's start-up; it falls through to `_start`.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bin=rcrun=-Wl,--entry=rcrun_entry");
        println!("cargo:rustc-link-arg-bin=rcrun-image=-Wl,--entry=rcrun_entry");
    }
    trampoline();
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// Builds the exec trampoline (src/process/trampoline.c) as a static
/// executable without a C library, for `include_bytes!` in
/// src/process/trampoline.rs, and sets `cfg(rcrun_trampoline)`. Only on
/// x86_64 Linux (its system calls are written for it); elsewhere rcrun
/// always seals itself instead (src/seal.rs).
fn trampoline() {
    println!("cargo::rustc-check-cfg=cfg(rcrun_trampoline)");
    println!("cargo:rerun-if-changed=src/process/trampoline.c");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64")
        || std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
    {
        return;
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("trampoline");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = std::process::Command::new(&cc)
        .args([
            "-Os",
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-Wall",
            "-Werror",
            "-Wl,--build-id=none",
            "-Wl,-z,noseparate-code",
            "-Wl,-z,noexecstack",
            "-s",
            "-o",
        ])
        .arg(&out)
        .arg("src/process/trampoline.c")
        .status()
        .unwrap_or_else(|e| panic!("{cc}: {e} (a C compiler builds the exec trampoline)"));
    assert!(
        status.success(),
        "{cc} failed to build src/process/trampoline.c"
    );
    println!("cargo:rustc-cfg=rcrun_trampoline");
}

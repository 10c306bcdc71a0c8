//! The program's main, shared by `rcrun` and `rcrun-image`.

use clap::Parser;

use super as cli;

/// The program: `IMAGES` is whether this binary has the image commands
/// (`rcrun-image`) or hands them to it (`rcrun`).
pub fn main<const IMAGES: bool>() {
    // Seal first, before parsing anything: the process about to be
    // replaced should do no work. Usually the entry point (cli/early.rs)
    // has done it already, before the C library started; this covers the
    // rest (a memfd copy where overlayfs cannot be mounted). A failure is
    // reported below, once the flags (--log) are known.
    if raw_args_need_seal() {
        let _ = rcrun::seal::ensure_sealed();
    }
    let mut args = cli::Cli::parse();
    if IMAGES && args.global.systemd_cgroup {
        // Only here: `rcrun` (IMAGES false) links no D-Bus client.
        args.global.systemd_driver = Some(|rt| rt.with_systemd_cgroup(true));
    }
    let g = &args.global;
    let logger = match cli::log::Logger::install(g.log.as_deref(), g.log_format, g.debug) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "rcrun: --log {}: {e}",
                g.log.as_deref().unwrap_or("".as_ref()).display()
            );
            std::process::exit(1);
        }
    };
    let status = args.command.failure_status();
    if args.command.needs_seal() {
        // Re-exec from a sealed memfd (CVE-2019-5736); returns once sealed.
        if let Err(e) = rcrun::seal::ensure_sealed() {
            fail(
                logger,
                &format!("cannot re-execute from a sealed copy: {e}"),
                status,
            );
        }
    }
    match args.command.run::<IMAGES>(&args.global) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(logger, &e.0, status),
    }
}

/// Whether the command line names `exec` anywhere (a flag's value that
/// happens to be `exec` only costs a re-exec). `create` and `run` start
/// the program through the exec trampoline instead, and seal only for a
/// container that needs it (`cli::or_reseal`).
fn raw_args_need_seal() -> bool {
    std::env::args_os().skip(1).any(|a| a == "exec")
}

fn fail(logger: &cli::log::Logger, msg: &str, status: i32) -> ! {
    logger.line(log::Level::Error, msg);
    if logger.to_file() {
        eprintln!("rcrun: {msg}");
    }
    std::process::exit(status)
}

//! A minimal node agent embedding rcrun: run one container from a bundle,
//! supervise it to completion and clean up.
//!
//! ```text
//! cargo run --example embed -- /path/to/bundle my-container
//! ```

use rcrun::{CreateOptions, Runtime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing, before any thread exists: run from a sealed copy so the
    // container's init cannot reach this binary (CVE-2019-5736).
    rcrun::seal::ensure_sealed()?;
    let mut args = std::env::args().skip(1);
    let (Some(bundle), Some(id)) = (args.next(), args.next()) else {
        eprintln!("usage: embed BUNDLE ID");
        std::process::exit(2);
    };
    let rt = Runtime::new("/run/rcrun-embed");
    let c = rt.create(&id, bundle.as_ref(), CreateOptions::default())?;
    println!("created {} (init pid {})", c.id(), c.pid());
    rt.start(&id)?;
    let code = c.wait()?;
    println!("{id} exited with {code}");
    rt.delete(&id, false)?;
    std::process::exit(code.shell_code());
}

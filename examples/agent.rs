//! A small node agent on the rcrun library: starts containers with their
//! output in log files, restarts one that exits non-zero (up to three
//! times), and prints every event as a JSON line, all from one thread.
//!
//! ```text
//! cargo run --example agent -- STATE_ROOT LOG_DIR NAME=BUNDLE...
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use rcrun::events::{Event, Events};
use rcrun::{CreateOptions, Runtime, Stdio};

/// Restarts after a non-zero exit, per container.
const MAX_RESTARTS: u32 = 3;

/// Starts `name` from `bundle`, its stdout and stderr appended to
/// `LOG_DIR/name.log`.
fn start(
    rt: &Runtime,
    logs: &std::path::Path,
    name: &str,
    bundle: &std::path::Path,
) -> Result<rcrun::Container, Box<dyn std::error::Error>> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))?;
    let err = log.try_clone()?;
    let opts = CreateOptions {
        stdio: Stdio {
            stdin: None,
            stdout: Some(log.into()),
            stderr: Some(err.into()),
        },
        ..CreateOptions::default()
    };
    Ok(rt.run(name, bundle, opts)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rcrun::seal::ensure_sealed()?; // before any thread
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(logs)) = (args.next(), args.next()) else {
        return Err("usage: agent STATE_ROOT LOG_DIR NAME=BUNDLE...".into());
    };
    let logs = PathBuf::from(logs);
    let bundles: HashMap<String, PathBuf> = args
        .filter_map(|a| a.split_once('=').map(|(n, b)| (n.to_string(), b.into())))
        .collect();
    let rt = Runtime::new(root);
    let mut events = Events::new(&rt)?;
    let mut restarts: HashMap<String, u32> = HashMap::new();
    for (name, bundle) in &bundles {
        events.watch(start(&rt, &logs, name, bundle)?)?;
    }
    while let Some(e) = events.next() {
        let e = e?;
        println!("{}", e.to_json());
        let Event::Exit { id, status, .. } = e else {
            continue;
        };
        rt.delete(&id, true)?;
        let failed = status.is_none_or(|s| !s.success());
        let n = restarts.entry(id.clone()).or_default();
        if failed && *n < MAX_RESTARTS {
            *n += 1;
            events.watch(start(&rt, &logs, &id, &bundles[&id])?)?;
        }
    }
    Ok(())
}

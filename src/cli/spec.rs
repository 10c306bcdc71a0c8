use std::path::PathBuf;

use clap::Args;

use super::{
    anyhow_lite::{Error, Result},
    Global,
};

/// The spec command creates the new specification file named "config.json"
/// for the bundle: a container that runs "sh" on a terminal, with the
/// namespaces, mounts, masked paths and capabilities runc's default has.
/// Edit it, then "rcrun run" the bundle.
#[derive(Debug, Args)]
pub struct Spec {
    /// Path to the root of the bundle directory
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

impl Spec {
    pub fn run(self, _g: &Global) -> Result<i32> {
        let path = self.bundle.join("config.json");
        if path.exists() {
            return Err(Error(format!(
                "File {} exists. Remove it first",
                path.display()
            )));
        }
        let spec = rcrun::spec::default_spec(self.rootless);
        let text = serde_json::to_string_pretty(&spec)?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| Error(format!("{}: {e}", path.display())))?;
        Ok(0)
    }
}

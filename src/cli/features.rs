use clap::Args;

use super::{anyhow_lite::Result, Global};

/// Show the enabled features as JSON (runtime-spec features.md).
#[derive(Debug, Args)]
pub struct Features {}

impl Features {
    pub fn run(self, _g: &Global) -> Result<i32> {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rcrun::features::features())?
        );
        Ok(0)
    }
}

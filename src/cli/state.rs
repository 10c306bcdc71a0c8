use clap::Args;

use super::{anyhow_lite::Result, Global};

/// The state command outputs current state information for the container as JSON.
#[derive(Debug, Args)]
pub struct State {
    /// The container id
    pub id: String,
}

impl State {
    pub fn run(self, g: &Global) -> Result<i32> {
        let s = g.runtime().state(&self.id)?;
        outln!("{}", serde_json::to_string_pretty(&s)?);
        Ok(0)
    }
}

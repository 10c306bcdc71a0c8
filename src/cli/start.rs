use clap::Args;

use super::{anyhow_lite::Result, Global};

/// The start command executes the user defined process in a created container.
#[derive(Debug, Args)]
pub struct Start {
    /// The container id
    pub id: String,
}

impl Start {
    pub fn run(self, g: &Global) -> Result<i32> {
        g.runtime().start(&self.id)?;
        Ok(0)
    }
}

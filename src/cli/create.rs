use clap::Args;

use super::{anyhow_lite::Result, CreateFlags, Global};

/// The create command creates an instance of a container for a bundle.
/// The container is left waiting for "rcrun start".
#[derive(Debug, Args)]
pub struct Create {
    #[command(flatten)]
    pub flags: CreateFlags,
}

impl Create {
    pub fn run(self, g: &Global) -> Result<i32> {
        super::or_reseal(g.runtime().create(
            &self.flags.id,
            &self.flags.bundle,
            self.flags.options(),
        ))?;
        Ok(0)
    }
}

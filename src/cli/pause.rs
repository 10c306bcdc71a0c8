use clap::Args;

use super::{anyhow_lite::Result, Global};

/// The pause command suspends all processes in the container (the
/// cgroup freezer).
#[derive(Debug, Args)]
pub struct Pause {
    /// The container id
    pub id: String,
}

impl Pause {
    pub fn run(self, g: &Global) -> Result<i32> {
        g.runtime().pause(&self.id)?;
        Ok(0)
    }
}

/// The resume command resumes all processes in a paused container.
#[derive(Debug, Args)]
pub struct Resume {
    /// The container id
    pub id: String,
}

impl Resume {
    pub fn run(self, g: &Global) -> Result<i32> {
        g.runtime().resume(&self.id)?;
        Ok(0)
    }
}

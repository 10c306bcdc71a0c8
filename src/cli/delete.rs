use clap::Args;

use super::{anyhow_lite::Result, Global};

/// The delete command deletes any resources held by the container. A
/// running container is refused unless --force is given.
#[derive(Debug, Args)]
pub struct Delete {
    /// Forcibly delete the container if it is still running (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// The container id
    pub id: String,
}

impl Delete {
    pub fn run(self, g: &Global) -> Result<i32> {
        match g.runtime().delete(&self.id, self.force) {
            // runc: deleting a container that is already gone with --force succeeds.
            Err(rcrun::Error::Store(rcrun::StoreError::NotFound(_))) if self.force => Ok(0),
            r => r.map(|_| 0).map_err(Into::into),
        }
    }
}

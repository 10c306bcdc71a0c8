use clap::Args;

use super::{anyhow_lite::Result, Global};

/// The kill command sends a signal to the container's init process. The
/// signal is a name (KILL, SIGKILL, RTMIN+1) or a number; it defaults to SIGTERM.
#[derive(Debug, Args)]
pub struct Kill {
    /// Send the signal to all processes in the container
    #[arg(short, long)]
    pub all: bool,
    /// The container id
    pub id: String,
    /// The signal to send
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

impl Kill {
    pub fn run(self, g: &Global) -> Result<i32> {
        let sig = rcrun::signal::parse(&self.signal)?;
        g.runtime().kill(&self.id, sig, self.all)?;
        Ok(0)
    }
}

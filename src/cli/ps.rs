use clap::{Args, ValueEnum};

use super::{
    anyhow_lite::{Error, Result},
    Global,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The ps command displays the processes running inside a container. In
/// table format it runs ps(1) with PS_ARGS (default -ef) and keeps the
/// lines of the container's processes; in json format it prints their pids.
#[derive(Debug, Args)]
pub struct Ps {
    /// Select one of: table or json
    #[arg(short, long, value_name = "FORMAT", default_value = "table")]
    pub format: Format,
    /// The container id
    pub id: String,
    /// Arguments for ps(1)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

impl Ps {
    pub fn run(self, g: &Global) -> Result<i32> {
        let pids = g.runtime().pids(&self.id)?;
        if let Format::Json = self.format {
            outln!("{}", serde_json::to_string(&pids)?);
            return Ok(0);
        }
        let args = if self.ps_args.is_empty() {
            vec!["-ef".to_string()]
        } else {
            self.ps_args
        };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(Error(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let col = header
            .split_whitespace()
            .position(|h| h == "PID")
            .ok_or_else(|| Error("ps output has no PID column".into()))?;
        outln!("{header}");
        for l in lines {
            if let Some(pid) = l
                .split_whitespace()
                .nth(col)
                .and_then(|p| p.parse::<i32>().ok())
            {
                if pids.contains(&pid) {
                    outln!("{l}");
                }
            }
        }
        Ok(0)
    }
}

use clap::{Args, ValueEnum};

use super::{anyhow_lite::Result, Global};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The list command lists containers started by rcrun with the given root.
#[derive(Debug, Args)]
pub struct List {
    /// Select one of: table or json
    #[arg(short, long, value_name = "FORMAT", default_value = "table")]
    pub format: Format,
    /// Display only container IDs
    #[arg(short, long)]
    pub quiet: bool,
}

impl List {
    pub fn run(self, g: &Global) -> Result<i32> {
        let all = g.runtime().list()?;
        if self.quiet {
            for s in &all {
                outln!("{}", s.id);
            }
            return Ok(0);
        }
        match self.format {
            Format::Json => outln!("{}", serde_json::to_string(&all)?),
            Format::Table => {
                let rows: Vec<[String; 6]> = std::iter::once(
                    ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from),
                )
                .chain(all.iter().map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                }))
                .collect();
                let mut w = [0usize; 6];
                for r in &rows {
                    for (i, c) in r.iter().enumerate() {
                        w[i] = w[i].max(c.len());
                    }
                }
                for r in &rows {
                    let line: Vec<String> = r
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c:<width$}", width = w[i] + 3))
                        .collect();
                    outln!("{}", line.concat().trim_end());
                }
            }
        }
        Ok(0)
    }
}

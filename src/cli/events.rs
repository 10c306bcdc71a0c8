use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::{
    anyhow_lite::{Error, Result},
    Global,
};

/// One event as runc prints it: `type`, `id`, then `data` if any, in
/// that order (tools that read the stream line by line rely on it).
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

impl<'a, T: Serialize> Event<'a, T> {
    fn line(kind: &'a str, id: &'a str, data: Option<T>) -> String {
        serde_json::to_string(&Event { kind, id, data }).expect("an event serializes")
    }
}

/// The events command displays information about the container: by
/// default a stream of resource statistics every --interval and an "oom"
/// event whenever the kernel OOM-kills a process of it, until the
/// container stops; with --stats, one statistics event.
#[derive(Debug, Args)]
pub struct Events {
    /// Set the stats collection interval
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// The container id
    pub id: String,
}

impl Events {
    pub fn run(self, g: &Global) -> Result<i32> {
        let rt = g.runtime();
        let stats = |rt: &rcrun::Runtime| -> Result<String> {
            let s = rt.stats(&self.id)?;
            Ok(Event::line("stats", &self.id, Some(s)))
        };
        if self.stats {
            outln!("{}", stats(&rt)?);
            return Ok(0);
        }
        if rt.state(&self.id)?.status == rcrun::Status::Stopped {
            return Err(Error(format!(
                "container {} is stopped: no events",
                self.id
            )));
        }
        // One source (rcrun::events): the OOM notification is armed before
        // the first event is printed, so a kill after that is reported;
        // stats every interval; the init's exit ends the stream.
        let mut events = rcrun::events::Events::new(&rt)?;
        events.stats_every(self.interval)?;
        events.watch_id(&self.id)?;
        for e in &mut events {
            match e? {
                rcrun::events::Event::Stats { stats, .. } => {
                    outln!("{}", Event::line("stats", &self.id, Some(stats)))
                }
                // runc prints one "oom" event, without data, per kill.
                rcrun::events::Event::Oom { kills, .. } => {
                    for _ in 0..kills {
                        outln!("{}", Event::<()>::line("oom", &self.id, None));
                    }
                }
                rcrun::events::Event::Exit { .. } => return Ok(0),
                _ => {}
            }
        }
        Ok(0)
    }
}

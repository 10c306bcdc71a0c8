//! Log lines for --log and --log-format, as runc writes them (containerd
//! reads the last error from a JSON log).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    format: Format,
    out: Mutex<Box<dyn Write + Send>>,
    level: log::LevelFilter,
    to_file: bool,
}

impl Logger {
    /// Installs the logger; the log file is opened in append mode.
    pub fn install(
        path: Option<&Path>,
        format: Format,
        debug: bool,
    ) -> std::io::Result<&'static Logger> {
        let (out, to_file): (Box<dyn Write + Send>, bool) = match path {
            Some(p) => (
                Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                ),
                true,
            ),
            None => (Box::new(std::io::stderr()), false),
        };
        let l: &'static Logger = Box::leak(Box::new(Logger {
            format,
            out: Mutex::new(out),
            level: if debug {
                log::LevelFilter::Debug
            } else {
                log::LevelFilter::Warn
            },
            to_file,
        }));
        let _ = log::set_logger(l);
        log::set_max_level(l.level);
        Ok(l)
    }

    /// Whether lines go to a file (then errors are also printed to stderr).
    pub fn to_file(&self) -> bool {
        self.to_file
    }

    pub fn line(&self, level: log::Level, msg: &str) {
        let time = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        // logrus' names, which runc's log readers expect.
        let lvl = match level {
            log::Level::Warn => "warning".to_string(),
            l => l.as_str().to_ascii_lowercase(),
        };
        if !self.to_file {
            // On a terminal: one plain line.
            let prefix = if level == log::Level::Error {
                String::new()
            } else {
                format!("{lvl}: ")
            };
            eprintln!("rcrun: {prefix}{msg}");
            return;
        }
        let text = match self.format {
            Format::Json => serde_json::json!({"level": lvl, "msg": msg, "time": time}).to_string(),
            Format::Text => format!("time=\"{time}\" level={lvl} msg={msg:?}"),
        };
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "{text}");
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.line(r.level(), &r.args().to_string());
        }
    }
    fn flush(&self) {}
}

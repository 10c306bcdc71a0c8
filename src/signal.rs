//! Parsing signal names and numbers as `runc kill` accepts them.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::Error;

/// Parses `KILL`, `SIGKILL`, `kill`, `9`, `RTMIN+2` or `SIGRTMAX-1`;
/// `0` (no signal: only whether the process exists) as runc does.
///
/// # Errors
/// [`Error::InvalidSignal`] for anything else.
///
/// ```
/// assert_eq!(rcrun::signal::parse("TERM").unwrap(), 15);
/// assert_eq!(rcrun::signal::parse("SIGKILL").unwrap(), 9);
/// assert_eq!(rcrun::signal::parse("10").unwrap(), 10);
/// assert_eq!(rcrun::signal::parse("0").unwrap(), 0);
/// assert!(rcrun::signal::parse("SIGFOO").is_err());
/// ```
pub fn parse(s: &str) -> Result<i32, Error> {
    let bad = || Error::InvalidSignal(s.to_string());
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=rtmax).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else if let Some(k) = rest.strip_prefix('+') {
            base + k.parse::<i32>().ok()?
        } else if let Some(k) = rest.strip_prefix('-') {
            base - k.parse::<i32>().ok()?
        } else {
            return None;
        };
        (rtmin..=rtmax).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(rtmin, rest).ok_or_else(bad);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(rtmax, rest).ok_or_else(bad);
    }
    Signal::from_str(&format!("SIG{name}"))
        .map(|s| s as i32)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("SIGUSR1").unwrap(), 10);
        assert_eq!(parse("1").unwrap(), 1);
        assert_eq!(parse("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        assert_eq!(parse("0").unwrap(), 0);
        for bad in ["", "-1", "999", "SIGFOO", "RTMIN+99", "KILLX"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

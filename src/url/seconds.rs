//! A number of seconds as the tool's settings spell it: the one parser behind libpq's
//! `connect_timeout` (here) and the `MIGRATE_*_TIMEOUT` variables ([`crate::config`]).

use crate::error::{Error, Result};
use std::time::Duration;

/// The longest wait any timeout (a `*_TIMEOUT` variable, `connect_timeout`) may ask for: a
/// year. Longer values are a usage error (they would overflow the clock's arithmetic, and
/// nobody means them).
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A number of seconds from 0 to [`MAX_SECONDS`]; an error naming `what` otherwise.
pub fn parse_seconds(value: &str, what: &str) -> Result<Duration> {
    let secs: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| Error::config(format!("{what}='{value}' is not a number of seconds")))?;
    if secs > MAX_SECONDS {
        return Err(Error::config(format!(
            "{what}='{value}' is more than a year ({MAX_SECONDS} seconds)"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

//! The environment the tool reads (`MIGRATE_*`, `RAILWAY_*`, `DATABASE_URL`, libpq's `PG*`),
//! turned into one [`Config`], and the choice of the database from it. Only these variables
//! are read: anything else in the environment, valid UTF-8 or not, is never looked at.
//!
//! This module builds on [`crate::url`] (URL parsing, and the parsing of seconds it owns);
//! `url` never imports from here.

use crate::db::{LockMode, OpenOptions};
use crate::error::{Error, Result};
use crate::migrations::Deployment;
use crate::url::{self, DbUrl, DEFAULT_URL};
use std::time::Duration;

// Seconds are parsed by `url`, the lower layer (it needs them for `connect_timeout`): config
// builds on url, never the reverse. Re-exported so `config::parse_seconds` keeps working.
pub use crate::url::{parse_seconds, MAX_SECONDS};

/// One variable of the environment: `None` when unset; a usage error naming it (never showing
/// its value, which may hold a password) when it is not UTF-8.
pub fn var(name: &str) -> Result<Option<String>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|_| Error::config(format!("{name} is not valid UTF-8"))),
    }
}

/// The variables the tool reads, as text.
#[derive(Default)]
struct Raw {
    database_url: Option<String>,
    migrate_wait_timeout: Option<String>,
    migrate_lock_timeout: Option<String>,
    migrate_ddl_lock_timeout: Option<String>,
    migrate_net_timeout: Option<String>,
    migrate_strict: Option<String>,
    migrate_log_format: Option<String>,
    migrate_allow_data_loss: Option<String>,
    migrate_baseline: Option<String>,
    migrate_lock: Option<String>,
    railway_environment: Option<String>,
    railway_project_id: Option<String>,
    railway_deployment_id: Option<String>,
    railway_git_commit_sha: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-01T00:00:00.000Z INFO message`, one per line.
    Plain,
    /// One JSON object per line (`MIGRATE_LOG_FORMAT=json`).
    Json,
}

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` as given (may hold a password: never print it).
    pub database_url: Option<String>,
    /// `MIGRATE_WAIT_TIMEOUT`: how long to wait for the database (default 60 s).
    pub wait_timeout: Duration,
    /// `MIGRATE_LOCK_TIMEOUT`: how long to wait for another migrator (default 120 s).
    pub lock_timeout: Duration,
    /// `MIGRATE_DDL_LOCK_TIMEOUT`: how long one attempt of a migration waits for a table lock
    /// before giving way to the app's traffic (default 3 s); attempts repeat until
    /// `MIGRATE_LOCK_TIMEOUT`.
    pub ddl_lock_timeout: Duration,
    /// `MIGRATE_NET_TIMEOUT`: how long a PostgreSQL connection may go without a sign of life
    /// from the server (TCP keepalives and `TCP_USER_TIMEOUT`, on our side and, once we lock,
    /// the server's) before it is given up (default 30 s).
    pub net_timeout: Duration,
    /// `MIGRATE_STRICT`: a database ahead of this binary is an error, not a warning.
    pub strict: bool,
    /// `MIGRATE_LOG_FORMAT`: `plain` (default) or `json`.
    pub log_format: LogFormat,
    /// `MIGRATE_BASELINE`: `up` adopts a history-less database whose schema is a version by
    /// meaning (as `baseline`, under the lock), then applies the rest (Flyway's
    /// `baselineOnMigrate`).
    pub baseline_on_migrate: bool,
    /// `MIGRATE_LOCK`: `auto` (default), `session`, or `transaction` (behind a transaction-mode
    /// pooler).
    pub lock_mode: LockMode,
    /// `MIGRATE_ALLOW_DATA_LOSS`: the environment form of `down --yes`.
    pub allow_data_loss: bool,
    /// `RAILWAY_ENVIRONMENT` or `RAILWAY_PROJECT_ID` is set: we run on Railway.
    pub on_railway: bool,
    /// The deployment that applies steps (`RAILWAY_DEPLOYMENT_ID`, `RAILWAY_GIT_COMMIT_SHA`),
    /// recorded in the history with each.
    pub deployment: Deployment,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config> {
        // env_logger reads it and would skip a value that is not UTF-8 without a word.
        var("RUST_LOG")?;
        Config::from_raw(Raw {
            database_url: var("DATABASE_URL")?,
            migrate_wait_timeout: var("MIGRATE_WAIT_TIMEOUT")?,
            migrate_lock_timeout: var("MIGRATE_LOCK_TIMEOUT")?,
            migrate_ddl_lock_timeout: var("MIGRATE_DDL_LOCK_TIMEOUT")?,
            migrate_net_timeout: var("MIGRATE_NET_TIMEOUT")?,
            migrate_strict: var("MIGRATE_STRICT")?,
            migrate_log_format: var("MIGRATE_LOG_FORMAT")?,
            migrate_allow_data_loss: var("MIGRATE_ALLOW_DATA_LOSS")?,
            migrate_baseline: var("MIGRATE_BASELINE")?,
            migrate_lock: var("MIGRATE_LOCK")?,
            railway_environment: var("RAILWAY_ENVIRONMENT")?,
            railway_project_id: var("RAILWAY_PROJECT_ID")?,
            railway_deployment_id: var("RAILWAY_DEPLOYMENT_ID")?,
            railway_git_commit_sha: var("RAILWAY_GIT_COMMIT_SHA")?,
        })
    }

    fn from_raw(raw: Raw) -> Result<Config> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        Ok(Config {
            database_url: raw.database_url.filter(|u| !u.trim().is_empty()),
            wait_timeout: seconds(raw.migrate_wait_timeout, "MIGRATE_WAIT_TIMEOUT", 60)?,
            lock_timeout: seconds(raw.migrate_lock_timeout, "MIGRATE_LOCK_TIMEOUT", 120)?,
            ddl_lock_timeout: at_least(
                seconds(raw.migrate_ddl_lock_timeout, "MIGRATE_DDL_LOCK_TIMEOUT", 3)?,
                0.01,
                "MIGRATE_DDL_LOCK_TIMEOUT",
                "without a bound a migration would queue the app's traffic behind it",
            )?,
            net_timeout: at_least(
                seconds(raw.migrate_net_timeout, "MIGRATE_NET_TIMEOUT", 30)?,
                2.0,
                "MIGRATE_NET_TIMEOUT",
                "TCP keepalive works in whole seconds",
            )?,
            strict: flag(raw.migrate_strict, "MIGRATE_STRICT")?,
            allow_data_loss: flag(raw.migrate_allow_data_loss, "MIGRATE_ALLOW_DATA_LOSS")?,
            baseline_on_migrate: flag(raw.migrate_baseline, "MIGRATE_BASELINE")?,
            lock_mode: match raw.migrate_lock.as_deref().map(str::trim) {
                None | Some("") | Some("auto") => LockMode::Auto,
                Some("session") => LockMode::Session,
                Some("transaction") => LockMode::Transaction,
                Some(other) => {
                    return Err(Error::config(format!(
                        "MIGRATE_LOCK='{other}' is not one of auto, session, transaction"
                    )))
                }
            },
            log_format: match raw.migrate_log_format.as_deref().map(str::trim) {
                None | Some("") | Some("plain") | Some("text") => LogFormat::Plain,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(Error::config(format!(
                        "MIGRATE_LOG_FORMAT='{other}' is not one of plain, json"
                    )))
                }
            },
            on_railway: set(&raw.railway_environment) || set(&raw.railway_project_id),
            deployment: Deployment {
                id: raw.railway_deployment_id.filter(|v| !v.trim().is_empty()),
                commit: raw.railway_git_commit_sha.filter(|v| !v.trim().is_empty()),
            },
        })
    }

    /// The database to work on: `DATABASE_URL`, or the SQLite development default when it is
    /// unset outside Railway (logged, so nobody mistakes it for their real database). On
    /// Railway an unset `DATABASE_URL` is an error: it means the service lost its reference to
    /// the Postgres service, and a throwaway SQLite file in the container is never intended.
    pub fn database(&self) -> Result<DbUrl> {
        let url = match &self.database_url {
            Some(u) => u.clone(),
            None if self.on_railway => {
                return Err(Error::config(
                    "DATABASE_URL is not set, and this is Railway (RAILWAY_ENVIRONMENT/RAILWAY_PROJECT_ID): \
                     reference the Postgres service's variable, e.g. DATABASE_URL=${{Postgres.DATABASE_URL}}",
                ))
            }
            None => {
                log::info!("DATABASE_URL is not set: using the development default {DEFAULT_URL}");
                DEFAULT_URL.to_string()
            }
        };
        parse_url(&url)
    }
}

impl Config {
    /// How a command that may change the database opens it: waits for PostgreSQL, creates a
    /// missing SQLite file, and bounds SQLite's lock waits by `MIGRATE_LOCK_TIMEOUT`.
    pub fn for_writing(&self) -> OpenOptions {
        OpenOptions {
            wait: self.wait_timeout,
            create: true,
            lock_wait: Some(self.lock_timeout),
            ddl_lock_timeout: self.ddl_lock_timeout,
            net_timeout: self.net_timeout,
            lock_mode: self.lock_mode,
        }
    }

    /// How a command that only reads opens the database: a missing SQLite file is an error,
    /// never created.
    pub fn for_reading(&self) -> OpenOptions {
        OpenOptions {
            net_timeout: self.net_timeout,
            ..OpenOptions::reading(self.wait_timeout)
        }
    }
}

/// Parses a URL with the process's `PG*` variables as fallbacks, logging its warnings.
pub fn parse_url(url: &str) -> Result<DbUrl> {
    // Checked up front: the parser's lookups cannot fail, and a PG* variable it reads that is
    // not UTF-8 must be an error, not silently skipped.
    for name in url::PG_VARIABLES {
        var(name)?;
    }
    let parsed = url::parse(url, &|k| var(k).ok().flatten().filter(|v| !v.is_empty()))?;
    for w in &parsed.warnings {
        log::warn!("{w}");
    }
    Ok(parsed.url)
}

/// The variable `name` as a number of seconds (a trailing `s` allowed), `default` when unset.
fn seconds(v: Option<String>, name: &str, default: u64) -> Result<Duration> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(Duration::from_secs(default)),
        Some(s) => parse_seconds(s.trim_end_matches('s'), name),
    }
}

/// `d`, or an error when it is shorter than `min` seconds, saying `why` that is too short.
fn at_least(d: Duration, min: f64, name: &str, why: &str) -> Result<Duration> {
    if d.as_secs_f64() < min {
        return Err(Error::config(format!(
            "{name} must be at least {min} s: {why}"
        )));
    }
    Ok(d)
}

/// The variable `name` as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn flag(v: Option<String>, name: &str) -> Result<bool> {
    match v
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("false") | Some("0") | Some("no") | Some("off") => Ok(false),
        Some("true") | Some("1") | Some("yes") | Some("on") => Ok(true),
        Some(other) => Err(Error::config(format!(
            "{name}='{other}' is not true or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::from_raw(Raw::default()).unwrap();
        assert_eq!(c.wait_timeout, Duration::from_secs(60));
        assert_eq!(c.lock_timeout, Duration::from_secs(120));
        assert!(!c.strict && !c.on_railway);
        let raw = Raw {
            migrate_wait_timeout: Some("2.5".into()),
            migrate_strict: Some("TRUE".into()),
            railway_project_id: Some("x".into()),
            ..Raw::default()
        };
        let c = Config::from_raw(raw).unwrap();
        assert_eq!(c.wait_timeout, Duration::from_millis(2500));
        assert!(c.strict && c.on_railway);
        assert!(c
            .database()
            .unwrap_err()
            .to_string()
            .contains("DATABASE_URL is not set"));
        let bad = Raw {
            migrate_lock_timeout: Some("soon".into()),
            ..Raw::default()
        };
        let e = Config::from_raw(bad).unwrap_err().to_string();
        assert!(e.contains("MIGRATE_LOCK_TIMEOUT='soon'"), "{e}");
        for (value, want) in [
            ("1e20", "more than a year"),
            ("inf", "not a number"),
            ("-1", "not a number"),
            ("NaN", "not a number"),
        ] {
            let raw = Raw {
                migrate_wait_timeout: Some(value.into()),
                ..Raw::default()
            };
            let e = Config::from_raw(raw).unwrap_err().to_string();
            assert!(e.contains(want), "{value}: {e}");
        }
    }
}

//! PostgreSQL errors, in one place: the one function that turns a driver error into a message
//! ([`describe`], redacted), what a SQLSTATE means to us (a lost session, a lock wait that ran
//! out), a migration's failure named with its position in the file, and [`StepError`], the one
//! error type of a step attempt that carries "give way" so that every statement of a step
//! can use `?`.

use crate::error::{Error, Kind};
use crate::migrations::{line_col, Migration};
use tokio_postgres::error::{ErrorPosition, SqlState};

/// How a step attempt failed: it gave way to the app's traffic (a table lock not granted
/// within `lock_timeout`; the caller rolls back and retries), or for good.
#[derive(Debug)]
pub enum StepError {
    /// SQLSTATE 55P03 on a statement of the step: retried with backoff.
    GiveWay,
    /// Anything else: the step fails with this error.
    Fail(Error),
    /// Another migrator recorded the step meanwhile (found under the lock, between two
    /// statements of a guarded `-- no-transaction` script): nothing more to do.
    Done,
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Fail(e)
    }
}

impl From<tokio_postgres::Error> for StepError {
    /// A lock wait that ran out gives way; anything else fails the step as [`Error::from`] says.
    fn from(e: tokio_postgres::Error) -> StepError {
        give_way_or(e, Error::from)
    }
}

/// `e` as a [`StepError`]: [`StepError::GiveWay`] for a lock timeout, else `fail(e)`.
pub fn give_way_or(
    e: tokio_postgres::Error,
    fail: impl FnOnce(tokio_postgres::Error) -> Error,
) -> StepError {
    if is_lock_timeout(&e) {
        StepError::GiveWay
    } else {
        StepError::Fail(fail(e))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        let text = describe(&e);
        let (kind, message) = if is_connection_lost(&e) {
            (
                Kind::Unreachable,
                format!(
                    "the connection to the database was lost ({text}); what was not committed \
                     was rolled back by the server"
                ),
            )
        } else {
            (Kind::Internal, format!("PostgreSQL: {text}"))
        };
        Error::new(kind, message).with_source(e)
    }
}

/// Whether `e` means the session is gone: the connection closed or failed, or the server
/// shut down (SQLSTATE 57P01/57P02, an administrator or a crash) under us.
pub fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => matches!(db.code().code(), "57P01" | "57P02" | "57P03"),
        None => e.is_closed() || e.to_string() == "error communicating with the server",
    }
}

/// SQLSTATE 55P03: `lock_timeout` ran out.
pub fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// SQLSTATE 42P01: the table does not exist.
pub fn is_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

/// A PostgreSQL error as one line: the server's message, its detail in parentheses, SQLSTATE,
/// hint and context for an error the server sent; the cause chain (connection refused, TLS)
/// otherwise. Every message built from a PostgreSQL error goes through here (redacted).
pub fn describe(e: &tokio_postgres::Error) -> String {
    describe_in(e, None)
}

/// [`describe`], with the line and column of the error's position in `sql` when it has one.
pub fn describe_in(e: &tokio_postgres::Error, sql: Option<&str>) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m.push_str(&format!(" (SQLSTATE {})", db.code().code()));
            if let (Some(sql), Some(ErrorPosition::Original(pos))) = (sql, db.position()) {
                let (line, col) = line_col(sql, *pos as usize);
                m.push_str(&format!(" at line {line}, column {col}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            if let Some(w) = db.where_() {
                m.push_str(&format!("; context: {w}"));
            }
            m
        }
        None => {
            let mut parts = vec![e.to_string()];
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                cause = c.source();
            }
            parts.join(": ")
        }
    };
    crate::redact::scrub(&text)
}

/// A migration's failure: the migration, the server's message, SQLSTATE and the position in
/// the file.
pub fn migration_error(m: &Migration, sql: &str, verb: &str, e: tokio_postgres::Error) -> Error {
    if e.as_db_error().is_none() {
        return Error::from(e).context(format!("migration {m} {verb}"));
    }
    Error::new(
        Kind::Migration,
        format!(
            "migration {m} {verb} and was rolled back: {}",
            describe_in(&e, Some(sql))
        ),
    )
}

//! SQLite errors, in one place: the driver's error as ours, a write lock that stayed taken
//! named as such ([`busy_error`]), and a migration's failure named with SQLite's message, code
//! and position in the file.

use crate::error::{Error, Kind};
use crate::migrations::{line_col, Migration};

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        let message = format!("SQLite: {e}");
        Error::new(Kind::Internal, message).with_source(e)
    }
}

/// A failure to take the write lock, named as such.
pub fn busy_error(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            Error::new(
                Kind::Lock,
                "SQLite database stayed locked by another process past MIGRATE_LOCK_TIMEOUT",
            )
            .with_source(e)
        }
        _ => Error::from(e),
    }
}

/// A migration's failure: the migration, SQLite's message and code, and the position in the
/// file when SQLite gives one.
pub fn migration_error(m: &Migration, verb: &str, e: rusqlite::Error) -> Error {
    let mut msg = format!("migration {m} {verb} and was rolled back: ");
    match &e {
        rusqlite::Error::SqliteFailure(f, text) => msg.push_str(&format!(
            "{} (SQLite error {})",
            text.as_deref().unwrap_or("error"),
            f.extended_code
        )),
        rusqlite::Error::SqlInputError {
            msg: text,
            sql,
            offset,
            ..
        } => {
            let (line, col) = line_col(sql, *offset as usize + 1);
            msg.push_str(&format!("{text} at line {line}, column {col}"));
        }
        other => msg.push_str(&other.to_string()),
    }
    Error::new(Kind::Migration, msg)
}

/// The worker thread is gone: a panic there ended it.
pub fn stopped() -> Error {
    Error::internal("the SQLite worker stopped (a panic there; see the message above)")
}

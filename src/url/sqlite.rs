//! `sqlite://` URLs: a file path (relative or absolute), never a host, user or password, and
//! never an in-memory database (nothing would persist).

use super::parts::{decode, split_query, unechoed};
use super::{DbUrl, Parsed, SqliteUrl};
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Parses what follows `sqlite://`.
pub(super) fn parse_sqlite(rest: &str) -> Result<Parsed> {
    // Credentials are looked for before anything else is read, as for PostgreSQL: the part
    // before the first '/' up to its last '@'.
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if let Some((info, _)) = authority.rsplit_once('@') {
        // A user and password have no place here; mask the password before saying so.
        if let Some((_, pw)) = info.split_once(':') {
            crate::redact::register(pw);
            if let Ok(decoded) = decode(pw, "password") {
                crate::redact::register(&decoded);
            }
        }
        return Err(Error::config(
            "DATABASE_URL: a SQLite URL has no user, password or host (use sqlite:///relative.db \
             or sqlite:////absolute.db)",
        ));
    }
    let may_hold_password = rest.contains('@');
    let (main, params) = split_query(rest).map_err(|e| unechoed(e, may_hold_password))?;
    let (host, path) = main.split_once('/').unwrap_or((main, ""));
    if !host.is_empty() {
        return Err(Error::config(format!(
            "DATABASE_URL: a SQLite URL has no host, found '{host}' (use sqlite:///relative.db or sqlite:////absolute.db)"
        )));
    }
    let path = decode(path, "path")?;
    let memory = path.is_empty()
        || path == ":memory:"
        || (path.starts_with("file:") && path.contains("mode=memory"))
        || params.iter().any(|(k, v)| k == "mode" && v == "memory");
    if memory {
        return Err(Error::config(
            "DATABASE_URL names an in-memory SQLite database: nothing would persist; give a file, e.g. sqlite:///./yogaflow.db",
        ));
    }
    let warnings = params
        .iter()
        .map(|(k, _)| format!("DATABASE_URL parameter '{k}' is not used for SQLite; ignored"))
        .collect();
    Ok(Parsed {
        url: DbUrl::Sqlite(SqliteUrl {
            path: PathBuf::from(path),
        }),
        warnings,
    })
}

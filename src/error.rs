//! The one error type of the tool: what went wrong (its [`Kind`], which fixes the exit code),
//! a message that names the thing at fault, and the underlying cause chain. Free of drivers:
//! each driver's errors become this one in its own `db/<dialect>/error.rs`.

use std::fmt;

/// What class of failure happened; each class has one stable, documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bug or an unexpected condition (exit 1).
    Internal,
    /// Bad arguments, environment or `DATABASE_URL` (exit 2).
    Config,
    /// The database did not answer before `MIGRATE_WAIT_TIMEOUT` ran out (exit 3).
    Unreachable,
    /// The server answered but refused us for good: password, missing database, TLS (exit 4).
    Rejected,
    /// Another migrator held the lock past `MIGRATE_LOCK_TIMEOUT` (exit 5).
    Lock,
    /// A migration or an undo script failed; it was rolled back (exit 6).
    Migration,
    /// The recorded history does not fit this binary's migrations (exit 7).
    Diverged,
    /// `status --exit-code` found migrations to apply (exit 8).
    Pending,
    /// The live schema differs from the expected one (exit 9).
    SchemaDiffers,
    /// A value, row or file could not be transferred; nothing was written (exit 10).
    Data,
    /// The step would delete rows and was not confirmed with `--yes` (exit 11).
    DataLoss,
    /// `lint` found statements that block a busy table or break the running app (exit 12).
    Lint,
    /// SIGINT arrived; work in progress was rolled back (exit 130).
    Interrupted,
    /// SIGTERM arrived; work in progress was rolled back (exit 143).
    Terminated,
}

impl Kind {
    /// The process exit code for this kind of failure (docs/exit-codes.md).
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Internal => 1,
            Kind::Config => 2,
            Kind::Unreachable => 3,
            Kind::Rejected => 4,
            Kind::Lock => 5,
            Kind::Migration => 6,
            Kind::Diverged => 7,
            Kind::Pending => 8,
            Kind::SchemaDiffers => 9,
            Kind::Data => 10,
            Kind::DataLoss => 11,
            Kind::Lint => 12,
            Kind::Interrupted => 130,
            Kind::Terminated => 143,
        }
    }
}

/// The table printed by `--help` and mirrored in docs/exit-codes.md.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    internal error
  2    usage or configuration error (arguments, environment, DATABASE_URL)
  3    database unreachable until MIGRATE_WAIT_TIMEOUT ran out, or the connection was lost
  4    connection rejected (password, missing database, TLS verification)
  5    migration lock, or a migration's table locks, not obtained within MIGRATE_LOCK_TIMEOUT;
       `complete`: the previous app version's sessions still open after --wait
  6    a migration failed (it was rolled back; earlier ones stay applied)
  7    history diverged (changed migration, unknown versions with MIGRATE_STRICT, untracked schema)
  8    migrations pending (status --exit-code); up: an expand step waits behind a deferred
       contract step (run complete)
  9    schema differs from the expected one (verify, baseline)
  10   data error in export, import or copy (nothing was written)
  11   data loss refused (down without --yes)
  12   lint found problems in a migration
  130  interrupted by SIGINT, 143 by SIGTERM (work in progress rolled back)";

/// An error with its kind, a message naming what is wrong, and an optional cause.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause, printed after the message.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// Shorthand for a [`Kind::Config`] error.
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Kind::Config, message)
    }

    /// Shorthand for a [`Kind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Kind::Internal, message)
    }

    /// Shorthand for a [`Kind::Data`] error.
    pub fn data(message: impl Into<String>) -> Error {
        Error::new(Kind::Data, message)
    }

    /// The class of the failure.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The top-level message, without causes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Adds context in front of the message, keeping kind and cause.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The message followed by every distinct cause, one per line; a cause whose text the
    /// previous line already contains is skipped (drivers often repeat themselves, and
    /// refinery/tokio-postgres `Display` hides the useful part in `source()`).
    pub fn report(&self) -> String {
        let mut lines = vec![self.message.clone()];
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cause {
            let text = e.to_string();
            if !text.is_empty() && !lines.iter().any(|l| l.contains(&text)) {
                lines.push(format!("  caused by: {text}"));
            }
            cause = e.source();
        }
        crate::redact::scrub(&lines.join("\n"))
    }
}

impl Error {
    /// Whether this is a write to a reader that went away (`status | head -1`): not a failure
    /// of the tool, so `main` ends quietly with 0, as ripgrep does.
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return true;
                }
            }
            cause = e.source();
        }
        false
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(Kind::Internal, format!("I/O: {e}")).with_source(e)
    }
}

/// At most the first 64 characters of `text`, for naming a value that may be huge.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_documented() {
        let kinds = [
            Kind::Internal,
            Kind::Config,
            Kind::Unreachable,
            Kind::Rejected,
            Kind::Lock,
            Kind::Migration,
            Kind::Diverged,
            Kind::Pending,
            Kind::SchemaDiffers,
            Kind::Data,
            Kind::DataLoss,
            Kind::Lint,
            Kind::Interrupted,
            Kind::Terminated,
        ];
        let mut codes: Vec<i32> = kinds.iter().map(|k| k.exit_code()).collect();
        for code in &codes {
            assert!(
                EXIT_CODES_HELP.contains(&format!("{code} ")),
                "{code} undocumented"
            );
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
    }

    #[test]
    fn report_skips_repeated_causes() {
        let io = std::io::Error::other("connection refused");
        let e =
            Error::new(Kind::Unreachable, "cannot reach db: connection refused").with_source(io);
        assert_eq!(e.report(), "cannot reach db: connection refused");
    }
}

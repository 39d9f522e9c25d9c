//! Opening a database: the wait-for-database loop (transient failures retried with backoff
//! until `MIGRATE_WAIT_TIMEOUT`, permanent ones reported at once), libpq's TLS fallbacks, and
//! SQLite files.

use crate::db::Db;
use crate::error::{Error, Kind, Result};
use crate::tls::{self, Attempt};
use crate::url::{Host, PgTarget, SessionAttrs, SqliteTarget, Target};
use std::time::{Duration, Instant};

/// Whether a failed attempt is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The server may be starting, the network coming up, the DNS name not yet published.
    Transient,
    /// Waiting cannot help: password, missing database, TLS, configuration.
    Permanent,
}

/// Sorts a connection error into [`Failure`] classes.
pub fn classify(e: &tokio_postgres::Error) -> Failure {
    if let Some(db) = e.as_db_error() {
        return match db.code().code() {
            // cannot_connect_now (starting up, shutting down, recovery), too_many_connections,
            // admin/crash shutdown: the server exists and will take us soon.
            "57P03" | "53300" | "57P01" | "57P02" => Failure::Transient,
            _ => Failure::Permanent,
        };
    }
    // tokio-postgres keeps its error kinds private; its Display names them.
    match e.to_string().as_str() {
        "error connecting to server"
        | "timeout waiting for server"
        | "connection closed"
        | "error communicating with the server" => Failure::Transient,
        _ => Failure::Permanent,
    }
}

fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.to_string() == "error performing TLS handshake"
}

fn is_auth_rejection(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code().starts_with("28"))
}

/// Opens `target`, waiting up to `wait` for a PostgreSQL server to accept us. `create` lets a
/// missing SQLite file be created (commands that only read refuse a missing file instead).
pub async fn open(target: &Target, wait: Duration, create: bool) -> Result<Db> {
    match target {
        Target::Postgres(pg) => Ok(Db::Postgres(connect_pg(pg, wait).await?)),
        Target::Sqlite(s) => Ok(Db::Sqlite(open_sqlite(s, create)?)),
    }
}

/// Opens a SQLite file.
pub fn open_sqlite(target: &SqliteTarget, create: bool) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let path = &target.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "SQLite database {}: directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    if !create && !path.exists() {
        return Err(Error::config(format!(
            "SQLite database {} does not exist",
            path.display()
        )));
    }
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    rusqlite::Connection::open_with_flags(path, flags).map_err(|e| {
        Error::new(
            Kind::Rejected,
            format!("cannot open SQLite database {}", path.display()),
        )
        .with_source(e)
    })
}

/// Connects to PostgreSQL, retrying transient failures with backoff until `wait` has passed.
pub async fn connect_pg(target: &PgTarget, wait: Duration) -> Result<tokio_postgres::Client> {
    tls::check_files(&target.tls_files)?;
    let start = Instant::now();
    let deadline = start + wait;
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // A black-holed host must not keep us past the deadline.
        let budget = remaining.max(Duration::from_secs(1));
        let result = tokio::time::timeout(budget, connect_once(target)).await;
        let reason = match result {
            Ok(Ok(client)) => {
                if attempt > 1 {
                    log::info!(
                        "database ready after {attempt} attempts ({:.1} s)",
                        start.elapsed().as_secs_f64()
                    );
                }
                return Ok(client);
            }
            Ok(Err(e)) if classify(&e) == Failure::Permanent => {
                return Err(rejected(target, e));
            }
            Ok(Err(e)) => describe(&e),
            Err(_) => "timed out".to_string(),
        };
        if Instant::now() + delay >= deadline {
            let e = Error::new(
                Kind::Unreachable,
                format!(
                    "database {target} unreachable: gave up after {attempt} attempts in {:.1} s \
                     (MIGRATE_WAIT_TIMEOUT={}); last error: {reason}",
                    start.elapsed().as_secs_f64(),
                    wait.as_secs_f64()
                ),
            );
            return Err(e);
        }
        log::info!(
            "waiting for database (attempt {attempt}: {reason}); retrying in {} ms",
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    unreachable!("the loop returns")
}

/// The cause chain of a driver error on one line: tokio-postgres puts the useful part
/// (connection refused, the server's message) in `source()`.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    crate::redact::scrub(&parts.join(": "))
}

fn rejected(target: &PgTarget, e: tokio_postgres::Error) -> Error {
    let what = match e.as_db_error().map(|d| d.code().code()) {
        Some("28P01") | Some("28000") => "authentication failed",
        Some("3D000") => "database does not exist",
        _ if is_tls_failure(&e) => "TLS failed",
        _ => "connection refused by the server",
    };
    let message = format!("{what} for {target}: {}", describe(&e));
    Error::new(Kind::Rejected, message).with_source(e)
}

/// One pass over libpq's TLS plan.
async fn connect_once(
    target: &PgTarget,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let plan = tls::plan(target.sslmode, target.tls_files.has_root_file());
    for (i, attempt) in plan.iter().enumerate() {
        let e = match connect_with(target, *attempt).await {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        // libpq's fallbacks: prefer retries in plaintext when TLS fails or is refused by
        // pg_hba; allow retries with TLS when plaintext is refused.
        let fall_back = match attempt {
            Attempt::TryTls(_) => is_tls_failure(&e) || is_auth_rejection(&e),
            Attempt::Plain => is_auth_rejection(&e),
            Attempt::Tls(_) => false,
        };
        if i + 1 < plan.len() && fall_back {
            log::debug!(
                "{attempt:?} failed ({}); trying the next sslmode step",
                describe(&e)
            );
            continue;
        }
        return Err(e);
    }
    unreachable!("every plan has at least one attempt")
}

/// The tokio-postgres configuration for `target` with one TLS attempt.
fn pg_config(target: &PgTarget, attempt: Attempt) -> tokio_postgres::Config {
    use tokio_postgres::config::{ChannelBinding, SslMode, TargetSessionAttrs};
    let mut c = tokio_postgres::Config::new();
    c.user(&target.user).dbname(&target.dbname);
    if let Some(pw) = &target.password {
        c.password(pw);
    }
    for h in &target.hosts {
        match h {
            Host::Tcp(name) => c.host(name),
            Host::Unix(dir) => c.host_path(dir),
        };
    }
    for p in &target.ports {
        c.port(*p);
    }
    if let Some(t) = target.connect_timeout {
        c.connect_timeout(t);
    }
    c.application_name(
        target
            .application_name
            .as_deref()
            .unwrap_or("yogaflow-migrate"),
    );
    if let Some(o) = &target.options {
        c.options(o);
    }
    c.target_session_attrs(match target.session_attrs {
        SessionAttrs::Any => TargetSessionAttrs::Any,
        SessionAttrs::ReadWrite => TargetSessionAttrs::ReadWrite,
        SessionAttrs::ReadOnly => TargetSessionAttrs::ReadOnly,
    });
    if target.require_channel_binding {
        c.channel_binding(ChannelBinding::Require);
    }
    c.ssl_mode(match attempt {
        Attempt::Plain => SslMode::Disable,
        Attempt::TryTls(_) => SslMode::Prefer,
        Attempt::Tls(_) => SslMode::Require,
    });
    c
}

async fn connect_with(
    target: &PgTarget,
    attempt: Attempt,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let config = pg_config(target, attempt);
    match attempt {
        Attempt::Plain => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(drive(conn));
            Ok(client)
        }
        Attempt::TryTls(v) | Attempt::Tls(v) => {
            let connector = tls::LazyTls::new(v, &target.tls_files);
            let (client, conn) = config.connect(connector).await?;
            tokio::spawn(drive(conn));
            Ok(client)
        }
    }
}

async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        log::debug!("connection ended: {}", describe(&e));
    }
}

//! Connecting to PostgreSQL: the wait-for-database loop (transient failures retried with
//! backoff until `MIGRATE_WAIT_TIMEOUT`, permanent ones reported at once) and libpq's TLS
//! fallbacks.

use super::error::describe;
use crate::db::retry::Backoff;
use crate::error::{Error, Kind, Result};
use crate::tls::{self, Attempt};
use crate::url::{Host, PgUrl, SessionAttrs};
use std::time::Duration;

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

/// How long one host may take to accept a connection (TCP, TLS, authentication) when the
/// URL gives no `connect_timeout`: a silent host must not use up `MIGRATE_WAIT_TIMEOUT` while
/// the next host of the URL would answer.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one pass over the URL's hosts failed.
#[derive(Debug)]
enum Failed {
    /// The driver's error (of the last host tried).
    Driver(tokio_postgres::Error),
    /// The last host tried did not finish connecting within its bound.
    Silent { host: String, after: Duration },
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Driver(e) => f.write_str(&describe(e)),
            Failed::Silent { host, after } => write!(
                f,
                "{host} did not finish connecting within {:.1} s (connect_timeout)",
                after.as_secs_f64()
            ),
        }
    }
}

/// Connects to PostgreSQL, retrying transient failures with backoff until `wait` has passed.
/// `net_timeout` bounds how long the connection may then go without a sign of life from the
/// server (TCP keepalives and `TCP_USER_TIMEOUT`, see [`keepalive`]).
pub async fn connect_pg(
    url: &PgUrl,
    wait: Duration,
    net_timeout: Duration,
) -> Result<tokio_postgres::Client> {
    tls::check_files(&url.tls_files)?;
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2), wait);
    for attempt in 1.. {
        let remaining = wait.saturating_sub(backoff.elapsed());
        // A black-holed host must not keep us past the deadline.
        let budget = remaining.max(Duration::from_secs(1));
        let result = tokio::time::timeout(budget, connect_once(url, net_timeout)).await;
        let reason = match result {
            Ok(Ok(client)) => {
                if attempt > 1 {
                    log::info!(
                        "database ready after {attempt} attempts ({:.1} s)",
                        backoff.elapsed().as_secs_f64()
                    );
                }
                return Ok(client);
            }
            Ok(Err(Failed::Driver(e))) if classify(&e) == Failure::Permanent => {
                return Err(rejected(url, e));
            }
            Ok(Err(failed)) => failed.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if backoff.expired() {
            let e = Error::new(
                Kind::Unreachable,
                format!(
                    "database {url} unreachable: gave up after {attempt} attempts in {:.1} s \
                     (MIGRATE_WAIT_TIMEOUT={}); last error: {reason}",
                    backoff.elapsed().as_secs_f64(),
                    wait.as_secs_f64()
                ),
            );
            return Err(e);
        }
        // The last sleep ends at the deadline, so the wait is the whole MIGRATE_WAIT_TIMEOUT.
        let pause = backoff.next_pause();
        log::info!(
            "waiting for database (attempt {attempt}: {reason}); retrying in {} ms",
            pause.as_millis()
        );
        tokio::time::sleep(pause).await;
    }
    unreachable!("the loop returns")
}

fn rejected(url: &PgUrl, e: tokio_postgres::Error) -> Error {
    let what = match e.as_db_error().map(|d| d.code().code()) {
        Some("28P01") | Some("28000") => "authentication failed",
        Some("3D000") => "database does not exist",
        _ if is_tls_failure(&e) => "TLS failed",
        _ => "connection refused by the server",
    };
    let message = format!("{what} for {url}: {}", describe(&e));
    Error::new(Kind::Rejected, message).with_source(e)
}

/// A side connection to watch a session (see `watch`): one pass over the URL's hosts, nothing
/// retried; `None` when it fails.
pub async fn side_connection(url: &PgUrl, net_timeout: Duration) -> Option<tokio_postgres::Client> {
    connect_once(url, net_timeout).await.ok()
}

/// One pass over the URL's hosts, in order, as libpq makes it: each host gets the whole TLS
/// plan, bounded by `connect_timeout` (or [`DEFAULT_HOST_TIMEOUT`]) from the first packet to
/// the end of authentication; the first host that accepts us wins.
async fn connect_once(
    url: &PgUrl,
    net_timeout: Duration,
) -> std::result::Result<tokio_postgres::Client, Failed> {
    let bound = url.connect_timeout.unwrap_or(DEFAULT_HOST_TIMEOUT);
    let mut last = None;
    for (i, host) in url.hosts.iter().enumerate() {
        let addr = url.hostaddrs.get(i).copied();
        let port = url
            .ports
            .get(i)
            .or_else(|| url.ports.first())
            .copied()
            .unwrap_or(5432);
        let failure =
            match tokio::time::timeout(bound, connect_host(url, host, addr, port, net_timeout))
                .await
            {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => Failed::Driver(e),
                Err(_) => Failed::Silent {
                    host: match host {
                        Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                        Host::Tcp(name) => format!("{name}:{port}"),
                        Host::Unix(dir) => format!("socket {}", dir.display()),
                    },
                    after: bound,
                },
            };
        if i + 1 < url.hosts.len() {
            log::info!(
                "host {} of {} failed ({failure}); trying the next",
                i + 1,
                url.hosts.len()
            );
        }
        last = Some(failure);
    }
    Err(last.expect("a URL has at least one host"))
}

/// libpq's TLS plan against one host.
async fn connect_host(
    url: &PgUrl,
    host: &Host,
    addr: Option<std::net::IpAddr>,
    port: u16,
    net_timeout: Duration,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    let plan = tls::plan(url.sslmode, url.tls_files.has_root_file());
    for (i, attempt) in plan.iter().enumerate() {
        let mut config = pg_config(url, host, port, *attempt, net_timeout);
        if let Some(a) = addr {
            config.hostaddr(a);
        }
        let e = match connect_with(&config, url, *attempt).await {
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

/// TCP keepalive settings for a connection that must notice a dead peer within
/// `net_timeout`: idle a third of it, then three probes a sixth apart (at least 1 s each).
pub fn keepalive(net_timeout: Duration) -> (Duration, Duration, u32) {
    let second = Duration::from_secs(1);
    (
        (net_timeout / 3).max(second),
        (net_timeout / 6).max(second),
        3,
    )
}

/// The tokio-postgres configuration for one host of `url` with one TLS attempt.
fn pg_config(
    url: &PgUrl,
    host: &Host,
    port: u16,
    attempt: Attempt,
    net_timeout: Duration,
) -> tokio_postgres::Config {
    use tokio_postgres::config::{ChannelBinding, SslMode, TargetSessionAttrs};
    let mut c = tokio_postgres::Config::new();
    c.user(&url.user).dbname(&url.dbname);
    if let Some(pw) = &url.password {
        c.password(pw);
    }
    match host {
        Host::Tcp(name) => c.host(name),
        Host::Unix(dir) => c.host_path(dir),
    };
    c.port(port);
    let (idle, interval, retries) = keepalive(net_timeout);
    c.keepalives(true)
        .keepalives_idle(idle)
        .keepalives_interval(interval)
        .keepalives_retries(retries)
        .tcp_user_timeout(net_timeout);
    c.application_name(
        url.application_name
            .as_deref()
            .unwrap_or("yogaflow-migrate"),
    );
    if let Some(o) = &url.options {
        c.options(o);
    }
    c.target_session_attrs(match url.session_attrs {
        SessionAttrs::Any => TargetSessionAttrs::Any,
        SessionAttrs::ReadWrite => TargetSessionAttrs::ReadWrite,
        SessionAttrs::ReadOnly => TargetSessionAttrs::ReadOnly,
    });
    if url.require_channel_binding {
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
    config: &tokio_postgres::Config,
    url: &PgUrl,
    attempt: Attempt,
) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
    match attempt {
        Attempt::Plain => {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(drive(conn));
            Ok(client)
        }
        Attempt::TryTls(v) | Attempt::Tls(v) => {
            let connector = tls::LazyTls::new(v, &url.tls_files);
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

//! `DATABASE_URL`: turning every spelling a YogaFlow deployment may hold (libpq URLs, Heroku
//! style, SQLAlchemy driver forms, SQLite paths) into one [`DbUrl`], with libpq's `PG*`
//! variables as fallbacks and a redacted form for logs. Pure: the environment comes in as a
//! lookup function so tests can drive it from a table.

use crate::error::{Error, Result};
use crate::tls::{SslMode, TlsFiles};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// libpq's variables this parser reads as fallbacks.
pub const PG_VARIABLES: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGTARGETSESSIONATTRS",
];

/// The development default when `DATABASE_URL` is unset (outside Railway).
pub const DEFAULT_URL: &str = "sqlite:///./yogaflow.db";

/// A database the tool can work on.
#[derive(Debug, Clone, PartialEq)]
pub enum DbUrl {
    /// A PostgreSQL server (boxed: it is much larger than a path).
    Postgres(Box<PgUrl>),
    /// A SQLite file.
    Sqlite(SqliteUrl),
}

impl fmt::Display for DbUrl {
    /// The redacted form, safe for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Postgres(pg) => pg.fmt(f),
            DbUrl::Sqlite(s) => write!(f, "sqlite:{}", s.path.display()),
        }
    }
}

/// One host entry of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address (IPv6 without brackets).
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Unix(PathBuf),
}

/// libpq's `target_session_attrs`, as far as tokio-postgres can honour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Any server.
    Any,
    /// A server that accepts writes (`read-write`, `primary`).
    ReadWrite,
    /// A read-only server (`read-only`, `standby`, `prefer-standby`).
    ReadOnly,
}

/// Everything needed to connect to PostgreSQL.
#[derive(Clone, PartialEq)]
pub struct PgUrl {
    /// Hosts, tried in order.
    pub hosts: Vec<Host>,
    /// libpq's `hostaddr`: the address to reach each host at (empty, or one per host); the
    /// host name is still what TLS verifies.
    pub hostaddrs: Vec<IpAddr>,
    /// One port for all hosts, or one per host.
    pub ports: Vec<u16>,
    /// Role name.
    pub user: String,
    /// Password; registered with [`crate::redact`] as soon as it is parsed.
    pub password: Option<String>,
    /// Database name.
    pub dbname: String,
    /// libpq `sslmode` (default `prefer`).
    pub sslmode: SslMode,
    /// Root and client certificate files.
    pub tls_files: TlsFiles,
    /// Per-host connect timeout (`connect_timeout`; libpq treats values below 2 s as 2 s).
    pub connect_timeout: Option<Duration>,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: Option<String>,
    /// Server `options` (for example `-c search_path=app`).
    pub options: Option<String>,
    /// `target_session_attrs`.
    pub session_attrs: SessionAttrs,
    /// `channel_binding=require` (SCRAM channel binding is otherwise used when offered).
    pub require_channel_binding: bool,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

impl fmt::Display for PgUrl {
    /// `postgresql://user:***@host:port,.../db?sslmode=...`: never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pw = if self.password.is_some() { ":***" } else { "" };
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let port = self
                    .ports
                    .get(i)
                    .or(self.ports.first())
                    .copied()
                    .unwrap_or(5432);
                match h {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => format!("{}:{port}", dir.display()),
                }
            })
            .collect();
        write!(
            f,
            "postgresql://{}{pw}@{}/{}?sslmode={}",
            self.user,
            hosts.join(","),
            self.dbname,
            self.sslmode.as_str()
        )
    }
}

/// A SQLite database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteUrl {
    /// Path as given (relative paths are relative to the working directory).
    pub path: PathBuf,
}

/// A parsed URL and the warnings parsing produced (unused parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Where to connect.
    pub url: DbUrl,
    /// One line per parameter the tool does not use.
    pub warnings: Vec<String>,
}

/// Parameters that would tighten security but that this tool cannot apply: refusing is the
/// only honest answer (connecting less securely than asked would be a silent downgrade).
const REFUSED_SECURITY_PARAMS: &[&str] = &[
    "sslcrl",
    "sslcrldir",
    "sslpassword",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
];

/// Parses `url`; `env` looks up the `PG*` fallbacks.
pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::config("DATABASE_URL has no scheme: expected postgresql://... or sqlite:///...")
    })?;
    let scheme = scheme.to_ascii_lowercase();
    let base = scheme.split('+').next().unwrap_or_default();
    match base {
        "postgres" | "postgresql" => parse_postgres(rest, env),
        "sqlite" => parse_sqlite(rest),
        _ => Err(Error::config(format!(
            "DATABASE_URL scheme '{scheme}' is not supported: use postgresql:// (or postgres://, \
             postgresql+asyncpg://, ...) or sqlite:///path"
        ))),
    }
}

/// Percent-decoding as libpq does it: `%` must be followed by two hex digits, `%00` is
/// refused, and the result must be UTF-8. Errors name the part, never its text (it may be
/// the password).
fn decode(part: &str, what: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err(Error::config(format!(
                "DATABASE_URL {what} holds an invalid percent-encoded token ('%' must be \
                 followed by two hex digits; a literal '%' is %25)"
            )));
        };
        let byte = (hi * 16 + lo) as u8;
        if byte == 0 {
            return Err(Error::config(format!(
                "DATABASE_URL {what} holds %00, which libpq forbids"
            )));
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        Error::config(format!(
            "DATABASE_URL {what} is not valid UTF-8 once decoded"
        ))
    })
}

fn split_query(rest: &str) -> Result<(&str, Vec<(String, String)>)> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // As in libpq: exactly one '=' per parameter.
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::config(format!(
                "DATABASE_URL parameter '{}' has no '=' (key=value)",
                decode(pair, "parameter name")?
            )));
        };
        let key = decode(k, "parameter name")?;
        if v.contains('=') {
            return Err(Error::config(format!(
                "DATABASE_URL parameter '{key}' has a second '=' (percent-encode it as %3D)"
            )));
        }
        // A parameter value may be the password: register it (as given and decoded) before
        // anything can print it.
        if key == "password" {
            crate::redact::register(v);
        }
        let value = decode(v, &format!("parameter '{key}'"))?;
        if key == "password" {
            crate::redact::register(&value);
        }
        params.push((key, value));
    }
    Ok((main, params))
}

fn parse_sqlite(rest: &str) -> Result<Parsed> {
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

/// `e`, or when the URL part it quotes may hold part of the password, a message that quotes
/// nothing.
fn unechoed(e: Error, may_hold_password: bool) -> Error {
    if !may_hold_password {
        return e;
    }
    Error::config(
        "DATABASE_URL cannot be read past the user part, and it holds an '@' there: a \
         password with '/', '@', ':', '?', '=' or '%' must be percent-encoded (%2F, %40, %3A, \
         %3F, %3D, %25)",
    )
}

fn parse_port(text: &str, source: &str) -> Result<u16> {
    text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        Error::config(format!(
            "{source}: port '{text}' is not a number from 1 to 65535"
        ))
    })
}

/// One `host[:port]` entry of a URL's host list: the decoded host and the port text.
fn parse_host(text: &str) -> Result<(String, Option<&str>)> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or_else(|| {
            Error::config(format!(
                "DATABASE_URL host '{text}': IPv6 address without closing ']'"
            ))
        })?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| {
                Error::config(format!(
                    "DATABASE_URL host '{text}': unexpected '{p}' after ']'"
                ))
            })?),
        };
        if h.is_empty() {
            return Err(Error::config(
                "DATABASE_URL: an IPv6 host address in [] may not be empty",
            ));
        }
        // A zone id is percent-encoded in a URL: `[fe80::1%25eth0]`.
        (decode(h, "host")?, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (decode(h, "host")?, Some(p)),
            None => (decode(text, "host")?, None),
        }
    };
    Ok((host, port))
}

/// A host entry: a socket directory, a name or address, or the default for an empty entry.
/// libpq's default is its compiled-in socket directory; a migrator runs in a container next
/// to no server, so the default here is `localhost` over TCP (a documented difference).
fn host_of(name: String) -> Host {
    if name.is_empty() {
        Host::Tcp("localhost".into())
    } else if name.starts_with('/') {
        Host::Unix(PathBuf::from(name))
    } else {
        Host::Tcp(name)
    }
}

fn parse_postgres(rest: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed> {
    // The user information ends at an '@' before the first '/', as in libpq, so a password
    // may hold an unescaped '?' or ','. Where libpq takes the first '@', we take the last:
    // an unescaped '@' in a password then still works (libpq would try to connect to a
    // host named after the rest of the password).
    let userinfo_end = rest.find('/').unwrap_or(rest.len());
    let (userinfo, rest) = match rest[..userinfo_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut user = None;
    let mut password = None;
    if let Some(info) = userinfo {
        let (u, p) = match info.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (info, None),
        };
        if let Some(p) = p {
            // Masked in every spelling: as given, decoded and re-encoded (see `redact`).
            crate::redact::register(p);
            let p = decode(p, "password")?;
            crate::redact::register(&p);
            password = Some(p);
        }
        if !u.is_empty() {
            user = Some(decode(u, "user")?);
        }
    }
    // An '@' still ahead means the user information could not be told apart (a '/' in the
    // password, say): then no error may echo a fragment of the URL, which may hold part of
    // the password.
    let may_hold_password = rest.contains('@');
    let (main, params) = split_query(rest).map_err(|e| unechoed(e, may_hold_password))?;
    let (hostlist, path) = main.split_once('/').unwrap_or((main, ""));

    // libpq keeps hosts and ports as two comma-separated lists: the URL fills both, a `host`
    // or `port` parameter replaces its list, and the environment fills a list still unset.
    let mut host_list: Option<String> = None;
    let mut port_list: Option<String> = None;
    if !hostlist.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in hostlist.split(',') {
            let (host, port) = parse_host(entry).map_err(|e| unechoed(e, may_hold_password))?;
            hosts.push(host);
            ports.push(port.unwrap_or_default().to_string());
        }
        host_list = Some(hosts.join(",")).filter(|h| !h.is_empty());
        port_list = Some(ports.join(",")).filter(|p| !p.is_empty());
    }

    let mut dbname = (!path.is_empty())
        .then(|| decode(path, "database name"))
        .transpose()?;
    let mut sslmode: Option<(SslMode, &'static str)> = None;
    let mut tls_files = TlsFiles::default();
    let mut connect_timeout = None;
    let mut application_name = None;
    let mut options = None;
    let mut session_attrs = SessionAttrs::Any;
    let mut require_channel_binding = false;
    let mut hostaddr = None;
    let mut warnings = Vec::new();

    let set_mode = |current: &mut Option<(SslMode, &'static str)>,
                    value: &str,
                    key: &'static str| {
        let mode = SslMode::parse(value).ok_or_else(|| {
            Error::config(format!(
                "DATABASE_URL parameter {key}='{value}' is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
        })?;
        if let Some((other, other_key)) = *current {
            if other != mode {
                return Err(Error::config(format!(
                    "DATABASE_URL gives {other_key}={} and {key}={}: they disagree",
                    other.as_str(),
                    mode.as_str()
                )));
            }
        }
        *current = Some((mode, key));
        Ok(())
    };

    for (key, value) in &params {
        match key.as_str() {
            "sslmode" => set_mode(&mut sslmode, value, "sslmode")?,
            // asyncpg's spelling; its `require` does not verify either.
            "ssl" => set_mode(&mut sslmode, value, "ssl")?,
            "sslrootcert" => tls_files.root_cert = Some(PathBuf::from(value)),
            "sslcert" => tls_files.client_cert = Some(PathBuf::from(value)),
            "sslkey" => tls_files.client_key = Some(PathBuf::from(value)),
            "connect_timeout" | "timeout" | "connect-timeout" => {
                connect_timeout = parse_timeout(value, &format!("DATABASE_URL parameter {key}"))?
            }
            "application_name" | "fallback_application_name" => {
                if key == "application_name" || application_name.is_none() {
                    application_name = Some(value.clone())
                }
            }
            "options" => options = Some(value.clone()),
            "target_session_attrs" => session_attrs = parse_attrs(value)?,
            "channel_binding" => match value.as_str() {
                "require" => require_channel_binding = true,
                "prefer" | "disable" => {}
                other => {
                    return Err(Error::config(format!(
                        "DATABASE_URL parameter channel_binding='{other}' is not one of disable, prefer, require"
                    )))
                }
            },
            // As in libpq, a parameter replaces what the URL's host part said.
            "host" => host_list = Some(value.clone()),
            "hostaddr" => hostaddr = Some(value.clone()),
            "port" => port_list = Some(value.clone()),
            "dbname" | "database" => dbname = Some(value.clone()),
            "user" => user = Some(value.clone()),
            "password" => password = Some(value.clone()),
            "gssencmode" if value == "require" => {
                return Err(Error::config(
                    "DATABASE_URL parameter gssencmode=require: GSSAPI encryption is not supported; refusing rather than connecting without it",
                ))
            }
            k if REFUSED_SECURITY_PARAMS.contains(&k) => {
                return Err(Error::config(format!(
                    "DATABASE_URL parameter '{k}' tightens security but is not supported by yogaflow-migrate; refusing rather than ignoring it"
                )))
            }
            k => warnings.push(format!(
                "DATABASE_URL parameter '{k}' is not used by yogaflow-migrate; ignored"
            )),
        }
    }

    // libpq's environment fallbacks, for what the URL did not say.
    let hostaddrs: Vec<IpAddr> = match hostaddr.or_else(|| env("PGHOSTADDR")) {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|_| Error::config(format!("hostaddr '{a}' is not an IP address")))
            })
            .collect::<Result<_>>()?,
    };
    let hosts: Vec<Host> = match host_list.or_else(|| env("PGHOST")) {
        Some(list) => list.split(',').map(|h| host_of(h.to_string())).collect(),
        // hostaddr alone names the servers (libpq).
        None if !hostaddrs.is_empty() => {
            hostaddrs.iter().map(|a| Host::Tcp(a.to_string())).collect()
        }
        None => vec![host_of(String::new())],
    };
    if !hostaddrs.is_empty() && hostaddrs.len() != hosts.len() {
        return Err(Error::config(format!(
            "DATABASE_URL gives {} hostaddr value(s) for {} host(s): libpq wants one per host",
            hostaddrs.len(),
            hosts.len()
        )));
    }
    // One port for every host, or one per host; an empty entry is the default (libpq).
    let given: Vec<u16> = match port_list.or_else(|| env("PGPORT")) {
        None => vec![5432],
        Some(list) => list
            .split(',')
            .map(|p| match p.trim() {
                "" => Ok(5432),
                p => parse_port(p, "port").map_err(|e| unechoed(e, may_hold_password)),
            })
            .collect::<Result<_>>()?,
    };
    let mut ports = match given.len() {
        1 => vec![given[0]; hosts.len()],
        n if n == hosts.len() => given,
        n => {
            return Err(Error::config(format!(
                "DATABASE_URL gives {n} port(s) for {} host(s): one, or one per host",
                hosts.len()
            )))
        }
    };
    if ports.iter().all(|p| *p == ports[0]) {
        ports.truncate(1);
    }
    let user = user
        .or_else(|| env("PGUSER"))
        .unwrap_or_else(|| "postgres".into());
    if password.is_none() {
        password = env("PGPASSWORD");
    }
    if let Some(p) = &password {
        crate::redact::register(p);
    }
    let dbname = dbname
        .or_else(|| env("PGDATABASE"))
        .unwrap_or_else(|| user.clone());
    if sslmode.is_none() {
        if let Some(m) = env("PGSSLMODE") {
            set_mode(&mut sslmode, &m, "PGSSLMODE")?;
        }
    }
    if tls_files.root_cert.is_none() {
        tls_files.root_cert = env("PGSSLROOTCERT").map(PathBuf::from);
    }
    if tls_files.client_cert.is_none() {
        tls_files.client_cert = env("PGSSLCERT").map(PathBuf::from);
    }
    if tls_files.client_key.is_none() {
        tls_files.client_key = env("PGSSLKEY").map(PathBuf::from);
    }
    if connect_timeout.is_none() {
        if let Some(t) = env("PGCONNECT_TIMEOUT") {
            connect_timeout = parse_timeout(&t, "PGCONNECT_TIMEOUT")?;
        }
    }
    if application_name.is_none() {
        application_name = env("PGAPPNAME");
    }
    if options.is_none() {
        options = env("PGOPTIONS");
    }
    if session_attrs == SessionAttrs::Any {
        if let Some(a) = env("PGTARGETSESSIONATTRS") {
            session_attrs = parse_attrs(&a)?;
        }
    }
    Ok(Parsed {
        url: DbUrl::Postgres(Box::new(PgUrl {
            hosts,
            hostaddrs,
            ports,
            user,
            password,
            dbname,
            sslmode: sslmode.map(|(m, _)| m).unwrap_or(SslMode::Prefer),
            tls_files,
            connect_timeout,
            application_name,
            options,
            session_attrs,
            require_channel_binding,
        })),
        warnings,
    })
}

fn parse_timeout(value: &str, what: &str) -> Result<Option<Duration>> {
    let t = crate::config::parse_seconds(value, what)?;
    // libpq: 0 means wait forever, and anything below 2 s is raised to 2 s.
    Ok((!t.is_zero()).then(|| t.max(Duration::from_secs(2))))
}

fn parse_attrs(value: &str) -> Result<SessionAttrs> {
    Ok(match value {
        "any" => SessionAttrs::Any,
        "read-write" | "primary" => SessionAttrs::ReadWrite,
        "read-only" | "standby" | "prefer-standby" => SessionAttrs::ReadOnly,
        other => {
            return Err(Error::config(format!(
                "target_session_attrs='{other}' is not one of any, read-write, primary, read-only, standby, prefer-standby"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn pg(url: &str, env: &[(&str, &str)]) -> PgUrl {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(url, &|k| env.get(k).cloned()).unwrap().url {
            DbUrl::Postgres(p) => *p,
            other => panic!("{url}: {other:?}"),
        }
    }

    fn err(url: &str) -> String {
        parse(url, &|_| None).unwrap_err().to_string()
    }

    fn tcp(h: &str) -> Host {
        Host::Tcp(h.into())
    }

    #[test]
    fn every_postgres_spelling_reaches_the_same_place() {
        for scheme in [
            "postgres",
            "postgresql",
            "postgresql+asyncpg",
            "postgresql+psycopg2",
            "postgresql+psycopg",
            "POSTGRESQL",
        ] {
            let t = pg(&format!("{scheme}://u:pw@db.example:6543/yoga"), &[]);
            assert_eq!(t.hosts, vec![tcp("db.example")], "{scheme}");
            assert_eq!((t.ports.as_slice(), t.user.as_str()), (&[6543][..], "u"));
            assert_eq!(t.password.as_deref(), Some("pw"));
            assert_eq!(t.dbname, "yoga");
            assert_eq!(t.sslmode, SslMode::Prefer);
        }
    }

    #[test]
    fn decodes_and_splits_hosts() {
        type Case = (
            &'static str,
            Vec<Host>,
            Vec<u16>,
            &'static str,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                "postgresql://us%40er:p%40ss%3Aw%2Fd@h/d%20b",
                vec![tcp("h")],
                vec![5432],
                "us@er",
                Some("p@ss:w/d"),
                "d b",
            ),
            (
                "postgresql://u:p@ss@h:1/d",
                vec![tcp("h")],
                vec![1],
                "u",
                Some("p@ss"),
                "d",
            ),
            (
                "postgresql://u:pa?ss,w@h:2/d?sslmode=disable",
                vec![tcp("h")],
                vec![2],
                "u",
                Some("pa?ss,w"),
                "d",
            ),
            (
                "postgresql://[::1]:5433/d",
                vec![tcp("::1")],
                vec![5433],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql://[::1]/d",
                vec![tcp("::1")],
                vec![5432],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql://a:1,b:2/d",
                vec![tcp("a"), tcp("b")],
                vec![1, 2],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql://a,b:7/d",
                vec![tcp("a"), tcp("b")],
                vec![5432, 7],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql:///d?host=/var/run/postgresql",
                vec![Host::Unix("/var/run/postgresql".into())],
                vec![5432],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql://%2Ftmp%2Fsock:5444/d",
                vec![Host::Unix("/tmp/sock".into())],
                vec![5444],
                "postgres",
                None,
                "d",
            ),
            (
                "postgresql://u@/",
                vec![tcp("localhost")],
                vec![5432],
                "u",
                None,
                "u",
            ),
        ];
        for (url, hosts, ports, user, pw, db) in cases {
            let t = pg(url, &[]);
            assert_eq!(&t.hosts, hosts, "{url}");
            assert_eq!(&t.ports, ports, "{url}");
            assert_eq!(t.user, *user, "{url}");
            assert_eq!(t.password.as_deref(), *pw, "{url}");
            assert_eq!(t.dbname, *db, "{url}");
        }
    }

    #[test]
    fn query_parameters_and_env_fallbacks() {
        let t = pg(
            "postgresql://h/d?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=1&application_name=a&options=-c%20x%3D1&target_session_attrs=read-write",
            &[("PGSSLMODE", "disable"), ("PGAPPNAME", "ignored")],
        );
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.tls_files.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(t.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(t.application_name.as_deref(), Some("a"));
        assert_eq!(t.options.as_deref(), Some("-c x=1"));
        assert_eq!(t.session_attrs, SessionAttrs::ReadWrite);

        let t = pg(
            "postgresql://h/d",
            &[
                ("PGSSLMODE", "require"),
                ("PGSSLROOTCERT", "/r.pem"),
                ("PGCONNECT_TIMEOUT", "7"),
                ("PGAPPNAME", "app"),
                ("PGPASSWORD", "envpw"),
            ],
        );
        assert_eq!(t.sslmode, SslMode::Require);
        assert_eq!(t.tls_files.root_cert, Some(PathBuf::from("/r.pem")));
        assert_eq!(t.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(t.application_name.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref(), Some("envpw"));

        let t = pg("postgresql+asyncpg://h/d?ssl=require", &[]);
        assert_eq!(t.sslmode, SslMode::Require);
        let t = pg(
            "postgresql://",
            &[
                ("PGHOST", "e"),
                ("PGPORT", "9"),
                ("PGUSER", "x"),
                ("PGDATABASE", "y"),
            ],
        );
        assert_eq!(
            (t.hosts, t.ports, t.user, t.dbname),
            (vec![tcp("e")], vec![9], "x".into(), "y".into())
        );
    }

    #[test]
    fn unknown_parameters_warn_by_name() {
        let parsed = parse("postgresql://h/d?foo=1&keepalives=1", &|_| None).unwrap();
        assert_eq!(parsed.warnings.len(), 2);
        assert!(parsed.warnings[0].contains("'foo'"));
    }

    #[test]
    fn errors_name_the_part() {
        let cases = [
            ("postgresql://u:p@h:notaport/d", "port 'notaport'"),
            ("postgresql://h:70000/d", "port '70000'"),
            ("postgresql://[::1/d", "IPv6"),
            ("postgresql://h/d?sslmode=maybe", "sslmode='maybe'"),
            ("postgresql://h/d?sslmode=disable&ssl=require", "disagree"),
            ("postgresql://h/d?sslcrl=/x", "'sslcrl'"),
            (
                "postgresql://h/d?connect_timeout=soon",
                "connect_timeout='soon'",
            ),
            ("mysql://h/d", "scheme 'mysql'"),
            ("just-a-path.db", "no scheme"),
            ("sqlite://", "in-memory"),
            ("sqlite:///:memory:", "in-memory"),
            ("sqlite:///file:x?mode=memory", "in-memory"),
            ("sqlite://host/x.db", "no host"),
        ];
        for (url, want) in cases {
            let e = err(url);
            assert!(e.contains(want), "{url}: {e}");
        }
        // Where the password cannot be told apart, no fragment of the URL is quoted.
        for url in [
            "postgresql://u:pa/ss@h/d",
            "postgresql://u:Xq9:port/x@h/d",
            "sqlite://user:Xq9-s3cr3t@host/x.db",
        ] {
            let e = err(url);
            for fragment in ["pa", "Xq9", "s3cr3t", "port"] {
                assert!(!e.contains(&format!("'{fragment}")), "{url}: {e}");
            }
            assert!(!e.contains("Xq9") && !e.contains("ss@"), "{url}: {e}");
        }
    }

    #[test]
    fn sqlite_paths() {
        let cases = [
            ("sqlite:///relative.db", "relative.db"),
            ("sqlite:////abs/yoga.db", "/abs/yoga.db"),
            ("sqlite+aiosqlite:///./yogaflow.db", "./yogaflow.db"),
            ("sqlite+pysqlite:///dir/a%20b.db", "dir/a b.db"),
        ];
        for (url, want) in cases {
            match parse(url, &|_| None).unwrap().url {
                DbUrl::Sqlite(s) => assert_eq!(s.path, PathBuf::from(want), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    /// libpq's own URI regression list (`src/interfaces/libpq/test/regress.in`, 57 URIs, with
    /// `expected.out`). Where libpq leaves a host unset ("(local)": its compiled-in socket
    /// directory) this parser says localhost, the README's documented difference; user and
    /// database get their defaults (`postgres`, the user) where libpq leaves them unset.
    #[test]
    fn agrees_with_libpq_regress_list() {
        // (URI, Ok((user, password, dbname, hosts, ports, hostaddrs)) or Err(part of the message))
        type Want = std::result::Result<
            (
                &'static str,
                Option<&'static str>,
                &'static str,
                &'static str,
                &'static str,
                &'static str,
            ),
            &'static str,
        >;
        let local = "localhost";
        let cases: Vec<(&str, Want)> = vec![
            (
                "postgresql://uri-user:secret@host:12345/db",
                Ok(("uri-user", Some("secret"), "db", "host", "12345", "")),
            ),
            (
                "postgresql://uri-user@host:12345/db",
                Ok(("uri-user", None, "db", "host", "12345", "")),
            ),
            (
                "postgresql://uri-user@host/db",
                Ok(("uri-user", None, "db", "host", "5432", "")),
            ),
            (
                "postgresql://host:12345/db",
                Ok(("postgres", None, "db", "host", "12345", "")),
            ),
            (
                "postgresql://host/db",
                Ok(("postgres", None, "db", "host", "5432", "")),
            ),
            (
                "postgresql://uri-user@host:12345/",
                Ok(("uri-user", None, "uri-user", "host", "12345", "")),
            ),
            (
                "postgresql://uri-user@host/",
                Ok(("uri-user", None, "uri-user", "host", "5432", "")),
            ),
            (
                "postgresql://uri-user@",
                Ok(("uri-user", None, "uri-user", local, "5432", "")),
            ),
            (
                "postgresql://host:12345/",
                Ok(("postgres", None, "postgres", "host", "12345", "")),
            ),
            (
                "postgresql://host:12345",
                Ok(("postgres", None, "postgres", "host", "12345", "")),
            ),
            (
                "postgresql://host/db",
                Ok(("postgres", None, "db", "host", "5432", "")),
            ),
            (
                "postgresql://host/",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgresql://host",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgresql://",
                Ok(("postgres", None, "postgres", local, "5432", "")),
            ),
            (
                "postgresql://?hostaddr=127.0.0.1",
                Ok((
                    "postgres",
                    None,
                    "postgres",
                    "127.0.0.1",
                    "5432",
                    "127.0.0.1",
                )),
            ),
            (
                "postgresql://example.com?hostaddr=63.1.2.4",
                Ok((
                    "postgres",
                    None,
                    "postgres",
                    "example.com",
                    "5432",
                    "63.1.2.4",
                )),
            ),
            (
                "postgresql://%68ost/",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgresql://host/db?user=uri-user",
                Ok(("uri-user", None, "db", "host", "5432", "")),
            ),
            (
                "postgresql://host/db?user=uri-user&port=12345",
                Ok(("uri-user", None, "db", "host", "12345", "")),
            ),
            (
                "postgresql://host/db?u%73er=someotheruser&port=12345",
                Ok(("someotheruser", None, "db", "host", "12345", "")),
            ),
            (
                "postgresql://host/db?u%7aer=someotheruser&port=12345",
                Ok(("postgres", None, "db", "host", "12345", "")),
            ),
            (
                "postgresql://host:12345?user=uri-user",
                Ok(("uri-user", None, "uri-user", "host", "12345", "")),
            ),
            (
                "postgresql://host?user=uri-user",
                Ok(("uri-user", None, "uri-user", "host", "5432", "")),
            ),
            (
                "postgresql://host?",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgresql://[::1]:12345/db",
                Ok(("postgres", None, "db", "::1", "12345", "")),
            ),
            (
                "postgresql://[::1]/db",
                Ok(("postgres", None, "db", "::1", "5432", "")),
            ),
            (
                "postgresql://[2001:db8::1234]/",
                Ok(("postgres", None, "postgres", "2001:db8::1234", "5432", "")),
            ),
            (
                "postgresql://[200z:db8::1234]/",
                Ok(("postgres", None, "postgres", "200z:db8::1234", "5432", "")),
            ),
            (
                "postgresql://[::1]",
                Ok(("postgres", None, "postgres", "::1", "5432", "")),
            ),
            (
                "postgres://",
                Ok(("postgres", None, "postgres", local, "5432", "")),
            ),
            (
                "postgres:///",
                Ok(("postgres", None, "postgres", local, "5432", "")),
            ),
            (
                "postgres:///db",
                Ok(("postgres", None, "db", local, "5432", "")),
            ),
            (
                "postgres://uri-user@/db",
                Ok(("uri-user", None, "db", local, "5432", "")),
            ),
            (
                "postgres://?host=/path/to/socket/dir",
                Ok((
                    "postgres",
                    None,
                    "postgres",
                    "/path/to/socket/dir",
                    "5432",
                    "",
                )),
            ),
            (
                "postgresql://host?uzer=",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            ("postgre://", Err("scheme 'postgre'")),
            ("postgres://[::1", Err("without closing ']'")),
            ("postgres://[]", Err("may not be empty")),
            ("postgres://[::1]z", Err("unexpected 'z'")),
            ("postgresql://host?zzz", Err("'zzz' has no '='")),
            (
                "postgresql://host?value1&value2",
                Err("'value1' has no '='"),
            ),
            (
                "postgresql://host?key=key=value",
                Err("'key' has a second '='"),
            ),
            (
                "postgres://host?dbname=%XXfoo",
                Err("invalid percent-encoded token"),
            ),
            ("postgresql://a%00b", Err("%00")),
            ("postgresql://%zz", Err("invalid percent-encoded token")),
            ("postgresql://%1", Err("invalid percent-encoded token")),
            ("postgresql://%", Err("invalid percent-encoded token")),
            (
                "postgres://@host",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgres://host:/",
                Ok(("postgres", None, "postgres", "host", "5432", "")),
            ),
            (
                "postgres://:12345/",
                Ok(("postgres", None, "postgres", local, "12345", "")),
            ),
            (
                "postgres://otheruser@?host=/no/such/directory",
                Ok((
                    "otheruser",
                    None,
                    "otheruser",
                    "/no/such/directory",
                    "5432",
                    "",
                )),
            ),
            (
                "postgres://otheruser@/?host=/no/such/directory",
                Ok((
                    "otheruser",
                    None,
                    "otheruser",
                    "/no/such/directory",
                    "5432",
                    "",
                )),
            ),
            (
                "postgres://otheruser@:12345?host=/no/such/socket/path",
                Ok((
                    "otheruser",
                    None,
                    "otheruser",
                    "/no/such/socket/path",
                    "12345",
                    "",
                )),
            ),
            (
                "postgres://otheruser@:12345/db?host=/path/to/socket",
                Ok(("otheruser", None, "db", "/path/to/socket", "12345", "")),
            ),
            (
                "postgres://:12345/db?host=/path/to/socket",
                Ok(("postgres", None, "db", "/path/to/socket", "12345", "")),
            ),
            (
                "postgres://:12345?host=/path/to/socket",
                Ok(("postgres", None, "postgres", "/path/to/socket", "12345", "")),
            ),
            (
                "postgres://%2Fvar%2Flib%2Fpostgresql/dbname",
                Ok((
                    "postgres",
                    None,
                    "dbname",
                    "/var/lib/postgresql",
                    "5432",
                    "",
                )),
            ),
        ];
        assert_eq!(cases.len(), 57);
        let mut wrong = Vec::new();
        for (uri, want) in cases {
            let got = parse(uri, &|_| None);
            match (want, got) {
                (Ok((user, pw, db, host, port, addr)), Ok(p)) => {
                    let DbUrl::Postgres(p) = p.url else {
                        wrong.push(format!("{uri}: not PostgreSQL"));
                        continue;
                    };
                    let hosts: Vec<String> = p
                        .hosts
                        .iter()
                        .map(|h| match h {
                            Host::Tcp(n) => n.clone(),
                            Host::Unix(d) => d.display().to_string(),
                        })
                        .collect();
                    let ports: Vec<String> = p.ports.iter().map(|p| p.to_string()).collect();
                    let addrs: Vec<String> = p.hostaddrs.iter().map(|a| a.to_string()).collect();
                    let have = (
                        p.user.as_str(),
                        p.password.as_deref(),
                        p.dbname.as_str(),
                        hosts.join(","),
                        ports.join(","),
                        addrs.join(","),
                    );
                    let want = (
                        user,
                        pw,
                        db,
                        host.to_string(),
                        port.to_string(),
                        addr.to_string(),
                    );
                    if have != want {
                        wrong.push(format!("{uri}: want {want:?}, have {have:?}"));
                    }
                }
                (Err(part), Err(e)) if e.to_string().contains(part) => {}
                (want, got) => wrong.push(format!("{uri}: want {want:?}, got {got:?}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn display_never_shows_the_password() {
        let t = pg("postgresql://u:Sup3rS3cret@h:5/d?sslmode=require", &[]);
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("Sup3rS3cret"), "{shown}");
        assert!(
            shown.contains("postgresql://u:***@h:5/d?sslmode=require"),
            "{shown}"
        );
    }
}

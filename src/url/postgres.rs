//! `postgresql://` URLs as libpq reads them: the user information, the host list (hosts and
//! ports kept as two comma-separated lists), the database name, the query parameters, and
//! libpq's `PG*` variables for whatever the URL leaves unsaid. Each step is one function, run
//! in libpq's order, so the first error a URL holds is the one reported.

use super::parts::{decode, split_query, unechoed};
use super::{parse_seconds, DbUrl, Host, Parsed, PgUrl, SessionAttrs};
use crate::error::{Error, Result};
use crate::tls::{SslMode, TlsFiles};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The lookup of the `PG*` fallbacks that [`super::parse`] is given.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

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

/// Parses what follows `postgresql://`; `env` looks up the `PG*` fallbacks.
pub(super) fn parse_postgres(rest: &str, env: Env) -> Result<Parsed> {
    let (user, password, rest) = userinfo(rest)?;
    // An '@' still ahead means the user information could not be told apart (a '/' in the
    // password, say): then no error may echo a fragment of the URL, which may hold part of
    // the password.
    let may_hold_password = rest.contains('@');
    let (main, params) = split_query(rest).map_err(|e| unechoed(e, may_hold_password))?;
    let (hostlist, path) = main.split_once('/').unwrap_or((main, ""));
    let (host_list, port_list) = url_hosts(hostlist, may_hold_password)?;
    let dbname = (!path.is_empty())
        .then(|| decode(path, "database name"))
        .transpose()?;
    let mut given = Given {
        user,
        password,
        host_list,
        port_list,
        hostaddr: None,
        dbname,
        sslmode: None,
        tls_files: TlsFiles::default(),
        connect_timeout: None,
        application_name: None,
        options: None,
        session_attrs: SessionAttrs::Any,
        require_channel_binding: false,
    };
    let mut warnings = Vec::new();
    for (key, value) in &params {
        warnings.extend(given.apply(key, value)?);
    }
    let url = given.with_env(env, may_hold_password)?;
    Ok(Parsed {
        url: DbUrl::Postgres(Box::new(url)),
        warnings,
    })
}

/// Splits the user information off `rest`: the decoded user and password (the password
/// registered with [`crate::redact`] in every spelling), and what follows the `@`.
fn userinfo(rest: &str) -> Result<(Option<String>, Option<String>, &str)> {
    // The user information ends at an '@' before the first '/', as in libpq, so a password
    // may hold an unescaped '?' or ','. Where libpq takes the first '@', we take the last:
    // an unescaped '@' in a password then still works (libpq would try to connect to a
    // host named after the rest of the password).
    let userinfo_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..userinfo_end].rfind('@') else {
        return Ok((None, None, rest));
    };
    let info = &rest[..at];
    let (u, p) = match info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (info, None),
    };
    let mut password = None;
    if let Some(p) = p {
        // Masked in every spelling: as given, decoded and re-encoded (see `redact`).
        crate::redact::register(p);
        let p = decode(p, "password")?;
        crate::redact::register(&p);
        password = Some(p);
    }
    let user = (!u.is_empty()).then(|| decode(u, "user")).transpose()?;
    Ok((user, password, &rest[at + 1..]))
}

/// The URL's host part as libpq keeps it: a comma-separated host list and port list, each
/// `None` when empty. A `host` or `port` parameter replaces its list, and the environment
/// fills a list still unset.
fn url_hosts(hostlist: &str, may_hold_password: bool) -> Result<(Option<String>, Option<String>)> {
    if hostlist.is_empty() {
        return Ok((None, None));
    }
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for entry in hostlist.split(',') {
        let (host, port) = parse_host(entry).map_err(|e| unechoed(e, may_hold_password))?;
        hosts.push(host);
        ports.push(port.unwrap_or_default().to_string());
    }
    Ok((
        Some(hosts.join(",")).filter(|h| !h.is_empty()),
        Some(ports.join(",")).filter(|p| !p.is_empty()),
    ))
}

/// What the URL and its query parameters say, before the environment fills the gaps.
struct Given {
    user: Option<String>,
    password: Option<String>,
    /// Comma-separated hosts (the URL's, or the `host` parameter).
    host_list: Option<String>,
    /// Comma-separated ports (the URL's, or the `port` parameter).
    port_list: Option<String>,
    /// Comma-separated addresses (the `hostaddr` parameter).
    hostaddr: Option<String>,
    dbname: Option<String>,
    /// The mode and the key that set it (to name both when another key disagrees).
    sslmode: Option<(SslMode, &'static str)>,
    tls_files: TlsFiles,
    connect_timeout: Option<Duration>,
    application_name: Option<String>,
    options: Option<String>,
    session_attrs: SessionAttrs,
    require_channel_binding: bool,
}

impl Given {
    /// Applies one query parameter. One the tool does not use gives a warning; one that would
    /// tighten security but cannot be honoured is an error.
    fn apply(&mut self, key: &str, value: &str) -> Result<Option<String>> {
        match key {
            "sslmode" => set_sslmode(&mut self.sslmode, value, "sslmode")?,
            // asyncpg's spelling; its `require` does not verify either.
            "ssl" => set_sslmode(&mut self.sslmode, value, "ssl")?,
            "sslrootcert" => self.tls_files.root_cert = Some(PathBuf::from(value)),
            "sslcert" => self.tls_files.client_cert = Some(PathBuf::from(value)),
            "sslkey" => self.tls_files.client_key = Some(PathBuf::from(value)),
            "connect_timeout" | "timeout" | "connect-timeout" => {
                self.connect_timeout =
                    parse_timeout(value, &format!("DATABASE_URL parameter {key}"))?
            }
            "application_name" | "fallback_application_name" => {
                if key == "application_name" || self.application_name.is_none() {
                    self.application_name = Some(value.to_string())
                }
            }
            "options" => self.options = Some(value.to_string()),
            "target_session_attrs" => self.session_attrs = parse_attrs(value)?,
            "channel_binding" => match value {
                "require" => self.require_channel_binding = true,
                "prefer" | "disable" => {}
                other => {
                    return Err(Error::config(format!(
                        "DATABASE_URL parameter channel_binding='{other}' is not one of disable, prefer, require"
                    )))
                }
            },
            // As in libpq, a parameter replaces what the URL's host part said.
            "host" => self.host_list = Some(value.to_string()),
            "hostaddr" => self.hostaddr = Some(value.to_string()),
            "port" => self.port_list = Some(value.to_string()),
            "dbname" | "database" => self.dbname = Some(value.to_string()),
            "user" => self.user = Some(value.to_string()),
            "password" => self.password = Some(value.to_string()),
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
            k => {
                return Ok(Some(format!(
                    "DATABASE_URL parameter '{k}' is not used by yogaflow-migrate; ignored"
                )))
            }
        }
        Ok(None)
    }

    /// The finished URL: what the URL left unsaid comes from libpq's `PG*` variables, then
    /// from libpq's defaults (user `postgres`, database named after the user, `prefer`).
    fn with_env(mut self, env: Env, may_hold_password: bool) -> Result<PgUrl> {
        let (hosts, hostaddrs) = hosts(self.host_list.take(), self.hostaddr.take(), env)?;
        let ports = ports(self.port_list.take(), hosts.len(), env, may_hold_password)?;
        let user = self
            .user
            .take()
            .or_else(|| env("PGUSER"))
            .unwrap_or_else(|| "postgres".into());
        let password = self.password.take().or_else(|| env("PGPASSWORD"));
        if let Some(p) = &password {
            crate::redact::register(p);
        }
        let dbname = self
            .dbname
            .take()
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        self.settings_with_env(env)?;
        Ok(PgUrl {
            hosts,
            hostaddrs,
            ports,
            user,
            password,
            dbname,
            sslmode: self.sslmode.map(|(m, _)| m).unwrap_or(SslMode::Prefer),
            tls_files: self.tls_files,
            connect_timeout: self.connect_timeout,
            application_name: self.application_name,
            options: self.options,
            session_attrs: self.session_attrs,
            require_channel_binding: self.require_channel_binding,
        })
    }

    /// Fills the connection settings the URL left unsaid from `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`, `PGOPTIONS` and
    /// `PGTARGETSESSIONATTRS`.
    fn settings_with_env(&mut self, env: Env) -> Result<()> {
        if self.sslmode.is_none() {
            if let Some(m) = env("PGSSLMODE") {
                set_sslmode(&mut self.sslmode, &m, "PGSSLMODE")?;
            }
        }
        let tls = &mut self.tls_files;
        if tls.root_cert.is_none() {
            tls.root_cert = env("PGSSLROOTCERT").map(PathBuf::from);
        }
        if tls.client_cert.is_none() {
            tls.client_cert = env("PGSSLCERT").map(PathBuf::from);
        }
        if tls.client_key.is_none() {
            tls.client_key = env("PGSSLKEY").map(PathBuf::from);
        }
        if self.connect_timeout.is_none() {
            if let Some(t) = env("PGCONNECT_TIMEOUT") {
                self.connect_timeout = parse_timeout(&t, "PGCONNECT_TIMEOUT")?;
            }
        }
        if self.application_name.is_none() {
            self.application_name = env("PGAPPNAME");
        }
        if self.options.is_none() {
            self.options = env("PGOPTIONS");
        }
        if self.session_attrs == SessionAttrs::Any {
            if let Some(a) = env("PGTARGETSESSIONATTRS") {
                self.session_attrs = parse_attrs(&a)?;
            }
        }
        Ok(())
    }
}

/// The hosts and their `hostaddr` addresses: the lists the URL gave, else `PGHOST` and
/// `PGHOSTADDR`; with neither, the addresses alone name the servers, or `localhost`.
fn hosts(
    host_list: Option<String>,
    hostaddr: Option<String>,
    env: Env,
) -> Result<(Vec<Host>, Vec<IpAddr>)> {
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
    Ok((hosts, hostaddrs))
}

/// The ports of `hosts` hosts: the list the URL gave, else `PGPORT`, else 5432. One port for
/// every host, or one per host; an empty entry is the default (libpq). Kept as one port when
/// all are the same.
fn ports(
    port_list: Option<String>,
    hosts: usize,
    env: Env,
    may_hold_password: bool,
) -> Result<Vec<u16>> {
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
        1 => vec![given[0]; hosts],
        n if n == hosts => given,
        n => {
            return Err(Error::config(format!(
                "DATABASE_URL gives {n} port(s) for {hosts} host(s): one, or one per host"
            )))
        }
    };
    if ports.iter().all(|p| *p == ports[0]) {
        ports.truncate(1);
    }
    Ok(ports)
}

/// Sets the SSL mode from `key` (`sslmode`, asyncpg's `ssl`, or `PGSSLMODE`); a mode that
/// disagrees with one set before, under another key, is an error naming both.
fn set_sslmode(
    current: &mut Option<(SslMode, &'static str)>,
    value: &str,
    key: &'static str,
) -> Result<()> {
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
}

/// A port from 1 to 65535; an error naming `source` otherwise.
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

/// A `connect_timeout` as libpq reads it: `None` for 0 (wait forever), else at least 2 s.
fn parse_timeout(value: &str, what: &str) -> Result<Option<Duration>> {
    let t = parse_seconds(value, what)?;
    // libpq: 0 means wait forever, and anything below 2 s is raised to 2 s.
    Ok((!t.is_zero()).then(|| t.max(Duration::from_secs(2))))
}

/// A `target_session_attrs` value.
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

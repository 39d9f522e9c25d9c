//! `DATABASE_URL`: turning every spelling a YogaFlow deployment may hold (libpq URLs, Heroku
//! style, SQLAlchemy driver forms, SQLite paths) into one [`DbUrl`], with libpq's `PG*`
//! variables as fallbacks and a redacted form for logs. Pure: the environment comes in as a
//! lookup function so tests can drive it from a table.
//!
//! This module owns the parsed types and the entry point [`parse`], which picks the parser by
//! scheme: `postgres` (userinfo, host list, query parameters, `PG*` fallbacks) or `sqlite`.
//! `parts` holds what both share (percent-decoding, the query string, errors that must not
//! echo a password); `seconds` owns [`parse_seconds`], used here for `connect_timeout` and by
//! [`crate::config`] for its `*_TIMEOUT` variables (config builds on this module, never the
//! reverse).

mod parts;
mod postgres;
mod seconds;
mod sqlite;

pub use seconds::{parse_seconds, MAX_SECONDS};

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

/// Parses `url`; `env` looks up the `PG*` fallbacks.
pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::config("DATABASE_URL has no scheme: expected postgresql://... or sqlite:///...")
    })?;
    let scheme = scheme.to_ascii_lowercase();
    let base = scheme.split('+').next().unwrap_or_default();
    match base {
        "postgres" | "postgresql" => postgres::parse_postgres(rest, env),
        "sqlite" => sqlite::parse_sqlite(rest),
        _ => Err(Error::config(format!(
            "DATABASE_URL scheme '{scheme}' is not supported: use postgresql:// (or postgres://, \
             postgresql+asyncpg://, ...) or sqlite:///path"
        ))),
    }
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
    /// directory) this parser says localhost, the documented difference (docs/configuration.md); user and
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

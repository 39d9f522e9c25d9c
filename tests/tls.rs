//! libpq's `sslmode` meanings against real servers: TLS off, a self-signed certificate (as on
//! Railway), a certificate signed by a test CA, and a server that refuses plaintext; every
//! mode, failures included.

mod support;

use std::sync::OnceLock;
use support::*;

const SECRET: &str = "Tls-Secret-Mango-314";

fn server(kind: &'static str) -> &'static PgCluster {
    static OFF: OnceLock<PgCluster> = OnceLock::new();
    static SELF_SIGNED: OnceLock<PgCluster> = OnceLock::new();
    static CA: OnceLock<PgCluster> = OnceLock::new();
    static TLS_ONLY: OnceLock<PgCluster> = OnceLock::new();
    let (cell, tls, require_tls) = match kind {
        "off" => (&OFF, Tls::Off, false),
        "self" => (&SELF_SIGNED, Tls::SelfSigned, false),
        "ca" => (&CA, Tls::CaSigned, false),
        "tls-only" => (&TLS_ONLY, Tls::SelfSigned, true),
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        PgCluster::start(PgOptions {
            password: Some(SECRET.into()),
            tls,
            require_tls,
        })
    })
}

/// Runs `up` on a fresh database of `kind` with `host` and `params`; returns the run.
fn attempt(kind: &'static str, host: &str, params: &str) -> Run {
    let c = server(kind);
    let db = c.create_db();
    let params = params
        .replace(
            "{self}",
            &server("self").ca_cert_path().unwrap().display().to_string(),
        )
        .replace(
            "{ca}",
            &server("ca").ca_cert_path().unwrap().display().to_string(),
        );
    let url = format!(
        "postgresql://postgres:{SECRET}@{host}:{}/{db}?{params}",
        c.port()
    );
    let r = run(
        &["up"],
        &[("DATABASE_URL", &url), ("MIGRATE_WAIT_TIMEOUT", "5")],
    );
    assert_no_secret(&r, SECRET);
    r
}

#[test]
fn the_sslmode_matrix() {
    // (server, host, parameters, expected exit code, text the output must contain)
    let cases: &[(&str, &str, &str, i32, &str)] = &[
        ("off", "127.0.0.1", "sslmode=disable", 0, ""),
        ("off", "127.0.0.1", "sslmode=allow", 0, ""),
        ("off", "127.0.0.1", "sslmode=prefer", 0, ""),
        ("off", "127.0.0.1", "", 0, ""),
        (
            "off",
            "127.0.0.1",
            "sslmode=require",
            4,
            "server does not support TLS",
        ),
        (
            "off",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}",
            4,
            "TLS failed",
        ),
        // Railway's case: a self-signed certificate, encrypt without verifying.
        ("self", "127.0.0.1", "sslmode=require", 0, ""),
        ("self", "127.0.0.1", "ssl=require", 0, ""),
        ("self", "127.0.0.1", "sslmode=prefer", 0, ""),
        ("self", "127.0.0.1", "sslmode=allow", 0, ""),
        ("self", "127.0.0.1", "sslmode=disable", 0, ""),
        ("self", "127.0.0.1", "sslmode=verify-ca", 4, "TLS failed"),
        (
            "self",
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert={self}",
            0,
            "",
        ),
        (
            "self",
            "localhost",
            "sslmode=verify-full&sslrootcert={self}",
            0,
            "",
        ),
        // The certificate names only DNS:localhost: a wrong host name fails verify-full.
        (
            "self",
            "127.0.0.1",
            "sslmode=verify-full&sslrootcert={self}",
            4,
            "TLS failed",
        ),
        // require with a root certificate behaves as verify-ca: a foreign CA fails.
        (
            "self",
            "127.0.0.1",
            "sslmode=require&sslrootcert={ca}",
            4,
            "TLS failed",
        ),
        (
            "ca",
            "localhost",
            "sslmode=verify-full&sslrootcert={ca}",
            0,
            "",
        ),
        (
            "ca",
            "127.0.0.1",
            "sslmode=verify-full&sslrootcert={ca}",
            0,
            "",
        ),
        (
            "ca",
            "127.0.0.1",
            "sslmode=verify-ca&sslrootcert={ca}",
            0,
            "",
        ),
        ("ca", "127.0.0.1", "sslmode=require&sslrootcert={ca}", 0, ""),
        (
            "ca",
            "localhost",
            "sslmode=verify-full&sslrootcert={self}",
            4,
            "TLS failed",
        ),
        ("ca", "localhost", "sslmode=verify-full", 4, "TLS failed"),
        // A server that refuses plaintext: allow falls back to TLS, prefer starts there.
        ("tls-only", "127.0.0.1", "sslmode=allow", 0, ""),
        ("tls-only", "127.0.0.1", "sslmode=prefer", 0, ""),
        ("tls-only", "127.0.0.1", "sslmode=require", 0, ""),
        ("tls-only", "127.0.0.1", "sslmode=disable", 4, "28000"),
    ];
    let mut failures = Vec::new();
    for (kind, host, params, code, text) in cases {
        let r = attempt(kind, host, params);
        // Over every TLS path the pid announced at login is read back: a direct connection
        // is known as one server session (MIGRATE_LOCK=auto keeps the session lock).
        let one_session = !r.stderr.contains("does not keep one server session");
        if r.code != *code || !r.stderr.contains(text) || !one_session {
            failures.push(format!(
                "{kind} {host} '{params}': want exit {code} with {text:?}, got {}:\n{}",
                r.code, r.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn pg_environment_supplies_tls_settings() {
    let c = server("ca");
    let db = c.create_db();
    let ca = c.ca_cert_path().unwrap().display().to_string();
    let url = format!("postgresql://postgres:{SECRET}@localhost:{}/{db}", c.port());
    let r = run(
        &["up"],
        &[
            ("DATABASE_URL", &url),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", &ca),
        ],
    );
    r.assert_code(0);
    let r = run(
        &["up"],
        &[("DATABASE_URL", &url), ("PGSSLMODE", "verify-full")],
    );
    r.assert_code(4);
    assert_no_secret(&r, SECRET);
}

/// `require`, `prefer` and `verify-*` with a root file never read the system CA bundle (libpq
/// does not either; parsing it cost 40 ms and 3 MB of every TLS start). The bundle is a FIFO
/// here: opening it would block, so a regression hangs and is killed instead of passing.
/// Verifying without a root file does read it, from `SSL_CERT_FILE` as OpenSSL would.
#[test]
fn system_roots_are_read_only_where_verification_needs_them() {
    let c = server("self");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca-bundle.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let empty_dir = dir.path().join("certs");
    std::fs::create_dir(&empty_dir).unwrap();
    let root = c.ca_cert_path().unwrap().display().to_string();
    let limit = std::time::Duration::from_secs(20);
    for (host, params) in [
        ("127.0.0.1", "sslmode=require".to_string()),
        ("127.0.0.1", "sslmode=prefer".to_string()),
        ("127.0.0.1", String::new()),
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={root}")),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={root}"),
        ),
    ] {
        let db = c.create_db();
        let url = format!(
            "postgresql://postgres:{SECRET}@{host}:{}/{db}?{params}",
            c.port()
        );
        let r = run_bounded(
            &["up"],
            &[
                ("DATABASE_URL", url.as_str()),
                ("SSL_CERT_FILE", fifo.to_str().unwrap()),
                ("SSL_CERT_DIR", empty_dir.to_str().unwrap()),
            ],
            limit,
        );
        assert_eq!(
            r.code, 0,
            "'{params}' with the system bundle a FIFO: want exit 0 without touching it \
             (-9 means it blocked opening the bundle)\n{}",
            r.stderr
        );
        assert_no_secret(&r, SECRET);
    }
    // verify-full without a root file trusts the system store: here SSL_CERT_FILE names the
    // server's own (self-signed) certificate, so the handshake verifies.
    let db = c.create_db();
    let url = format!(
        "postgresql://postgres:{SECRET}@localhost:{}/{db}?sslmode=verify-full",
        c.port()
    );
    let r = run_bounded(
        &["up"],
        &[
            ("DATABASE_URL", url.as_str()),
            ("SSL_CERT_FILE", root.as_str()),
            ("SSL_CERT_DIR", empty_dir.to_str().unwrap()),
        ],
        limit,
    );
    r.assert_code(0);
}

/// A FIFO or a device named as a certificate or key is refused at once (exit 2): reading it
/// would block forever or never end.
#[test]
fn certificate_paths_that_are_not_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("root.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.display().to_string();
    for (param, path) in [
        ("sslrootcert", fifo.as_str()),
        ("sslrootcert", "/dev/urandom"),
        ("sslcert", fifo.as_str()),
        ("sslkey", "/dev/zero"),
    ] {
        let other = if param == "sslkey" {
            "sslcert"
        } else {
            "sslkey"
        };
        let url = format!(
            "postgresql://postgres:{SECRET}@127.0.0.1:1/x?sslmode=verify-ca&{param}={path}&{other}=/etc/hostname"
        );
        let r = run_bounded(
            &["up"],
            &[("DATABASE_URL", url.as_str())],
            std::time::Duration::from_secs(20),
        );
        assert_eq!(r.code, 2, "{param}={path}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{param} {path}: not a regular file")),
            "{param}={path}: {}",
            r.stderr
        );
        assert_no_secret(&r, SECRET);
    }
}

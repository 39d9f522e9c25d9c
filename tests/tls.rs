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
        if r.code != *code || !r.stderr.contains(text) {
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

//! TLS with libpq's `sslmode` meanings: which modes exist, which connection attempts each one
//! makes and in what order, and the `native-tls` connector for each attempt.

use crate::error::{Error, Kind, Result};
use std::path::{Path, PathBuf};

/// libpq's `sslmode` values (asyncpg's `ssl=` maps onto the same set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext first; TLS (unverified) if the server refuses plaintext.
    Allow,
    /// TLS (unverified) first; plaintext if the server has no TLS or the handshake fails.
    Prefer,
    /// TLS without verification (Railway's self-signed certificate), unless a root
    /// certificate is given: then as `VerifyCa`, like libpq.
    Require,
    /// TLS, certificate chain checked against `sslrootcert` (or the system roots).
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyFull,
}

impl SslMode {
    /// Parses a libpq `sslmode` or asyncpg `ssl` value.
    pub fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_lowercase().as_str() {
            "disable" | "false" | "0" | "off" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" | "true" | "1" | "on" => SslMode::Require,
            "verify-ca" | "verify_ca" => SslMode::VerifyCa,
            "verify-full" | "verify_full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// How one connection attempt treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// No TLS at all.
    Plain,
    /// Ask for TLS; plaintext if the server says it has none (tokio-postgres `prefer`).
    TryTls(Verify),
    /// TLS or fail.
    Tls(Verify),
}

/// How much of the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt only.
    None,
    /// Check the chain, not the host name.
    Ca,
    /// Check chain and host name.
    Full,
}

/// The attempts libpq makes for `mode`, in order; the next is tried only when the previous
/// fails in a way that the other mode could cure (see `connect`).
pub fn plan(mode: SslMode, root_cert_given: bool) -> Vec<Attempt> {
    match mode {
        SslMode::Disable => vec![Attempt::Plain],
        SslMode::Allow => vec![Attempt::Plain, Attempt::Tls(Verify::None)],
        SslMode::Prefer => vec![Attempt::TryTls(Verify::None), Attempt::Plain],
        SslMode::Require if root_cert_given => vec![Attempt::Tls(Verify::Ca)],
        SslMode::Require => vec![Attempt::Tls(Verify::None)],
        SslMode::VerifyCa => vec![Attempt::Tls(Verify::Ca)],
        SslMode::VerifyFull => vec![Attempt::Tls(Verify::Full)],
    }
}

/// Client-side TLS material named by the URL or `PG*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `sslrootcert`: PEM file of trusted roots (`system` means the system store only).
    pub root_cert: Option<PathBuf>,
    /// `sslcert`: client certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// `sslkey`: client key (PEM, PKCS#8).
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether a root certificate file (other than the `system` keyword) was named.
    pub fn has_root_file(&self) -> bool {
        self.root_cert
            .as_deref()
            .is_some_and(|p| p != Path::new("system"))
    }
}

/// The roots and client identity named by `files`, read and parsed.
struct Material {
    roots: Vec<native_tls::Certificate>,
    identity: Option<native_tls::Identity>,
}

fn material(files: &TlsFiles) -> Result<Material> {
    let mut roots = Vec::new();
    if let Some(path) = files.root_cert.as_deref().filter(|_| files.has_root_file()) {
        let pem = read(path, "sslrootcert")?;
        roots = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            Error::config(format!(
                "sslrootcert {}: not a PEM certificate",
                path.display()
            ))
            .with_source(e)
        })?;
        if roots.is_empty() {
            return Err(Error::config(format!(
                "sslrootcert {}: no certificate in the file",
                path.display()
            )));
        }
    }
    let identity = match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => Some(
            native_tls::Identity::from_pkcs8(&read(cert, "sslcert")?, &read(key, "sslkey")?)
                .map_err(|e| {
                    Error::config(format!(
                        "sslcert {} / sslkey {}: unusable client certificate",
                        cert.display(),
                        key.display()
                    ))
                    .with_source(e)
                })?,
        ),
        (None, None) => None,
        _ => {
            return Err(Error::config(
                "sslcert and sslkey must be given together for a client certificate",
            ))
        }
    };
    Ok(Material { roots, identity })
}

/// The connector for one TLS attempt.
pub fn connector(
    verify: Verify,
    files: &TlsFiles,
) -> Result<postgres_native_tls::MakeTlsConnector> {
    let material = material(files)?;
    let mut builder = native_tls::TlsConnector::builder();
    // Like libpq, trust the system store only when verifying without a root file of our own
    // (or with `sslrootcert=system`).
    let system_roots = verify != Verify::None && !files.has_root_file();
    builder.disable_built_in_roots(!system_roots);
    match verify {
        Verify::None => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        Verify::Ca => {
            builder.danger_accept_invalid_hostnames(true);
        }
        Verify::Full => {}
    }
    for cert in material.roots {
        builder.add_root_certificate(cert);
    }
    if let Some(identity) = material.identity {
        builder.identity(identity);
    }
    let tls = builder
        .build()
        .map_err(|e| Error::new(Kind::Internal, "cannot set up TLS").with_source(e))?;
    Ok(postgres_native_tls::MakeTlsConnector::new(tls))
}

/// Reads and parses the certificate files named in `files`, so that a missing or broken file
/// is a configuration error before any connection attempt.
pub fn check_files(files: &TlsFiles) -> Result<()> {
    material(files).map(|_| ())
}

/// A connector that builds its `native-tls` context only when the server agrees to TLS:
/// building one makes OpenSSL parse the whole system CA bundle (about 50 ms), which a start
/// against a server without TLS (`sslmode=prefer`, the default) should not pay.
#[derive(Clone)]
pub struct LazyTls {
    verify: Verify,
    files: TlsFiles,
}

impl LazyTls {
    /// A lazy connector for `verify` with `files`.
    pub fn new(verify: Verify, files: &TlsFiles) -> LazyTls {
        LazyTls {
            verify,
            files: files.clone(),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for LazyTls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type TlsConnect = LazyConnect;
    type Error = BoxError;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<LazyConnect, BoxError> {
        Ok(LazyConnect {
            tls: self.clone(),
            domain: domain.to_string(),
        })
    }
}

/// One pending TLS handshake of a [`LazyTls`].
pub struct LazyConnect {
    tls: LazyTls,
    domain: String,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for LazyConnect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_native_tls::TlsStream<S>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Self::Stream, BoxError>> + Send>,
    >;

    fn connect(self, stream: S) -> Self::Future {
        use tokio_postgres::tls::MakeTlsConnect;
        Box::pin(async move {
            let mut make = connector(self.tls.verify, &self.tls.files).map_err(Box::new)?;
            let connect = MakeTlsConnect::<S>::make_tls_connect(&mut make, &self.domain)?;
            Ok(connect.connect(stream).await?)
        })
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::config(format!("{what} {}: cannot read the file", path.display())).with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Attempt::*;

    #[test]
    fn plans_follow_libpq() {
        let cases = [
            (SslMode::Disable, false, vec![Plain]),
            (SslMode::Allow, false, vec![Plain, Tls(Verify::None)]),
            (SslMode::Prefer, false, vec![TryTls(Verify::None), Plain]),
            (SslMode::Prefer, true, vec![TryTls(Verify::None), Plain]),
            (SslMode::Require, false, vec![Tls(Verify::None)]),
            (SslMode::Require, true, vec![Tls(Verify::Ca)]),
            (SslMode::VerifyCa, false, vec![Tls(Verify::Ca)]),
            (SslMode::VerifyFull, true, vec![Tls(Verify::Full)]),
        ];
        for (mode, root, want) in cases {
            assert_eq!(plan(mode, root), want, "{mode:?} root={root}");
        }
    }

    #[test]
    fn parses_libpq_and_asyncpg_spellings() {
        assert_eq!(SslMode::parse("verify-full"), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("REQUIRE"), Some(SslMode::Require));
        assert_eq!(SslMode::parse("true"), Some(SslMode::Require));
        assert_eq!(SslMode::parse("bogus"), None);
    }
}

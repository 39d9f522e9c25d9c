//! TLS with libpq's `sslmode` meanings: which modes exist, which connection attempts each one
//! makes and in what order, and the OpenSSL connector for each attempt.

use crate::error::{Error, Kind, Result};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslRef, SslVerifyMode, SslVersion,
};
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509VerifyResult, X509};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_openssl::SslStream;
use tokio_postgres::tls::ChannelBinding;

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
    roots: Vec<X509>,
    identity: Option<(Vec<X509>, PKey<Private>)>,
}

fn material(files: &TlsFiles) -> Result<Material> {
    let mut roots = Vec::new();
    if let Some(path) = files.root_cert.as_deref().filter(|_| files.has_root_file()) {
        let pem = read(path, "sslrootcert")?;
        roots = X509::stack_from_pem(&pem).map_err(|e| {
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
        (Some(cert), Some(key)) => {
            let unusable = |e: openssl::error::ErrorStack| {
                Error::config(format!(
                    "sslcert {} / sslkey {}: unusable client certificate",
                    cert.display(),
                    key.display()
                ))
                .with_source(e)
            };
            let chain = X509::stack_from_pem(&read(cert, "sslcert")?).map_err(unusable)?;
            // Like libpq, any PEM private key: PKCS#8 or the traditional RSA/EC forms.
            let key = PKey::private_key_from_pem(&read(key, "sslkey")?).map_err(unusable)?;
            if chain.is_empty() {
                return Err(Error::config(format!(
                    "sslcert {}: no certificate in the file",
                    cert.display()
                )));
            }
            Some((chain, key))
        }
        (None, None) => None,
        _ => {
            return Err(Error::config(
                "sslcert and sslkey must be given together for a client certificate",
            ))
        }
    };
    Ok(Material { roots, identity })
}

/// The OpenSSL context for one TLS attempt.
///
/// Built on a bare `SSL_CTX` rather than `native-tls` or `SslConnector`: both load the system
/// CA bundle (`set_default_verify_paths`, about 50 ms and 3 MB for Debian's 140 roots) for
/// every connection, and libpq only does that where it verifies without a root file of its own.
fn context(verify: Verify, files: &TlsFiles) -> Result<SslContext> {
    let material = material(files)?;
    let internal = |e: openssl::error::ErrorStack| {
        Error::new(Kind::Internal, "cannot set up TLS").with_source(e)
    };
    let mut ctx = SslContextBuilder::new(SslMethod::tls_client()).map_err(internal)?;
    // libpq's default ssl_min_protocol_version.
    ctx.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(internal)?;
    ctx.set_options(SslOptions::NO_COMPRESSION);
    if verify == Verify::None {
        ctx.set_verify(SslVerifyMode::NONE);
    } else {
        ctx.set_verify(SslVerifyMode::PEER);
        if files.has_root_file() {
            for cert in material.roots {
                ctx.cert_store_mut().add_cert(cert).map_err(internal)?;
            }
        } else {
            // Verifying without a root file (or `sslrootcert=system`): the system store, found
            // where this build's OpenSSL would not look by itself (a vendored OpenSSL has its
            // own OPENSSLDIR).
            let probe = openssl_probe::probe();
            let mut loaded = false;
            if let Some(file) = &probe.cert_file {
                match ctx.load_verify_locations(Some(file), None) {
                    Ok(()) => loaded = true,
                    Err(e) => log::debug!("system CA file {}: {e}", file.display()),
                }
            }
            for dir in &probe.cert_dir {
                match ctx.load_verify_locations(None, Some(dir)) {
                    Ok(()) => loaded = true,
                    Err(e) => log::debug!("system CA directory {}: {e}", dir.display()),
                }
            }
            // An image without a CA bundle (distroless, scratch): every handshake would fail
            // with "unable to get local issuer certificate", which hides the cause.
            if !loaded {
                return Err(Error::config(format!(
                    "sslmode={} checks the server's certificate, but this system has no CA \
                     bundle (none found at SSL_CERT_FILE, SSL_CERT_DIR or the usual paths): \
                     name the server's CA with sslrootcert=FILE, or use sslmode=require to \
                     encrypt without verifying",
                    if verify == Verify::Full {
                        "verify-full"
                    } else {
                        "verify-ca"
                    }
                )));
            }
        }
    }
    if let Some((chain, key)) = material.identity {
        let mut chain = chain.into_iter();
        if let Some(leaf) = chain.next() {
            ctx.set_certificate(&leaf).map_err(internal)?;
        }
        for cert in chain {
            ctx.add_extra_chain_cert(cert).map_err(internal)?;
        }
        ctx.set_private_key(&key).map_err(internal)?;
        ctx.check_private_key().map_err(|e| {
            Error::config("sslcert and sslkey do not belong together").with_source(e)
        })?;
    }
    Ok(ctx.build())
}

/// The `SSL` object for a handshake with `host`: SNI for a host name (libpq's `sslsni=1`), and
/// for `verify-full` the host name or IP address checked against the certificate.
fn session(ctx: &SslContext, verify: Verify, host: &str) -> Result<Ssl> {
    let internal = |e: openssl::error::ErrorStack| {
        Error::new(Kind::Internal, "cannot set up TLS").with_source(e)
    };
    let mut ssl = Ssl::new(ctx).map_err(internal)?;
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .ok();
    if ip.is_none() {
        ssl.set_hostname(host).map_err(internal)?;
    }
    if verify == Verify::Full {
        let param = ssl.param_mut();
        param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
        match ip {
            Some(ip) => param.set_ip(ip),
            None => param.set_host(host),
        }
        .map_err(internal)?;
    }
    Ok(ssl)
}

/// Reads and parses the certificate files named in `files`, so that a missing or broken file
/// is a configuration error before any connection attempt.
pub fn check_files(files: &TlsFiles) -> Result<()> {
    material(files).map(|_| ())
}

/// A connector that builds its OpenSSL context only when the server agrees to TLS, so a start
/// against a server without TLS (`sslmode=prefer`, the default) pays nothing for TLS.
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
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
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
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<TlsStream<S>, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let ctx = context(self.tls.verify, &self.tls.files).map_err(Box::new)?;
            let ssl = session(&ctx, self.tls.verify, &self.domain).map_err(Box::new)?;
            let mut stream = SslStream::new(ssl, stream)?;
            if let Err(e) = Pin::new(&mut stream).connect().await {
                // OpenSSL's own text says only "certificate verify failed"; the verify result
                // says why (self-signed, unknown CA, host name mismatch).
                let result = stream.ssl().verify_result();
                if result != X509VerifyResult::OK {
                    return Err(verify_failure(result, self.tls.files.has_root_file()).into());
                }
                return Err(e.into());
            }
            Ok(TlsStream(stream))
        })
    }
}

/// The reason a certificate was refused, with the way out where it is a common one.
fn verify_failure(result: X509VerifyResult, root_file: bool) -> String {
    // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, _SELF_SIGNED_CERT_IN_CHAIN,
    // _UNABLE_TO_GET_ISSUER_CERT_LOCALLY, _HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
    let hint = match result.as_raw() {
        18..=20 if !root_file => {
            "; the server's certificate is not signed by a system root (Railway's is \
             self-signed): name its CA with sslrootcert=FILE, or use sslmode=require to \
             encrypt without verifying"
        }
        62 | 64 => "; the host in the URL is not a name the certificate holds",
        _ => "",
    };
    format!("certificate verify failed: {}{hint}", result.error_string())
}

/// An established TLS stream, with the `tls-server-end-point` channel binding that SCRAM's
/// `-PLUS` mechanisms use.
pub struct TlsStream<S>(SslStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match server_end_point(self.0.ssl()) {
            Some(digest) => ChannelBinding::tls_server_end_point(digest),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the server certificate's hash with its signature's
/// digest (SHA-256 in place of MD5 and SHA-1).
fn server_end_point(ssl: &SslRef) -> Option<Vec<u8>> {
    let cert = ssl.peer_certificate()?;
    let algorithms = cert
        .signature_algorithm()
        .object()
        .nid()
        .signature_algorithms()?;
    let md = match algorithms.digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    cert.digest(md).ok().map(|d| d.to_vec())
}

/// The most a certificate or key file may hold: real ones are a few KB, a CA bundle a few
/// hundred.
const MAX_FILE: u64 = 4 << 20;

/// Reads a certificate or key file. Only a regular file of at most [`MAX_FILE`] bytes: a FIFO
/// would block the start forever and a device such as `/dev/urandom` would be read until
/// memory ran out.
fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let fail = |why: &str| Error::config(format!("{what} {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| fail("cannot read the file").with_source(e))?;
    if !meta.is_file() {
        return Err(fail("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(fail(&format!("larger than {} MB", MAX_FILE >> 20)));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| fail("cannot read the file").with_source(e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(fail(&format!("larger than {} MB", MAX_FILE >> 20)));
    }
    Ok(bytes)
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

//! TLS for test servers: the kinds of server certificate ([`Tls`]) and the openssl calls that
//! make them (`server.crt`/`server.key`, and for a CA-signed one `ca.crt` beside them).

use std::path::Path;
use std::process::Command;

use super::host::checked;

/// The server's TLS setup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// `ssl = off`.
    #[default]
    Off,
    /// A self-signed certificate for CN=localhost, SAN DNS:localhost only (as on Railway).
    SelfSigned,
    /// A certificate signed by a test CA, SAN DNS:localhost and IP:127.0.0.1.
    CaSigned,
}

fn openssl(dir: &Path, args: &[&str]) {
    checked(
        Command::new("openssl").current_dir(dir).args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

/// Writes the server certificate and key `tls` asks for into `dir` (key mode 0600).
pub(super) fn make_certs(dir: &Path, tls: Tls) {
    match tls {
        Tls::Off => {}
        Tls::SelfSigned => self_signed(dir),
        Tls::CaSigned => ca_signed(dir),
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

/// `server.crt`/`server.key`: self-signed, CN=localhost, SAN DNS:localhost.
fn self_signed(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "server.key",
            "-out",
            "server.crt",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    )
}

/// `ca.crt`/`ca.key` for a test CA, and `server.crt`/`server.key` signed by it (SAN
/// DNS:localhost and IP:127.0.0.1).
fn ca_signed(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=yogaflow-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "san.ext",
        ],
    );
}

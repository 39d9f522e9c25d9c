//! Network faults and middlemen in front of a test cluster: [`BlackHole`] (a silent port,
//! by iptables), [`PgBouncer`] (transaction pooling) and [`CutProxy`] (a connection cut at a
//! chosen message).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::host::{as_server_user, chown_to_server_user, free_port, wait_until};
use super::pg::PgCluster;

/// A silent network for one TCP port on this host: packets to and from the port are dropped
/// (iptables, no RST), as when a Railway node or proxy goes away. Connections over the Unix
/// socket (the tests' own psql) are untouched. The rules go when this is dropped.
pub struct BlackHole {
    port: u16,
}

impl BlackHole {
    /// Starts dropping everything to and from `port` on 127.0.0.1.
    pub fn port(port: u16) -> BlackHole {
        let hole = BlackHole { port };
        for rule in hole.rules() {
            let ok = Command::new("iptables")
                .arg("-I")
                .args(&rule)
                .status()
                .unwrap_or_else(|e| panic!("iptables (apt-get install iptables; needs root): {e}"))
                .success();
            assert!(ok, "iptables -I {}", rule.join(" "));
        }
        hole
    }

    fn rules(&self) -> [Vec<String>; 2] {
        let p = self.port.to_string();
        [
            [
                "INPUT", "-i", "lo", "-p", "tcp", "--dport", &p, "-j", "DROP",
            ]
            .map(String::from)
            .to_vec(),
            [
                "INPUT", "-i", "lo", "-p", "tcp", "--sport", &p, "-j", "DROP",
            ]
            .map(String::from)
            .to_vec(),
        ]
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        for rule in self.rules() {
            let _ = Command::new("iptables")
                .arg("-D")
                .args(&rule)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Debian's PgBouncer in transaction pooling mode in front of a cluster (as Supabase, Neon
/// and many Railway setups put one): few server connections shared by every client, handed
/// out per transaction. Stopped on drop.
pub struct PgBouncer {
    dir: tempfile::TempDir,
    port: u16,
}

impl PgBouncer {
    /// Starts PgBouncer on a free port for `cluster` (trust auth), `pool_size` server
    /// connections per database.
    pub fn start(cluster: &PgCluster, pool_size: u32) -> PgBouncer {
        let dir = tempfile::Builder::new()
            .prefix("yf-pgb-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let p = dir.path();
        std::fs::write(p.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            p.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {users}\n\
                 pool_mode = transaction\ndefault_pool_size = {pool_size}\n\
                 max_client_conn = 200\nlogfile = {log}\npidfile = {pid}\n",
                cluster.port(),
                users = p.join("users.txt").display(),
                log = p.join("pgbouncer.log").display(),
                pid = p.join("pgbouncer.pid").display(),
            ),
        )
        .unwrap();
        chown_to_server_user(p);
        // PgBouncer refuses to run as root.
        let ok = as_server_user(Path::new("/usr/sbin/pgbouncer"))
            .arg("-d")
            .arg(p.join("pgbouncer.ini"))
            .status()
            .unwrap_or_else(|e| panic!("pgbouncer (apt-get install pgbouncer): {e}"))
            .success();
        assert!(ok, "pgbouncer did not start");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "pgbouncer never listened on {port}");
        PgBouncer { dir, port }
    }

    /// `postgresql://postgres@127.0.0.1:<pgbouncer>/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// A TCP proxy in front of a PostgreSQL port that cuts a connection (closes both sides, as a
/// crashed proxy or a restarted node would) the moment the client sends `needle`: cutting at
/// `COMMIT\0` leaves a transaction that did everything but commit.
pub struct CutProxy {
    port: u16,
}

impl CutProxy {
    /// Starts forwarding 127.0.0.1:[`CutProxy::port`] to 127.0.0.1:`target`.
    pub fn start(target: u16, needle: &'static [u8]) -> CutProxy {
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // server -> client, as is
                std::thread::spawn(move || {
                    let (mut from, mut to) = (s2, c2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Both);
                });
                // client -> server, watching for the needle
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut from, mut to) = (client, server);
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if buf[..n].windows(needle.len()).any(|w| w == needle) {
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        CutProxy { port }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

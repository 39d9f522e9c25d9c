//! Shared integration-test support: throwaway PostgreSQL clusters (initdb on a free port,
//! trust or password auth, TLS off, self-signed or CA-signed, plaintext allowed or not),
//! temporary SQLite files, and a runner for the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// How a test cluster authenticates and encrypts.
#[derive(Clone, Debug, Default)]
pub struct PgOptions {
    /// `None`: trust; `Some(pw)`: scram-sha-256 over TCP for `postgres` with this password.
    pub password: Option<String>,
    /// Server certificate.
    pub tls: Tls,
    /// Only `hostssl` lines: plaintext TCP is rejected.
    pub require_tls: bool,
}

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

/// A running (or initialised) throwaway cluster; stopped and removed on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    opts: PgOptions,
    bindir: PathBuf,
}

fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("initdb").exists());
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries not found (apt-get install postgresql); tests need a real server")
    })
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids a libc dependency.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command that runs as the `postgres` user when we are root (initdb and postgres refuse root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_server_user(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

fn checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The trust-auth cluster shared by the tests of one test binary (each test makes its own
/// database with [`PgCluster::create_db`]).
pub fn cluster() -> &'static PgCluster {
    static C: OnceLock<PgCluster> = OnceLock::new();
    C.get_or_init(|| PgCluster::start(PgOptions::default()))
}

/// A password no output may ever show: URL-hostile characters, so every spelling of it is
/// tried by [`assert_no_secret`].
pub const PASSWORD: &str = "Pw-Zebra#42@Lotus/9";

/// The cluster shared by the tests of one test binary that authenticates with [`PASSWORD`]
/// (scram-sha-256).
pub fn password_cluster() -> &'static PgCluster {
    static C: OnceLock<PgCluster> = OnceLock::new();
    C.get_or_init(|| {
        PgCluster::start(PgOptions {
            password: Some(PASSWORD.into()),
            ..PgOptions::default()
        })
    })
}

/// Clusters not yet stopped: clusters kept in `static`s are never dropped, so an `atexit`
/// handler stops what is left when the test binary exits (else every run would leak servers).
static LIVE: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_leftovers() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for (bindir, dir) in live {
        stop(&bindir, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn stop(bindir: &Path, dir: &Path) {
    let _ = as_server_user(&bindir.join("pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-m", "immediate", "-w", "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl PgCluster {
    /// initdb, start, wait until ready.
    pub fn start(opts: PgOptions) -> PgCluster {
        let c = PgCluster::init_only(opts);
        c.start_server();
        c
    }

    /// initdb and configure, without starting.
    pub fn init_only(opts: PgOptions) -> PgCluster {
        let dir = tempfile::Builder::new().prefix("yf-pg-").tempdir().unwrap();
        let bindir = bindir();
        chown_to_server_user(dir.path());
        let data = dir.path().join("data");
        let mut initdb = as_server_user(&bindir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"])
            .args(["--auth-local=trust"]);
        if let Some(pw) = &opts.password {
            let pwfile = dir.path().join("pwfile");
            std::fs::write(&pwfile, pw).unwrap();
            chown_to_server_user(&pwfile);
            initdb
                .arg("--auth-host=scram-sha-256")
                .arg(format!("--pwfile={}", pwfile.display()));
        } else {
            initdb.arg("--auth-host=trust");
        }
        checked(&mut initdb, "initdb");

        let method = if opts.password.is_some() {
            "scram-sha-256"
        } else {
            "trust"
        };
        let mut hba = String::from("local all all trust\n");
        let kind = if opts.require_tls { "hostssl" } else { "host" };
        hba.push_str(&format!(
            "{kind} all all 127.0.0.1/32 {method}\n{kind} all all ::1/128 {method}\n"
        ));
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();

        let mut conf = String::from(
            "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\nshared_buffers = 16MB\n\
             max_connections = 60\nlisten_addresses = '127.0.0.1,::1'\nlog_min_messages = warning\n",
        );
        conf.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            dir.path().display()
        ));
        if opts.tls != Tls::Off {
            make_certs(dir.path(), opts.tls);
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n",
                dir.path().display()
            ));
        }
        let path = data.join("postgresql.conf");
        let mut all = std::fs::read_to_string(&path).unwrap();
        all.push_str(&conf);
        std::fs::write(&path, all).unwrap();
        chown_to_server_user(dir.path());
        PgCluster {
            dir,
            port: free_port(),
            opts,
            bindir,
        }
    }

    /// Starts a cluster made by [`PgCluster::init_only`]; blocks until it accepts connections.
    pub fn start_server(&self) {
        static REGISTER: Once = Once::new();
        // SAFETY: registering a plain `extern "C" fn` with no captured state.
        REGISTER.call_once(|| unsafe {
            libc::atexit(stop_leftovers);
        });
        LIVE.lock()
            .unwrap()
            .push((self.bindir.clone(), self.dir.path().to_path_buf()));
        let out = as_server_user(&self.bindir.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .arg("start")
            .output()
            .unwrap();
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "PostgreSQL did not start on port {}: {}\n{}",
                self.port,
                String::from_utf8_lossy(&out.stderr),
                log
            );
        }
    }

    /// Stops the server (immediate).
    pub fn stop_server(&self) {
        stop(&self.bindir, self.dir.path());
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, d)| d != self.dir.path());
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding the Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// PEM the client should trust: the CA (CaSigned) or the certificate itself (SelfSigned).
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        match self.opts.tls {
            Tls::Off => None,
            Tls::SelfSigned => Some(self.dir.path().join("server.crt")),
            Tls::CaSigned => Some(self.dir.path().join("ca.crt")),
        }
    }

    /// `postgresql://postgres[:pw]@127.0.0.1:port/db`, password percent-encoded.
    pub fn url(&self, db: &str) -> String {
        let pw = self
            .opts
            .password
            .as_deref()
            .map(|p| format!(":{}", percent(p)))
            .unwrap_or_default();
        format!("postgresql://postgres{pw}@127.0.0.1:{}/{db}", self.port)
    }

    /// A fresh, uniquely named database.
    pub fn create_db(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{}_{}",
            N.fetch_add(1, Ordering::SeqCst),
            std::process::id()
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut c = Command::new(self.bindir.join("psql"));
        c.arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .env_remove("PGPASSWORD")
            .env_remove("DATABASE_URL");
        c
    }

    /// Runs SQL as superuser over the Unix socket; panics on failure; trimmed output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        checked(
            self.psql_command(db).arg("-c").arg(sql),
            &format!("psql {sql}"),
        )
        .trim()
        .to_string()
    }

    /// Starts psql running `sql` in the background (for holding locks).
    pub fn psql_background(&self, db: &str, sql: &str) -> Child {
        self.psql_command(db)
            .arg("-c")
            .arg(sql)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop_server();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    checked(
        Command::new("openssl").current_dir(dir).args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

fn make_certs(dir: &Path, tls: Tls) {
    match tls {
        Tls::Off => {}
        Tls::SelfSigned => openssl(
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
        ),
        Tls::CaSigned => {
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
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

/// Percent-encodes everything but unreserved characters.
pub fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

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

/// A SQLite file path in a temporary directory (the file itself is not created).
pub struct TempSqlite {
    dir: tempfile::TempDir,
}

impl TempSqlite {
    /// A new empty directory.
    pub fn new() -> TempSqlite {
        TempSqlite {
            dir: tempfile::Builder::new()
                .prefix("yf-sqlite-")
                .tempdir()
                .unwrap(),
        }
    }

    /// `<dir>/yogaflow.db`.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("yogaflow.db")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `sqlite:////abs/path/yogaflow.db`.
    pub fn url(&self) -> String {
        format!("sqlite:///{}", self.path().display())
    }

    /// Runs SQL with rusqlite; rows as `a|b` lines, trimmed.
    pub fn sqlite(&self, sql: &str) -> String {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        let mut lines = Vec::new();
        for stmt in split_statements(sql) {
            let mut st = conn
                .prepare(&stmt)
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
            let n = st.column_count();
            let mut rows = st.query([]).unwrap_or_else(|e| panic!("{stmt}: {e}"));
            while let Some(row) = rows.next().unwrap() {
                let cells: Vec<String> = (0..n)
                    .map(|i| match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => v.to_string(),
                        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into(),
                        rusqlite::types::ValueRef::Blob(b) => format!("<{} bytes>", b.len()),
                    })
                    .collect();
                lines.push(cells.join("|"));
            }
        }
        lines.join("\n").trim().to_string()
    }
}

impl Default for TempSqlite {
    fn default() -> Self {
        TempSqlite::new()
    }
}

/// Splits on `;` outside quotes (enough for test SQL).
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for ch in sql.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (minus the signal number when killed by one).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics, showing both streams, unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The binary, with an environment free of the caller's database settings.
pub fn bin() -> Command {
    program(Path::new(env!("CARGO_BIN_EXE_yogaflow-migrate")))
}

/// Another build of the binary (say, one with a migration more), in the same clean
/// environment as [`bin`].
pub fn program(path: &Path) -> Command {
    let mut c = Command::new(path);
    for (k, _) in std::env::vars() {
        if k == "DATABASE_URL"
            || k == "RUST_LOG"
            || k.starts_with("PG")
            || k.starts_with("MIGRATE_")
            || k.starts_with("RAILWAY_")
        {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// The exit code, or minus the signal that killed the process.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

fn finish(mut c: Command) -> Run {
    let out = c.output().unwrap();
    Run {
        code: exit_code(out.status),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary with `args` and `env`.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = bin();
    c.args(args).envs(env.iter().copied());
    finish(c)
}

/// Runs the binary with `args` and `env`, killing it after `limit`: a run that hangs ends as
/// killed by SIGKILL (code -9) instead of hanging the test. Only stderr is kept.
pub fn run_bounded(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    spawn(args, env).finish(limit)
}

/// A run of the binary in the background whose stderr is read as it comes, so a test can
/// wait for the line that says the run got where the test needs it (never for a guessed time).
pub struct Spawned {
    child: Child,
    lines: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Starts the binary with `args` and `env` in the background.
pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    spawn_command(bin(), args, env)
}

/// Starts `c` (from [`bin`] or [`program`]) with `args` and `env` in the background.
pub fn spawn_command(mut c: Command, args: &[&str], env: &[(&str, &str)]) -> Spawned {
    use std::io::Read;
    c.args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(String::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Spawned {
        child,
        lines,
        reader: Some(reader),
    }
}

impl Spawned {
    /// Waits until stderr holds `needle`; panics with what it holds after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let seen = wait_until(timeout, || self.lines.lock().unwrap().contains(needle));
        assert!(
            seen,
            "no {needle:?} within {timeout:?}; stderr so far:\n{}",
            self.lines.lock().unwrap()
        );
    }

    /// Process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name kill(1) knows: TERM, INT, KILL).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal}");
    }

    /// Waits for the exit, killing the process after `limit` (code -9 then).
    pub fn finish(mut self, limit: Duration) -> Run {
        let end = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        Run {
            code: exit_code(status),
            stdout: String::new(),
            stderr: self.lines.lock().unwrap().clone(),
        }
    }
}

/// Runs `n` copies of the binary with `args` and `env` at once (replicas starting together);
/// their runs, in order.
pub fn race(n: usize, args: &[&str], env: &[(&str, &str)]) -> Vec<Run> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (args, env) = (args.clone(), env.clone());
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                run(&args, &env)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Runs the binary in `dir`.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = bin();
    c.current_dir(dir).args(args).envs(env.iter().copied());
    finish(c)
}

/// Panics if `secret` (raw or percent-encoded) appears in the run's output.
pub fn assert_no_secret(run: &Run, secret: &str) {
    let all = run.all();
    for form in [secret.to_string(), percent(secret)] {
        assert!(!all.contains(&form), "secret leaked ({form}):\n{all}");
    }
}

/// Waits until `f` is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

//! Throwaway PostgreSQL clusters: initdb on a free port, trust or password auth, TLS as
//! [`Tls`] says, plaintext allowed or not; the clusters shared by one test binary; stopping
//! whatever is left when the binary exits; and the URLs that reach them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use super::certs::{make_certs, Tls};
use super::host::{as_server_user, checked, chown_to_server_user, free_port};

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

/// A running (or initialised) throwaway cluster; stopped and removed on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
    opts: PgOptions,
    bindir: PathBuf,
}

/// The server binaries: `PG_BIN`, else `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
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

/// The trust-auth cluster shared by the tests of one test binary (each test makes its own
/// database with [`PgCluster::create_db`]).
pub fn cluster() -> &'static PgCluster {
    static C: OnceLock<PgCluster> = OnceLock::new();
    C.get_or_init(|| PgCluster::start(PgOptions::default()))
}

/// A password no output may ever show: URL-hostile characters, so every spelling of it is
/// tried by [`super::assert_no_secret`].
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

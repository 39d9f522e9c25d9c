//! Running the real binary: a clean environment, runs to completion, bounded or in the
//! background (with stderr read as it comes), races of replicas, and the [`Run`] each one
//! ends in, with its assertions.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::host::wait_until;
use super::pg::percent;

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
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics, showing both streams, unless the exit code is `code` and stderr holds every
    /// one of `needles`: a failure and what it says.
    #[track_caller]
    pub fn assert_error(&self, code: i32, needles: &[&str]) -> &Self {
        self.assert_code(code);
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|n| !self.stderr.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "stderr lacks {missing:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// [`Run::assert_error`] for a success: exit code 0 and stderr holds every one of
    /// `needles`.
    #[track_caller]
    pub fn assert_ok(&self, needles: &[&str]) -> &Self {
        self.assert_error(0, needles)
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

//! yogaflow-migrate: brings YogaFlow's PostgreSQL or SQLite database to the schema embedded in
//! this binary, operates it (status, verify, down, baseline) and moves its data (export,
//! import, copy). `run` is the whole program; `main.rs` only maps its result to an exit code.

/// `println!` that hands back the write error (a reader that went away, as in
/// `status | head -1`) instead of panicking; `main` ends such a run quietly with 0.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod adopt;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod expr;
pub mod generate;
pub mod lint;
pub mod logging;
pub mod migrate;
pub mod migrations;
pub mod progress;
pub mod redact;
pub mod schema;
pub mod script;
pub mod tls;
pub mod transfer;
pub mod url;

use cli::{Cli, Command};
use config::{Config, LogFormat};
use error::{Error, Kind, Result};

/// Runs the command line `cli` to completion. SIGINT and SIGTERM abort the work in progress
/// (open transactions roll back when their connection closes) and become
/// [`Kind::Interrupted`] / [`Kind::Terminated`], never success.
pub fn run(cli: Cli) -> Result<()> {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            logging::init(LogFormat::Plain);
            return Err(e);
        }
    };
    logging::init(config.log_format);
    migrations::Deployment::set(config.deployment.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").with_source(e))?;
    runtime.block_on(async {
        // Listening starts before any work, so a signal that comes early is not lost.
        let mut signals = Signals::new()?;
        let result = tokio::select! {
            result = dispatch(cli, &config) => result,
            kind = signals.recv() => {
                // SQLite works on threads of its own: stop them, so nothing they were
                // writing commits after we leave.
                db::sqlite::interrupt_all();
                return Err(Error::new(kind, format!(
                    "{}; what was not committed yet was rolled back (each migration commits on \
                     its own: `status` shows where the database stands)",
                    signal_name(kind)
                )));
            }
        };
        // A signal that came as the work ended is still not success: say that it came, and
        // that it changed nothing. (A failure keeps its own message and code.)
        if result.is_ok() {
            tokio::task::yield_now().await;
            if let Some(kind) = futures_util::FutureExt::now_or_never(signals.recv()) {
                return Err(Error::new(
                    kind,
                    format!(
                        "{} after the work was done (everything was committed)",
                        signal_name(kind)
                    ),
                ));
            }
        }
        result
    })
}

fn signal_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Terminated => "terminated by SIGTERM",
        _ => "interrupted by SIGINT",
    }
}

async fn dispatch(cli: Cli, config: &Config) -> Result<()> {
    use commands::*;
    let command = cli.command.unwrap_or(Command::Up(Default::default()));
    // These work on the source tree, not a database.
    match &command {
        Command::New(args) => return new::run(args, config).await,
        Command::Lint(args) => return lint::run(args),
        _ => {}
    }
    let url = match &command {
        Command::Copy(args) if args.to.is_some() => {
            config::parse_url(args.to.as_deref().unwrap_or_default())?
        }
        _ => config.database()?,
    };
    match command {
        Command::Up(args) => up::run(config, &url, &args).await,
        Command::Status(args) => status::run(config, &url, &args).await,
        Command::Verify(args) => verify::run(config, &url, &args).await,
        Command::Down(args) => down::run(config, &url, &args).await,
        Command::Baseline(args) => baseline::run(config, &url, &args).await,
        Command::Complete(args) => complete::run(config, &url, &args).await,
        Command::Export(args) => transfer::export(config, &url, &args).await,
        Command::Import(args) => transfer::import(config, &url, &args).await,
        Command::Copy(args) => transfer::copy(config, &url, &args).await,
        Command::New(_) | Command::Lint(_) => unreachable!("handled above"),
    }
}

/// SIGINT and SIGTERM, listened for from the start.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind| {
            signal(kind).map_err(|e| Error::internal("cannot listen for signals").with_source(e))
        };
        Ok(Signals {
            int: listen(SignalKind::interrupt())?,
            term: listen(SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) -> Kind {
        tokio::select! {
            _ = self.int.recv() => Kind::Interrupted,
            _ = self.term.recv() => Kind::Terminated,
        }
    }
}

/// Prints a failure once, on stderr, with its whole cause chain, redacted; as a JSON object
/// when `MIGRATE_LOG_FORMAT=json`. Printed directly, not through the logger, so that
/// `RUST_LOG=off` cannot hide why the process failed.
pub fn print_error(e: &Error) {
    let report = e.report();
    let json = config::var("MIGRATE_LOG_FORMAT")
        .ok()
        .flatten()
        .is_some_and(|v| v.trim() == "json");
    if json {
        let line = serde_json::json!({
            "level": "ERROR",
            "message": report,
            "exit_code": e.kind().exit_code(),
        });
        eprintln!("{line}");
    } else {
        eprintln!("error: {report}");
    }
}

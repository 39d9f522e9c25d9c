//! yogaflow-migrate: brings YogaFlow's PostgreSQL or SQLite database to the schema embedded in
//! this binary, operates it (status, verify, down, baseline) and moves its data (export,
//! import, copy). `run` is the whole program; `main.rs` only maps its result to an exit code.

pub mod cli;
pub mod config;
pub mod connect;
pub mod db;
pub mod error;
pub mod lock;
pub mod logging;
pub mod migrate;
pub mod ops;
pub mod redact;
pub mod schema;
pub mod tls;
pub mod transfer;
pub mod up;
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the async runtime").with_source(e))?;
    runtime.block_on(async {
        tokio::select! {
            result = dispatch(cli, &config) => result,
            kind = interrupted() => Err(Error::new(kind, match kind {
                Kind::Terminated => "terminated by SIGTERM; work in progress was rolled back",
                _ => "interrupted by SIGINT; work in progress was rolled back",
            })),
        }
    })
}

async fn dispatch(cli: Cli, config: &Config) -> Result<()> {
    let command = cli.command.unwrap_or(Command::Up(Default::default()));
    let target = match &command {
        Command::Copy(args) if args.to.is_some() => {
            config::parse_url(args.to.as_deref().unwrap_or_default())?
        }
        _ => config.target()?,
    };
    match command {
        Command::Up(args) => up::run(config, &target, &args).await,
        Command::Status(args) => ops::status(config, &target, &args).await,
        Command::Verify(args) => ops::verify(config, &target, &args).await,
        Command::Down(args) => ops::down(config, &target, &args).await,
        Command::Baseline(args) => ops::baseline(config, &target, &args).await,
        Command::Export(args) => transfer::export(config, &target, &args).await,
        Command::Import(args) => transfer::import(config, &target, &args).await,
        Command::Copy(args) => transfer::copy(config, &target, &args).await,
    }
}

async fn interrupted() -> Kind {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Kind::Interrupted,
        _ = term.recv() => Kind::Terminated,
    }
}

/// Prints a failure once, on stderr, with its whole cause chain, redacted; as a JSON object
/// when `MIGRATE_LOG_FORMAT=json`. Printed directly, not through the logger, so that
/// `RUST_LOG=off` cannot hide why the process failed.
pub fn print_error(e: &Error) {
    let report = e.report();
    let json = std::env::var("MIGRATE_LOG_FORMAT").is_ok_and(|v| v.trim() == "json");
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

//! The binary: parse the command line, run it, print a failure once and turn it into the
//! documented exit code.

use clap::Parser;
use std::process::ExitCode;
use yogaflow_migrate::cli::Cli;

fn main() -> ExitCode {
    yogaflow_migrate::redact::install_panic_hook();
    let cli = Cli::parse();
    // The panic hook has printed the (redacted) message; a panic is an internal error, exit 1.
    match std::panic::catch_unwind(|| yogaflow_migrate::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            yogaflow_migrate::print_error(&e);
            ExitCode::from(e.kind().exit_code() as u8)
        }
        Err(_) => ExitCode::from(1),
    }
}

// Rows are allocated on the reader thread and freed on the writer thread; glibc's malloc
// serialises that on an arena lock (a third of export's time went to it). mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

//! The binary: parse the command line, run it, print a failure once and turn it into the
//! documented exit code.

use clap::Parser;
use std::process::ExitCode;
use yogaflow_migrate::cli::Cli;

fn main() -> ExitCode {
    yogaflow_migrate::redact::install_panic_hook();
    let cli = Cli::parse();
    match yogaflow_migrate::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            yogaflow_migrate::print_error(&e);
            ExitCode::from(e.kind().exit_code() as u8)
        }
    }
}

// Rows are allocated on the reader thread and freed on the writer thread; glibc's malloc
// serialises that on an arena lock (a third of export's time went to it). mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

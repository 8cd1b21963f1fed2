//! `volley`, a command-line Socket.IO client built on `volley-client`.
//!
//! ```text
//! volley listen http://localhost:3000 --ns /chat --event message
//! volley emit http://localhost:3000 "chat message" '"hello"' --ack
//! volley bench http://localhost:3000 --clients 100 --rate 2000 --duration 10s
//! ```
//!
//! See the crate's README for every option, the output formats and the exit codes.

mod bench;
mod cli;
mod connect;
mod emit;
mod error;
mod listen;
mod signal;
mod value;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::{Failure, code};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Failure::Other(format!("cannot start the runtime: {e}"))),
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Listen(args) => listen::run(args).await,
            Command::Emit(args) => emit::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    // Tasks still running (a closing connection) must not keep the process alive.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::from(code::OK),
        Err(f) => fail(&f),
    }
}

/// Prints the failure on stderr and gives its exit code.
fn fail(f: &Failure) -> ExitCode {
    eprintln!("volley: error: {f}");
    ExitCode::from(f.code())
}

/// A status line on stderr, unless `--quiet`.
pub(crate) fn note(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("volley: {text}");
    }
}

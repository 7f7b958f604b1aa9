//! `skytimed`: the skytime daemon.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    skytimed::daemon::main(skytimed::cli::Cli::parse())
}

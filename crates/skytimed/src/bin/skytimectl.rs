//! `skytimectl`: the operator's command-line tool for skytime.

use clap::{Parser, Subcommand};
use skytimed::ctl::nmea::DecodeOptions;
use skytime_gnss::NaiveDate;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ask a running skytimed how it is doing, or decode receiver captures.
#[derive(Debug, Parser)]
#[command(name = "skytimectl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// NMEA tools that work on captures, without a daemon.
    Nmea {
        #[command(subcommand)]
        command: NmeaCommand,
    },
}

#[derive(Debug, Subcommand)]
enum NmeaCommand {
    /// Decode a capture (gpsd-style: `#` comments, `# Date: YYYY-MM-DD`) into one
    /// JSON object per epoch on stdout, with a summary on stderr. FILE may be `-`.
    Decode {
        /// Capture file, or `-` for stdin.
        file: PathBuf,
        /// GPS week-rollover pivot date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        pivot: Option<NaiveDate>,
        /// Date to use for captures that send none (overrides `# Date:`).
        #[arg(long, value_name = "DATE")]
        date: Option<NaiveDate>,
        /// Accept sentences without a `*hh` checksum.
        #[arg(long)]
        allow_missing_checksum: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Nmea {
            command:
                NmeaCommand::Decode {
                    file,
                    pivot,
                    date,
                    allow_missing_checksum,
                },
        } => skytimed::ctl::nmea::decode(
            &file,
            &DecodeOptions {
                pivot,
                date,
                allow_missing_checksum,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skytimectl: error: {}", skytimed::daemon::one_line(&e));
            ExitCode::from(1)
        }
    }
}

//! `skytimectl`: the operator's command-line tool for skytime.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use skytime_gnss::NaiveDate;
use skytimed::ctl::client::Connection;
use skytimed::ctl::nmea::DecodeOptions;
use skytimed::ctl::protocol::{
    ClientsReport, DEFAULT_CLIENT_LIMIT, MAX_CLIENT_LIMIT, Request, SourcesReport, StatusReport,
};
use std::path::PathBuf;
use std::process::ExitCode;

/// Ask a running skytimed how it is doing, or decode receiver captures.
#[derive(Debug, Parser)]
#[command(name = "skytimectl", version, about, long_about = None)]
struct Cli {
    /// The daemon's control socket. Default: the first that answers of
    /// /run/skytime/skytimed.sock and this user's `skytimed --simulate` socket.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// Output options every daemon command takes.
#[derive(Debug, Args)]
struct Output {
    /// Print the daemon's machine-readable answer (JSON) instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// How the clock is doing, like `chronyc tracking`: state, reference,
    /// offset, frequency, dispersion, leap, PPS/NMEA, fix, requests, alerts.
    Status {
        #[command(flatten)]
        output: Output,
    },
    /// PPS and NMEA with chrony-style reach registers (377: all well).
    Sources {
        #[command(flatten)]
        output: Output,
    },
    /// The busiest NTP clients: requests, KoDs/drops, rate, last seen.
    Clients {
        #[command(flatten)]
        output: Output,
        /// How many clients to list.
        #[arg(short = 'n', long, default_value_t = DEFAULT_CLIENT_LIMIT as u64,
              value_parser = clap::value_parser!(u64).range(1..=MAX_CLIENT_LIMIT as u64))]
        limit: u64,
    },
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
    let socket = cli.socket.clone();
    let result = match cli.command {
        Command::Status { output } => ask::<StatusReport>(
            socket,
            Request::Status {},
            output,
            skytimed::ctl::render::status,
        ),
        Command::Sources { output } => ask::<SourcesReport>(
            socket,
            Request::Sources {},
            output,
            skytimed::ctl::render::sources,
        ),
        Command::Clients { output, limit } => ask::<ClientsReport>(
            socket,
            Request::Clients {
                limit: Some(usize::try_from(limit).unwrap_or(MAX_CLIENT_LIMIT)),
            },
            output,
            skytimed::ctl::render::clients,
        ),
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

/// Asks the daemon one thing and prints the answer, as JSON or as a table.
fn ask<T: serde::de::DeserializeOwned + serde::Serialize>(
    socket: Option<PathBuf>,
    request: Request,
    output: Output,
    render: fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let mut conn = Connection::open(
        socket.as_deref(),
        &skytimed::paths::default_control_sockets(),
    )?;
    let answer: T = conn.request(&request)?;
    if output.json {
        let text = serde_json::to_string_pretty(&answer).context("cannot format the answer")?;
        println!("{text}");
    } else {
        print!("{}", render(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

//! `skytimectl`: the operator's command-line tool for skytime.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use skytime_gnss::NaiveDate;
use skytimed::ctl::client::Connection;
use skytimed::ctl::nmea::DecodeOptions;
use skytimed::ctl::protocol::{
    ClientsReport, DEFAULT_CLIENT_LIMIT, MAX_CLIENT_LIMIT, Request, SourcesReport, StatusReport,
};
use skytimed::instance::{self, InstanceLayout, MAX_INSTANCES};
use std::path::PathBuf;
use std::process::ExitCode;

/// skytimectl: ask a running skytimed how the clock is doing (like chronyc),
/// or decode receiver captures.
///
/// Without --socket or --instance it asks the packaged daemon
/// (/run/skytime/skytimed.sock) or, if none runs, this user's
/// `skytimed --simulate`; when several answer it lists them and asks which.
#[derive(Debug, Parser)]
#[command(name = "skytimectl", version)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "instance")]
    socket: Option<PathBuf>,

    /// This user's simulated instance N (`skytimed --simulate` prints its number).
    #[arg(long, value_name = "N")]
    instance: Option<u32>,

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
    let socket = Target {
        socket: cli.socket.clone(),
        instance: cli.instance,
    };
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

/// Which daemon to ask, as the command line says.
struct Target {
    socket: Option<PathBuf>,
    instance: Option<u32>,
}

impl Target {
    /// Connects to the daemon named, or to the only one running.
    fn connect(&self) -> anyhow::Result<Connection> {
        if let Some(path) = &self.socket {
            return Connection::open(path);
        }
        if let Some(n) = self.instance {
            let layout = InstanceLayout::of(n).with_context(|| {
                format!("instance {n} does not exist: choose 1 to {MAX_INSTANCES}")
            })?;
            return Connection::open(&layout.control_socket()).with_context(|| {
                format!("simulated instance {n} is not running{}", others_running())
            });
        }
        let system = PathBuf::from(skytimed::paths::SYSTEM_CONTROL_SOCKET);
        let system_live = std::os::unix::net::UnixStream::connect(&system).is_ok();
        let simulated = instance::running();
        match (system_live, simulated.as_slice()) {
            (true, []) => Connection::open(&system),
            (false, [(_, socket)]) => Connection::open(socket),
            (false, []) => {
                let first = InstanceLayout::of(1).map(|l| l.control_socket());
                anyhow::bail!(
                    "no skytimed is running: none answers on {} nor on this user's simulated instances ({}, ...); start one with `skytimed --simulate`, or `systemctl start skytimed` on the appliance",
                    system.display(),
                    first.map(|p| p.display().to_string()).unwrap_or_default()
                )
            }
            (system_live, several) => {
                let mut found: Vec<String> = several
                    .iter()
                    .map(|(layout, _)| format!("--instance {} (NTP {})", layout.number, layout.ntp))
                    .collect();
                if system_live {
                    found.insert(0, format!("--socket {}", system.display()));
                }
                anyhow::bail!(
                    "{} skytimed daemons answer; choose one: {}",
                    found.len(),
                    found.join(", ")
                )
            }
        }
    }
}

/// ", instances running: 1, 3" or "" when none runs.
fn others_running() -> String {
    let numbers: Vec<String> = instance::running()
        .iter()
        .map(|(layout, _)| layout.number.to_string())
        .collect();
    if numbers.is_empty() {
        " (no simulated instance is running)".to_string()
    } else {
        format!(" (running: instance {})", numbers.join(", "))
    }
}

/// Asks the daemon one thing and prints the answer, as JSON or as a table.
fn ask<T: serde::de::DeserializeOwned + serde::Serialize>(
    target: Target,
    request: Request,
    output: Output,
    render: fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    let mut conn = target.connect()?;
    let answer: T = conn.request(&request)?;
    if output.json {
        let text = serde_json::to_string_pretty(&answer).context("cannot format the answer")?;
        println!("{text}");
    } else {
        print!("{}", render(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn help_of(path: &[&str]) -> String {
        let mut command = Cli::command();
        for name in path {
            command = command
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no subcommand {name}"))
                .clone();
        }
        command.render_long_help().to_string()
    }

    #[test]
    fn help_says_what_the_binary_is() {
        let help = help_of(&[]);
        assert!(
            help.starts_with("skytimectl: ask a running skytimed"),
            "{help}"
        );
        for option in ["--socket", "--instance"] {
            assert!(help.contains(option), "{help}");
        }
    }

    #[test]
    fn subcommands_show_only_the_options_they_use() {
        let decode = help_of(&["nmea", "decode"]);
        for foreign in ["--socket", "--instance", "--json"] {
            assert!(
                !decode.contains(foreign),
                "nmea decode offers {foreign}:\n{decode}"
            );
        }
        let status = help_of(&["status"]);
        assert!(
            status.contains("--json") && !status.contains("--pivot"),
            "{status}"
        );
    }
}

//! `skytimed`'s command line.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// skytimed: the skytime daemon, a Stratum-1 NTP server disciplined by a GNSS
/// receiver and its pulse-per-second line.
///
/// On the appliance systemd runs it with /etc/skytime/skytime.toml. On any
/// Linux machine, `skytimed --simulate` runs the whole appliance on a
/// simulated GPS hat (the host clock is never touched); each further
/// `--simulate` takes the next free instance (NTP 127.0.0.1:12300, 12301, ...).
/// Look at it with `skytimectl status`; stop it with Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "skytimed", version)]
pub struct Cli {
    /// Configuration file (TOML). Default: /etc/skytime/skytime.toml if it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Validate a configuration file, print every problem with its line, and exit.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["simulate", "config"])]
    pub check_config: Option<PathBuf>,

    /// Run on a simulated GPS hat (pseudo-terminal NMEA, simulated PPS and a
    /// simulated clock); the host clock is never touched. Instance 1 serves NTP
    /// on 127.0.0.1:12300, the status page on :12380 and metrics on :12390; a
    /// second one takes :12301, :12381, :12391, and so on.
    #[arg(long)]
    pub simulate: bool,

    /// Under --simulate, run as this instance (1 to 10) instead of the first free one.
    #[arg(
        long,
        value_name = "N",
        requires = "simulate",
        conflicts_with = "state_dir"
    )]
    pub instance: Option<u32>,

    /// Shape the simulated hat with a scenario file ([clock], [pps], [nmea]).
    #[arg(long, value_name = "FILE", requires = "simulate")]
    pub scenario: Option<PathBuf>,

    /// NTP address to serve, e.g. 127.0.0.1:12301 or [::1]:12301; repeatable.
    /// Replaces the configured `ntp.listen`.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// Directory for the drift file and control socket, locked while this
    /// daemon runs (default under --simulate: the instance's own,
    /// $XDG_RUNTIME_DIR/skytime-sim[-N] or /tmp/skytime-sim-UID[-N]).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Prometheus endpoint address, or `off`.
    #[arg(long, value_name = "ADDR:PORT|off")]
    pub metrics_listen: Option<Endpoint>,

    /// Status page address, or `off`.
    #[arg(long, value_name = "ADDR:PORT|off")]
    pub web_listen: Option<Endpoint>,

    /// Log level or tracing filter (overrides the config's `log.level`).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// What to do (none: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands that do something other than run the daemon.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario in simulated time against the real discipline and print
    /// its accuracy summary as JSON (last line).
    Simulate {
        /// Scenario file (TOML).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// Run with this configuration's `[refclock]` (its temperature sensor
        /// on or off decides whether the scenario's `[sensor]` is read)
        /// instead of the scenario's defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// An HTTP endpoint given on the command line: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Do not serve.
    Off,
    /// Serve here (port 0: any free port, logged at start-up).
    At(SocketAddr),
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Endpoint::Off);
        }
        s.parse()
            .map(Endpoint::At)
            .map_err(|_| format!("`{s}` is neither ADDR:PORT nor `off`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_says_what_the_daemon_is_and_how_to_try_it() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.starts_with("skytimed: the skytime daemon"), "{help}");
        for promise in [
            "--simulate",
            "skytimectl status",
            "Ctrl-C",
            "127.0.0.1:12300",
        ] {
            assert!(help.contains(promise), "{promise} missing from\n{help}");
        }
        let simulate = Cli::command()
            .find_subcommand("simulate")
            .map(|c| c.clone().render_long_help().to_string())
            .unwrap_or_default();
        assert!(
            simulate.contains("--scenario") && !simulate.contains("--listen"),
            "{simulate}"
        );
    }
}

//! `skytimed simulate --scenario FILE`: the sim engineer replaces this placeholder.

use std::path::Path;
use std::process::ExitCode;

/// Runs one scenario in simulated time and prints its JSON summary last.
pub fn run(scenario: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("simulate of {} is not built yet", scenario.display())
}

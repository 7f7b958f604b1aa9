//! The simulated hat: a GNSS receiver, a PPS line and an oscillator that drive
//! the real refclock code, either in simulated time (scenarios of hours in about a
//! second) or in real time through a pseudo-terminal (`skytimed --simulate`).

pub mod bound_frontier;
pub mod hat;
pub mod hat_receiver;
pub mod holdover_digest;
pub mod nmea_out;
pub mod oscillator;
pub mod receiver_timing;
pub mod runner;
pub mod scenario;
mod segment_cell;
pub mod sim_clock;
pub mod targets;
pub mod tdev;
pub mod true_seconds;

pub use oscillator::{Oscillator, OscillatorParams};
pub use runner::{
    RunDetails, ScenarioReport, ScenarioRun, SimSettings, run_scenario, run_scenario_traced,
    run_scenario_with_config, run_scenario_with_settings, scenario_refclock_config,
};
pub use scenario::{Scenario, ScenarioError};
pub use sim_clock::SimClock;

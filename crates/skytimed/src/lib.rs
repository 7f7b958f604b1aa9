//! The skytime daemon's wiring: configuration, threads, and the surfaces
//! (control socket, metrics, status page) that expose the refclock's status.

pub mod alerts;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod discipline;
#[cfg(test)]
mod fixtures;
pub mod human;
pub mod instance;
pub mod metrics;
pub mod nts;
pub mod paths;
pub mod simulate;
pub mod state;
pub mod surfaces;
pub mod thermal_sensor;
pub mod web;

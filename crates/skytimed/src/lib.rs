//! The skytime daemon's wiring: configuration, threads, and the surfaces
//! (control socket, metrics, status page) that expose the refclock's status.

pub mod config;
pub mod ctl;
pub mod simulate;

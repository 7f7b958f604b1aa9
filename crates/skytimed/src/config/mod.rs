//! The daemon's one configuration file.

pub mod problems;

//! NMEA 0183 reader.
//!
//! Turns a serial byte stream from any GNSS receiver into one labelled epoch per
//! second. The parsing core is sans-IO ([`EpochAssembler`] takes bytes plus their
//! arrival time); the serial shell around it only reads and reopens devices.

mod epoch;

pub use epoch::{Epoch, FixMode, SatelliteInfo};

//! NMEA 0183 reader.
//!
//! Turns a serial byte stream from any GNSS receiver into one labelled epoch per
//! second. The parsing core is sans-IO ([`EpochAssembler`] takes bytes plus their
//! arrival time); the serial shell around it ([`SerialReader`]) only reads,
//! auto-bauds and reopens devices. [`capture`] replays gpsd-style capture files
//! through the same core for `skytimectl nmea decode` and the corpus tests.
//!
//! [`validity`] documents when a second counts as valid. [`ubx`] and [`pmtk`]
//! speak to u-blox and MediaTek receivers; [`configure`] is the sans-IO state
//! machine that configures them (opt-in, `[gnss.receiver]`), taking back what
//! it set when the receiver refuses or goes quiet. The assembler also passes on
//! what a receiver reports besides its epochs ([`ReceiverReport`]): TIM-TP for
//! the qErr correction, survey-in progress, and the receiver's identity.

mod assembler;
pub mod capture;
mod config;
pub mod configure;
mod epoch;
mod framer;
pub mod pmtk;
mod reports;
mod sentence;
mod serial;
mod serial_configure;
mod stats;
pub mod ubx;
pub mod validity;

pub use assembler::{EpochAssembler, ROLLOVER_DAYS};
pub use config::{AUTOBAUD_RATES, Baud, GnssConfig, ParserConfig, build_date};
pub use epoch::{Epoch, FixMode, SatelliteInfo};
pub use framer::{MAX_BINARY_PAYLOAD, MAX_SENTENCE_BYTES};
pub use reports::ReceiverReport;
pub use serial::{GnssCounters, GnssError, GnssEvent, SerialReader, StopHandle};
pub use stats::ParserStats;

/// Dates in this crate's API (pivot, capture date) are chrono's.
pub use chrono::NaiveDate;

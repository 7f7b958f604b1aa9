//! What one second of receiver output amounts to. The types live in
//! `skytime-core`, so the refclock can take them without linking this crate.

pub use skytime_core::{Epoch, FixMode, SatelliteInfo};

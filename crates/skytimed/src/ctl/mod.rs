//! `skytimectl` subcommands that do their work in this process (capture
//! decoding) or talk to a running daemon over the control socket.

pub mod client;
pub mod detection;
pub mod nmea;
pub mod protocol;
pub mod render;
pub mod report;
pub mod server;

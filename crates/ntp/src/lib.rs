//! NTPv4 (RFC 5905) for a stratum-1 server.
//!
//! A packet codec, a sans-IO server policy that turns (request bytes, source
//! address, receive timestamp, system state) into a [`ServerAction`]-style
//! decision, and a thin UDP shell around it.

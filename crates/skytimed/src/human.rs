//! How numbers and modes read to an operator: one spelling shared by
//! `skytimectl`, the alerts' messages and the status page.

use skytime_gnss::FixMode;

/// Formats nanoseconds with a unit an operator reads at a glance.
pub fn human_ns(ns: f64) -> String {
    let a = ns.abs();
    if a >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if a >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if a >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The fix mode as operators read it.
pub fn fix_mode_name(mode: FixMode) -> &'static str {
    match mode {
        FixMode::Unknown => "unknown",
        FixMode::NoFix => "no fix",
        FixMode::Fix2D => "2D",
        FixMode::Fix3D => "3D",
    }
}

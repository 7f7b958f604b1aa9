//! What a PHC source tells operators about its PHC-to-system mapping: the
//! method, how good it is and how many events it read. Written by the PPS
//! thread, read by status and metrics without a lock.

use crate::phc::OffsetMethod;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// Not a PHC (or not opened yet): [`PhcCounters::snapshot`] gives `None`.
const METHOD_NONE: u8 = 0;
/// "No value yet" for the signed and unsigned gauges.
const UNKNOWN_I64: i64 = i64::MIN;
const UNKNOWN_U64: u64 = u64::MAX;

/// The PHC source's mapping state and event counts. Relaxed atomics: each
/// field is an independent gauge or monotone count.
#[derive(Debug)]
pub struct PhcCounters {
    device: OnceLock<String>,
    method: AtomicU8,
    mapping_uncertainty_ns: AtomicU64,
    fast_ppb_milli: AtomicI64,
    /// External-timestamp events read on the configured channel.
    pub events: AtomicU64,
    /// Events dropped as the pulse's other edge (a PHC that stamps both).
    pub other_edge_dropped: AtomicU64,
}

impl Default for PhcCounters {
    fn default() -> Self {
        Self {
            device: OnceLock::new(),
            method: AtomicU8::new(METHOD_NONE),
            mapping_uncertainty_ns: AtomicU64::new(UNKNOWN_U64),
            fast_ppb_milli: AtomicI64::new(UNKNOWN_I64),
            events: AtomicU64::new(0),
            other_edge_dropped: AtomicU64::new(0),
        }
    }
}

/// A point-in-time copy of [`PhcCounters`] for status and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct PhcSnapshot {
    /// The PHC (`/dev/ptpN`).
    pub device: String,
    /// How PHC time is compared with the system clock.
    pub method: OffsetMethod,
    /// The mapping's error bound at the last delivered edge, ns (`None`
    /// before the first).
    pub mapping_uncertainty_ns: Option<u64>,
    /// How fast the PHC runs against CLOCK_REALTIME, ppb, positive = faster
    /// (`None` before two offset samples measure it).
    pub fast_ppb: Option<f64>,
    /// See [`PhcCounters::events`].
    pub events: u64,
    /// See [`PhcCounters::other_edge_dropped`].
    pub other_edge_dropped: u64,
}

impl PhcCounters {
    /// Records the device and the comparison method chosen at open.
    pub fn set_opened(&self, device: &str, method: OffsetMethod) {
        let _ = self.device.set(device.to_string());
        let code = match method {
            OffsetMethod::Precise => 1,
            OffsetMethod::Extended => 2,
            OffsetMethod::Plain => 3,
        };
        self.method.store(code, Ordering::Relaxed);
    }

    /// Records the mapping's error bound for the edge just delivered.
    pub fn set_mapping_uncertainty_ns(&self, ns: u64) {
        self.mapping_uncertainty_ns
            .store(ns.min(UNKNOWN_U64 - 1), Ordering::Relaxed);
    }

    /// Records how fast the PHC runs against the system clock, ppb.
    pub fn set_fast_ppb(&self, ppb: f64) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a finite rate within the mapping's ±1000 ppm, in thousandths of a ppb, fits i64 (saturating cast)"
        )]
        let milli = (ppb * 1000.0).round() as i64;
        self.fast_ppb_milli
            .store(milli.max(UNKNOWN_I64 + 1), Ordering::Relaxed);
    }

    /// Everything at once; `None` when the source is not a PHC.
    pub fn snapshot(&self) -> Option<PhcSnapshot> {
        let method = match self.method.load(Ordering::Relaxed) {
            1 => OffsetMethod::Precise,
            2 => OffsetMethod::Extended,
            3 => OffsetMethod::Plain,
            _ => return None,
        };
        let uncertainty = self.mapping_uncertainty_ns.load(Ordering::Relaxed);
        let rate = self.fast_ppb_milli.load(Ordering::Relaxed);
        Some(PhcSnapshot {
            device: self.device.get().cloned().unwrap_or_default(),
            method,
            mapping_uncertainty_ns: (uncertainty != UNKNOWN_U64).then_some(uncertainty),
            fast_ppb: (rate != UNKNOWN_I64).then(|| rate as f64 / 1000.0),
            events: self.events.load(Ordering::Relaxed),
            other_edge_dropped: self.other_edge_dropped.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_source_has_no_phc_snapshot() {
        assert_eq!(PhcCounters::default().snapshot(), None);
    }

    #[test]
    fn the_snapshot_carries_what_the_source_recorded() {
        let c = PhcCounters::default();
        c.set_opened("/dev/ptp3", OffsetMethod::Extended);
        let s = c.snapshot().expect("a PHC");
        assert_eq!(
            (s.device.as_str(), s.method),
            ("/dev/ptp3", OffsetMethod::Extended)
        );
        assert_eq!(s.mapping_uncertainty_ns, None);
        assert_eq!(s.fast_ppb, None);
        c.set_mapping_uncertainty_ns(1234);
        c.set_fast_ppb(-25_000.125);
        c.events.fetch_add(3, Ordering::Relaxed);
        c.other_edge_dropped.fetch_add(1, Ordering::Relaxed);
        let s = c.snapshot().expect("a PHC");
        assert_eq!(s.mapping_uncertainty_ns, Some(1234));
        assert!(s.fast_ppb.is_some_and(|r| (r + 25_000.125).abs() < 1e-9));
        assert_eq!((s.events, s.other_edge_dropped), (3, 1));
        c.set_opened("/dev/ptp3", OffsetMethod::Precise);
        assert_eq!(c.snapshot().map(|s| s.method), Some(OffsetMethod::Precise));
    }
}

//! PHC time → system (realtime) time, sans-IO.
//!
//! A PHC stamps the pulse on its own counter, which runs at its own rate. The
//! kernel offers three ways to compare it with CLOCK_REALTIME; each becomes an
//! [`OffsetSample`] with an honest half-width. [`PhcMapping`] keeps recent
//! samples, follows the PHC's rate between them, and reports for every mapped
//! timestamp a bound on its error, so the refclock can advertise it.
//!
//! The system clock is the one being disciplined: its rate against the PHC
//! changes whenever the discipline steers it (ADJ_FREQUENCY, each second). A
//! sample off the prediction by no more than that rate could change in the
//! time since the last sample is such a change, not a step: the older samples
//! are dropped (they describe the old rate), and the change observed, as
//! ppb, is added to every later bound over the distance mapped ("wander")
//! until `capacity` samples have passed without one as large.

use std::collections::VecDeque;

const NS_PER_S: i64 = 1_000_000_000;

/// One comparison of the PHC with the system clock: the system time at which
/// the PHC read `phc_ns`, true to within `half_width_ns`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OffsetSample {
    /// The PHC reading, ns since its epoch.
    pub phc_ns: i64,
    /// CLOCK_REALTIME at the same instant (midpoint of the read window), ns.
    pub sys_ns: i64,
    /// Half the read window: how far the true system time can be from `sys_ns`.
    pub half_width_ns: i64,
}

impl OffsetSample {
    /// From PTP_SYS_OFFSET_PRECISE: the device latched both clocks at once
    /// (cross-timestamping), so the window is zero. `monoraw` is not needed.
    pub fn from_precise(device_ns: i64, realtime_ns: i64) -> Self {
        Self {
            phc_ns: device_ns,
            sys_ns: realtime_ns,
            half_width_ns: 0,
        }
    }

    /// From PTP_SYS_OFFSET_EXTENDED's `(sys_before, phc, sys_after)` triples:
    /// the narrowest window wins, read at its midpoint. `None` when no triple
    /// is usable (empty, or a window that runs backwards: the system clock
    /// stepped during the read).
    pub fn from_extended(triples: &[(i64, i64, i64)]) -> Option<Self> {
        triples
            .iter()
            .filter(|(before, _, after)| after >= before)
            .min_by_key(|(before, _, after)| after - before)
            .map(|&(before, phc, after)| Self {
                phc_ns: phc,
                // Midpoint without overflow; rounding loses at most 0.5 ns,
                // covered by rounding the half-width up.
                sys_ns: before + (after - before) / 2,
                half_width_ns: (after - before + 1) / 2,
            })
    }

    /// From PTP_SYS_OFFSET's interleaved `sys, phc, sys, phc, …, sys` array
    /// (2n + 1 entries): each PHC reading lies between its neighbours.
    pub fn from_interleaved(ts: &[i64]) -> Option<Self> {
        let triples: Vec<(i64, i64, i64)> = ts
            .windows(3)
            .step_by(2)
            .map(|w| (w[0], w[1], w[2]))
            .collect();
        Self::from_extended(&triples)
    }
}

/// A PHC timestamp mapped to system time, with the bound on its error.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MappedTime {
    /// CLOCK_REALTIME of the PHC instant, ns.
    pub sys_ns: i64,
    /// The mapping's worst-case error, ns (read windows plus rate uncertainty).
    pub uncertainty_ns: u64,
}

/// Why a sample was not taken into the mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// No sample yet: nothing to map with.
    #[error("no PHC-to-system offset sample yet")]
    NoSamples,
    /// The sample disagrees with the previous ones beyond their bounds: the
    /// PHC or the system clock was stepped (or the PHC rate changed hard).
    #[error("PHC-to-system offset jumped by {jump_ns} ns (bound {bound_ns} ns); mapping restarted")]
    Discontinuity {
        /// Sample minus prediction, ns.
        jump_ns: i64,
        /// What the prediction allowed, ns.
        bound_ns: u64,
    },
}

/// The PHC's rate relative to the system clock, and what follows from it.
///
/// Samples older than `window` are dropped; with a single sample the rate is
/// only known to within `max_rate_ppm` (a PHC's crystal plus any adjustment).
#[derive(Clone, Debug)]
pub struct PhcMapping {
    samples: VecDeque<OffsetSample>,
    capacity: usize,
    max_rate_ppb: i64,
    /// For the latest samples, how fast the prediction drifted from them,
    /// ppb: the rate change the bound must allow for.
    wander_ppb: VecDeque<u64>,
}

impl PhcMapping {
    /// A mapping keeping up to `capacity` samples, assuming the PHC runs within
    /// `max_rate_ppm` of the system clock until two samples measure it.
    pub fn new(capacity: usize, max_rate_ppm: u32) -> Self {
        Self {
            samples: VecDeque::with_capacity(capacity.max(2)),
            capacity: capacity.max(2),
            max_rate_ppb: i64::from(max_rate_ppm) * 1000,
            wander_ppb: VecDeque::with_capacity(capacity.max(2)),
        }
    }

    /// How many samples the mapping rests on.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Forgets every sample (after a step of either clock).
    pub fn reset(&mut self) {
        self.samples.clear();
        self.wander_ppb.clear();
    }

    /// Takes a sample. Off the prediction beyond both bounds but within what
    /// the system clock's steering could do since the last sample (the
    /// maximum rate over that time), it is a rate change: the older samples
    /// are dropped and the change kept as wander. Beyond that as well, the
    /// old samples are dropped, the new one kept, and the jump reported.
    pub fn add(&mut self, sample: OffsetSample) -> Result<(), MappingError> {
        if let Some(last) = self.samples.back()
            && sample.phc_ns <= last.phc_ns
        {
            // The PHC went backwards or stood still: it was set.
            let jump = sample.sys_ns - last.sys_ns - (sample.phc_ns - last.phc_ns);
            self.samples.clear();
            self.samples.push_back(sample);
            return Err(MappingError::Discontinuity {
                jump_ns: jump,
                bound_ns: 0,
            });
        }
        if let (Ok(predicted), Some(last)) = (self.map(sample.phc_ns), self.samples.back()) {
            let jump = sample.sys_ns - predicted.sys_ns;
            let bound = predicted
                .uncertainty_ns
                .saturating_add(sample.half_width_ns.unsigned_abs());
            let since_ns = (sample.phc_ns - last.phc_ns).unsigned_abs();
            let steer_ns = self.rate_term(since_ns);
            if jump.unsigned_abs() > bound.saturating_add(steer_ns) {
                self.samples.clear();
                self.samples.push_back(sample);
                return Err(MappingError::Discontinuity {
                    jump_ns: jump,
                    bound_ns: bound.saturating_add(steer_ns),
                });
            }
            // With one sample the rate was not known: the miss is the rate
            // itself, which the next prediction has, not a change of it.
            if self.samples.len() >= 2 {
                if self.wander_ppb.len() == self.capacity {
                    self.wander_ppb.pop_front();
                }
                let wander = (u128::from(jump.unsigned_abs()) * NS_PER_S as u128)
                    .div_ceil(u128::from(since_ns.max(1)));
                self.wander_ppb
                    .push_back(u64::try_from(wander).unwrap_or(u64::MAX));
                if jump.unsigned_abs() > bound {
                    // The system clock's rate changed: keep the last sample only.
                    let keep = self.samples.len() - 1;
                    self.samples.drain(..keep);
                }
            }
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        Ok(())
    }

    /// Maps a PHC timestamp to system time. Every sample is tried as the anchor
    /// (with the rate from the sample farthest from it) and the tightest bound wins.
    pub fn map(&self, phc_ns: i64) -> Result<MappedTime, MappingError> {
        let mut best: Option<MappedTime> = None;
        let wander_ppb = self.wander_ppb.iter().copied().max().unwrap_or(0);
        for anchor in &self.samples {
            let mut candidate = match self.farthest_from(anchor) {
                Some(other) => map_with_rate(anchor, other, phc_ns),
                None => self.map_with_max_rate(anchor, phc_ns),
            };
            let d = (phc_ns - anchor.phc_ns).unsigned_abs();
            let wander_ns = (u128::from(d) * u128::from(wander_ppb)).div_ceil(NS_PER_S as u128);
            candidate.uncertainty_ns = candidate
                .uncertainty_ns
                .saturating_add(u64::try_from(wander_ns).unwrap_or(u64::MAX));
            if best.is_none_or(|b| candidate.uncertainty_ns < b.uncertainty_ns) {
                best = Some(candidate);
            }
        }
        best.ok_or(MappingError::NoSamples)
    }

    /// The PHC's measured rate relative to the system clock, ppb, when two
    /// samples exist (for status and logs).
    pub fn rate_ppb(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let dphc = last.phc_ns - first.phc_ns;
        (dphc > 0).then(|| ((last.sys_ns - first.sys_ns) - dphc) as f64 / dphc as f64 * 1e9)
    }

    fn farthest_from(&self, anchor: &OffsetSample) -> Option<&OffsetSample> {
        self.samples
            .iter()
            .filter(|s| s.phc_ns != anchor.phc_ns)
            .max_by_key(|s| (s.phc_ns - anchor.phc_ns).unsigned_abs())
    }

    /// One sample: the rate is unknown to within the configured maximum.
    fn map_with_max_rate(&self, anchor: &OffsetSample, phc_ns: i64) -> MappedTime {
        let d = phc_ns - anchor.phc_ns;
        MappedTime {
            sys_ns: anchor.sys_ns + d,
            uncertainty_ns: anchor
                .half_width_ns
                .unsigned_abs()
                .saturating_add(self.rate_term(d.unsigned_abs())),
        }
    }

    /// What the maximum rate makes of `d_ns`, ns (rounded up).
    fn rate_term(&self, d_ns: u64) -> u64 {
        let ns = (u128::from(d_ns) * u128::from(self.max_rate_ppb.unsigned_abs()))
            .div_ceil(NS_PER_S as u128);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// Maps `phc_ns` from `anchor`, with the rate measured between `anchor` and
/// `other`. If both samples are true to within their half-widths, the rate's
/// error is at most their sum over the baseline, so the bound below holds for
/// any PHC running at a constant rate between them (plus 1 ns of rounding).
fn map_with_rate(anchor: &OffsetSample, other: &OffsetSample, phc_ns: i64) -> MappedTime {
    let baseline = i128::from(anchor.phc_ns - other.phc_ns);
    let excess = i128::from(anchor.sys_ns - other.sys_ns) - baseline;
    let d = i128::from(phc_ns - anchor.phc_ns);
    // sys = anchor.sys + d + d * excess / baseline, in integers (no f64 loss).
    let correction = div_round(d * excess, baseline);
    let hw_sum = i128::from(anchor.half_width_ns.unsigned_abs())
        + i128::from(other.half_width_ns.unsigned_abs());
    let rate_term = (d.unsigned_abs() * hw_sum.unsigned_abs()).div_ceil(baseline.unsigned_abs());
    let uncertainty = u128::from(anchor.half_width_ns.unsigned_abs()) + rate_term + 1;
    MappedTime {
        sys_ns: saturate(i128::from(anchor.sys_ns) + d + correction),
        uncertainty_ns: u64::try_from(uncertainty).unwrap_or(u64::MAX),
    }
}

fn div_round(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den.abs() {
        q + if (r < 0) == (den < 0) { 1 } else { -1 }
    } else {
        q
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A PHC with its own rate: phc = offset + sys + ppm·1e-6·(sys − origin).
    /// Queried only at whole milliseconds from `origin`, so it is exactly linear.
    #[derive(Copy, Clone, Debug)]
    struct Phc {
        offset_ns: i64,
        ppm: i64,
        origin_ns: i64,
    }
    impl Phc {
        fn at(&self, sys_ns: i64) -> i64 {
            let since = sys_ns - self.origin_ns;
            assert_eq!(since % 1_000_000, 0, "whole milliseconds only");
            self.offset_ns + sys_ns + since / 1_000_000 * self.ppm
        }
    }

    #[test]
    fn extended_takes_the_narrowest_window_at_its_midpoint() {
        let s = OffsetSample::from_extended(&[
            (100, 5_000, 400),
            (1_000, 5_900, 1_040),
            (2_000, 7_000, 2_100),
        ])
        .expect("usable");
        assert_eq!(
            s,
            OffsetSample {
                phc_ns: 5_900,
                sys_ns: 1_020,
                half_width_ns: 20
            }
        );
        // A window that runs backwards (system clock stepped mid-read) is skipped.
        let s = OffsetSample::from_extended(&[(1_000, 1, 900), (10, 2, 50)]).expect("usable");
        assert_eq!(s.phc_ns, 2);
        assert!(OffsetSample::from_extended(&[]).is_none());
        assert!(OffsetSample::from_extended(&[(5, 0, 4)]).is_none());
    }

    #[test]
    fn interleaved_reads_each_phc_value_between_its_neighbours() {
        // sys0 phc0 sys1 phc1 sys2: windows 100..160 and 160..170.
        let s = OffsetSample::from_interleaved(&[100, 9_000, 160, 9_070, 170]).expect("usable");
        assert_eq!(
            s,
            OffsetSample {
                phc_ns: 9_070,
                sys_ns: 165,
                half_width_ns: 5
            }
        );
        assert!(OffsetSample::from_interleaved(&[1, 2]).is_none());
    }

    #[test]
    fn precise_has_no_window() {
        let s = OffsetSample::from_precise(42, 7);
        assert_eq!((s.phc_ns, s.sys_ns, s.half_width_ns), (42, 7, 0));
    }

    #[test]
    fn a_phc_at_its_own_rate_is_followed_between_samples() {
        let origin_ns = 1_700_000_000 * NS_PER_S;
        let phc = Phc {
            offset_ns: 37_000_000_123,
            ppm: 25,
            origin_ns,
        }; // 25 ppm fast
        let mut m = PhcMapping::new(8, 500);
        for s in 0..4 {
            let sys = 1_700_000_000 * NS_PER_S + s * NS_PER_S;
            m.add(OffsetSample::from_precise(phc.at(sys), sys))
                .expect("consistent");
        }
        let rate = m.rate_ppb().expect("two samples");
        assert!(
            (rate + 25_000.0).abs() < 1.0,
            "system runs slow relative to the PHC: {rate}"
        );
        let sys = 1_700_000_004 * NS_PER_S + 300_000_000;
        let mapped = m.map(phc.at(sys)).expect("mapped");
        // Extrapolated 1.3 s past the last sample; without the rate it would be 32 µs off.
        assert!((mapped.sys_ns - sys).abs() <= 2, "{mapped:?} vs {sys}");
        assert!(mapped.uncertainty_ns <= 2, "{mapped:?}");
    }

    #[test]
    fn one_sample_assumes_the_maximum_rate() {
        let mut m = PhcMapping::new(8, 100);
        assert_eq!(m.map(0), Err(MappingError::NoSamples));
        m.add(OffsetSample {
            phc_ns: 0,
            sys_ns: 10,
            half_width_ns: 3,
        })
        .expect("first");
        let t = m.map(NS_PER_S).expect("mapped");
        assert_eq!(t.sys_ns, 10 + NS_PER_S);
        assert_eq!(t.uncertainty_ns, 3 + 100_000);
    }

    #[test]
    fn a_stepped_clock_restarts_the_mapping_and_says_so() {
        let mut m = PhcMapping::new(8, 100);
        for s in 0..3 {
            m.add(OffsetSample::from_precise(s * NS_PER_S, 5 + s * NS_PER_S))
                .expect("steady");
        }
        let err = m
            .add(OffsetSample::from_precise(
                3 * NS_PER_S,
                5 + 3 * NS_PER_S + 1_000_000,
            ))
            .expect_err("1 ms step");
        assert!(
            matches!(
                err,
                MappingError::Discontinuity {
                    jump_ns: 1_000_000,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(m.len(), 1);
        // The PHC set backwards is a discontinuity too.
        assert!(m.add(OffsetSample::from_precise(0, 4 * NS_PER_S)).is_err());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_steered_system_clock_changes_the_rate_without_a_restart() {
        // The PHC ticks true seconds; the discipline changes the system
        // clock's rate against it: +30 ppm, then -50 ppm, then +5 ppm.
        let mut m = PhcMapping::new(16, 1000);
        let (mut phc, mut sys) = (1_000 * NS_PER_S, 5 * NS_PER_S);
        let sample = |phc_ns, sys_ns| OffsetSample {
            phc_ns,
            sys_ns,
            half_width_ns: 100,
        };
        m.add(sample(phc, sys)).expect("first");
        for r_ppb in [
            30_000, 30_000, 30_000, -50_000, -50_000, -50_000, 5_000, 5_000,
        ] {
            phc += NS_PER_S;
            sys += NS_PER_S + r_ppb;
            m.add(sample(phc, sys))
                .expect("a rate change within the steering range is not a step");
            // The pulse 2 ms before this sample, mapped once the sample is in
            // (as PhcPps does).
            let truth = sys - 2_000_000 - 2_000_000 * r_ppb / NS_PER_S;
            let mapped = m.map(phc - 2_000_000).expect("mapped");
            let err = (mapped.sys_ns - truth).unsigned_abs();
            assert!(
                err <= mapped.uncertainty_ns,
                "{r_ppb}: error {err} > {mapped:?}"
            );
            assert!(mapped.uncertainty_ns < 1_000, "{r_ppb}: {mapped:?}");
        }
        // The changes seen are in the bound: 80 ppm over the 2 ms at least.
        assert!(m.map(phc - 2_000_000).expect("mapped").uncertainty_ns >= 160);
    }

    #[test]
    fn capacity_keeps_the_newest_samples() {
        let mut m = PhcMapping::new(3, 100);
        for s in 0..10 {
            m.add(OffsetSample::from_precise(s * NS_PER_S, s * NS_PER_S))
                .expect("steady");
        }
        assert_eq!(m.len(), 3);
        m.reset();
        assert!(m.is_empty());
    }

    proptest! {
        /// Under any offset, rate (±500 ppm), read latency windows and sample
        /// spacing, the mapped time is within the reported uncertainty of truth.
        #[test]
        fn mapping_error_is_bounded_by_the_reported_uncertainty(
            offset_ns in -1_000_000_000_000i64..1_000_000_000_000,
            ppm in -500i64..=500,
            start_s in 1_600_000_000i64..1_900_000_000,
            reads in proptest::collection::vec(
                (200i64..2_000, proptest::collection::vec((0i64..50_000, 0i64..50_000), 1..5)),
                1..8),
            query_after_ms in -3_000i64..3_000,
        ) {
            let phc = Phc { offset_ns, ppm, origin_ns: start_s * NS_PER_S };
            let mut m = PhcMapping::new(8, 500);
            let mut sys = start_s * NS_PER_S;
            for (gap, windows) in &reads {
                sys += gap * 1_000_000;
                // The PHC is read at `sys`; the system reads bracket it.
                let triples: Vec<_> = windows
                    .iter()
                    .enumerate()
                    .map(|(i, (before, after))| {
                        let t = sys + i64::try_from(i).unwrap() * 1_000_000;
                        (t - before, phc.at(t), t + after)
                    })
                    .collect();
                let sample = OffsetSample::from_extended(&triples).expect("valid windows");
                prop_assert!(m.add(sample).is_ok(), "consistent samples rejected");
            }
            let truth = sys + query_after_ms * 1_000_000;
            let mapped = m.map(phc.at(truth)).expect("mapped");
            let err = (mapped.sys_ns - truth).unsigned_abs();
            prop_assert!(err <= mapped.uncertainty_ns, "error {err} > bound {}", mapped.uncertainty_ns);
        }
    }
}

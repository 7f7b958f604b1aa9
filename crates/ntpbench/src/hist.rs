//! A fixed-size log-linear latency histogram (about 3 % resolution), so the
//! receive loop records every reply without allocating.

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;

/// Nanosecond histogram from 1 ns to about 2^40 ns (18 minutes).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 41 * SUB],
            total: 0,
        }
    }
}

impl Histogram {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "values below SUB, a 5-bit sub-bucket and an octave below 64"
    )]
    fn index(ns: u64) -> usize {
        if ns < SUB as u64 {
            return ns as usize;
        }
        let msb = 63 - ns.leading_zeros();
        let shift = msb - SUB_BITS;
        let sub = ((ns >> shift) as usize) & (SUB - 1);
        (((msb - SUB_BITS + 1) as usize) * SUB + sub).min(41 * SUB - 1)
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "idx is below 41 * SUB, so idx / SUB is below 41"
    )]
    fn lower_bound(idx: usize) -> u64 {
        if idx < SUB {
            return idx as u64;
        }
        let octave = (idx / SUB) as u32 - 1 + SUB_BITS;
        let sub = (idx % SUB) as u64;
        (1u64 << octave) + (sub << (octave - SUB_BITS))
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Records one value; negative values count as zero.
    pub fn record(&mut self, ns: i64) {
        let i = Self::index(ns.max(0).unsigned_abs());
        self.counts[i] += 1;
        self.total += 1;
    }

    /// The value at quantile `q` (0..=1), as the lower edge of its bucket, or None if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "at least 1 and at most about total (q is 0..=1)"
        )]
        let target = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(Self::lower_bound(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_resolution() {
        let mut h = Histogram::default();
        for v in 1..=10_000i64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5).expect("non-empty") as f64;
        let p99 = h.quantile(0.99).expect("non-empty") as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.04, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.04, "{p99}");
        assert_eq!(Histogram::default().quantile(0.5), None);
        for v in [0u64, 1, 31, 32, 33, 1000, 123_456_789] {
            let i = Histogram::index(v);
            assert!(Histogram::lower_bound(i) <= v, "{v}");
            assert!(Histogram::lower_bound(i + 1) > v, "{v}");
        }
    }
}

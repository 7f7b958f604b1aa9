//! The simulated clock's current error segment, read on every NTP reply
//! without a lock or a reference count.
//!
//! A sequence lock over three words: the writer (one at a time, under the
//! clock's writer mutex) makes the sequence odd, stores, and makes it even
//! again; a reader retries while the sequence is odd or changed across its
//! reads. A read is a handful of loads where `ArcSwap::load` cost about 140
//! instructions (callgrind), three times a reply on `skytimed --simulate`.
//! Every access is atomic, so there is no `unsafe` and no data race; the
//! fences are those of Boehm's "Can seqlocks get along with programming
//! language memory models?".

use skytime_timebase::UnixNanos;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering, fence};

/// The simulated oscillator's error over host (true) time, as one linear piece:
/// `error(t) = error_ns + rate_ppb * (t - since)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ErrorSegment {
    pub(crate) since: UnixNanos,
    pub(crate) error_ns: f64,
    pub(crate) rate_ppb: f64,
}

impl ErrorSegment {
    pub(crate) fn error_at(&self, host: UnixNanos) -> f64 {
        self.error_ns
            + self.rate_ppb
                * (host.nanos_since(self.since) as f64 / skytime_timebase::NANOS_PER_SEC as f64)
    }
}

/// One [`ErrorSegment`], replaced whole by one writer at a time and read by any thread.
pub(crate) struct SegmentCell {
    seq: AtomicU64,
    since_ns: AtomicI64,
    error_bits: AtomicU64,
    rate_bits: AtomicU64,
}

impl SegmentCell {
    pub(crate) fn new(segment: ErrorSegment) -> SegmentCell {
        SegmentCell {
            seq: AtomicU64::new(0),
            since_ns: AtomicI64::new(segment.since.0),
            error_bits: AtomicU64::new(segment.error_ns.to_bits()),
            rate_bits: AtomicU64::new(segment.rate_ppb.to_bits()),
        }
    }

    /// Replaces the segment. Callers must not store concurrently (the
    /// clock's writer mutex serialises them); readers never wait on it.
    pub(crate) fn store(&self, segment: ErrorSegment) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.since_ns.store(segment.since.0, Ordering::Relaxed);
        self.error_bits
            .store(segment.error_ns.to_bits(), Ordering::Relaxed);
        self.rate_bits
            .store(segment.rate_ppb.to_bits(), Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The segment as one writer left it whole.
    pub(crate) fn load(&self) -> ErrorSegment {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let segment = ErrorSegment {
                    since: UnixNanos(self.since_ns.load(Ordering::Relaxed)),
                    error_ns: f64::from_bits(self.error_bits.load(Ordering::Relaxed)),
                    rate_ppb: f64::from_bits(self.rate_bits.load(Ordering::Relaxed)),
                };
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return segment;
                }
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn segment(k: i64) -> ErrorSegment {
        ErrorSegment {
            since: UnixNanos(k),
            error_ns: k as f64,
            rate_ppb: -(k as f64),
        }
    }

    #[test]
    fn a_store_is_read_back_whole() {
        let cell = SegmentCell::new(segment(1));
        assert_eq!(cell.load(), segment(1));
        cell.store(segment(7));
        assert_eq!(cell.load(), segment(7));
    }

    /// Readers racing a writer never see a mix of two segments.
    #[test]
    fn readers_never_see_a_torn_segment() {
        let cell = Arc::new(SegmentCell::new(segment(0)));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cell, done) = (Arc::clone(&cell), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !done.load(Ordering::Relaxed) || reads < 1000 {
                        let s = cell.load();
                        assert_eq!(s, segment(s.since.0), "torn read");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for k in 1..200_000 {
            cell.store(segment(k));
        }
        done.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("reader") > 0);
        }
        assert_eq!(cell.load(), segment(199_999));
    }
}

//! Counters for Prometheus and `skytimectl`: one cache-line-aligned block per
//! worker, written only by that worker (plain load+store, no locked
//! instruction), summed by readers.

use crate::clients::ClientSummary;
use crate::server::Outcome;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters kept by the I/O shell rather than the policy.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IoCounter {
    /// Datagrams read from the sockets.
    Received,
    /// Replies handed to the kernel.
    Sent,
    /// Replies the kernel refused (counted, then skipped).
    SendErrors,
    /// Datagrams without a kernel receive timestamp (stamped in user space instead).
    NoKernelRxTimestamp,
    /// Kernel transmit timestamps applied to saved interleaved entries.
    KernelTxTimestamps,
}

impl IoCounter {
    /// Every I/O counter, in order.
    pub const ALL: &'static [IoCounter] = &[
        IoCounter::Received,
        IoCounter::Sent,
        IoCounter::SendErrors,
        IoCounter::NoKernelRxTimestamp,
        IoCounter::KernelTxTimestamps,
    ];
    /// Stable snake_case name, for metrics.
    pub fn name(self) -> &'static str {
        match self {
            IoCounter::Received => "received",
            IoCounter::Sent => "sent",
            IoCounter::SendErrors => "send_errors",
            IoCounter::NoKernelRxTimestamp => "no_kernel_rx_timestamp",
            IoCounter::KernelTxTimestamps => "kernel_tx_timestamps",
        }
    }
}

const N_OUTCOMES: usize = 15;
const N_IO: usize = 5;

/// One worker's counters, on their own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct WorkerCounters {
    outcomes: [AtomicU64; N_OUTCOMES],
    io: [AtomicU64; N_IO],
    /// Requests per second over the last full second, times 1000.
    rate_milli: AtomicU64,
    busiest: Mutex<Vec<ClientSummary>>,
}

fn bump(c: &AtomicU64, n: u64) {
    // Single writer per counter: a plain store is enough and avoids a locked add.
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerCounters {
    pub(crate) fn outcome(&self, o: Outcome) {
        bump(&self.outcomes[o as usize], 1);
    }
    pub(crate) fn io(&self, c: IoCounter, n: u64) {
        bump(&self.io[c as usize], n);
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rate: non-negative, and the saturating cast bounds it"
    )]
    pub(crate) fn set_rate(&self, per_s: f64) {
        self.rate_milli
            .store((per_s * 1000.0) as u64, Ordering::Relaxed);
    }
    pub(crate) fn publish_busiest(&self, clients: &[ClientSummary]) {
        if let Ok(mut v) = self.busiest.lock() {
            v.clear();
            v.extend_from_slice(clients);
        }
    }
    pub(crate) fn received(&self) -> u64 {
        self.io[IoCounter::Received as usize].load(Ordering::Relaxed)
    }
}

/// Counters of a running server, shared with metrics and the control socket.
pub struct ServerStats {
    workers: Box<[WorkerCounters]>,
}

impl ServerStats {
    pub(crate) fn new(workers: usize) -> ServerStats {
        ServerStats {
            workers: (0..workers.max(1))
                .map(|_| WorkerCounters::default())
                .collect(),
        }
    }

    pub(crate) fn worker(&self, i: usize) -> &WorkerCounters {
        &self.workers[i % self.workers.len()]
    }

    /// Requests that ended in `o`, all workers together.
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.workers
            .iter()
            .map(|w| w.outcomes[o as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// An I/O counter, all workers together.
    pub fn io(&self, c: IoCounter) -> u64 {
        self.workers
            .iter()
            .map(|w| w.io[c as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Requests received per second, over the last full second.
    pub fn requests_per_second(&self) -> f64 {
        self.workers
            .iter()
            .map(|w| w.rate_milli.load(Ordering::Relaxed) as f64 / 1000.0)
            .sum()
    }

    /// The `n` busiest clients across workers, as of the last second.
    pub fn busiest_clients(&self, n: usize) -> Vec<ClientSummary> {
        // Workers keep separate tables; a client seen by several (the kernel's
        // fallback hashing spreads source ports) is one client.
        let mut all: Vec<ClientSummary> = Vec::new();
        for list in self
            .workers
            .iter()
            .filter_map(|w| w.busiest.lock().ok().map(|v| v.clone()))
        {
            for c in list {
                match all.iter_mut().find(|a| a.addr == c.addr) {
                    Some(a) => {
                        a.requests += c.requests;
                        a.limited += c.limited;
                        a.nts += c.nts;
                        a.last_seen = a.last_seen.max(c.last_seen);
                    }
                    None => all.push(c),
                }
            }
        }
        all.sort_by_key(|c| std::cmp::Reverse(c.requests));
        all.truncate(n);
        all
    }

    /// Every counter by name: outcomes, then I/O counters.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = Outcome::ALL
            .iter()
            .map(|o| (o.name(), self.outcome(*o)))
            .collect();
        v.extend(IoCounter::ALL.iter().map(|c| (c.name(), self.io(*c))));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_arrays_fit_every_variant() {
        assert_eq!(Outcome::ALL.len(), N_OUTCOMES);
        assert_eq!(IoCounter::ALL.len(), N_IO);
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        for (i, c) in IoCounter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }

    #[test]
    fn sums_across_workers() {
        let s = ServerStats::new(2);
        s.worker(0).outcome(Outcome::Served);
        s.worker(1).outcome(Outcome::Served);
        s.worker(1).io(IoCounter::Received, 5);
        assert_eq!(s.outcome(Outcome::Served), 2);
        assert_eq!(s.io(IoCounter::Received), 5);
        assert!(s.snapshot().contains(&("served", 2)));
    }
}

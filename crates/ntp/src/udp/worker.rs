//! The worker loop: read a batch, answer it through the sans-IO policy, send
//! the replies with their transmit timestamps written as late as possible,
//! and read back kernel transmit timestamps for interleaved clients.
//!
//! Every buffer is allocated once per worker; the per-packet path allocates
//! nothing and takes no lock (the system state is read through an
//! `arc_swap::Cache`: one atomic load a batch while it is unchanged).

use crate::clients::ClientSummary;
use crate::packet::NtpTimestamp;
use crate::server::{Outcome, Reply, Server, ServerAction, SystemState};
use crate::stats::{IoCounter, ServerStats, WorkerCounters};
use arc_swap::{ArcSwap, Cache};
use skytime_netio::{self as netio, Destination, RxBatch, TxBatch, Wait};
use skytime_timebase::{MonoNanos, TimeSource};
use socket2::Socket;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest request read whole; anything longer is truncated and dropped as malformed.
/// Replies get as much room: NTS replies are as long as their requests.
const RX_BUF: usize = 1024;
/// Outstanding kernel TX timestamp requests remembered per socket.
const TX_RING: usize = 4096;
/// Replies sent per `sendmmsg`, each under its own transmit-time read.
/// One: inside a `sendmmsg` of several the kernel may reschedule between
/// datagrams, and on loopback each send runs the receiver's stack too, so a
/// shared T3 left later replies early by ~15 µs at p50 and 160-200 µs at p99
/// (ntpbench cost, 60k/s, a busy 2-core host); one reply per call measured
/// p99 9.5 µs beside chronyd's 5.4 µs. The price is a system call per reply:
/// on the 2-core test VM (retpolines, a 225 ns bare syscall) a datagram sent
/// alone cost 2.9-3.0 µs of sender CPU by `sendto` (3.1-3.2 by a one-message
/// `sendmmsg`, hence netio's `sendto` for a lone plain datagram) against
/// 2.3-2.4 µs inside a 32-message `sendmmsg` (loopback, receiver's softirq
/// included; thread CPU time, medians of 41 runs of 2048), about a fifth of
/// a reply's whole cost.
const SEND_CHUNK: usize = 1;
/// Busiest clients each worker publishes once per second.
const BUSIEST: usize = 32;

/// One listening socket of a worker and its transmit-timestamp bookkeeping.
pub(super) struct SocketState {
    socket: Socket,
    /// Bound to a wildcard address: replies must name the address the request
    /// was sent to (IP_PKTINFO), or a multi-homed box answers from another one.
    wildcard: bool,
    /// Kernel OPT_ID of the next reply sent with a TX timestamp request.
    tx_next_id: u32,
    /// `tx_ring[id % TX_RING] = (id, receive timestamp served)`.
    tx_ring: Box<[(u32, NtpTimestamp)]>,
}

impl SocketState {
    pub(super) fn new(socket: Socket, wildcard: bool) -> SocketState {
        SocketState {
            socket,
            wildcard,
            tx_next_id: 0,
            tx_ring: vec![(u32::MAX, NtpTimestamp::ZERO); TX_RING].into_boxed_slice(),
        }
    }
}

/// One worker thread's state: its own policy instance (client table,
/// interleaved timestamps), its sockets and its counters.
pub(super) struct Worker {
    pub(super) index: usize,
    pub(super) server: Server,
    pub(super) sockets: Vec<SocketState>,
    pub(super) clock: Arc<dyn TimeSource>,
    pub(super) state: Arc<ArcSwap<SystemState>>,
    pub(super) stats: Arc<ServerStats>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) batch: usize,
    pub(super) kernel_tx: bool,
    pub(super) nice: i32,
}

/// A reply built, waiting for its transmit timestamp and its send.
#[derive(Copy, Clone)]
struct Pending {
    reply: Reply,
    to: SocketAddr,
    dst: Destination,
}

/// Per-worker buffers, allocated once on the worker thread.
struct Buffers {
    rx: RxBatch,
    /// Reply `k` of a batch is built in datagram `k`.
    tx: TxBatch,
    pending: Vec<Pending>,
    busiest: Vec<ClientSummary>,
    /// The system state as last seen; reloaded only when the daemon stores a new one.
    state: Cache<Arc<ArcSwap<SystemState>>, Arc<SystemState>>,
}

impl Buffers {
    fn new(n: usize, state: &Arc<ArcSwap<SystemState>>) -> Buffers {
        Buffers {
            state: Cache::new(Arc::clone(state)),
            rx: RxBatch::new(n, RX_BUF),
            tx: TxBatch::new(n, RX_BUF),
            pending: Vec::with_capacity(n),
            busiest: vec![
                ClientSummary {
                    addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    requests: 0,
                    limited: 0,
                    nts: 0,
                    last_seen: MonoNanos(0),
                };
                BUSIEST
            ],
        }
    }
}

impl Worker {
    fn counters(&self) -> &WorkerCounters {
        self.stats.worker(self.index)
    }

    pub(super) fn run(mut self) {
        if self.nice > 0 && netio::set_thread_nice(self.nice).is_err() && self.index == 0 {
            tracing::warn!(nice = self.nice, "cannot lower the NTP workers' priority");
        }
        let mut bufs = Buffers::new(self.batch, &self.state);
        let mut pollfds: Vec<libc::pollfd> = self
            .sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut last_publish = self.clock.monotonic();
        let mut received_at_publish = 0u64;
        let single = self.sockets.len() == 1;
        while !self.stop.load(Ordering::Relaxed) {
            if single {
                // One socket: a blocking recvmmsg (woken by the first datagram,
                // or by SO_RCVTIMEO) saves a poll() per wake-up.
                self.serve_batch(0, Wait::ForOne, &mut bufs);
                self.publish_if_due(&mut last_publish, &mut received_at_publish, &mut bufs);
                continue;
            }
            let ready = netio::poll(&mut pollfds, 100).unwrap_or(0);
            if ready > 0 {
                for (i, pfd) in pollfds.iter_mut().enumerate() {
                    if pfd.revents & libc::POLLERR != 0 {
                        self.drain_tx_timestamps(i);
                    }
                    if pfd.revents & libc::POLLIN != 0 {
                        // A bounded number of batches per wake-up keeps several
                        // sockets fair and the stop flag responsive.
                        for _ in 0..64 {
                            if self.serve_batch(i, Wait::Never, &mut bufs) < self.batch {
                                break;
                            }
                        }
                    }
                    pfd.revents = 0;
                }
            }
            self.publish_if_due(&mut last_publish, &mut received_at_publish, &mut bufs);
        }
    }

    /// Once a second: the request rate and the busiest clients, for readers.
    fn publish_if_due(&self, last: &mut MonoNanos, received_then: &mut u64, b: &mut Buffers) {
        let now = self.clock.monotonic();
        let elapsed_ns = now.nanos_since(*last);
        if elapsed_ns >= 1_000_000_000 {
            let received = self.counters().received();
            let rate = received.wrapping_sub(*received_then) as f64 * 1e9 / elapsed_ns as f64;
            self.counters().set_rate(rate);
            let n = self.server.clients().busiest(&mut b.busiest);
            self.counters().publish_busiest(&b.busiest[..n]);
            *received_then = received;
            *last = now;
        }
    }

    /// Reads one batch from socket `si`, answers it, returns how many datagrams were read.
    fn serve_batch(&mut self, si: usize, wait: Wait, b: &mut Buffers) -> usize {
        let Ok(got) = b.rx.recv(self.sockets[si].socket.as_fd(), wait) else {
            return 0;
        };
        let counters = self.stats.worker(self.index);
        counters.io(IoCounter::Received, got as u64);
        let mono = self.clock.monotonic();
        let state: &SystemState = b.state.load();
        b.pending.clear();
        for d in b.rx.iter() {
            let Some(src) = d.source else {
                counters.outcome(Outcome::Malformed);
                continue;
            };
            if d.truncated {
                counters.outcome(Outcome::Malformed);
                continue;
            }
            let rx = match d.rx_time {
                Some(t) => self.clock.from_host_realtime(t),
                None => {
                    counters.io(IoCounter::NoKernelRxTimestamp, 1);
                    self.clock.realtime()
                }
            };
            let slot = b.pending.len();
            let action =
                self.server
                    .handle(d.payload, src.ip(), rx, mono, state, b.tx.payload_mut(slot));
            match action {
                ServerAction::Drop(o) => counters.outcome(o),
                ServerAction::Reply(reply) => {
                    counters.outcome(reply.outcome);
                    b.pending.push(Pending {
                        reply,
                        to: src,
                        dst: d.destination,
                    });
                }
            }
        }
        if b.pending.is_empty() {
            return got;
        }

        let want_tx_ts = self.kernel_tx;
        let total = b.pending.len();
        let mut tagged = false;
        let mut first = 0;
        while first < total {
            let last = (first + SEND_CHUNK).min(total);
            // As late as possible: one clock read right before each send of at
            // most SEND_CHUNK replies, then only the 8-byte stores and any MACs.
            let t3 = self.clock.realtime();
            let sock = &mut self.sockets[si];
            for k in first..last {
                let p = &b.pending[k];
                self.server.finish(&p.reply, b.tx.payload_mut(k), t3);
                let from = if sock.wildcard {
                    p.dst
                } else {
                    Destination::Unknown
                };
                let tag = want_tx_ts && p.reply.wants_kernel_tx;
                b.tx.prepare(k, p.reply.len, p.to, from, tag);
            }
            let mut done = first;
            while done < last {
                let sent = match b.tx.send(sock.socket.as_fd(), done..last) {
                    Ok(sent) => sent,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        counters.io(IoCounter::SendErrors, 1);
                        done += 1;
                        continue;
                    }
                };
                counters.io(IoCounter::Sent, sent as u64);
                for p in &b.pending[done..done + sent] {
                    if let (true, Some(rx)) =
                        (want_tx_ts && p.reply.wants_kernel_tx, p.reply.rx_key)
                    {
                        let id = sock.tx_next_id;
                        sock.tx_ring[id as usize % TX_RING] = (id, rx);
                        sock.tx_next_id = id.wrapping_add(1);
                        tagged = true;
                    }
                }
                done += sent.max(1);
            }
            let after = self.clock.realtime();
            for p in &b.pending[first..last] {
                self.server.record_transmit(&p.reply, after);
            }
            first = last;
        }
        if tagged {
            self.drain_tx_timestamps(si);
        }
        got
    }

    /// Reads kernel transmit timestamps from the error queue and refines the
    /// saved interleaved entries with them.
    fn drain_tx_timestamps(&mut self, si: usize) {
        let counters = self.stats.worker(self.index);
        let sock = &self.sockets[si];
        for _ in 0..256 {
            let Some(stamp) = netio::recv_tx_timestamp(sock.socket.as_fd()) else {
                break;
            };
            if let (Some(ts), Some(id)) = (stamp.time, stamp.id) {
                let (ring_id, rx) = sock.tx_ring[id as usize % TX_RING];
                if ring_id == id {
                    let sent = self.clock.from_host_realtime(ts);
                    if self.server.refine_transmit(rx, sent) {
                        counters.io(IoCounter::KernelTxTimestamps, 1);
                    }
                }
            }
        }
    }
}

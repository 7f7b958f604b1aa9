//! The load generator: many client sockets, each bound to its own 127.x.y.z
//! source address, paced `sendmmsg` batches from one thread and an epoll +
//! `recvmmsg` receiver on another. Every request's transmit timestamp is a
//! cookie (the realtime send time in ns), echoed back as the reply's origin
//! timestamp, so response times are matched without any per-packet state.

use crate::hist::Histogram;
use crate::nts_session::{MAX_REQUEST_LEN, NtsSession};
use anyhow::{Context, Result};
use skytime_netio::{self as netio, Datagram, RxBatch, Wait};
use skytime_ntp::NtpTimestamp;
use skytime_timebase::{HostClock, TimeSource};
use socket2::{Domain, Protocol, Socket, Type};
use std::mem::zeroed;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Requests per `sendmmsg`; small enough that the cookie (taken once per
/// batch) is at most a few microseconds early for the last packet.
const SEND_BATCH: usize = 16;
const RECV_BATCH: usize = 64;
/// Bytes read of each reply: a whole NTS reply (as long as its request).
const RECV_LEN: usize = 512;

/// One bounded load run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Requests per second to offer.
    pub rate_per_s: u64,
    /// How long to offer them.
    pub duration: Duration,
    /// How long to keep listening for late replies after the last request.
    pub drain: Duration,
    /// How requests are grouped into system calls.
    pub pacing: Pacing,
}

/// How the sender groups requests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// Up to `SEND_BATCH` requests per `sendmmsg`, all from one source socket.
    Batched,
    /// One request per system call, each from the next source socket, as
    /// independent clients send: the server sees no bursts from one source.
    Steady,
}

/// What one run measured.
#[derive(Clone, Default)]
pub struct LoadResult {
    /// Requests handed to the kernel.
    pub sent: u64,
    /// Requests the client sockets refused (full buffers): load-generator limits.
    pub send_failures: u64,
    /// Replies received that belong to this run.
    pub received: u64,
    /// Kiss-o'-death replies among them.
    pub kods: u64,
    /// Replies flagged unsynchronised (LI=3), which are still replies.
    pub unsynchronised: u64,
    /// NTS replies whose Unique Identifier and authenticator checked out
    /// (zero for plain requests).
    pub nts_authentic: u64,
    /// Request-to-reply time: batch cookie to kernel receive timestamp.
    pub response_ns: Histogram,
    /// The server's own T3 - T2 from the reply fields.
    pub t3_minus_t2_ns: Histogram,
    /// The transmit-stamp gap basic-mode clients feel: the client's kernel
    /// receive stamp minus the reply's T3 (loopback, one host clock).
    pub rx_minus_t3_ns: Histogram,
    /// Wall time of the sending phase.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Fraction of sent requests without a reply.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        1.0 - (self.received.min(self.sent) as f64 / self.sent as f64)
    }

    /// Requests per second actually sent.
    pub fn sent_rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The client sockets, reused across runs so the server sees the same clients.
pub struct Clients {
    sockets: Vec<Socket>,
    nts: Option<Arc<NtsSession>>,
}

impl Clients {
    /// `n` sockets connected to `target`, IPv4 ones each from a different
    /// 127.1.x.y address (the whole 127/8 is local on Linux).
    pub fn open(target: SocketAddr, n: usize) -> Result<Clients> {
        Clients::open_from(target, n, 1)
    }

    /// Like [`Clients::open`], from 127.`net`.x.y sources.
    pub fn open_from(target: SocketAddr, n: usize, net: u8) -> Result<Clients> {
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            let local: SocketAddr = match target.ip() {
                IpAddr::V4(_) => {
                    let third = u8::try_from(i / 250).context("too many client sockets")?;
                    let fourth = u8::try_from(i % 250).context("a remainder below 250")? + 1;
                    SocketAddr::from((Ipv4Addr::new(127, net, third, fourth), 0))
                }
                IpAddr::V6(_) => "[::1]:0".parse().context("v6 loopback")?,
            };
            let s = Socket::new(
                Domain::for_address(target),
                Type::DGRAM,
                Some(Protocol::UDP),
            )?;
            s.bind(&local.into())
                .with_context(|| format!("bind client {local}"))?;
            s.connect(&target.into())
                .with_context(|| format!("connect {target}"))?;
            s.set_nonblocking(true)?;
            let _ = s.set_recv_buffer_size(1 << 20);
            let _ = s.set_send_buffer_size(1 << 20);
            netio::enable_rx_timestamps(s.as_fd()).context("SO_TIMESTAMPNS")?;
            sockets.push(s);
        }
        Ok(Clients { sockets, nts: None })
    }

    /// Sends NTS requests of `session` instead of plain ones, and counts the
    /// replies that authenticate.
    pub fn with_nts(mut self, session: Arc<NtsSession>) -> Clients {
        self.nts = Some(session);
        self
    }

    /// Sends one request and waits up to `timeout` for any reply: "is it up?".
    pub fn probe(&self, timeout: Duration) -> bool {
        let spec = LoadSpec {
            rate_per_s: 20,
            duration: Duration::from_millis(100),
            drain: timeout,
            pacing: Pacing::Batched,
        };
        let r = self.run(&spec);
        r.received > 0
    }

    /// Offers `spec.rate_per_s` for `spec.duration`, then drains.
    pub fn run(&self, spec: &LoadSpec) -> LoadResult {
        let stop = AtomicBool::new(false);
        let start_cookie = realtime_ns();
        let fds: Vec<i32> = self.sockets.iter().map(|s| s.as_raw_fd()).collect();
        let nts = self.nts.as_deref();
        let (mut result, rx) = std::thread::scope(|scope| {
            let receiver = scope.spawn(|| receive(&self.sockets, start_cookie, &stop, nts));
            let result = send(&fds, spec, nts);
            std::thread::sleep(spec.drain);
            stop.store(true, Ordering::Relaxed);
            (result, receiver.join().unwrap_or_default())
        });
        result.received = rx.received;
        result.kods = rx.kods;
        result.unsynchronised = rx.unsynchronised;
        result.nts_authentic = rx.nts_authentic;
        result.response_ns = rx.response_ns;
        result.t3_minus_t2_ns = rx.t3_minus_t2_ns;
        result.rx_minus_t3_ns = rx.rx_minus_t3_ns;
        result
    }
}

/// Host realtime in ns, the cookie's unit.
fn realtime_ns() -> u64 {
    HostClock.realtime().0.cast_unsigned()
}

fn request(cookie: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = (4 << 3) | 3; // NTPv4, client
    p[2] = 6;
    p[40..48].copy_from_slice(&cookie.to_be_bytes());
    p
}

fn send(fds: &[i32], spec: &LoadSpec, nts: Option<&NtsSession>) -> LoadResult {
    let (rate, duration) = (spec.rate_per_s, spec.duration);
    let per_call = match spec.pacing {
        Pacing::Batched => SEND_BATCH,
        Pacing::Steady => 1,
    };
    let mut packets = [[0u8; MAX_REQUEST_LEN]; SEND_BATCH];
    let mut nonce_counter = 0u64;
    // SAFETY: plain C structs, all-zero valid.
    let mut iov: [libc::iovec; SEND_BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { zeroed() };
    let mut r = LoadResult::default();
    let start = Instant::now();
    let mut offered = 0u64;
    let mut next = 0usize;
    let max_backlog = (rate / 200).max(SEND_BATCH as u64); // 5 ms worth
    loop {
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        let due = u64::try_from(u128::from(rate) * elapsed.as_nanos() / 1_000_000_000)
            .unwrap_or(u64::MAX);
        if due <= offered {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        let mut deficit = due - offered;
        if deficit > max_backlog {
            // The generator fell behind (descheduled): do not burst to catch up;
            // the shortfall shows as a lower sent rate.
            offered += deficit - max_backlog;
            deficit = max_backlog;
        }
        while deficit > 0 {
            let n = usize::try_from(deficit).unwrap_or(per_call).min(per_call);
            let cookie = realtime_ns();
            for k in 0..n {
                let header = request(cookie + k as u64);
                let len = match nts {
                    None => {
                        packets[k][..48].copy_from_slice(&header);
                        48
                    }
                    Some(session) => {
                        nonce_counter += 1;
                        session.write_request(&header, nonce_counter, &mut packets[k])
                    }
                };
                iov[k] = libc::iovec {
                    iov_base: packets[k].as_mut_ptr().cast(),
                    iov_len: len,
                };
                msgs[k].msg_hdr.msg_iov = &mut iov[k];
                msgs[k].msg_hdr.msg_iovlen = 1;
            }
            let fd = fds[next % fds.len()];
            next += 1;
            // SAFETY: msgs[..n] point at live packets; the socket is connected.
            let got = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), vlen(n), libc::MSG_DONTWAIT) };
            let got = u64::try_from(got).unwrap_or(0);
            r.sent += got;
            r.send_failures += n as u64 - got;
            offered += n as u64;
            deficit -= n as u64;
        }
    }
    r.elapsed = start.elapsed();
    r
}

#[derive(Default)]
struct RxResult {
    received: u64,
    kods: u64,
    unsynchronised: u64,
    nts_authentic: u64,
    response_ns: Histogram,
    t3_minus_t2_ns: Histogram,
    rx_minus_t3_ns: Histogram,
}

impl RxResult {
    /// Counts one reply of this run (one whose cookie is not older than `start_cookie`).
    fn record(&mut self, d: Datagram<'_>, start_cookie: u64, nts: Option<&NtsSession>) {
        let b = d.payload;
        if b.len() < 48 {
            return;
        }
        let word = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_be_bytes(w)
        };
        let cookie = word(24);
        if cookie < start_cookie {
            return; // a late reply from an earlier run
        }
        let rx = d.rx_time.unwrap_or_else(|| HostClock.realtime());
        self.received += 1;
        if b[1] == 0 {
            self.kods += 1;
            return;
        }
        if let Some(session) = nts
            && session.reply_is_authentic(b)
        {
            self.nts_authentic += 1;
        }
        if b[0] >> 6 == 3 {
            self.unsynchronised += 1;
        }
        let cookie_ns = i64::try_from(cookie).unwrap_or(i64::MAX);
        self.response_ns.record(rx.0.saturating_sub(cookie_ns));
        let (t2, t3) = (word(32), word(40));
        if t2 != 0 && t3 != 0 {
            self.t3_minus_t2_ns.record(ntp_diff_ns(t3, t2));
            let t3_unix = NtpTimestamp(t3).to_unix_near(rx);
            self.rx_minus_t3_ns.record(rx.0.saturating_sub(t3_unix.0));
        }
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "|d| * 1e9 / 2^32 is below |d| / 4, inside i64"
)]
fn ntp_diff_ns(later: u64, earlier: u64) -> i64 {
    let d = later.wrapping_sub(earlier).cast_signed();
    ((i128::from(d) * 1_000_000_000) >> 32) as i64
}

/// A batch length as `sendmmsg` wants it (batches are at most SEND_BATCH).
fn vlen(n: usize) -> libc::c_uint {
    libc::c_uint::try_from(n).unwrap_or(0)
}

fn receive(
    sockets: &[Socket],
    start_cookie: u64,
    stop: &AtomicBool,
    nts: Option<&NtsSession>,
) -> RxResult {
    let mut out = RxResult::default();
    // SAFETY: plain syscalls on fds we own; buffers below are live for each call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return out;
    }
    for (i, socket) in sockets.iter().enumerate() {
        let fd = socket.as_raw_fd();
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: ev is a live epoll_event.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
    let mut batch = RxBatch::new(RECV_BATCH, RECV_LEN);
    let mut events: Vec<libc::epoll_event> = (0..64)
        .map(|_| libc::epoll_event { events: 0, u64: 0 })
        .collect();
    loop {
        // SAFETY: events is a live array of 64 epoll_event.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 64, 20) };
        if n <= 0 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        }
        for e in &events[..usize::try_from(n).unwrap_or(0)] {
            let Some(socket) = usize::try_from(e.u64).ok().and_then(|i| sockets.get(i)) else {
                continue;
            };
            while let Ok(got) = batch.recv(socket.as_fd(), Wait::Never) {
                for d in batch.iter() {
                    out.record(d, start_cookie, nts);
                }
                if got < RECV_BATCH {
                    break;
                }
            }
        }
    }
    // SAFETY: ep is our epoll fd.
    unsafe { libc::close(ep) };
    out
}

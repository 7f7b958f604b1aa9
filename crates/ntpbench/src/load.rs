//! The load generator: many client sockets, each bound to its own 127.x.y.z
//! source address, paced `sendmmsg` batches from one thread and an epoll +
//! `recvmmsg` receiver on another. Every request's transmit timestamp is a
//! cookie (the realtime send time in ns), echoed back as the reply's origin
//! timestamp, so response times are matched without any per-packet state.

use crate::hist::Histogram;
use crate::nts_session::{MAX_REQUEST_LEN, NtsSession};
use anyhow::{Context, Result};
use skytime_timebase::{HostClock, TimeSource};
use socket2::{Domain, Protocol, Socket, Type};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
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
                    let i = i as u32;
                    SocketAddr::from((
                        Ipv4Addr::new(127, net, (i / 250) as u8, (i % 250) as u8 + 1),
                        0,
                    ))
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
            enable_rx_timestamps(&s).context("SO_TIMESTAMPNS")?;
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
        };
        let r = self.run(&spec);
        r.received > 0
    }

    /// Offers `spec.rate_per_s` for `spec.duration`, then drains.
    pub fn run(&self, spec: &LoadSpec) -> LoadResult {
        let stop = Arc::new(AtomicBool::new(false));
        let start_cookie = realtime_ns();
        let fds: Vec<i32> = self.sockets.iter().map(|s| s.as_raw_fd()).collect();
        let rx_stop = stop.clone();
        let rx_fds = fds.clone();
        let rx_nts = self.nts.clone();
        let receiver =
            std::thread::spawn(move || receive(&rx_fds, start_cookie, &rx_stop, rx_nts.as_deref()));
        let mut result = send(&fds, spec.rate_per_s, spec.duration, self.nts.as_deref());
        std::thread::sleep(spec.drain);
        stop.store(true, Ordering::Relaxed);
        let rx = receiver.join().unwrap_or_default();
        result.received = rx.received;
        result.kods = rx.kods;
        result.unsynchronised = rx.unsynchronised;
        result.nts_authentic = rx.nts_authentic;
        result.response_ns = rx.response_ns;
        result.t3_minus_t2_ns = rx.t3_minus_t2_ns;
        result
    }
}

/// Host realtime in ns, the cookie's unit.
fn realtime_ns() -> u64 {
    HostClock.realtime().0 as u64
}

/// Asks the kernel to stamp each datagram `s` receives (read back with
/// [`rx_timestamp`]).
pub(crate) fn enable_rx_timestamps(s: &Socket) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn request(cookie: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = (4 << 3) | 3; // NTPv4, client
    p[2] = 6;
    p[40..48].copy_from_slice(&cookie.to_be_bytes());
    p
}

fn send(fds: &[i32], rate: u64, duration: Duration, nts: Option<&NtsSession>) -> LoadResult {
    let mut packets = [[0u8; MAX_REQUEST_LEN]; SEND_BATCH];
    let mut nonce_counter = 0u64;
    // SAFETY: plain C structs, all-zero valid.
    let mut iov: [libc::iovec; SEND_BATCH] = unsafe { zeroed() };
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
        let due = (rate as u128 * elapsed.as_nanos() / 1_000_000_000) as u64;
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
            let n = (deficit as usize).min(SEND_BATCH);
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
            let got =
                unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as _, libc::MSG_DONTWAIT as _) };
            let got = if got < 0 { 0 } else { got as u64 };
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
}

fn ntp_diff_ns(later: u64, earlier: u64) -> i64 {
    let d = later.wrapping_sub(earlier) as i64;
    ((d as i128 * 1_000_000_000) >> 32) as i64
}

fn receive(
    fds: &[i32],
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
    for (i, &fd) in fds.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: ev is a live epoll_event.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }
    let mut bufs = vec![[0u8; RECV_LEN]; RECV_BATCH];
    let mut ctrl = vec![[0u64; 16]; RECV_BATCH];
    // SAFETY: plain C structs, all-zero valid.
    let mut iov: Vec<libc::iovec> = (0..RECV_BATCH).map(|_| unsafe { zeroed() }).collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..RECV_BATCH).map(|_| unsafe { zeroed() }).collect();
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
        for e in &events[..n as usize] {
            let fd = fds[e.u64 as usize % fds.len()];
            loop {
                for j in 0..RECV_BATCH {
                    iov[j] = libc::iovec {
                        iov_base: bufs[j].as_mut_ptr().cast(),
                        iov_len: RECV_LEN,
                    };
                    let h = &mut msgs[j].msg_hdr;
                    h.msg_name = std::ptr::null_mut();
                    h.msg_namelen = 0;
                    h.msg_iov = &mut iov[j];
                    h.msg_iovlen = 1;
                    h.msg_control = ctrl[j].as_mut_ptr().cast();
                    h.msg_controllen = 128;
                    h.msg_flags = 0;
                }
                // SAFETY: every header points at live buffers of the stated sizes.
                let got = unsafe {
                    libc::recvmmsg(
                        fd,
                        msgs.as_mut_ptr(),
                        RECV_BATCH as _,
                        libc::MSG_DONTWAIT as _,
                        std::ptr::null_mut(),
                    )
                };
                if got <= 0 {
                    break;
                }
                for j in 0..got as usize {
                    let len = msgs[j].msg_len as usize;
                    if len < 48 {
                        continue;
                    }
                    let b = &bufs[j];
                    let word = |o: usize| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(&b[o..o + 8]);
                        u64::from_be_bytes(w)
                    };
                    let cookie = word(24);
                    if cookie < start_cookie {
                        continue; // a late reply from an earlier run
                    }
                    // SAFETY: the kernel filled this message's control buffer.
                    let rx = unsafe { rx_timestamp(&msgs[j].msg_hdr) }.unwrap_or_else(realtime_ns);
                    out.received += 1;
                    if b[1] == 0 {
                        out.kods += 1;
                        continue;
                    }
                    if let Some(session) = nts
                        && session.reply_is_authentic(&b[..len.min(RECV_LEN)])
                    {
                        out.nts_authentic += 1;
                    }
                    if b[0] >> 6 == 3 {
                        out.unsynchronised += 1;
                    }
                    out.response_ns.record(rx as i64 - cookie as i64);
                    let (t2, t3) = (word(32), word(40));
                    if t2 != 0 && t3 != 0 {
                        out.t3_minus_t2_ns.record(ntp_diff_ns(t3, t2));
                    }
                }
                if (got as usize) < RECV_BATCH {
                    break;
                }
            }
        }
    }
    // SAFETY: ep is our epoll fd.
    unsafe { libc::close(ep) };
    out
}

/// The kernel receive time (host realtime, ns) of a datagram read with
/// [`enable_rx_timestamps`] on.
///
/// # Safety
/// `hdr` must describe a control buffer the kernel filled.
pub(crate) unsafe fn rx_timestamp(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: the CMSG macros stay inside the kernel-filled buffer.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    None
}

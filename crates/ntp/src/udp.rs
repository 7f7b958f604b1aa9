//! The thin I/O shell: SO_REUSEPORT sockets, one per worker and listen address,
//! read and written in `recvmmsg`/`sendmmsg` batches, with kernel receive
//! timestamps (SO_TIMESTAMPNS) and, for interleaved clients, kernel transmit
//! timestamps (SO_TIMESTAMPING, read back from the error queue).
//!
//! Every buffer is allocated once per worker; the per-packet path allocates
//! nothing and takes no lock (the system state is an `ArcSwap` load per batch).

use crate::clients::ClientSummary;
use crate::config::ServerConfig;
use crate::keys::KeyStore;
use crate::packet::NtpTimestamp;
use crate::server::{Outcome, Reply, Server, ServerAction, SystemState};
use crate::stats::{IoCounter, ServerStats, WorkerCounters};
use crate::{NtpError, precision};
use arc_swap::ArcSwap;
use skytime_nts::SharedCookieKeys;
use skytime_timebase::{MonoNanos, TimeSource, UnixNanos};
use socket2::{Domain, Protocol, Socket, Type};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Largest request read whole; anything longer is truncated and dropped as malformed.
const RX_BUF: usize = 1024;
/// Control-message space per datagram (timestamps, pktinfo, extended errors).
const CTRL_WORDS: usize = 32;
/// Outstanding kernel TX timestamp requests remembered per socket.
const TX_RING: usize = 4096;
/// Replies sent per `sendmmsg`, each group under its own transmit-time read.
/// A whole receive batch (up to 64) under one read would stamp its last reply
/// early by the time the kernel spends sending the others, tens of µs under a
/// flood; eight bound that to a few µs for about one extra syscall per eight
/// replies.
const SEND_CHUNK: usize = 8;
/// Busiest clients each worker publishes once per second.
const BUSIEST: usize = 32;

/// A bound, not yet running NTP server.
pub struct NtpServer {
    config: ServerConfig,
    /// `sockets[worker][address]`.
    sockets: Vec<Vec<BoundSocket>>,
    local_addrs: Vec<SocketAddr>,
    clock: Arc<dyn TimeSource>,
    state: Arc<ArcSwap<SystemState>>,
    keys: Arc<KeyStore>,
    precision: i8,
    nts: Option<SharedCookieKeys>,
}

struct BoundSocket {
    socket: Socket,
    /// Bound to a wildcard address: replies must name the address the request
    /// was sent to (IP_PKTINFO), or a multi-homed box answers from another one.
    wildcard: bool,
    v6: bool,
}

impl NtpServer {
    /// Binds every listen address now, so "port already in use" fails at
    /// start-up with a clear error naming the address.
    pub fn bind(
        config: &ServerConfig,
        clock: Arc<dyn TimeSource>,
        state: Arc<ArcSwap<SystemState>>,
    ) -> Result<Self, NtpError> {
        let problems = config.validate();
        if !problems.is_empty() {
            let text: Vec<String> = problems.iter().map(|(k, m)| format!("{k}: {m}")).collect();
            return Err(NtpError::Config(text.join("; ")));
        }
        let keys = match &config.keyfile {
            Some(path) => KeyStore::load(path).map_err(|errs| NtpError::Keyfile {
                path: path.clone(),
                message: errs
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            })?,
            None => KeyStore::default(),
        };
        let workers = config.worker_count();
        let mut sockets: Vec<Vec<BoundSocket>> = (0..workers).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        for &addr in &config.listen {
            // A probe bind without SO_REUSEPORT fails if anyone holds the port,
            // even another process in a reuseport group, which a reuseport bind
            // would silently join.
            let probe = new_socket(addr, false)?;
            probe
                .bind(&addr.into())
                .map_err(|source| NtpError::Bind { addr, source })?;
            let local = local_addr(&probe, addr)?;
            drop(probe);
            for (index, worker) in sockets.iter_mut().enumerate() {
                let s = new_socket(addr, true)?;
                s.bind(&local.into()).map_err(|source| NtpError::Bind {
                    addr: local,
                    source,
                })?;
                // Index i of a reuseport group is the i-th socket bound to it.
                if index == 0 && workers > 1 {
                    steer_by_source_address(&s, local, workers);
                }
                enable_timestamps(&s, local, config.kernel_tx_timestamps)?;
                worker.push(BoundSocket {
                    socket: s,
                    wildcard: addr.ip().is_unspecified(),
                    v6: addr.is_ipv6(),
                });
            }
            local_addrs.push(local);
        }
        let precision = precision::measure(clock.as_ref());
        Ok(NtpServer {
            config: config.clone(),
            sockets,
            local_addrs,
            clock,
            state,
            keys: Arc::new(keys),
            precision,
            nts: None,
        })
    }

    /// Serves NTS (RFC 8915) with cookies sealed under these keys.
    pub fn with_nts(mut self, cookie_keys: SharedCookieKeys) -> Self {
        self.nts = Some(cookie_keys);
        self
    }

    /// The addresses actually bound (port 0 resolved), in `listen` order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs.clone()
    }

    /// The precision advertised, measured from the time source at bind.
    pub fn precision(&self) -> i8 {
        self.precision
    }

    /// Starts the worker threads; they run until `shutdown` on the handle.
    pub fn spawn(self) -> Result<ServerHandle, NtpError> {
        let stats = Arc::new(ServerStats::new(self.sockets.len()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        tracing::info!(
            addrs = ?self.local_addrs,
            workers = self.sockets.len(),
            keys = self.keys.len(),
            precision = self.precision,
            "NTP server listening"
        );
        for (index, sockets) in self.sockets.into_iter().enumerate() {
            let worker = Worker {
                index,
                server: match &self.nts {
                    Some(keys) => Server::new(&self.config, self.keys.clone(), self.precision)
                        .with_nts(keys.clone()),
                    None => Server::new(&self.config, self.keys.clone(), self.precision),
                },
                sockets: sockets
                    .into_iter()
                    .map(|b| SocketState {
                        fd: b.socket.as_raw_fd(),
                        _socket: b.socket,
                        wildcard: b.wildcard,
                        v6: b.v6,
                        tx_next_id: 0,
                        tx_ring: vec![(u32::MAX, NtpTimestamp::ZERO); TX_RING].into_boxed_slice(),
                    })
                    .collect(),
                clock: self.clock.clone(),
                state: self.state.clone(),
                stats: stats.clone(),
                stop: stop.clone(),
                batch: self.config.batch_size,
                kernel_tx: self.config.kernel_tx_timestamps,
                nice: self.config.worker_nice,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("ntp-worker-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(NtpError::Spawn(e));
                }
            }
        }
        Ok(ServerHandle {
            threads,
            stop,
            stats,
            local_addrs: self.local_addrs,
        })
    }
}

/// A running server: its counters, and the way to stop it.
pub struct ServerHandle {
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stats: Arc<ServerStats>,
    local_addrs: Vec<SocketAddr>,
}

impl ServerHandle {
    /// Counters by outcome and I/O event, for metrics and `skytimectl`.
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// The `n` busiest clients, as of the last second (for `skytimectl clients`).
    pub fn busiest_clients(&self, n: usize) -> Vec<ClientSummary> {
        self.stats.busiest_clients(n)
    }

    /// Requests per second over the last full second.
    pub fn requests_per_second(&self) -> f64 {
        self.stats.requests_per_second()
    }

    /// The addresses being served.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Stops the workers and waits for them (at most one poll interval, 100 ms).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut clean = true;
        for t in self.threads.drain(..) {
            clean &= t.join().is_ok();
        }
        if !clean {
            tracing::error!("an NTP worker thread panicked");
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_and_join();
            tracing::info!("NTP server stopped");
        }
    }
}

fn new_socket(addr: SocketAddr, reuse_port: bool) -> Result<Socket, NtpError> {
    let opt = |option: &'static str| {
        move |source| NtpError::Socket {
            addr,
            option,
            source,
        }
    };
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(opt("socket"))?;
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(opt("IPV6_V6ONLY"))?;
    }
    if reuse_port {
        s.set_reuse_port(true).map_err(opt("SO_REUSEPORT"))?;
        // Blocking reads wake at least this often to see the stop flag.
        s.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .map_err(opt("SO_RCVTIMEO"))?;
        // Room for bursts; the kernel caps it at net.core.rmem_max, which is fine.
        let _ = s.set_recv_buffer_size(1 << 21);
    }
    Ok(s)
}

/// Makes the kernel hand every datagram of one source address to the same
/// worker (a classic-BPF `SO_ATTACH_REUSEPORT_CBPF` program: source address
/// modulo the number of workers), instead of hashing the whole 4-tuple. The
/// per-worker client table then sees all of a client's requests even when it
/// changes source port every time (ntpdig does), so its rate limit is the
/// configured one rather than that times the number of workers, and each
/// client appears once in `skytimectl clients`. Best effort: without it the
/// kernel's own hash still spreads the load.
fn steer_by_source_address(socket: &Socket, addr: SocketAddr, workers: usize) {
    // In a reuseport program, SKF_NET_OFF-relative loads read the IP header.
    const SKF_NET_OFF: i32 = -0x10_0000;
    // The last 32 bits of the source address: IPv4 bytes 12..16, IPv6 20..24... 36..40.
    let src_word = if addr.is_ipv6() { 8 + 12 } else { 12 };
    let program = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: (SKF_NET_OFF + src_word) as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: workers as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_A) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: setsockopt on an open socket with a valid sock_fprog whose
    // filter array outlives the call; the kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::warn!(%addr, error = %std::io::Error::last_os_error(),
            "cannot steer clients to workers by address; rate limits apply per worker");
    }
}

fn local_addr(s: &Socket, addr: SocketAddr) -> Result<SocketAddr, NtpError> {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| NtpError::Socket {
            addr,
            option: "getsockname",
            source: std::io::Error::other("no socket address"),
        })
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn enable_timestamps(s: &Socket, addr: SocketAddr, kernel_tx: bool) -> Result<(), NtpError> {
    let err = |option: &'static str| {
        move |source| NtpError::Socket {
            addr,
            option,
            source,
        }
    };
    setsockopt_int(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).map_err(err("SO_TIMESTAMPNS"))?;
    if kernel_tx {
        // Reporting flags only: each reply that wants a TX timestamp asks for
        // one in its own control message, so basic clients cost nothing.
        let flags = libc::SOF_TIMESTAMPING_SOFTWARE
            | libc::SOF_TIMESTAMPING_OPT_ID
            | libc::SOF_TIMESTAMPING_OPT_TSONLY;
        setsockopt_int(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags as i32)
            .map_err(err("SO_TIMESTAMPING"))?;
    }
    if addr.ip().is_unspecified() {
        if addr.is_ipv6() {
            setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                .map_err(err("IPV6_RECVPKTINFO"))?;
        } else {
            setsockopt_int(s, libc::IPPROTO_IP, libc::IP_PKTINFO, 1).map_err(err("IP_PKTINFO"))?;
        }
    }
    Ok(())
}

struct SocketState {
    /// Owns the descriptor `fd` refers to.
    _socket: Socket,
    fd: RawFd,
    wildcard: bool,
    v6: bool,
    /// Kernel OPT_ID of the next reply sent with a TX timestamp request.
    tx_next_id: u32,
    /// `tx_ring[id % TX_RING] = (id, receive timestamp served)`.
    tx_ring: Box<[(u32, NtpTimestamp)]>,
}

struct Worker {
    index: usize,
    server: Server,
    sockets: Vec<SocketState>,
    clock: Arc<dyn TimeSource>,
    state: Arc<ArcSwap<SystemState>>,
    stats: Arc<ServerStats>,
    stop: Arc<AtomicBool>,
    batch: usize,
    kernel_tx: bool,
    nice: i32,
}

/// Where a request was addressed to, echoed as the reply's source.
#[derive(Copy, Clone)]
enum Destination {
    Unknown,
    V4(libc::in_addr),
    V6(libc::in6_addr, u32),
}

#[derive(Copy, Clone)]
struct Pending {
    reply: Reply,
    slot: usize,
    dst: Destination,
}

/// Per-worker buffers, allocated once. They hold raw pointers into each other,
/// so they live on the worker thread and are re-pointed before every call.
struct Buffers {
    rx: Box<[[u8; RX_BUF]]>,
    rx_ctrl: Box<[[u64; CTRL_WORDS]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    rx_iov: Box<[libc::iovec]>,
    rx_msgs: Box<[libc::mmsghdr]>,
    /// As large as a request: NTS replies are as long as their requests.
    out: Box<[[u8; RX_BUF]]>,
    out_ctrl: Box<[[u64; CTRL_WORDS]]>,
    out_iov: Box<[libc::iovec]>,
    out_msgs: Box<[libc::mmsghdr]>,
    pending: Vec<Pending>,
    busiest: Vec<ClientSummary>,
}

impl Buffers {
    fn new(n: usize) -> Buffers {
        // SAFETY: these are plain C structs for which all-zero is a valid value.
        let zero_iov = || unsafe { zeroed::<libc::iovec>() };
        let zero_msg = || unsafe { zeroed::<libc::mmsghdr>() };
        let zero_addr = || unsafe { zeroed::<libc::sockaddr_storage>() };
        Buffers {
            rx: vec![[0u8; RX_BUF]; n].into_boxed_slice(),
            rx_ctrl: vec![[0u64; CTRL_WORDS]; n].into_boxed_slice(),
            addrs: (0..n).map(|_| zero_addr()).collect(),
            rx_iov: (0..n).map(|_| zero_iov()).collect(),
            rx_msgs: (0..n).map(|_| zero_msg()).collect(),
            out: vec![[0u8; RX_BUF]; n].into_boxed_slice(),
            out_ctrl: vec![[0u64; CTRL_WORDS]; n].into_boxed_slice(),
            out_iov: (0..n).map(|_| zero_iov()).collect(),
            out_msgs: (0..n).map(|_| zero_msg()).collect(),
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

    fn run(mut self) {
        if self.nice > 0 {
            // Lowering one's own priority needs no privilege; on Linux a TID
            // names just this thread.
            // SAFETY: plain syscalls on the calling thread.
            let rc = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, self.nice)
            };
            if rc != 0 && self.index == 0 {
                tracing::warn!(nice = self.nice, "cannot lower the NTP workers' priority");
            }
        }
        let mut bufs = Buffers::new(self.batch);
        let mut pollfds: Vec<libc::pollfd> = self
            .sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd,
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
                self.serve_batch(0, libc::MSG_WAITFORONE, &mut bufs);
                self.publish_if_due(&mut last_publish, &mut received_at_publish, &mut bufs);
                continue;
            }
            // SAFETY: pollfds is a live, correctly sized array of pollfd.
            let ready =
                unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 100) };
            if ready > 0 {
                for (i, pfd) in pollfds.iter_mut().enumerate() {
                    if pfd.revents & libc::POLLERR != 0 {
                        self.drain_tx_timestamps(i);
                    }
                    if pfd.revents & libc::POLLIN != 0 {
                        // A bounded number of batches per wake-up keeps several
                        // sockets fair and the stop flag responsive.
                        for _ in 0..64 {
                            if self.serve_batch(i, libc::MSG_DONTWAIT, &mut bufs) < self.batch {
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
    fn serve_batch(&mut self, si: usize, flags: i32, b: &mut Buffers) -> usize {
        let n = b.rx_msgs.len();
        for j in 0..n {
            b.rx_iov[j] = libc::iovec {
                iov_base: b.rx[j].as_mut_ptr().cast(),
                iov_len: RX_BUF,
            };
            let hdr = &mut b.rx_msgs[j].msg_hdr;
            hdr.msg_name = (&mut b.addrs[j] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut b.rx_iov[j];
            hdr.msg_iovlen = 1;
            hdr.msg_control = b.rx_ctrl[j].as_mut_ptr().cast();
            hdr.msg_controllen = (CTRL_WORDS * 8) as _;
            hdr.msg_flags = 0;
            b.rx_msgs[j].msg_len = 0;
        }
        let fd = self.sockets[si].fd;
        // SAFETY: every mmsghdr points at live buffers of the stated sizes.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                b.rx_msgs.as_mut_ptr(),
                n as _,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        if got <= 0 {
            return 0;
        }
        let got = got as usize;
        let counters = self.stats.worker(self.index);
        counters.io(IoCounter::Received, got as u64);
        let mono = self.clock.monotonic();
        let state = self.state.load();
        b.pending.clear();
        for j in 0..got {
            let hdr = &b.rx_msgs[j].msg_hdr;
            let len = b.rx_msgs[j].msg_len as usize;
            let Some(src) = sockaddr_to_std(&b.addrs[j]) else {
                counters.outcome(Outcome::Malformed);
                continue;
            };
            // SAFETY: the kernel filled msg_control/msg_controllen for this message.
            let (host_rx, dst) = unsafe { parse_rx_cmsgs(hdr) };
            if hdr.msg_flags & libc::MSG_TRUNC != 0 {
                counters.outcome(Outcome::Malformed);
                continue;
            }
            let rx = match host_rx {
                Some(t) => self.clock.from_host_realtime(t),
                None => {
                    counters.io(IoCounter::NoKernelRxTimestamp, 1);
                    self.clock.realtime()
                }
            };
            let slot = b.pending.len();
            let action = self.server.handle(
                &b.rx[j][..len.min(RX_BUF)],
                src.ip(),
                rx,
                mono,
                &state,
                &mut b.out[slot],
            );
            match action {
                ServerAction::Drop(o) => counters.outcome(o),
                ServerAction::Reply(reply) => {
                    counters.outcome(reply.outcome);
                    b.pending.push(Pending {
                        reply,
                        slot: j,
                        dst,
                    });
                }
            }
        }
        drop(state);
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
                self.server.finish(&p.reply, &mut b.out[k], t3);
                b.out_iov[k] = libc::iovec {
                    iov_base: b.out[k].as_mut_ptr().cast(),
                    iov_len: p.reply.len,
                };
                let hdr = &mut b.out_msgs[k].msg_hdr;
                hdr.msg_name = (&mut b.addrs[p.slot] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = b.rx_msgs[p.slot].msg_hdr.msg_namelen;
                hdr.msg_iov = &mut b.out_iov[k];
                hdr.msg_iovlen = 1;
                hdr.msg_flags = 0;
                let dst = if sock.wildcard {
                    p.dst
                } else {
                    Destination::Unknown
                };
                let tag = want_tx_ts && p.reply.wants_kernel_tx;
                let ctrl_len = build_tx_cmsgs(&mut b.out_ctrl[k], dst, tag, sock.v6);
                if ctrl_len == 0 {
                    hdr.msg_control = std::ptr::null_mut();
                    hdr.msg_controllen = 0;
                } else {
                    hdr.msg_control = b.out_ctrl[k].as_mut_ptr().cast();
                    hdr.msg_controllen = ctrl_len as _;
                }
            }
            let mut done = first;
            while done < last {
                // SAFETY: out_msgs[done..last] point at live buffers set up above.
                let sent = unsafe {
                    libc::sendmmsg(
                        sock.fd,
                        b.out_msgs[done..].as_mut_ptr(),
                        (last - done) as _,
                        0,
                    )
                };
                if sent < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    counters.io(IoCounter::SendErrors, 1);
                    done += 1;
                    continue;
                }
                let sent = sent as usize;
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
        let mut ctrl = [0u64; CTRL_WORDS];
        let mut data = [0u8; 64];
        for _ in 0..256 {
            let mut iov = libc::iovec {
                iov_base: data.as_mut_ptr().cast(),
                iov_len: data.len(),
            };
            // SAFETY: all-zero is a valid msghdr; fields are set right after.
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl.as_mut_ptr().cast();
            msg.msg_controllen = (CTRL_WORDS * 8) as _;
            // SAFETY: msg points at live buffers of the stated sizes.
            let rc = unsafe {
                libc::recvmsg(sock.fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)
            };
            if rc < 0 {
                break;
            }
            // SAFETY: the kernel filled the control buffer it was given.
            let (ts, id) = unsafe { parse_errqueue_cmsgs(&msg) };
            if let (Some(ts), Some(id)) = (ts, id) {
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

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: ss_family says this storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

// time_t and c_long are 32 bits on 32-bit Pi OS images: the casts are not redundant there.
#[allow(clippy::unnecessary_cast)]
fn timespec_nanos(ts: &libc::timespec) -> UnixNanos {
    UnixNanos(ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64)
}

/// The kernel receive timestamp and the destination address of a datagram.
///
/// # Safety
/// `hdr` must describe a control buffer the kernel filled for this message.
unsafe fn parse_rx_cmsgs(hdr: &libc::msghdr) -> (Option<UnixNanos>, Destination) {
    let mut rx = None;
    let mut dst = Destination::Unknown;
    // SAFETY: the CMSG macros walk the kernel-filled buffer within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            let data = libc::CMSG_DATA(c);
            if level == libc::SOL_SOCKET && ty == libc::SO_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                rx = Some(timespec_nanos(&ts));
            } else if level == libc::SOL_SOCKET && ty == libc::SO_TIMESTAMPING && rx.is_none() {
                let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                    rx = Some(timespec_nanos(&ts));
                }
            } else if level == libc::IPPROTO_IP && ty == libc::IP_PKTINFO {
                let pi = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                dst = Destination::V4(pi.ipi_addr);
            } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                let pi = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                dst = Destination::V6(pi.ipi6_addr, pi.ipi6_ifindex);
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    (rx, dst)
}

/// Appends one control message to `buf` at `*used`, if it fits.
///
/// # Safety
/// `*used` must be a multiple of the cmsg alignment and at most the buffer size.
unsafe fn push_cmsg<T>(
    buf: &mut [u64; CTRL_WORDS],
    used: &mut usize,
    level: i32,
    ty: i32,
    value: T,
) {
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (space, len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<T>() as u32) as usize,
            libc::CMSG_LEN(size_of::<T>() as u32) as usize,
        )
    };
    if *used + space > CTRL_WORDS * 8 {
        return;
    }
    // SAFETY: the header and data lie inside `buf` (checked above); the buffer
    // is u64-aligned and `used` a multiple of the cmsg alignment.
    unsafe {
        let c = (buf.as_mut_ptr() as *mut u8)
            .add(*used)
            .cast::<libc::cmsghdr>();
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = len as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<T>(), value);
    }
    *used += space;
}

/// Writes the reply's control messages (source address, TX timestamp request)
/// into `buf` and returns their total length.
fn build_tx_cmsgs(buf: &mut [u64; CTRL_WORDS], dst: Destination, want_tx: bool, v6: bool) -> usize {
    let mut used = 0usize;
    // SAFETY: `used` starts at 0 and only grows by CMSG_SPACE steps.
    unsafe {
        match dst {
            Destination::V4(addr) if !v6 => {
                let pi = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: addr,
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                push_cmsg(buf, &mut used, libc::IPPROTO_IP, libc::IP_PKTINFO, pi);
            }
            Destination::V6(addr, ifindex) if v6 => {
                let pi = libc::in6_pktinfo {
                    ipi6_addr: addr,
                    ipi6_ifindex: ifindex,
                };
                push_cmsg(buf, &mut used, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, pi);
            }
            _ => {}
        }
        if want_tx {
            push_cmsg(
                buf,
                &mut used,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                libc::SOF_TIMESTAMPING_TX_SOFTWARE,
            );
        }
    }
    used
}

/// The software TX timestamp and its OPT_ID from one error-queue message.
///
/// # Safety
/// `msg` must describe a control buffer the kernel filled.
unsafe fn parse_errqueue_cmsgs(msg: &libc::msghdr) -> (Option<UnixNanos>, Option<u32>) {
    let mut ts = None;
    let mut id = None;
    // SAFETY: the CMSG macros walk the kernel-filled buffer within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            let data = libc::CMSG_DATA(c);
            if level == libc::SOL_SOCKET && ty == libc::SO_TIMESTAMPING {
                let t = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                if t.tv_sec != 0 || t.tv_nsec != 0 {
                    ts = Some(timespec_nanos(&t));
                }
            } else if (level == libc::IPPROTO_IP && ty == libc::IP_RECVERR)
                || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_RECVERR)
            {
                let e = std::ptr::read_unaligned(data.cast::<libc::sock_extended_err>());
                if e.ee_errno == libc::ENOMSG as u32
                    && e.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                {
                    id = Some(e.ee_data);
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    (ts, id)
}

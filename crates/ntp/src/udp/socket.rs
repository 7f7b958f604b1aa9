//! Socket setup: one SO_REUSEPORT socket per worker and listen address,
//! bound and configured for kernel timestamps before any worker starts, and
//! the handle that stops the workers.

use super::worker::{SocketState, Worker};
use crate::clients::ClientSummary;
use crate::config::ServerConfig;
use crate::keys::KeyStore;
use crate::server::{Server, SystemState};
use crate::stats::ServerStats;
use crate::{NtpError, precision};
use arc_swap::ArcSwap;
use skytime_netio as netio;
use skytime_nts::SharedCookieKeys;
use skytime_timebase::TimeSource;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

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
                    .map(|b| SocketState::new(b.socket, b.wildcard))
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
    let groups = u32::try_from(workers).unwrap_or(u32::MAX);
    if let Err(error) = netio::steer_reuseport_by_source(socket.as_fd(), addr.is_ipv6(), groups) {
        tracing::warn!(%addr, %error,
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

fn enable_timestamps(s: &Socket, addr: SocketAddr, kernel_tx: bool) -> Result<(), NtpError> {
    let err = |option: &'static str| {
        move |source| NtpError::Socket {
            addr,
            option,
            source,
        }
    };
    netio::enable_rx_timestamps(s.as_fd()).map_err(err("SO_TIMESTAMPNS"))?;
    if kernel_tx {
        // Reporting flags only: each reply that wants a TX timestamp asks for
        // one in its own control message, so basic clients cost nothing.
        netio::enable_tx_timestamp_reports(s.as_fd()).map_err(err("SO_TIMESTAMPING"))?;
    }
    if addr.ip().is_unspecified() {
        if addr.is_ipv6() {
            netio::set_int_option(s.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                .map_err(err("IPV6_RECVPKTINFO"))?;
        } else {
            netio::set_int_option(s.as_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
                .map_err(err("IP_PKTINFO"))?;
        }
    }
    Ok(())
}

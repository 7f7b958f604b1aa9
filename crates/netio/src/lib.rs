//! The UDP system calls of the NTP server, its benchmark and its tests, behind
//! a safe API: `recvmmsg`/`sendmmsg` batches with their control messages
//! (kernel receive timestamps, packet info, transmit-timestamp requests and
//! the error queue that answers them), integer socket options, the reuseport
//! steering program and thread priority.
//!
//! This is the one place the NTP path writes `unsafe`, so `skytime-ntp`
//! (codec, policy and the worker loop) can `#![forbid(unsafe_code)]`. Every
//! buffer a system call sees is owned by the batch that passes it and
//! re-pointed before each call, so no caller can hand the kernel a dangling
//! pointer.

use skytime_timebase::UnixNanos;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};

mod msg_buffers;
use msg_buffers::MsgBuffers;

/// Control-message space per datagram: a timestamp, packet info and an
/// extended error fit with room to spare.
const CTRL_WORDS: usize = 32;
/// The same space in bytes, as `msg_controllen` wants it.
const CTRL_BYTES: usize = CTRL_WORDS * 8;
/// A control buffer, u64-aligned as `cmsghdr` requires.
type CtrlBuf = [u64; CTRL_WORDS];
/// Most datagrams one batch holds: far above any useful `recvmmsg` batch.
pub const MAX_BATCH: usize = 1024;
/// `sockaddr_storage`'s size, as the kernel's length fields want it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "sockaddr_storage is 128 bytes by definition"
)]
const STORAGE_LEN: libc::socklen_t = size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Where a datagram was addressed (IP_PKTINFO / IPV6_PKTINFO): a socket bound
/// to a wildcard address names it as its reply's source, or a multi-homed box
/// answers from another address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// No packet info (the socket is bound to one address, or did not ask).
    Unknown,
    /// An IPv4 destination.
    V4(Ipv4Addr),
    /// An IPv6 destination and the interface it arrived on.
    V6(Ipv6Addr, u32),
}

/// How long [`RxBatch::recv`] waits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Block (bounded by `SO_RCVTIMEO`) until the first datagram, then take what is queued.
    ForOne,
    /// Take what is queued, never block.
    Never,
    /// Block until the whole batch is full (or `SO_RCVTIMEO`); with a batch of one, a plain read.
    Blocking,
}

impl Wait {
    fn flags(self) -> libc::c_int {
        match self {
            Wait::ForOne => libc::MSG_WAITFORONE,
            Wait::Never => libc::MSG_DONTWAIT,
            Wait::Blocking => 0,
        }
    }
}

/// One datagram of a received batch, with what the kernel said about it.
#[derive(Copy, Clone, Debug)]
pub struct Datagram<'a> {
    /// The bytes read (at most the batch's datagram size).
    pub payload: &'a [u8],
    /// The sender; `None` for an address family this code does not know.
    pub source: Option<SocketAddr>,
    /// Kernel receive time (SO_TIMESTAMPNS, or a software SO_TIMESTAMPING stamp), host realtime.
    pub rx_time: Option<UnixNanos>,
    /// The address it was sent to, when the socket asked for packet info.
    pub destination: Destination,
    /// Longer than the buffer: the payload is cut short.
    pub truncated: bool,
}

/// Buffers for up to `count` datagrams read with one `recvmmsg`, allocated
/// once and reused for every call.
pub struct RxBatch {
    bufs: MsgBuffers,
    received: usize,
    /// Headers the kernel may have written since they were last reset (it
    /// rewrites the lengths and flags of the datagrams it fills): only these
    /// are reset before the next call, so a call that reads one datagram
    /// costs one header's reset, not the whole batch's.
    dirty: usize,
}

impl RxBatch {
    /// Room for `count` datagrams (1 to [`MAX_BATCH`]) of up to `max_len` bytes each.
    pub fn new(count: usize, max_len: usize) -> RxBatch {
        let mut bufs = MsgBuffers::new(count, max_len);
        // The pointers are set once: every buffer is a boxed slice owned by
        // this batch, whose heap memory never moves while the batch lives,
        // and the kernel writes only lengths and flags, never the pointers.
        for j in 0..bufs.msgs.len() {
            bufs.iov[j] = libc::iovec {
                iov_base: bufs.payload[j * bufs.max_len..].as_mut_ptr().cast(),
                iov_len: bufs.max_len,
            };
            let hdr = &mut bufs.msgs[j].msg_hdr;
            hdr.msg_name = std::ptr::from_mut(&mut bufs.addrs[j]).cast();
            hdr.msg_iov = &mut bufs.iov[j];
            hdr.msg_iovlen = 1;
            hdr.msg_control = bufs.ctrl[j].as_mut_ptr().cast();
        }
        let dirty = bufs.msgs.len();
        RxBatch {
            bufs,
            received: 0,
            dirty,
        }
    }

    /// Datagrams one call can read.
    pub fn capacity(&self) -> usize {
        self.bufs.msgs.len()
    }

    /// Reads up to [`RxBatch::capacity`] datagrams from `fd`; returns how many
    /// (at least one) or the system's error (`WouldBlock` when nothing was
    /// queued, or the read timed out).
    pub fn recv(&mut self, fd: BorrowedFd<'_>, wait: Wait) -> io::Result<usize> {
        self.received = 0;
        let n = self.bufs.msgs.len();
        for msg in &mut self.bufs.msgs[..self.dirty.min(n)] {
            msg.msg_hdr.msg_namelen = STORAGE_LEN;
            msg.msg_hdr.msg_controllen = CTRL_BYTES;
            msg.msg_hdr.msg_flags = 0;
            msg.msg_len = 0;
        }
        let vlen = libc::c_uint::try_from(n).unwrap_or(1);
        // SAFETY: every mmsghdr points at live buffers of this batch of the
        // stated sizes (pointers set in `new`, into boxed slices that never
        // move; lengths reset just above wherever the kernel may have
        // written them); vlen is the header array's length.
        let got = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.bufs.msgs.as_mut_ptr(),
                vlen,
                wait.flags(),
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            // Nothing read; be as careful as after a partial fill anyway.
            self.dirty = n;
            return Err(io::Error::last_os_error());
        }
        self.received = usize::try_from(got).unwrap_or(0).min(n);
        // The kernel may also have written into the header after the last
        // one it filled before an error cut the batch short.
        self.dirty = (self.received + 1).min(n);
        Ok(self.received)
    }

    /// Datagrams read by the last [`RxBatch::recv`].
    pub fn len(&self) -> usize {
        self.received
    }

    /// Whether the last read returned nothing.
    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// Datagram `j` of the last read (`None` past its end).
    pub fn get(&self, j: usize) -> Option<Datagram<'_>> {
        if j >= self.received {
            return None;
        }
        let msg = &self.bufs.msgs[j];
        let len = usize::try_from(msg.msg_len)
            .unwrap_or(usize::MAX)
            .min(self.bufs.max_len);
        let start = j * self.bufs.max_len;
        // SAFETY: the kernel filled this message's control buffer (ours, of
        // CTRL_BYTES) and set msg_controllen to what it wrote.
        let (rx_time, destination) = unsafe { parse_rx_cmsgs(&msg.msg_hdr) };
        Some(Datagram {
            payload: &self.bufs.payload[start..start + len],
            source: sockaddr_to_std(&self.bufs.addrs[j]),
            rx_time,
            destination,
            truncated: msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        })
    }

    /// Every datagram of the last read, in order.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> {
        (0..self.received).filter_map(|j| self.get(j))
    }
}

/// Buffers for up to `count` datagrams sent with `sendmmsg`: fill a payload,
/// [`TxBatch::prepare`] its header, send a range.
pub struct TxBatch {
    bufs: MsgBuffers,
}

impl TxBatch {
    /// Room for `count` datagrams (1 to [`MAX_BATCH`]) of up to `max_len` bytes each.
    pub fn new(count: usize, max_len: usize) -> TxBatch {
        let bufs = MsgBuffers::new(count, max_len);
        TxBatch { bufs }
    }

    /// Datagrams one batch holds.
    pub fn capacity(&self) -> usize {
        self.bufs.msgs.len()
    }

    /// The whole buffer of datagram `k`, to write its payload into.
    ///
    /// # Panics
    /// If `k` is not below [`TxBatch::capacity`].
    pub fn payload_mut(&mut self, k: usize) -> &mut [u8] {
        let start = k * self.bufs.max_len;
        &mut self.bufs.payload[start..start + self.bufs.max_len]
    }

    /// Sets datagram `k` up to carry the first `len` bytes of its payload to
    /// `to`, from `from` when known (wildcard sockets), asking the kernel for
    /// a software transmit timestamp when `tx_timestamp` (the socket must
    /// have SO_TIMESTAMPING reporting on, see [`enable_tx_timestamp_reports`]).
    ///
    /// # Panics
    /// If `k` is not below [`TxBatch::capacity`].
    pub fn prepare(
        &mut self,
        k: usize,
        len: usize,
        to: SocketAddr,
        from: Destination,
        tx_timestamp: bool,
    ) {
        let namelen = std_to_sockaddr(to, &mut self.bufs.addrs[k]);
        self.bufs.iov[k] = libc::iovec {
            iov_base: self.bufs.payload[k * self.bufs.max_len..]
                .as_mut_ptr()
                .cast(),
            iov_len: len.min(self.bufs.max_len),
        };
        let ctrl_len = build_tx_cmsgs(&mut self.bufs.ctrl[k], from, tx_timestamp, to.is_ipv6());
        let hdr = &mut self.bufs.msgs[k].msg_hdr;
        hdr.msg_name = std::ptr::from_mut(&mut self.bufs.addrs[k]).cast();
        hdr.msg_namelen = namelen;
        hdr.msg_iov = &mut self.bufs.iov[k];
        hdr.msg_iovlen = 1;
        hdr.msg_flags = 0;
        if ctrl_len == 0 {
            hdr.msg_control = std::ptr::null_mut();
            hdr.msg_controllen = 0;
        } else {
            hdr.msg_control = self.bufs.ctrl[k].as_mut_ptr().cast();
            hdr.msg_controllen = ctrl_len;
        }
    }

    /// One `sendmmsg` of the datagrams in `range` (prepared before); returns
    /// how many the kernel took, from the front of the range.
    ///
    /// # Panics
    /// If `range` is not within [`TxBatch::capacity`].
    pub fn send(&mut self, fd: BorrowedFd<'_>, range: Range<usize>) -> io::Result<usize> {
        let msgs = &mut self.bufs.msgs[range];
        if let [one] = msgs
            && one.msg_hdr.msg_controllen == 0
        {
            // One datagram without control messages: `sendto` skips the
            // header and iovec copies and checks of `sendmmsg`, which a
            // server sending one reply per call would pay on every reply.
            return send_one(fd, &one.msg_hdr);
        }
        let vlen = libc::c_uint::try_from(msgs.len()).unwrap_or(0);
        // SAFETY: every header in the range points at this batch's own live
        // buffers (set by `prepare`), or is all-zero (null pointers, zero
        // lengths), which the kernel rejects without reading memory.
        let sent = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), vlen, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(usize::try_from(sent).unwrap_or(0))
    }
}

/// `sendto` of the one buffer and address a prepared header names.
fn send_one(fd: BorrowedFd<'_>, hdr: &libc::msghdr) -> io::Result<usize> {
    if hdr.msg_iov.is_null() || hdr.msg_iovlen != 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: a non-null msg_iov of a prepared header points at this batch's
    // own iovec, which points at its own payload buffer of iov_len bytes.
    let iov = unsafe { *hdr.msg_iov };
    // SAFETY: iov (as above) and msg_name (this batch's sockaddr_storage,
    // with msg_namelen the length `prepare` wrote) are live for the call.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            iov.iov_base,
            iov.iov_len,
            0,
            hdr.msg_name.cast(),
            hdr.msg_namelen,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(1)
}

/// A software transmit timestamp the kernel returned on the error queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TxTimestamp {
    /// When the datagram left (host realtime).
    pub time: Option<UnixNanos>,
    /// Its SOF_TIMESTAMPING_OPT_ID: the count of datagrams sent with a request before it.
    pub id: Option<u32>,
}

/// Reads one message from `fd`'s error queue without blocking; `None` once
/// the queue is empty.
pub fn recv_tx_timestamp(fd: BorrowedFd<'_>) -> Option<TxTimestamp> {
    let mut ctrl: CtrlBuf = [0u64; CTRL_WORDS];
    let mut data = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: all-zero is a valid msghdr; the fields are set right after.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.as_mut_ptr().cast();
    msg.msg_controllen = CTRL_BYTES;
    // SAFETY: msg points at live stack buffers of the stated sizes.
    let rc = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        return None;
    }
    // SAFETY: the kernel filled the control buffer it was given.
    let (time, id) = unsafe { parse_errqueue_cmsgs(&msg) };
    Some(TxTimestamp { time, id })
}

/// Sets an integer socket option.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    #[expect(clippy::cast_possible_truncation, reason = "the size of a c_int is 4")]
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: passes a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to stamp every datagram `fd` receives (SO_TIMESTAMPNS),
/// read back as [`Datagram::rx_time`].
pub fn enable_rx_timestamps(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Turns on SO_TIMESTAMPING reporting (software stamps, with OPT_ID, without
/// the payload): datagrams sent with a request come back as [`TxTimestamp`]s.
pub fn enable_tx_timestamp_reports(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY;
    let flags = libc::c_int::try_from(flags).map_err(io::Error::other)?;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPING, flags)
}

/// Attaches a reuseport program (`SO_ATTACH_REUSEPORT_CBPF`) to the first
/// socket of a reuseport group of `groups` sockets: the last 32 bits of the
/// source address modulo `groups` pick the socket, so one client always
/// reaches the same one.
pub fn steer_reuseport_by_source(fd: BorrowedFd<'_>, ipv6: bool, groups: u32) -> io::Result<()> {
    // In a reuseport program, SKF_NET_OFF-relative loads read the IP header.
    const SKF_NET_OFF: i32 = -0x10_0000;
    // The last 32 bits of the source address: IPv4 header bytes 12..16,
    // IPv6 header bytes 20..24 (the address is bytes 8..24).
    let src_word: i32 = if ipv6 { 8 + 12 } else { 12 };
    let op = |code: u32| u16::try_from(code).map_err(io::Error::other);
    let program = [
        libc::sock_filter {
            code: op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS)?,
            jt: 0,
            jf: 0,
            // A negative offset, in the two's complement the kernel reads.
            k: (SKF_NET_OFF + src_word).cast_unsigned(),
        },
        libc::sock_filter {
            code: op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K)?,
            jt: 0,
            jf: 0,
            k: groups.max(1),
        },
        libc::sock_filter {
            code: op(libc::BPF_RET | libc::BPF_A)?,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(io::Error::other)?,
        filter: program.as_ptr().cast_mut(),
    };
    #[expect(clippy::cast_possible_truncation, reason = "a sock_fprog is 16 bytes")]
    let len = size_of::<libc::sock_fprog>() as libc::socklen_t;
    // SAFETY: setsockopt on an open socket with a valid sock_fprog whose
    // filter array outlives the call; the kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::from_ref(&fprog).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (no privilege
/// needed to lower it; on Linux a thread id names just this thread).
pub fn set_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    let tid = libc::id_t::try_from(tid).map_err(io::Error::other)?;
    // SAFETY: a plain syscall on the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `poll` over `fds` for up to `timeout_ms`; returns how many have events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len()).map_err(io::Error::other)?;
    // SAFETY: `fds` is a live, exclusively borrowed array of `n` pollfd.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(rc).unwrap_or(0))
}

/// A sender address the kernel wrote, as a std address.
fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says this storage holds a sockaddr_in, which
            // is smaller than the storage and needs no more alignment.
            let sin = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: ss_family says this storage holds a sockaddr_in6, which
            // is smaller than the storage and needs no more alignment.
            let sin6 = unsafe { &*std::ptr::from_ref(ss).cast::<libc::sockaddr_in6>() };
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

/// Writes `addr` into `ss`; returns the length to pass with it.
fn std_to_sockaddr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "sockaddr_in and sockaddr_in6 are 16 and 28 bytes; AF_INET(6) fit sa_family_t"
    )]
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and at least as aligned.
            unsafe {
                std::ptr::from_mut(ss)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and at least as aligned.
            unsafe {
                std::ptr::from_mut(ss)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// A kernel timespec as host-realtime nanoseconds.
#[allow(
    clippy::unnecessary_cast,
    clippy::cast_lossless,
    reason = "time_t and c_long are 32 bits on 32-bit Pi OS images: the casts are needed there"
)]
fn timespec_nanos(ts: &libc::timespec) -> UnixNanos {
    UnixNanos((ts.tv_sec as i64) * 1_000_000_000 + ts.tv_nsec as i64)
}

/// The kernel receive timestamp and the destination address of a datagram.
///
/// # Safety
/// `hdr` must describe a control buffer the kernel filled for this message.
unsafe fn parse_rx_cmsgs(hdr: &libc::msghdr) -> (Option<UnixNanos>, Destination) {
    let mut rx = None;
    let mut dst = Destination::Unknown;
    // SAFETY: the CMSG macros walk the kernel-filled buffer within
    // msg_controllen; each payload is read unaligned with the type its
    // level/type pair names.
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
                dst = Destination::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr)));
            } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                let pi = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                dst = Destination::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr), pi.ipi6_ifindex);
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    (rx, dst)
}

/// Appends one control message to `buf` at `*used`, if it fits.
fn push_cmsg<T>(
    buf: &mut CtrlBuf,
    used: &mut usize,
    level: libc::c_int,
    ty: libc::c_int,
    value: T,
) {
    let Ok(size) = u32::try_from(size_of::<T>()) else {
        return;
    };
    // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
    let (space, len) = unsafe { (libc::CMSG_SPACE(size), libc::CMSG_LEN(size)) };
    let (Ok(space), Ok(len)) = (usize::try_from(space), usize::try_from(len)) else {
        return;
    };
    if *used + space > CTRL_BYTES {
        return;
    }
    // SAFETY: the header and data lie inside `buf` (checked above); the
    // buffer is u64-aligned and `used` a multiple of CMSG_SPACE steps, so the
    // header is aligned; the payload is written unaligned.
    unsafe {
        let c = buf
            .as_mut_ptr()
            .cast::<u8>()
            .add(*used)
            .cast::<libc::cmsghdr>();
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = len;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<T>(), value);
    }
    *used += space;
}

/// Writes a reply's control messages (source address, TX timestamp request)
/// into `buf` and returns their total length.
fn build_tx_cmsgs(buf: &mut CtrlBuf, from: Destination, want_tx: bool, v6: bool) -> usize {
    let mut used = 0usize;
    match from {
        Destination::V4(addr) if !v6 => {
            let pi = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(addr).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            push_cmsg(buf, &mut used, libc::IPPROTO_IP, libc::IP_PKTINFO, pi);
        }
        Destination::V6(addr, ifindex) if v6 => {
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: addr.octets(),
                },
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
    used
}

/// The software TX timestamp and its OPT_ID from one error-queue message.
///
/// # Safety
/// `msg` must describe a control buffer the kernel filled.
unsafe fn parse_errqueue_cmsgs(msg: &libc::msghdr) -> (Option<UnixNanos>, Option<u32>) {
    let mut ts = None;
    let mut id = None;
    // SAFETY: the CMSG macros walk the kernel-filled buffer within
    // msg_controllen; each payload is read unaligned with its own type.
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
                if i32::try_from(e.ee_errno) == Ok(libc::ENOMSG)
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

#[cfg(test)]
mod tests;

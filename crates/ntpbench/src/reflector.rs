//! The floor of this machine: a bare `recvmmsg`/`sendmmsg` UDP reflector that
//! turns each request into a reply-shaped datagram (mode 4, origin = the
//! request's transmit) and nothing else. No timestamps, no policy.

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

const BATCH: usize = 32;
/// `BATCH` as `recvmmsg` wants it.
const BATCH_LEN: libc::c_uint = 32;
/// `sockaddr_storage`'s size, as `msg_namelen` wants it.
#[expect(
    clippy::cast_possible_truncation,
    reason = "sockaddr_storage is 128 bytes by definition"
)]
const STORAGE_LEN: libc::socklen_t = size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// A batch length as `sendmmsg` wants it.
fn vlen(n: usize) -> libc::c_uint {
    libc::c_uint::try_from(n).unwrap_or(BATCH_LEN)
}

/// Serves `addr` with `workers` SO_REUSEPORT threads until the process is killed.
pub fn run(addr: SocketAddr, workers: usize) -> Result<()> {
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_port(true)?;
        let _ = s.set_recv_buffer_size(1 << 21);
        s.bind(&addr.into())
            .with_context(|| format!("bind {addr}"))?;
        threads.push(std::thread::spawn(move || reflect(&s)));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn reflect(s: &Socket) {
    let fd = s.as_raw_fd();
    let mut bufs = [[0u8; 256]; BATCH];
    // SAFETY: plain C structs for which all-zero is valid.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut out: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    loop {
        for j in 0..BATCH {
            iov[j] = libc::iovec {
                iov_base: bufs[j].as_mut_ptr().cast(),
                iov_len: 256,
            };
            let h = &mut msgs[j].msg_hdr;
            h.msg_name = (&mut addrs[j] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = STORAGE_LEN;
            h.msg_iov = &mut iov[j];
            h.msg_iovlen = 1;
        }
        // SAFETY: headers point at live buffers; blocks until at least one datagram.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH_LEN,
                libc::MSG_WAITFORONE as _,
                std::ptr::null_mut(),
            )
        };
        if got <= 0 {
            continue;
        }
        let got = usize::try_from(got).unwrap_or(0);
        for j in 0..got {
            let len = (msgs[j].msg_len as usize).min(256);
            let b = &mut bufs[j];
            if len >= 48 {
                b[0] = (b[0] & 0x38) | 4;
                b[1] = 1;
                b.copy_within(40..48, 24);
            }
            iov[j].iov_len = len;
            out[j].msg_hdr = msgs[j].msg_hdr;
        }
        let mut done = 0;
        while done < got {
            // SAFETY: out[done..got] point at live buffers and addresses.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    out[done..].as_mut_ptr(),
                    BATCH_LEN.min(vlen(got - done)),
                    0,
                )
            };
            done += usize::try_from(sent).map_or(1, |s| s.max(1));
        }
    }
}

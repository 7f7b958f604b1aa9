//! The buffers one `recvmmsg` or `sendmmsg` call points into, allocated once
//! per batch and reused for every call.

use crate::{CTRL_WORDS, CtrlBuf, MAX_BATCH};
use std::mem::zeroed;

/// Payloads, control buffers, addresses and headers that `*mmsg` point into.
pub(crate) struct MsgBuffers {
    pub(crate) payload: Box<[u8]>,
    pub(crate) max_len: usize,
    pub(crate) ctrl: Box<[CtrlBuf]>,
    pub(crate) addrs: Box<[libc::sockaddr_storage]>,
    pub(crate) iov: Box<[libc::iovec]>,
    pub(crate) msgs: Box<[libc::mmsghdr]>,
}

impl MsgBuffers {
    pub(crate) fn new(count: usize, max_len: usize) -> MsgBuffers {
        let count = count.clamp(1, MAX_BATCH);
        let max_len = max_len.max(1);
        MsgBuffers {
            payload: vec![0u8; count * max_len].into_boxed_slice(),
            max_len,
            ctrl: vec![[0u64; CTRL_WORDS]; count].into_boxed_slice(),
            addrs: zeroed_slice(count),
            iov: zeroed_slice(count),
            msgs: zeroed_slice(count),
        }
    }
}

/// Plain C structs (integers and raw pointers only) for which all-zero bytes
/// are a valid value: the only types [`zeroed_slice`] may build.
trait ZeroIsValid {}
impl ZeroIsValid for libc::iovec {}
impl ZeroIsValid for libc::mmsghdr {}
impl ZeroIsValid for libc::sockaddr_storage {}

fn zeroed_slice<T: ZeroIsValid>(n: usize) -> Box<[T]> {
    (0..n)
        .map(|_| {
            // SAFETY: `T: ZeroIsValid`, implemented only for plain C structs
            // of integers and raw pointers, for which all-zero is valid.
            unsafe { zeroed::<T>() }
        })
        .collect()
}

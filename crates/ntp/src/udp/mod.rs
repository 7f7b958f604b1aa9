//! The thin I/O shell: SO_REUSEPORT sockets, one per worker and listen address
//! ([`socket`]), read and written in `recvmmsg`/`sendmmsg` batches with kernel
//! receive timestamps (SO_TIMESTAMPNS) and, for interleaved clients, kernel
//! transmit timestamps (SO_TIMESTAMPING, read back from the error queue) by
//! the worker loop ([`worker`]). The system calls and their control-message
//! codecs are `skytime-netio`'s, so this crate holds no `unsafe`.

mod socket;
mod worker;

pub use socket::{NtpServer, ServerHandle};

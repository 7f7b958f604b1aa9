//! Replies read back while configuring: UBX frames and `$PMTK` sentences out of
//! whatever else the receiver keeps sending (NMEA), across read boundaries.

use super::Reply;
use crate::pmtk;
use crate::sentence::{self, Checked};
use crate::ubx::{self, FrameError, messages};

/// Longest partial frame or line kept between reads.
const MAX_KEPT: usize = 4096;

/// Collects replies from the bytes read, keeping a frame or line cut by a read.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
}

impl ReplyReader {
    /// Bytes as read; the replies they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Reply> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        let mut keep_from = None;
        while at < self.buf.len() {
            match self.buf[at] {
                0xB5 => match ubx::Frame::parse(&self.buf[at..]) {
                    Ok((frame, used)) => {
                        if let Some(m) = messages::decode(&frame) {
                            out.push(Reply::Ubx(m));
                        }
                        at += used;
                    }
                    Err(FrameError::Truncated { .. }) => {
                        keep_from = Some(at);
                        break;
                    }
                    Err(_) => at += 1,
                },
                b'$' => match self.buf[at..].iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        let mut line = &self.buf[at + 1..at + end];
                        if let [rest @ .., b'\r'] = line {
                            line = rest;
                        }
                        if let Checked::Good { body, .. } = sentence::check(line)
                            && let Ok(text) = std::str::from_utf8(body)
                            && let Some(r) = pmtk::parse_reply(text)
                        {
                            out.push(Reply::Pmtk(r));
                        }
                        at += end + 1;
                    }
                    None => {
                        keep_from = Some(at);
                        break;
                    }
                },
                _ => at += 1,
            }
        }
        match keep_from {
            Some(k) if self.buf.len() - k <= MAX_KEPT => {
                self.buf.drain(..k);
            }
            _ => self.buf.clear(),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_across_reads_among_nmea() {
        let mut stream = b"$GPRMC,1*00\r\n".to_vec();
        stream.extend(messages::encode_ack(true, 0x06, 0x31));
        stream.extend(pmtk::sentence("PMTK001,314,3"));
        stream.extend(b"\xB5\x62garbage");
        stream.extend(messages::encode_ack(false, 0x06, 0x71));
        let mut r = ReplyReader::default();
        let mut got = Vec::new();
        for chunk in stream.chunks(5) {
            got.extend(r.push(chunk));
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            matches!(got[0], Reply::Ubx(messages::Message::Ack(a)) if a.accepted && a.id == 0x31)
        );
        assert_eq!(
            got[1],
            Reply::Pmtk(pmtk::Reply::Ack {
                command: 314,
                flag: pmtk::AckFlag::Succeeded
            })
        );
        assert!(matches!(got[2], Reply::Ubx(messages::Message::Ack(a)) if !a.accepted));
    }

    #[test]
    fn a_bad_checksum_is_no_reply_and_garbage_does_not_grow_the_buffer() {
        let mut r = ReplyReader::default();
        assert!(r.push(b"$PMTK001,314,3*00\r\n").is_empty());
        assert!(r.push(&[b'$'; 10_000]).is_empty());
        assert!(r.buf.len() <= MAX_KEPT);
    }
}

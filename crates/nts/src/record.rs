//! The NTS-KE record layer (RFC 8915 §4), sans-IO: a strict request decoder
//! that the TLS shell feeds bytes into, and the response writer.
//!
//! A record is `C|type` (critical bit and 15-bit type), a 16-bit body length
//! and the body. A request must hold exactly one critical Next Protocol record,
//! at most one AEAD Algorithm record, no duplicate or server-only records, and
//! end with a critical, empty End of Message.

/// Record types (RFC 8915 §7.6, "NTS Key Establishment Record Types").
pub mod record_type {
    /// Last record of a message; empty, critical.
    pub const END_OF_MESSAGE: u16 = 0;
    /// The protocols the client wants (list of u16); critical.
    pub const NEXT_PROTOCOL: u16 = 1;
    /// An error code (u16); critical.
    pub const ERROR: u16 = 2;
    /// A warning code (u16); critical.
    pub const WARNING: u16 = 3;
    /// AEAD algorithms offered (client) or chosen (server), u16 each.
    pub const AEAD_ALGORITHM: u16 = 4;
    /// A cookie for NTPv4 (server to client).
    pub const NEW_COOKIE: u16 = 5;
    /// NTPv4 server name or address to use.
    pub const NTPV4_SERVER: u16 = 6;
    /// NTPv4 port to use (u16).
    pub const NTPV4_PORT: u16 = 7;
}

/// The critical bit of the record type word.
pub const CRITICAL: u16 = 0x8000;
/// Next Protocol id of NTPv4, the only protocol served.
pub const PROTOCOL_NTPV4: u16 = 0;
/// AEAD_AES_SIV_CMAC_256 (RFC 5297), the mandatory NTS algorithm.
pub const AEAD_AES_SIV_CMAC_256: u16 = 15;
/// A request is a handful of short records; anything longer is refused
/// before it can grow a buffer (chrony's own client sends about 20 bytes).
pub const MAX_REQUEST_LEN: usize = 1024;
/// At most this many entries in one list record (protocols, algorithms).
const MAX_LIST_ENTRIES: usize = 64;
const RECORD_HEADER_LEN: usize = 4;

/// Error codes a server sends in an Error record (RFC 8915 §4.1.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// A critical record of a type this server does not know.
    UnrecognizedCriticalRecord = 0,
    /// A request that breaks the protocol.
    BadRequest = 1,
    /// The server could not complete a valid request.
    InternalServerError = 2,
}

/// Why a request was refused; each maps to the Error record sent back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeError {
    /// A critical record type the server does not implement.
    #[error("unrecognised critical record type {0}")]
    UnknownCritical(u16),
    /// The request grew past [`MAX_REQUEST_LEN`] without ending.
    #[error("request longer than {MAX_REQUEST_LEN} bytes")]
    TooLong,
    /// A record breaks the rules for its type.
    #[error("bad request: {0}")]
    Bad(&'static str),
    /// The connection ended before End of Message.
    #[error("connection closed before End of Message")]
    Truncated,
}

impl KeError {
    /// The code of the Error record that answers this problem.
    pub fn code(&self) -> ErrorCode {
        match self {
            KeError::UnknownCritical(_) => ErrorCode::UnrecognizedCriticalRecord,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// What a well-formed request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeRequest {
    /// The client listed NTPv4 among its next protocols.
    pub wants_ntpv4: bool,
    /// The client offered AES-SIV-CMAC-256.
    pub offers_aes_siv: bool,
}

impl KeRequest {
    /// Whether the response carries keys and cookies, or only says no.
    pub fn negotiated(&self) -> bool {
        self.wants_ntpv4 && self.offers_aes_siv
    }
}

/// Decodes a complete request from the bytes read so far: `Ok(None)` while
/// more are needed, the request once End of Message arrives. Bytes after End
/// of Message are an error (a request is one message).
pub fn decode_request(buf: &[u8]) -> Result<Option<KeRequest>, KeError> {
    let mut pos = 0;
    let mut next_protocol: Option<bool> = None;
    let mut aead: Option<bool> = None;
    loop {
        let rest = &buf[pos..];
        if rest.len() < RECORD_HEADER_LEN {
            return incomplete(buf);
        }
        let type_word = u16::from_be_bytes([rest[0], rest[1]]);
        let body_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if RECORD_HEADER_LEN + body_len > MAX_REQUEST_LEN {
            return Err(KeError::TooLong);
        }
        let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + body_len) else {
            return incomplete(buf);
        };
        let critical = type_word & CRITICAL != 0;
        match type_word & !CRITICAL {
            record_type::END_OF_MESSAGE => {
                if !critical || !body.is_empty() {
                    return Err(KeError::Bad("End of Message must be critical and empty"));
                }
                if pos + RECORD_HEADER_LEN != buf.len() {
                    return Err(KeError::Bad("bytes after End of Message"));
                }
                let wants_ntpv4 = next_protocol.ok_or(KeError::Bad("no Next Protocol record"))?;
                let offers_aes_siv = match aead {
                    Some(offered) => offered,
                    None if wants_ntpv4 => {
                        return Err(KeError::Bad("NTPv4 requested without an AEAD record"));
                    }
                    None => false,
                };
                return Ok(Some(KeRequest {
                    wants_ntpv4,
                    offers_aes_siv,
                }));
            }
            record_type::NEXT_PROTOCOL => {
                if !critical {
                    return Err(KeError::Bad("Next Protocol must be critical"));
                }
                if next_protocol.is_some() {
                    return Err(KeError::Bad("more than one Next Protocol record"));
                }
                next_protocol = Some(list_contains(body, PROTOCOL_NTPV4)?);
            }
            record_type::AEAD_ALGORITHM => {
                if aead.is_some() {
                    return Err(KeError::Bad("more than one AEAD Algorithm record"));
                }
                aead = Some(list_contains(body, AEAD_AES_SIV_CMAC_256)?);
            }
            record_type::ERROR | record_type::WARNING | record_type::NEW_COOKIE => {
                return Err(KeError::Bad("server-only record in a request"));
            }
            // RFC 8915 §4.1.7-8: a client may suggest a server or port; we
            // always answer with our own, so the suggestion is ignored.
            record_type::NTPV4_SERVER | record_type::NTPV4_PORT => {}
            other if critical => return Err(KeError::UnknownCritical(other)),
            _ => {}
        }
        pos += RECORD_HEADER_LEN + body_len;
    }
}

fn incomplete(buf: &[u8]) -> Result<Option<KeRequest>, KeError> {
    if buf.len() >= MAX_REQUEST_LEN {
        Err(KeError::TooLong)
    } else {
        Ok(None)
    }
}

fn list_contains(body: &[u8], wanted: u16) -> Result<bool, KeError> {
    if !body.len().is_multiple_of(2) {
        return Err(KeError::Bad("list record with an odd body length"));
    }
    if body.len() / 2 > MAX_LIST_ENTRIES {
        return Err(KeError::Bad("list record too long"));
    }
    Ok(body
        .chunks_exact(2)
        .any(|id| u16::from_be_bytes([id[0], id[1]]) == wanted))
}

/// Appends one record to a response under construction.
pub fn write_record(out: &mut Vec<u8>, critical: bool, kind: u16, body: &[u8]) {
    let type_word = if critical { kind | CRITICAL } else { kind };
    let body_len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&type_word.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&body[..usize::from(body_len)]);
}

/// The response to a refused request: one Error record and End of Message.
pub fn error_response(code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * RECORD_HEADER_LEN + 2);
    write_record(
        &mut out,
        true,
        record_type::ERROR,
        &(code as u16).to_be_bytes(),
    );
    write_record(&mut out, true, record_type::END_OF_MESSAGE, &[]);
    out
}

/// The response to a valid request: the protocol and algorithm chosen (empty
/// lists when the client offered nothing we serve, and then no cookies), the
/// cookies, the NTP port when it is not 123, and End of Message.
pub fn success_response<'a>(
    request: &KeRequest,
    cookies: impl IntoIterator<Item = &'a [u8]>,
    ntp_port: Option<u16>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let protocol = PROTOCOL_NTPV4.to_be_bytes();
    let protocols: &[u8] = if request.wants_ntpv4 { &protocol } else { &[] };
    write_record(&mut out, true, record_type::NEXT_PROTOCOL, protocols);
    let algorithm = AEAD_AES_SIV_CMAC_256.to_be_bytes();
    let algorithms: &[u8] = if request.offers_aes_siv {
        &algorithm
    } else {
        &[]
    };
    write_record(&mut out, false, record_type::AEAD_ALGORITHM, algorithms);
    if request.negotiated() {
        for cookie in cookies {
            write_record(&mut out, false, record_type::NEW_COOKIE, cookie);
        }
        if let Some(port) = ntp_port.filter(|&p| p != 123) {
            write_record(&mut out, true, record_type::NTPV4_PORT, &port.to_be_bytes());
        }
    }
    write_record(&mut out, true, record_type::END_OF_MESSAGE, &[]);
    out
}

/// One record of a response, as a client reads it (tests and the benchmark).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The critical bit.
    pub critical: bool,
    /// The record type without the critical bit.
    pub kind: u16,
    /// The body.
    pub body: &'a [u8],
}

/// Splits a complete message into records; `None` if it does not end exactly
/// with End of Message.
pub fn split_records(buf: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = buf.get(pos..pos + RECORD_HEADER_LEN)?;
        let type_word = u16::from_be_bytes([header[0], header[1]]);
        let body_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let body = buf.get(pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + body_len)?;
        records.push(Record {
            critical: type_word & CRITICAL != 0,
            kind: type_word & !CRITICAL,
            body,
        });
        pos += RECORD_HEADER_LEN + body_len;
    }
    (records.last()?.kind == record_type::END_OF_MESSAGE).then_some(records)
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;

//! The record layer: frames travel in records, and integrity is checked per record.
//!
//! ```text
//! +--------+--------+--------+--------+------------- - -+-----------------+
//! | length (u16 BE) | flags  | hcheck | payload (frames) | CRC-32C (u32 BE) |
//! +--------+--------+--------+--------+------------- - -+-----------------+
//!   header: 4 bytes                      length bytes      only if flags.I
//! ```
//! `hcheck` is CRC-8/SMBUS over the first three header bytes, so a damaged length is
//! caught before it is trusted. The trailer is CRC-32C over header and payload. A
//! record is verified whole before any frame in it is looked at, so nothing from a
//! damaged record is ever delivered. Batching many frames into one record amortises the
//! 8 bytes of record overhead.

use crate::error::ErrorCode;
use crate::integrity::{crc32c, header_check};
use zerocopy::byteorder::{BigEndian, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Header length.
pub const HEADER_LEN: usize = 4;
/// Trailer length (present when [`FLAG_INTEGRITY`] is set).
pub const TRAILER_LEN: usize = 4;
/// Flag: the record ends with a CRC-32C trailer.
pub const FLAG_INTEGRITY: u8 = 0x01;
/// Largest payload a record header can describe.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;
/// Every endpoint accepts records of at least this payload size; it is also the
/// limit for records sent before the peer's limits are known.
pub const MIN_MAX_PAYLOAD: usize = 1024;

/// The 4-byte record header.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RecordHeader {
    /// Payload length.
    pub len: U16<BigEndian>,
    /// Flags; only [`FLAG_INTEGRITY`] is defined, the other bits must be zero.
    pub flags: u8,
    /// CRC-8/SMBUS of `len` and `flags`.
    pub check: u8,
}

impl RecordHeader {
    /// A header for `len` payload bytes, with or without a trailer.
    pub fn new(len: u16, integrity: bool) -> Self {
        let flags = if integrity { FLAG_INTEGRITY } else { 0 };
        let [a, b] = len.to_be_bytes();
        RecordHeader {
            len: U16::new(len),
            flags,
            check: header_check([a, b, flags]),
        }
    }
}

/// A complete, verified record found at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// Offset of the payload (always [`HEADER_LEN`]).
    pub payload_start: usize,
    /// Length of the payload.
    pub payload_len: usize,
    /// Length of the whole record, header and trailer included.
    pub total_len: usize,
}

/// Looks for a record at the start of `buf`.
///
/// Returns `Ok(None)` while the record is incomplete: the header is checked as soon as
/// its 4 bytes are there, so an oversized or corrupt length is refused before anything
/// is buffered on its strength. `max_payload` is what we advertised; `require_integrity`
/// refuses records without a trailer.
pub fn parse(
    buf: &[u8],
    max_payload: usize,
    require_integrity: bool,
) -> Result<Option<RecordInfo>, ErrorCode> {
    let Ok((h, _)) = RecordHeader::read_from_prefix(buf) else {
        return Ok(None);
    };
    let len = usize::from(h.len.get());
    let [a, b] = h.len.get().to_be_bytes();
    if header_check([a, b, h.flags]) != h.check {
        return Err(ErrorCode::INTEGRITY_ERROR);
    }
    if h.flags & !FLAG_INTEGRITY != 0 || len == 0 {
        return Err(ErrorCode::PROTOCOL_ERROR);
    }
    if len > max_payload {
        return Err(ErrorCode::FRAME_TOO_LARGE);
    }
    let integrity = h.flags & FLAG_INTEGRITY != 0;
    if require_integrity && !integrity {
        return Err(ErrorCode::INTEGRITY_ERROR);
    }
    let total = HEADER_LEN + len + if integrity { TRAILER_LEN } else { 0 };
    if buf.len() < total {
        return Ok(None);
    }
    if integrity {
        let body_end = HEADER_LEN + len;
        let (want, _) = U32::<BigEndian>::read_from_prefix(&buf[body_end..])
            .map_err(|_| ErrorCode::INTERNAL_ERROR)?;
        if crc32c(&buf[..body_end]) != want.get() {
            return Err(ErrorCode::INTEGRITY_ERROR);
        }
    }
    Ok(Some(RecordInfo {
        payload_start: HEADER_LEN,
        payload_len: len,
        total_len: total,
    }))
}

/// Bytes a record adds around its payload.
pub fn overhead(integrity: bool) -> usize {
    HEADER_LEN + if integrity { TRAILER_LEN } else { 0 }
}

/// Writes header and trailer around a payload the caller already placed at
/// `buf[HEADER_LEN..HEADER_LEN + payload_len]`; returns the record's total length.
///
/// `buf` must have room for the trailer; `payload_len` must be 1..=[`MAX_PAYLOAD`].
pub fn seal(buf: &mut [u8], payload_len: usize, integrity: bool) -> Option<usize> {
    let len = u16::try_from(payload_len).ok().filter(|&l| l > 0)?;
    let total = HEADER_LEN + payload_len + if integrity { TRAILER_LEN } else { 0 };
    if buf.len() < total {
        return None;
    }
    buf[..HEADER_LEN].copy_from_slice(RecordHeader::new(len, integrity).as_bytes());
    if integrity {
        let end = HEADER_LEN + payload_len;
        let crc = crc32c(&buf[..end]);
        buf[end..total].copy_from_slice(&crc.to_be_bytes());
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8], integrity: bool) -> ([u8; 64], usize) {
        let mut buf = [0u8; 64];
        buf[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
        let n = seal(&mut buf, payload.len(), integrity).unwrap();
        (buf, n)
    }

    #[test]
    fn seal_then_parse() {
        for integrity in [false, true] {
            let (buf, n) = record(b"hello", integrity);
            assert_eq!(n, 5 + overhead(integrity));
            let info = parse(&buf[..n], 1024, false).unwrap().unwrap();
            assert_eq!(info.payload_len, 5);
            assert_eq!(info.total_len, n);
            assert_eq!(&buf[info.payload_start..][..5], b"hello");
            for k in 0..n {
                assert_eq!(parse(&buf[..k], 1024, false), Ok(None), "prefix {k}");
            }
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let (buf, n) = record(b"abcdefgh", true);
        for bit in 0..n * 8 {
            let mut b = buf;
            b[bit / 8] ^= 1 << (bit % 8);
            // A flip never yields a verified record: either an error, or (a longer
            // length) a record that waits for bytes that the checks will then refuse.
            let r = parse(&b[..n], 1024, true);
            assert!(r.is_err(), "bit {bit} gave {r:?}");
        }
    }

    #[test]
    fn limits_and_flags() {
        let (mut buf, n) = record(b"xyz", false);
        assert_eq!(parse(&buf[..n], 2, false), Err(ErrorCode::FRAME_TOO_LARGE));
        assert_eq!(
            parse(&buf[..n], 1024, true),
            Err(ErrorCode::INTEGRITY_ERROR)
        );
        let h = RecordHeader {
            len: U16::new(3),
            flags: 0x80,
            check: header_check([0, 3, 0x80]),
        };
        buf[..4].copy_from_slice(h.as_bytes());
        assert_eq!(
            parse(&buf[..n], 1024, false),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        let empty = RecordHeader::new(0, false);
        assert_eq!(
            parse(empty.as_bytes(), 1024, false),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(seal(&mut [0u8; 8], 0, false), None);
    }
}

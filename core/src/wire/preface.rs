//! The 8-byte preface each side sends before anything else.
//!
//! `"WEFT"`, the lowest and highest protocol version the sender speaks, and two zero
//! bytes reserved for future use. A receiver that sees any other first four bytes knows
//! at once it is not talking to Weft.

use zerocopy::byteorder::{BigEndian, U16};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The magic bytes: ASCII `WEFT`.
pub const MAGIC: [u8; 4] = *b"WEFT";
/// Length of the preface.
pub const LEN: usize = 8;
/// The only protocol version this implementation speaks.
pub const VERSION_1: u8 = 1;

/// The preface as laid out on the wire.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Preface {
    /// Must equal [`MAGIC`].
    pub magic: [u8; 4],
    /// Lowest version the sender accepts.
    pub min_version: u8,
    /// Highest version the sender accepts.
    pub max_version: u8,
    /// Reserved, sent as zero and ignored on receipt (room for a later extension).
    pub reserved: U16<BigEndian>,
}

/// Why a preface was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefaceError {
    /// The magic bytes are wrong.
    BadMagic,
    /// The version range is empty (`min > max`) or the ranges do not overlap.
    NoCommonVersion,
}

impl Preface {
    /// The preface of a sender speaking `min..=max`.
    pub fn new(min_version: u8, max_version: u8) -> Self {
        Preface {
            magic: MAGIC,
            min_version,
            max_version,
            reserved: U16::new(0),
        }
    }

    /// Reads a preface from the first [`LEN`] bytes, or `None` if fewer arrived.
    pub fn parse(bytes: &[u8]) -> Option<Result<Preface, PrefaceError>> {
        let (p, _) = Preface::read_from_prefix(bytes).ok()?;
        Some(if p.magic == MAGIC {
            Ok(p)
        } else {
            Err(PrefaceError::BadMagic)
        })
    }

    /// The version both sides use: the highest in both ranges.
    pub fn negotiate(&self, peer: &Preface) -> Result<u8, PrefaceError> {
        let lo = self.min_version.max(peer.min_version);
        let hi = self.max_version.min(peer.max_version);
        if self.min_version > self.max_version || lo > hi {
            Err(PrefaceError::NoCommonVersion)
        } else {
            Ok(hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_negotiation() {
        let p = Preface::new(1, 3);
        assert_eq!(p.as_bytes(), b"WEFT\x01\x03\x00\x00");
        assert_eq!(Preface::parse(b"WEFT\x01"), None);
        assert_eq!(
            Preface::parse(b"HTTP/1.1"),
            Some(Err(PrefaceError::BadMagic))
        );
        let peer = Preface::parse(b"WEFT\x02\x05\x00\x00").unwrap().unwrap();
        assert_eq!(p.negotiate(&peer), Ok(3));
        let old = Preface::new(0, 0);
        assert_eq!(p.negotiate(&old), Err(PrefaceError::NoCommonVersion));
    }
}

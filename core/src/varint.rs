//! Variable-length unsigned integers (LEB128, canonical form only).
//!
//! Seven bits per byte, least significant group first, high bit set on every byte but
//! the last. Values up to 127 take one byte, which keeps small frames small. The
//! decoder accepts only the shortest encoding of each value, so every value has exactly
//! one encoding and decoding then re-encoding reproduces the input byte for byte.

/// Longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Why a varint could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended before the last byte of the varint.
    Incomplete,
    /// Not the shortest encoding, or the value does not fit in 64 bits.
    Invalid,
}

/// Number of bytes [`encode`] writes for `v`.
pub const fn len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Writes `v` at the start of `out`, returning the bytes written, or `None` (writing
/// nothing) if `out` is too short.
pub fn encode(v: u64, out: &mut [u8]) -> Option<usize> {
    let n = len(v);
    let out = out.get_mut(..n)?;
    let mut rest = v;
    for (i, b) in out.iter_mut().enumerate() {
        let more = i + 1 < n;
        *b = (rest as u8 & 0x7f) | if more { 0x80 } else { 0 };
        rest >>= 7;
    }
    Some(n)
}

/// Reads a varint from the start of `input`, returning the value and its length.
#[inline]
pub fn decode(input: &[u8]) -> Result<(u64, usize), VarintError> {
    // One byte is the common case (lengths under 128).
    if let Some(&b) = input.first() {
        if b < 0x80 {
            return Ok((u64::from(b), 1));
        }
    }
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(MAX_LEN) {
        let group = u64::from(b & 0x7f);
        if i == MAX_LEN - 1 && b > 1 {
            return Err(VarintError::Invalid);
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            // A zero final group after the first byte means a shorter encoding existed.
            if i > 0 && b == 0 {
                return Err(VarintError::Invalid);
            }
            return Ok((v, i + 1));
        }
    }
    if input.len() >= MAX_LEN {
        Err(VarintError::Invalid)
    } else {
        Err(VarintError::Incomplete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn known_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(v, bytes) in cases {
            let mut buf = [0u8; MAX_LEN];
            let n = encode(v, &mut buf).unwrap();
            assert_eq!(&buf[..n], bytes, "encode {v}");
            assert_eq!(len(v), n);
            assert_eq!(decode(bytes), Ok((v, n)), "decode {v}");
        }
    }

    #[test]
    fn rejects_non_canonical_and_overflow() {
        assert_eq!(decode(&[0x80, 0x00]), Err(VarintError::Invalid));
        assert_eq!(decode(&[0x81, 0x80, 0x00]), Err(VarintError::Invalid));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(VarintError::Invalid)
        );
        assert_eq!(decode(&[0xff; 11]), Err(VarintError::Invalid));
        assert_eq!(decode(&[0x80]), Err(VarintError::Incomplete));
        assert_eq!(decode(&[]), Err(VarintError::Incomplete));
    }

    #[test]
    fn short_buffer_writes_nothing() {
        let mut buf = [0xaau8; 1];
        assert_eq!(encode(300, &mut buf), None);
        assert_eq!(buf, [0xaa]);
    }

    quickcheck! {
        fn round_trip(v: u64) -> bool {
            let mut buf = [0u8; MAX_LEN];
            let n = encode(v, &mut buf).unwrap();
            decode(&buf[..n]) == Ok((v, n))
                && (0..n).all(|k| decode(&buf[..k]) == Err(VarintError::Incomplete))
        }
    }
}

//! Checksums of the record layer.
//!
//! Two checksums protect a record:
//!
//! * [`crc32c()`] (CRC-32C, Castagnoli) covers record bodies. Castagnoli was
//!   chosen over the IEEE CRC-32 because it has a better Hamming distance at
//!   the record sizes we use and because x86_64 (SSE4.2) and aarch64 (ARMv8
//!   CRC) compute it in hardware.
//! * [`header_check`] (CRC-8/SMBUS) covers the 3-byte record header, so a
//!   corrupted length or type field is caught before we trust it to size a
//!   read.
//!
//! Both are error-detection codes against accidental corruption only; they
//! give no protection against a deliberate attacker (that is the job of the
//! authentication layer).

use crc::{Crc, Table, CRC_32_ISCSI, CRC_8_SMBUS};

/// The portable CRC-32C engine.
///
/// A `static` (rather than a `const`) so the 16 KiB slicing-by-16 table exists
/// exactly once in the binary and is never copied onto the stack. It is
/// built at compile time by the `const fn` constructor. `Table<16>` is used
/// instead of the crate's default single 256-entry table because it processes
/// 16 bytes per step and is roughly five times faster on record bodies.
static CRC32C_PORTABLE: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// The CRC-8 engine of the header check.
///
/// Headers are 3 bytes, so the plain 256-byte table is the right trade-off:
/// a slicing table would cost 4 KiB to save nothing.
static HEADER_CRC: Crc<u8> = Crc::<u8>::new(&CRC_8_SMBUS);

/// Computes the CRC-32C (Castagnoli, the iSCSI CRC) of `data`.
///
/// With the `std` feature on x86_64 and aarch64 this uses the `crc32c` crate,
/// which detects SSE4.2 / ARMv8 CRC instructions at runtime and falls back to
/// software on its own; runtime detection needs `std`, which is why the
/// hardware path is gated on that feature. Everywhere else it is
/// [`crc32c_portable`]. Both paths return identical values.
///
/// The check value (CRC of `b"123456789"`) is `0xE306_9283`.
#[inline]
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ::crc32c::crc32c(data)
    }
    #[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    {
        crc32c_portable(data)
    }
}

/// Computes the CRC-32C of `data` in portable software (slicing-by-16).
///
/// Always available, including in `no_std` builds without `alloc`. It returns
/// the same value as [`crc32c()`]; it is public so callers and tests can compare
/// the two paths and so benchmarks can measure the software fallback.
#[inline]
#[must_use]
pub fn crc32c_portable(data: &[u8]) -> u32 {
    CRC32C_PORTABLE.checksum(data)
}

/// Computes the CRC-8/SMBUS check byte of a 3-byte record header.
///
/// The polynomial `x^8 + x^2 + x + 1` (0x07) has more than one term, so every
/// single-bit error in the header changes the check byte; at 24 data bits its
/// Hamming distance also guarantees that every double-bit error is detected.
///
/// The check value (CRC of `b"123456789"`) is `0xF4`.
#[inline]
#[must_use]
pub fn header_check(bytes: [u8; 3]) -> u8 {
    HEADER_CRC.checksum(&bytes)
}

#[cfg(test)]
mod tests {
    // The test harness always links std, whatever the crate's features, so
    // the properties below run in every configuration (including no_std
    // without alloc).
    extern crate std;

    use super::*;
    use quickcheck::{Gen, QuickCheck};
    use std::vec::Vec;

    const CHECK_INPUT: &[u8] = b"123456789";

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(CHECK_INPUT), 0xE306_9283);
        assert_eq!(crc32c_portable(CHECK_INPUT), 0xE306_9283);
    }

    #[test]
    fn crc32c_empty_input() {
        // init 0xFFFF_FFFF and final xor 0xFFFF_FFFF cancel on empty input.
        assert_eq!(crc32c(&[]), 0);
        assert_eq!(crc32c_portable(&[]), 0);
    }

    #[test]
    fn crc32c_known_vectors() {
        // RFC 3720 (iSCSI), appendix B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c_portable(&ascending), 0x46DD_794E);
    }

    #[test]
    fn header_check_check_value() {
        assert_eq!(HEADER_CRC.checksum(CHECK_INPUT), 0xF4);
        // SMBUS has init 0 and no final xor, so an all-zero header checks to 0.
        assert_eq!(header_check([0, 0, 0]), 0);
    }

    #[test]
    fn hardware_and_portable_agree_on_every_length_and_alignment() {
        // Deterministic complement to the quickcheck property: covers the
        // length thresholds and unaligned starts of the hardware loops.
        let data: Vec<u8> = (0u32..4200)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for len in (0..=600).chain([1023, 1024, 1025, 4096, 4192]) {
                if let Some(slice) = data.get(start..start + len) {
                    assert_eq!(
                        crc32c(slice),
                        crc32c_portable(slice),
                        "start {start} len {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn prop_crc32c_matches_portable() {
        fn prop(data: Vec<u8>) -> bool {
            crc32c(&data) == crc32c_portable(&data)
        }
        // A larger generator than the default 100 so lengths cross the
        // hardware implementation's long-buffer thresholds.
        QuickCheck::new()
            .rng(Gen::new(4096))
            .quickcheck(prop as fn(Vec<u8>) -> bool);
    }

    #[test]
    fn prop_single_bit_flip_changes_crc32c() {
        fn prop(mut data: Vec<u8>, fill: u8, bit: usize) -> bool {
            // Shape the input to 1..=512 bytes.
            data.truncate(512);
            if data.is_empty() {
                data.push(fill);
            }
            let before = crc32c(&data);
            let bit = bit % (data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
            crc32c(&data) != before
        }
        QuickCheck::new()
            .rng(Gen::new(512))
            .quickcheck(prop as fn(Vec<u8>, u8, usize) -> bool);
    }

    const HEADERS: [[u8; 3]; 6] = [
        [0x00, 0x00, 0x00],
        [0xFF, 0xFF, 0xFF],
        [0x01, 0x00, 0x10],
        [0x80, 0x40, 0x02],
        [0xA5, 0x5A, 0xC3],
        [0x12, 0x34, 0x56],
    ];

    fn flip(mut header: [u8; 3], bit: usize) -> [u8; 3] {
        header[bit / 8] ^= 1 << (bit % 8);
        header
    }

    #[test]
    fn header_check_detects_every_single_bit_flip() {
        for header in HEADERS {
            let check = header_check(header);
            for bit in 0..24 {
                assert_ne!(
                    header_check(flip(header, bit)),
                    check,
                    "header {header:02x?} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn header_check_detects_every_double_bit_flip() {
        for header in HEADERS {
            let check = header_check(header);
            for a in 0..24 {
                for b in (a + 1)..24 {
                    assert_ne!(
                        header_check(flip(flip(header, a), b)),
                        check,
                        "header {header:02x?} bits {a},{b}"
                    );
                }
            }
        }
    }
}

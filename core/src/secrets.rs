//! The secrets of one connection, derived from the 32-byte seed its caller gives
//! [`Connection::new`](crate::conn::Connection::new).
//!
//! The core draws no randomness of its own: everything a connection would draw at
//! random (its HELLO nonce, the secret behind the dummy key that answers unknown key
//! ids, PING tokens, and any later secret) is derived from the seed with HKDF-SHA256
//! (RFC 5869), each output under its own label, as `docs/PROTOCOL.md` section 7.5
//! specifies. HKDF's outputs for distinct labels are independent pseudo-random values:
//! a peer that sees the nonce (and every PING token) learns nothing about the dummy
//! secret, so it cannot compute the dummy proof itself and tell an unknown key id from
//! a wrong key. The previous generator (SplitMix64 over a 64-bit seed) failed exactly
//! there: its output step is invertible, so one nonce gave away the generator's state,
//! and with it the dummy secret.
//!
//! The same seed always gives the same secrets, so tests and the spec's handshake
//! vectors stay reproducible; a deployment gives each connection 32 fresh bytes from
//! the operating system (the driver's `os_seed`).

use crate::auth::hmac_sha256;
use crate::wire::frame::NONCE_LEN;

/// Length in bytes of a connection's seed: 256 bits, the security level of the
/// HMAC-SHA256 proofs it hides.
pub const SEED_LEN: usize = 32;

/// HKDF's salt for the extract step: names the protocol and version, so secrets of
/// this derivation never coincide with another use of the same seed.
const SALT: &[u8] = b"weft v1 seed";
/// The HKDF `info` label of the HELLO nonce.
const NONCE_LABEL: &[u8] = b"weft v1 nonce";
/// The HKDF `info` label of the dummy-key secret.
const DUMMY_LABEL: &[u8] = b"weft v1 dummy secret";
/// The HKDF `info` label prefix of PING tokens; the token's index follows it.
const PING_LABEL: &[u8] = b"weft v1 ping";

/// A connection's pseudo-random key (HKDF-Extract of its seed) and the count of
/// PING tokens drawn from it.
#[derive(Clone)]
pub(crate) struct Secrets {
    prk: [u8; 32],
    pings: u64,
}

impl core::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    /// HKDF-Extract(salt = "weft v1 seed", IKM = seed).
    pub(crate) fn new(seed: &[u8; SEED_LEN]) -> Self {
        Secrets {
            prk: hmac_sha256(SALT, &[seed]),
            pings: 0,
        }
    }

    /// HKDF-Expand(PRK, info, 32): one output block, `HMAC(PRK, info || 0x01)`.
    fn expand(&self, info: &[&[u8]]) -> [u8; 32] {
        let mut parts: [&[u8]; 4] = [&[]; 4];
        debug_assert!(info.len() < parts.len());
        let n = info.len().min(parts.len() - 1);
        parts[..n].copy_from_slice(&info[..n]);
        parts[n] = &[1];
        hmac_sha256(&self.prk, &parts[..=n])
    }

    /// The connection's HELLO nonce: the first 16 bytes of its expansion.
    pub(crate) fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(&self.expand(&[NONCE_LABEL])[..NONCE_LEN]);
        out
    }

    /// The secret a server's dummy key is derived from (`auth::Authenticator::prove`).
    pub(crate) fn dummy_secret(&self) -> [u8; 32] {
        self.expand(&[DUMMY_LABEL])
    }

    /// The next PING token: the `n`-th token (from 0) is the first 8 bytes, big-endian,
    /// of the expansion under `"weft v1 ping" || n` (n as 8 bytes big-endian).
    pub(crate) fn next_ping_token(&mut self) -> u64 {
        let n = self.pings;
        self.pings = self.pings.wrapping_add(1);
        let out = self.expand(&[PING_LABEL, &n.to_be_bytes()]);
        let mut token = [0u8; 8];
        token.copy_from_slice(&out[..8]);
        u64::from_be_bytes(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The extract and expand steps are HKDF-SHA256: RFC 5869's test case 1 (its
    /// first 32 output bytes, the one block this module uses).
    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let prk = hmac_sha256(&salt, &[&ikm]);
        assert_eq!(
            prk.as_slice(),
            hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        );
        let s = Secrets { prk, pings: 0 };
        assert_eq!(
            s.expand(&[&info]).as_slice(),
            hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf")
        );
        // Splitting the info into parts changes nothing: it is their concatenation.
        assert_eq!(s.expand(&[&info[..3], &info[3..]]), s.expand(&[&info]));
    }

    /// Same seed, same secrets: tests and the spec's vectors are reproducible.
    #[test]
    fn the_same_seed_gives_the_same_secrets() {
        let (mut a, mut b) = (Secrets::new(&[7; 32]), Secrets::new(&[7; 32]));
        assert_eq!(a.nonce(), b.nonce());
        assert_eq!(a.dummy_secret(), b.dummy_secret());
        for _ in 0..4 {
            assert_eq!(a.next_ping_token(), b.next_ping_token());
        }
    }

    /// Every output is its own derivation: no output is a prefix, part or copy of
    /// another, tokens do not repeat, and one seed bit changes everything.
    #[test]
    fn outputs_are_distinct_derivations() {
        let mut s = Secrets::new(&[0; 32]);
        let nonce = s.nonce();
        let dummy = s.dummy_secret();
        assert_ne!(&dummy[..NONCE_LEN], &nonce[..]);
        assert_ne!(&dummy[NONCE_LEN..], &nonce[..]);
        let tokens: std::vec::Vec<u64> = (0..64).map(|_| s.next_ping_token()).collect();
        let mut sorted = tokens.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), tokens.len());
        for t in &tokens {
            assert_ne!(&t.to_be_bytes()[..], &nonce[..8]);
            assert_ne!(&t.to_be_bytes()[..], &dummy[..8]);
        }
        let mut seed = [0u8; 32];
        seed[31] = 1;
        let t = Secrets::new(&seed);
        let differing = |x: &[u8], y: &[u8]| -> u32 {
            x.iter().zip(y).map(|(a, b)| (a ^ b).count_ones()).sum()
        };
        // About half of the bits flip; far from zero either way.
        assert!(differing(&t.nonce(), &nonce) > 32);
        assert!(differing(&t.dummy_secret(), &dummy) > 64);
    }

    /// The attack the issue describes, run against both generators: SplitMix64's
    /// output step is invertible, so from the first 8 bytes of a nonce an observer
    /// recovers the state and predicts the dummy secret exactly. Against the HKDF
    /// derivation the same attack predicts nothing.
    #[test]
    fn knowing_the_nonce_does_not_give_the_dummy_secret() {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        fn mix(mut z: u64) -> u64 {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn inverse_mul(a: u64) -> u64 {
            // Newton's iteration for the inverse of an odd number modulo 2^64.
            let mut x = a;
            for _ in 0..6 {
                x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
            }
            x
        }
        fn unxorshift(y: u64, s: u32) -> u64 {
            let mut x = y;
            for _ in 0..64 / s + 1 {
                x = y ^ (x >> s);
            }
            x
        }
        fn unmix(mut z: u64) -> u64 {
            z = unxorshift(z, 31);
            z = z.wrapping_mul(inverse_mul(0x94d0_49bb_1331_11eb));
            z = unxorshift(z, 27);
            z = z.wrapping_mul(inverse_mul(0xbf58_476d_1ce4_e5b9));
            unxorshift(z, 30)
        }
        /// Predicts the six generator outputs after the first from the first one.
        fn predict(first: u64) -> [u8; 32] {
            let mut state = unmix(first);
            let mut out = [0u8; 32];
            state = state.wrapping_add(GAMMA); // the nonce's second half
            for chunk in out.chunks_mut(8) {
                state = state.wrapping_add(GAMMA);
                chunk.copy_from_slice(&mix(state).to_le_bytes());
            }
            out
        }
        let first_word = |n: &[u8]| u64::from_le_bytes(n[..8].try_into().unwrap());

        // The old generator, as the spec described it: the attack recovers the secret.
        let mut state = 0x5eed_u64;
        let mut draw = || {
            state = state.wrapping_add(GAMMA);
            mix(state).to_le_bytes()
        };
        let old_nonce: std::vec::Vec<u8> = (0..2).flat_map(|_| draw()).collect();
        let old_dummy: std::vec::Vec<u8> = (0..4).flat_map(|_| draw()).collect();
        assert_eq!(predict(first_word(&old_nonce)).as_slice(), old_dummy);

        // The HKDF derivation: the same attack, over many seeds, never succeeds, and
        // its guesses share no more bits with the secret than chance would.
        let mut shared_bits = 0u32;
        for i in 0..64u8 {
            let s = Secrets::new(&[i; 32]);
            let guess = predict(first_word(&s.nonce()));
            let dummy = s.dummy_secret();
            assert_ne!(guess, dummy);
            shared_bits += guess
                .iter()
                .zip(&dummy)
                .map(|(a, b)| (!(a ^ b)).count_ones())
                .sum::<u32>();
        }
        let mean = f64::from(shared_bits) / 64.0;
        assert!((96.0..160.0).contains(&mean), "{mean} of 256 bits agree");
    }
}

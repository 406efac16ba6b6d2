//! Pre-shared-key authentication of the handshake, behind a pluggable trait.
//!
//! The handshake this module serves:
//!
//! 1. The client sends HELLO carrying a client nonce and a key id.
//! 2. The server answers with its HELLO carrying a server nonce and a
//!    *server proof*.
//! 3. The client sends AUTH carrying the *client proof*.
//!
//! Both proofs are `HMAC-SHA256(psk, label || transcript_hash)`, where
//! `transcript_hash` is the SHA-256 of every handshake byte so far (see
//! [`Transcript`]) and `label` depends on the [`ProofRole`]. The label binds
//! a proof to the side that produced it, so a peer cannot reflect the
//! server's proof back as a client proof.
//!
//! The server must not reveal whether a key id exists. For an unknown key id
//! it still answers with a proof, computed under a dummy key derived from a
//! caller-supplied secret, so the answer is deterministic and looks like any
//! other; the client's proof then simply fails to verify.
//!
//! Nothing here allocates: [`PskAuthenticator`] stores its keys inline.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of a handshake proof (an HMAC-SHA256 tag).
pub const PROOF_LEN: usize = 32;

/// Maximum length in bytes of a key id.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Maximum number of keys a [`PskAuthenticator`] holds.
pub const MAX_PSK_KEYS: usize = 8;

/// Minimum length in bytes of a pre-shared key.
///
/// 128 bits, so that a key cannot be brute-forced from an observed proof.
pub const MIN_PSK_LEN: usize = 16;

/// Maximum length in bytes of a pre-shared key.
///
/// The SHA-256 block size: keys up to this length are used by HMAC as they
/// are (zero-padded), while longer keys would be hashed first. Capping here
/// keeps every key on the same code path, so a proof costs the same whatever
/// the key, which matters for hiding whether a key id exists.
pub const MAX_PSK_LEN: usize = 64;

/// Wire id of the HMAC-SHA256 pre-shared-key scheme.
pub const SCHEME_PSK_HMAC_SHA256: u8 = 1;

/// Which side of the handshake a proof belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofRole {
    /// The proof the client sends in its AUTH frame.
    Client,
    /// The proof the server sends in its HELLO.
    Server,
}

impl ProofRole {
    /// The wire-defined label that prefixes the transcript hash in the HMAC
    /// input of this role's proof.
    #[must_use]
    pub const fn label(self) -> &'static [u8] {
        match self {
            ProofRole::Client => b"weft/1 client proof",
            ProofRole::Server => b"weft/1 server proof",
        }
    }
}

/// An authentication scheme of the handshake.
///
/// Object safe, so a connection can hold a `&dyn Authenticator`. `Send +
/// Sync` because runtime adapters share one configuration across threads.
pub trait Authenticator: Send + Sync {
    /// The scheme id sent on the wire ([`SCHEME_PSK_HMAC_SHA256`] for
    /// [`PskAuthenticator`]).
    fn scheme(&self) -> u8;

    /// The key id this side presents when acting as a client; empty for an
    /// object only meant to serve.
    fn client_key_id(&self) -> &[u8];

    /// Computes the proof of `role` over `transcript_hash` under the key
    /// named `key_id`.
    ///
    /// If `key_id` is unknown, the proof is computed under a dummy key
    /// derived from `dummy_secret` and `key_id`, so the result is
    /// deterministic for the same inputs and indistinguishable from a real
    /// proof to anyone who does not know the keys. `dummy_secret` should be a
    /// random secret that lives as long as the server configuration (a fresh
    /// one per connection would let a client detect unknown ids by asking
    /// twice).
    fn prove(
        &self,
        key_id: &[u8],
        role: ProofRole,
        transcript_hash: &[u8; 32],
        dummy_secret: &[u8; 32],
    ) -> [u8; PROOF_LEN];

    /// Checks `proof` as the proof of `role` over `transcript_hash` under the
    /// key named `key_id`, in constant time with respect to the proof bytes.
    ///
    /// Returns `false` for an unknown key id (after doing the same work as
    /// for a known one) and for a proof of the wrong length.
    fn verify(
        &self,
        key_id: &[u8],
        role: ProofRole,
        transcript_hash: &[u8; 32],
        proof: &[u8],
    ) -> bool;
}

// Forwarding impls, so a connection generic over `A: Authenticator` can take a
// borrowed, boxed or shared (`Arc`, one config for many connections)
// authenticator as well as an owned one.

/// Implements [`Authenticator`] for a reference or smart pointer by forwarding.
macro_rules! forward_authenticator {
    ($ptr:ty) => {
        impl<T: Authenticator + ?Sized> Authenticator for $ptr {
            fn scheme(&self) -> u8 {
                (**self).scheme()
            }
            fn client_key_id(&self) -> &[u8] {
                (**self).client_key_id()
            }
            fn prove(
                &self,
                key_id: &[u8],
                role: ProofRole,
                transcript_hash: &[u8; 32],
                dummy_secret: &[u8; 32],
            ) -> [u8; PROOF_LEN] {
                (**self).prove(key_id, role, transcript_hash, dummy_secret)
            }
            fn verify(
                &self,
                key_id: &[u8],
                role: ProofRole,
                transcript_hash: &[u8; 32],
                proof: &[u8],
            ) -> bool {
                (**self).verify(key_id, role, transcript_hash, proof)
            }
        }
    };
}

forward_authenticator!(&T);
#[cfg(feature = "alloc")]
forward_authenticator!(alloc::boxed::Box<T>);
#[cfg(feature = "alloc")]
forward_authenticator!(alloc::sync::Arc<T>);

/// Why a key could not be added to a [`PskAuthenticator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthConfigError {
    /// The authenticator already holds [`MAX_PSK_KEYS`] keys.
    TooManyKeys,
    /// The key id is longer than [`MAX_KEY_ID_LEN`] bytes.
    KeyIdTooLong,
    /// The key is shorter than [`MIN_PSK_LEN`] or longer than
    /// [`MAX_PSK_LEN`] bytes.
    KeyLength,
    /// A key with the same key id is already present.
    DuplicateKeyId,
}

impl fmt::Display for AuthConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthConfigError::TooManyKeys => "too many pre-shared keys",
            AuthConfigError::KeyIdTooLong => "key id too long",
            AuthConfigError::KeyLength => "pre-shared key must be 16 to 64 bytes long",
            AuthConfigError::DuplicateKeyId => "duplicate key id",
        })
    }
}

// `core::error::Error` is stable since Rust 1.81 (below our MSRV) and is the
// same trait as `std::error::Error`, so no `std` gate is needed.
impl core::error::Error for AuthConfigError {}

/// One configured key.
#[derive(Clone)]
struct PskEntry {
    key_id: heapless::Vec<u8, MAX_KEY_ID_LEN>,
    key: heapless::Vec<u8, MAX_PSK_LEN>,
}

/// HMAC-SHA256 pre-shared-key [`Authenticator`] holding up to
/// [`MAX_PSK_KEYS`] keys, without allocating.
///
/// Its `Debug` output shows the key ids (they travel in clear anyway) but
/// never the key bytes.
#[derive(Clone, Default)]
pub struct PskAuthenticator {
    entries: heapless::Vec<PskEntry, MAX_PSK_KEYS>,
    /// Index into `entries` of the key presented as a client.
    client: Option<usize>,
}

impl PskAuthenticator {
    /// An authenticator with no keys (it serves, but every client fails).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An authenticator holding one key, which it also presents as a client.
    pub fn with_client_key(key_id: &[u8], key: &[u8]) -> Result<Self, AuthConfigError> {
        let mut auth = Self::new();
        auth.add_key(key_id, key)?;
        auth.client = Some(auth.entries.len() - 1);
        Ok(auth)
    }

    /// Adds the key `key` under the id `key_id`.
    ///
    /// The key must be [`MIN_PSK_LEN`]`..=`[`MAX_PSK_LEN`] bytes long and the
    /// id at most [`MAX_KEY_ID_LEN`] bytes and not already present.
    pub fn add_key(&mut self, key_id: &[u8], key: &[u8]) -> Result<(), AuthConfigError> {
        if !(MIN_PSK_LEN..=MAX_PSK_LEN).contains(&key.len()) {
            return Err(AuthConfigError::KeyLength);
        }
        let key_id =
            heapless::Vec::from_slice(key_id).map_err(|()| AuthConfigError::KeyIdTooLong)?;
        if self.entries.iter().any(|e| e.key_id == key_id) {
            return Err(AuthConfigError::DuplicateKeyId);
        }
        // Cannot fail: the length was checked above.
        let key = heapless::Vec::from_slice(key).map_err(|()| AuthConfigError::KeyLength)?;
        self.entries
            .push(PskEntry { key_id, key })
            .map_err(|_| AuthConfigError::TooManyKeys)
    }

    /// Finds the key of `key_id`.
    ///
    /// Compares against every entry without stopping at a match or at the
    /// first differing byte, so the time taken does not tell which ids exist
    /// (best effort: plain Rust gives no hard constant-time guarantee).
    fn lookup(&self, key_id: &[u8]) -> Option<&[u8]> {
        let mut found = None;
        for entry in &self.entries {
            if bytes_eq_no_early_exit(&entry.key_id, key_id) {
                found = Some(&entry.key[..]);
            }
        }
        found
    }
}

impl fmt::Debug for PskAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct KeyIds<'a>(&'a [PskEntry]);
        impl fmt::Debug for KeyIds<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|e| &e.key_id[..]))
                    .finish()
            }
        }
        f.debug_struct("PskAuthenticator")
            .field("key_ids", &KeyIds(&self.entries))
            .field("client_key_id", &self.client_key_id())
            .finish_non_exhaustive()
    }
}

impl Authenticator for PskAuthenticator {
    fn scheme(&self) -> u8 {
        SCHEME_PSK_HMAC_SHA256
    }

    fn client_key_id(&self) -> &[u8] {
        match self.client.and_then(|i| self.entries.get(i)) {
            Some(entry) => &entry.key_id,
            None => &[],
        }
    }

    fn prove(
        &self,
        key_id: &[u8],
        role: ProofRole,
        transcript_hash: &[u8; 32],
        dummy_secret: &[u8; 32],
    ) -> [u8; PROOF_LEN] {
        // Derive the dummy key even when the id is known, so both paths do
        // two HMACs and take the same time.
        let dummy_key = hmac_sha256(dummy_secret, &[key_id]);
        let key = self.lookup(key_id).unwrap_or(&dummy_key);
        hmac_sha256(key, &[role.label(), transcript_hash])
    }

    fn verify(
        &self,
        key_id: &[u8],
        role: ProofRole,
        transcript_hash: &[u8; 32],
        proof: &[u8],
    ) -> bool {
        // For an unknown id, compute the HMAC under a fixed dummy key anyway
        // so the work matches the known-id path; the result is discarded by
        // the `& known` below, even if a proof happened to match it.
        const DUMMY_KEY: [u8; 32] = [0; 32];
        let found = self.lookup(key_id);
        let known = found.is_some();
        let mut mac = new_hmac(found.unwrap_or(&DUMMY_KEY));
        mac.update(role.label());
        mac.update(transcript_hash);
        // `verify_slice` compares in constant time (via `subtle`) and
        // rejects a tag of the wrong length.
        let matches = mac.verify_slice(proof).is_ok();
        // Non-short-circuiting `&`, so both values are always computed.
        matches & known
    }
}

/// Running SHA-256 of the handshake bytes.
///
/// [`hash`](Transcript::hash) does not consume the state, so the transcript
/// can be hashed after the server HELLO (for the server proof) and continued
/// for the client proof.
#[derive(Clone, Default)]
pub struct Transcript {
    hasher: Sha256,
}

impl Transcript {
    /// An empty transcript.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends handshake bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        Digest::update(&mut self.hasher, bytes);
    }

    /// The SHA-256 of all bytes appended so far; the transcript can continue
    /// afterwards.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hasher state is not useful to print.
        f.debug_struct("Transcript").finish_non_exhaustive()
    }
}

/// An HMAC-SHA256 instance keyed with `key`.
fn new_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (long keys are hashed), so this cannot
    // fail; the `Result` only exists because the `KeyInit` trait is generic.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_hmac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Byte-slice equality that does not stop at the first difference.
fn bytes_eq_no_early_exit(a: &[u8], b: &[u8]) -> bool {
    // Lengths are not secret-dependent in a useful way (the client chose
    // `b`), so a length mismatch may return early.
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold back into an early-exit loop.
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::format;

    const KEY_A: [u8; 32] = [0x11; 32];
    const KEY_B: [u8; 32] = [0x22; 32];
    const TH: [u8; 32] = [0x5A; 32];
    const DUMMY: [u8; 32] = [0xD0; 32];

    fn server() -> PskAuthenticator {
        let mut auth = PskAuthenticator::new();
        auth.add_key(b"alice", &KEY_A).unwrap();
        auth.add_key(b"bob", &KEY_B).unwrap();
        auth
    }

    #[test]
    fn rfc4231_test_case_2() {
        let expected = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
            0x64, 0xec, 0x38, 0x43,
        ];
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]),
            expected
        );
        // Split input: the parts must be concatenated.
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya ", b"want ", b"for nothing?"]),
            expected
        );
    }

    #[test]
    fn proof_is_hmac_of_label_then_transcript_hash() {
        let mut input = [0u8; 19 + 32];
        input[..19].copy_from_slice(b"weft/1 server proof");
        input[19..].copy_from_slice(&TH);
        let mut mac = HmacSha256::new_from_slice(&KEY_A).unwrap();
        mac.update(&input);
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(
            server().prove(b"alice", ProofRole::Server, &TH, &DUMMY),
            expected
        );
    }

    #[test]
    fn labels_are_the_wire_text() {
        assert_eq!(ProofRole::Client.label(), b"weft/1 client proof");
        assert_eq!(ProofRole::Server.label(), b"weft/1 server proof");
    }

    #[test]
    fn round_trip_both_roles() {
        let server = server();
        let client = PskAuthenticator::with_client_key(b"alice", &KEY_A).unwrap();
        assert_eq!(client.client_key_id(), b"alice");
        assert_eq!(client.scheme(), 1);
        assert_eq!(server.scheme(), SCHEME_PSK_HMAC_SHA256);

        let id = client.client_key_id();
        let server_proof = server.prove(id, ProofRole::Server, &TH, &DUMMY);
        assert!(client.verify(id, ProofRole::Server, &TH, &server_proof));

        let client_proof = client.prove(id, ProofRole::Client, &TH, &DUMMY);
        assert!(server.verify(id, ProofRole::Client, &TH, &client_proof));
    }

    #[test]
    fn works_through_trait_object() {
        let auth: &dyn Authenticator = &server();
        let proof = auth.prove(b"bob", ProofRole::Client, &TH, &DUMMY);
        assert!(auth.verify(b"bob", ProofRole::Client, &TH, &proof));
    }

    #[test]
    fn forwarding_impls() {
        fn generic<A: Authenticator>(auth: A) -> bool {
            let proof = auth.prove(b"alice", ProofRole::Server, &TH, &DUMMY);
            auth.verify(b"alice", ProofRole::Server, &TH, &proof)
        }
        let owned = server();
        assert!(generic(&owned));
        assert!(generic(&owned as &dyn Authenticator));
        #[cfg(feature = "alloc")]
        {
            use alloc::{boxed::Box, sync::Arc};
            let shared = Arc::new(server());
            assert!(generic(Arc::clone(&shared)));
            let boxed: Box<dyn Authenticator> = Box::new(server());
            assert_eq!(boxed.scheme(), SCHEME_PSK_HMAC_SHA256);
            assert!(generic(boxed));
        }
    }

    #[test]
    fn wrong_key_fails() {
        let server = server();
        let impostor = PskAuthenticator::with_client_key(b"alice", &KEY_B).unwrap();
        let proof = impostor.prove(b"alice", ProofRole::Client, &TH, &DUMMY);
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &proof));
        // Bob's key under Alice's id also fails.
        let bob_proof = server.prove(b"bob", ProofRole::Client, &TH, &DUMMY);
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &bob_proof));
    }

    #[test]
    fn wrong_transcript_fails() {
        let server = server();
        let proof = server.prove(b"alice", ProofRole::Client, &TH, &DUMMY);
        let mut other = TH;
        other[31] ^= 1;
        assert!(!server.verify(b"alice", ProofRole::Client, &other, &proof));
    }

    #[test]
    fn reflected_proof_fails() {
        let server = server();
        let server_proof = server.prove(b"alice", ProofRole::Server, &TH, &DUMMY);
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &server_proof));
        let client_proof = server.prove(b"alice", ProofRole::Client, &TH, &DUMMY);
        assert!(!server.verify(b"alice", ProofRole::Server, &TH, &client_proof));
        assert_ne!(server_proof, client_proof);
    }

    #[test]
    fn unknown_key_id_proof_is_deterministic_dummy() {
        let server = server();
        let p1 = server.prove(b"mallory", ProofRole::Server, &TH, &DUMMY);
        let p2 = server.prove(b"mallory", ProofRole::Server, &TH, &DUMMY);
        assert_eq!(p1, p2);
        // It is exactly the proof under HMAC(dummy_secret, key_id).
        let dummy_key = hmac_sha256(&DUMMY, &[b"mallory"]);
        assert_eq!(
            p1,
            hmac_sha256(&dummy_key, &[ProofRole::Server.label(), &TH])
        );
        // Differs from the real keys' proofs, per id and per secret.
        assert_ne!(p1, server.prove(b"alice", ProofRole::Server, &TH, &DUMMY));
        assert_ne!(p1, server.prove(b"bob", ProofRole::Server, &TH, &DUMMY));
        assert_ne!(p1, server.prove(b"eve", ProofRole::Server, &TH, &DUMMY));
        assert_ne!(
            p1,
            server.prove(b"mallory", ProofRole::Server, &TH, &[0xD1; 32])
        );
        // The dummy secret does not affect proofs of known ids.
        assert_eq!(
            server.prove(b"alice", ProofRole::Server, &TH, &DUMMY),
            server.prove(b"alice", ProofRole::Server, &TH, &[0; 32])
        );
    }

    #[test]
    fn verify_rejects_unknown_ids() {
        let server = server();
        // Even the server's own dummy proof does not verify.
        let dummy_proof = server.prove(b"mallory", ProofRole::Client, &TH, &DUMMY);
        assert!(!server.verify(b"mallory", ProofRole::Client, &TH, &dummy_proof));
        // Nor does the proof under the fixed key verify uses internally.
        let fixed = hmac_sha256(&[0; 32], &[ProofRole::Client.label(), &TH]);
        assert!(!server.verify(b"mallory", ProofRole::Client, &TH, &fixed));
        assert!(!PskAuthenticator::new().verify(b"", ProofRole::Client, &TH, &fixed));
    }

    #[test]
    fn verify_rejects_wrong_lengths() {
        let server = server();
        let proof = server.prove(b"alice", ProofRole::Client, &TH, &DUMMY);
        assert!(server.verify(b"alice", ProofRole::Client, &TH, &proof));
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &proof[..31]));
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &[]));
        let mut long = [0u8; 33];
        long[..32].copy_from_slice(&proof);
        assert!(!server.verify(b"alice", ProofRole::Client, &TH, &long));
    }

    #[test]
    fn key_length_limits() {
        let mut auth = PskAuthenticator::new();
        assert_eq!(auth.add_key(b"a", &[]), Err(AuthConfigError::KeyLength));
        assert_eq!(
            auth.add_key(b"a", &[1; MIN_PSK_LEN - 1]),
            Err(AuthConfigError::KeyLength)
        );
        assert_eq!(
            auth.add_key(b"a", &[1; MAX_PSK_LEN + 1]),
            Err(AuthConfigError::KeyLength)
        );
        assert_eq!(auth.add_key(b"a", &[1; MIN_PSK_LEN]), Ok(()));
        assert_eq!(auth.add_key(b"b", &[1; MAX_PSK_LEN]), Ok(()));
        assert_eq!(MIN_PSK_LEN, 16);
        assert_eq!(MAX_PSK_LEN, 64);
        assert_eq!(PROOF_LEN, 32);
        assert_eq!(MAX_KEY_ID_LEN, 64);
        assert_eq!(
            PskAuthenticator::with_client_key(b"a", &[1; 8]).unwrap_err(),
            AuthConfigError::KeyLength
        );
    }

    #[test]
    fn key_id_and_capacity_limits() {
        let mut auth = PskAuthenticator::new();
        assert_eq!(
            auth.add_key(&[b'x'; MAX_KEY_ID_LEN + 1], &KEY_A),
            Err(AuthConfigError::KeyIdTooLong)
        );
        assert_eq!(auth.add_key(&[b'x'; MAX_KEY_ID_LEN], &KEY_A), Ok(()));
        assert_eq!(
            auth.add_key(&[b'x'; MAX_KEY_ID_LEN], &KEY_B),
            Err(AuthConfigError::DuplicateKeyId)
        );
        for i in 1..MAX_PSK_KEYS {
            auth.add_key(&[i as u8], &KEY_A).unwrap();
        }
        assert_eq!(
            auth.add_key(b"one more", &KEY_A),
            Err(AuthConfigError::TooManyKeys)
        );
        // Every key, including the last one, is usable.
        let last = [(MAX_PSK_KEYS - 1) as u8];
        let proof = auth.prove(&last, ProofRole::Client, &TH, &DUMMY);
        assert!(auth.verify(&last, ProofRole::Client, &TH, &proof));
    }

    #[test]
    fn server_only_has_empty_client_key_id() {
        assert_eq!(server().client_key_id(), b"");
        assert_eq!(PskAuthenticator::new().client_key_id(), b"");
    }

    #[test]
    fn debug_hides_key_bytes() {
        let mut auth = PskAuthenticator::with_client_key(b"alice", &[0xAB; 16]).unwrap();
        auth.add_key(b"bob", &[0xCD; 16]).unwrap();
        let text = format!("{auth:?}");
        assert!(text.contains("key_ids"));
        // Key ids are printed as byte lists; "alice" starts with 97.
        assert!(text.contains("97"));
        assert!(!text.contains("171"), "{text}"); // 0xAB
        assert!(!text.contains("205"), "{text}"); // 0xCD
    }

    #[test]
    fn error_display() {
        assert_eq!(
            format!("{}", AuthConfigError::DuplicateKeyId),
            "duplicate key id"
        );
        let err: &dyn core::error::Error = &AuthConfigError::TooManyKeys;
        assert_eq!(format!("{err}"), "too many pre-shared keys");
    }

    #[test]
    fn transcript_continues_after_hash() {
        let mut t = Transcript::new();
        // SHA-256 of the empty string.
        assert_eq!(
            t.hash(),
            [
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
                0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
                0x78, 0x52, 0xb8, 0x55
            ]
        );
        t.update(b"a");
        let mid = t.hash();
        assert_eq!(mid, t.hash(), "hash must not change the state");
        t.update(b"bc");
        // SHA-256("abc"), FIPS 180-2 example.
        assert_eq!(
            t.hash(),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
                0xf2, 0x00, 0x15, 0xad
            ]
        );
        assert_ne!(mid, t.hash());
        // A clone continues independently.
        let mut fork = t.clone();
        fork.update(b"d");
        assert_ne!(fork.hash(), t.hash());
    }

    #[test]
    fn authenticator_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PskAuthenticator>();
        assert_send_sync::<Transcript>();
    }
}

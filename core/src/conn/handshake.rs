//! The handshake: HELLOs, parameter negotiation and pre-shared-key proofs.

use super::{Connection, Event, Negotiated, Phase, Timer};
use crate::auth::{ProofRole, PROOF_LEN};
#[cfg(feature = "alloc")]
use crate::config::Role;
use crate::error::ErrorCode;
#[cfg(feature = "alloc")]
use crate::stream::{PeerStreamParams, StreamConfig, Streams};
use crate::time::Instant;
use crate::wire::codec::Writer;
use crate::wire::frame::Frame;
use crate::wire::params::Params;
#[cfg(feature = "alloc")]
use crate::wire::params::CAP_STREAMS;
use core::time::Duration;
use zerocopy::IntoBytes;

/// A refused handshake step: the code and the reason sent in CLOSE.
pub(super) type Refusal = (ErrorCode, &'static str);

fn min_nonzero(a: u64, b: u64) -> Option<Duration> {
    match (a, b) {
        (0, 0) => None,
        (0, x) | (x, 0) => Some(Duration::from_millis(x)),
        (x, y) => Some(Duration::from_millis(x.min(y))),
    }
}

impl Connection {
    fn encoded_params(&self) -> heapless::Vec<u8, 512> {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        self.config.params.encode(&mut w);
        let n = w.finish().unwrap_or(0);
        heapless::Vec::from_slice(&buf[..n]).unwrap_or_default()
    }

    fn transcript_frame(&mut self, f: &Frame<'_>) {
        let mut buf = [0u8; 1024];
        if let Some(n) = f.encode(&mut buf) {
            self.transcript.update(&buf[..n]);
        }
    }

    /// Client: queue the HELLO right behind the preface.
    pub(super) fn send_client_hello(&mut self) {
        let params = self.encoded_params();
        let (scheme, key_id): (u8, heapless::Vec<u8, 64>) = match &self.config.auth {
            Some(a) => (
                a.scheme(),
                heapless::Vec::from_slice(a.client_key_id()).unwrap_or_default(),
            ),
            None => (0, heapless::Vec::new()),
        };
        let f = Frame::ClientHello {
            nonce: self.nonce,
            params: &params,
            auth_scheme: scheme,
            key_id: &key_id,
            token: &[],
        };
        self.transcript.update(self.local_preface.as_bytes());
        self.transcript_frame(&f);
        self.push_control(&f);
    }

    /// Server: the client's HELLO arrived (`fb` is the frame as received).
    pub(super) fn on_client_hello(
        &mut self,
        now: Instant,
        fb: &[u8],
        params: &[u8],
        scheme: u8,
        key_id: &[u8],
    ) -> Result<(), Refusal> {
        let peer =
            Params::decode(params).map_err(|_| (ErrorCode::PROTOCOL_ERROR, "bad parameters"))?;
        self.transcript.update(fb);
        let our_scheme = self.config.auth.as_ref().map_or(0, |a| a.scheme());
        if our_scheme != 0 && scheme == 0 {
            return Err((ErrorCode::AUTH_REQUIRED, "authentication required"));
        }
        // A server without keys cannot authenticate: a client offering a scheme
        // (1, or one not assigned) is refused in place of the SERVER_HELLO, as
        // section 7.4 step 3 says, rather than silently connected unauthenticated.
        if our_scheme == 0 && scheme != 0 {
            return Err((ErrorCode::AUTH_FAILED, "authentication not offered"));
        }
        if our_scheme != 0 && scheme != our_scheme {
            return Err((ErrorCode::AUTH_FAILED, "authentication failed"));
        }
        self.peer_key_id = heapless::Vec::from_slice(key_id).unwrap_or_default();
        self.peer = Some(peer);
        let params = self.encoded_params();
        let mut f = Frame::ServerHello {
            nonce: self.nonce,
            params: &params,
            auth_scheme: our_scheme,
            proof: &[],
            token: &[],
        };
        self.transcript.update(self.local_preface.as_bytes());
        self.transcript_frame(&f);
        let proof: [u8; PROOF_LEN];
        if let Some(a) = &self.config.auth {
            // Unknown key ids get a proof under a dummy key: the answer looks the same.
            proof = a.prove(
                key_id,
                ProofRole::Server,
                &self.transcript.hash(),
                &self.secrets.dummy_secret(),
            );
            f = Frame::ServerHello {
                nonce: self.nonce,
                params: &params,
                auth_scheme: our_scheme,
                proof: &proof,
                token: &[],
            };
        }
        self.push_control(&f);
        if our_scheme == 0 {
            self.establish(now, false);
        } else {
            self.phase = Phase::AwaitAuth;
        }
        Ok(())
    }

    /// Client: the server's HELLO arrived.
    pub(super) fn on_server_hello(
        &mut self,
        now: Instant,
        nonce: [u8; 16],
        params: &[u8],
        scheme: u8,
        proof: &[u8],
    ) -> Result<(), Refusal> {
        let peer =
            Params::decode(params).map_err(|_| (ErrorCode::PROTOCOL_ERROR, "bad parameters"))?;
        if let Some(p) = self.peer_preface {
            self.transcript.update(p.as_bytes());
        }
        self.transcript_frame(&Frame::ServerHello {
            nonce,
            params,
            auth_scheme: scheme,
            proof: &[],
            token: &[],
        });
        self.peer = Some(peer);
        #[allow(clippy::clone_on_copy)] // an Arc with alloc, a &'static without
        let Some(auth) = self.config.auth.clone() else {
            if scheme != 0 {
                return Err((ErrorCode::AUTH_FAILED, "unexpected authentication"));
            }
            self.establish(now, false);
            return Ok(());
        };
        if scheme == 0 {
            return Err((ErrorCode::AUTH_REQUIRED, "server did not authenticate"));
        }
        let h = self.transcript.hash();
        let key_id = auth.client_key_id();
        if scheme != auth.scheme() || !auth.verify(key_id, ProofRole::Server, &h, proof) {
            return Err((ErrorCode::AUTH_FAILED, "authentication failed"));
        }
        let mine = auth.prove(key_id, ProofRole::Client, &h, &self.secrets.dummy_secret());
        self.push_control(&Frame::Auth { proof: &mine });
        self.establish(now, true);
        Ok(())
    }

    /// Server: the client's proof arrived.
    pub(super) fn on_auth(&mut self, now: Instant, proof: &[u8]) -> Result<(), Refusal> {
        let ok = match &self.config.auth {
            Some(a) => a.verify(
                &self.peer_key_id,
                ProofRole::Client,
                &self.transcript.hash(),
                proof,
            ),
            None => false,
        };
        if !ok {
            #[cfg(feature = "alloc")]
            {
                self.preauth.clear();
                self.preauth_bytes = 0;
            }
            return Err((ErrorCode::AUTH_FAILED, "authentication failed"));
        }
        self.establish(now, true);
        // Frames the client pipelined are acted on now, in order.
        #[cfg(feature = "alloc")]
        {
            self.replay = core::mem::take(&mut self.preauth);
            self.preauth_bytes = 0;
        }
        Ok(())
    }

    fn establish(&mut self, now: Instant, authenticated: bool) {
        let Some(peer) = self.peer else { return };
        let local = self.config.params;
        let n = Negotiated {
            version: self.version,
            capabilities: local.capabilities & peer.capabilities,
            integrity: local.integrity || peer.integrity,
            heartbeat: min_nonzero(local.heartbeat_ms, peer.heartbeat_ms),
            idle_timeout: min_nonzero(local.idle_timeout_ms, peer.idle_timeout_ms),
            authenticated,
            peer,
        };
        self.negotiated = Some(n);
        #[cfg(feature = "alloc")]
        if n.capabilities & CAP_STREAMS != 0 {
            let cfg = StreamConfig {
                max_concurrent_streams: u32::try_from(local.max_concurrent_streams)
                    .unwrap_or(u32::MAX),
                initial_stream_window: u32::try_from(local.initial_stream_window)
                    .unwrap_or(u32::MAX),
                max_stream_window: self.config.max_stream_window,
                initial_conn_window: u32::try_from(local.initial_conn_window).unwrap_or(u32::MAX),
                max_conn_window: self.config.max_conn_window,
                max_send_buffer: self.config.max_stream_send_buffer,
                max_total_send_buffer: self.config.max_stream_total_send_buffer,
            };
            let peer_cfg = PeerStreamParams {
                max_concurrent_streams: u32::try_from(peer.max_concurrent_streams)
                    .unwrap_or(u32::MAX),
                initial_stream_window: u32::try_from(peer.initial_stream_window)
                    .unwrap_or(u32::MAX),
                initial_conn_window: u32::try_from(peer.initial_conn_window).unwrap_or(u32::MAX),
            };
            self.streams = Some(Streams::new(self.role == Role::Client, cfg, peer_cfg));
        }
        self.phase = Phase::Established;
        self.timers.set(Timer::Handshake, None);
        self.arm_idle(now);
        self.arm_heartbeat(now);
        self.push_event(Event::Connected, None);
        self.close_after_handshake(now);
    }

    /// The handshake timer; true if it fired before the handshake completed (the
    /// connection failed).
    pub(super) fn handshake_timeout(&mut self, now: Instant) -> bool {
        if self.timers.take_due(Timer::Handshake, now)
            && matches!(self.phase, Phase::Handshake | Phase::AwaitAuth)
        {
            self.fail(now, ErrorCode::HANDSHAKE_TIMEOUT, "handshake timed out");
            return true;
        }
        false
    }
}

//! The receive path: preface and records in, and every frame's handler
//! ([`Connection::on_frame`]).

use super::handshake::Refusal;
use super::held::{FrameRef, Src};
use super::{Connection, Event, Phase, EVENT_SOFT_CAP};
use crate::config::Role;
use crate::error::ErrorCode;
#[cfg(feature = "alloc")]
use crate::ids::StreamId;
use crate::ids::{RequestId, SubId};
use crate::time::Instant;
use crate::wire::frame::{self, Frame, FrameError};
use crate::wire::preface::{self, Preface, PrefaceError};
use crate::wire::record;

/// A frame copied out for parsing while the connection is mutated: with `alloc` a
/// reference-counted handle (no copy), without it a copy of at most one record.
#[cfg(feature = "alloc")]
type Local = bytes::Bytes;
#[cfg(not(feature = "alloc"))]
type Local = heapless::Vec<u8, { super::capacity::RECORD }>;

impl Connection {
    /// Processes buffered input until it runs out or enough events are queued.
    /// Each step consumes at least one frame or record, so the work is bounded by
    /// the input.
    pub(super) fn process(&mut self, now: Instant) {
        while !self.events_full() {
            if matches!(self.phase, Phase::Failing | Phase::Closed) {
                self.apply_pending_eof();
                return;
            }
            #[cfg(feature = "alloc")]
            if let Some(fb) = self.replay.pop_front() {
                self.dispatch(now, FrameRef::Own(fb));
                continue;
            }
            if self.record_pos < self.record.len() {
                self.next_frame_in_record(now);
                // A finished record is let go at once (events that refer to it hold
                // it in `held`), so that once they are consumed the receive buffer
                // is the only owner of its storage and reuses it for the next
                // input instead of allocating.
                #[cfg(feature = "alloc")]
                if self.record_pos >= self.record.len() {
                    self.record = bytes::Bytes::new();
                    self.record_pos = 0;
                }
                continue;
            }
            if !self.next_record(now) {
                break;
            }
        }
        #[cfg(feature = "alloc")]
        self.drain_stream_events();
        self.check_drained(now);
        self.apply_pending_eof();
    }

    /// Processing pauses here: the event queue holds its soft cap.
    pub(super) fn events_full(&self) -> bool {
        self.events.len() >= EVENT_SOFT_CAP
    }

    /// Without `alloc`: drops records already read from the receive buffer once no
    /// event refers to them any more.
    #[cfg(not(feature = "alloc"))]
    pub(super) fn release_rx(&mut self) {
        if self.events.is_empty()
            && self.current.is_none()
            && self.record_pos >= self.record.len()
            && self.rx_consumed > 0
        {
            let len = self.rx.len();
            self.rx.copy_within(self.rx_consumed..len, 0);
            self.rx.truncate(len - self.rx_consumed);
            self.rx_consumed = 0;
            self.record = 0..0;
            self.record_pos = 0;
        }
    }

    /// The bytes of an incoming frame (not yet referred to by an event).
    fn incoming<'a>(&'a self, fb: &'a FrameRef) -> &'a [u8] {
        #[cfg(feature = "alloc")]
        match fb {
            FrameRef::Rec { span, .. } => &self.record[span.start as usize..span.end as usize],
            FrameRef::Own(b) => b,
        }
        #[cfg(not(feature = "alloc"))]
        {
            &self.rx[fb.clone()]
        }
    }

    fn local_copy(&self, fb: &FrameRef) -> Local {
        #[cfg(feature = "alloc")]
        match fb {
            FrameRef::Rec { span, .. } => self.record.slice(span.start as usize..span.end as usize),
            FrameRef::Own(b) => b.clone(),
        }
        #[cfg(not(feature = "alloc"))]
        {
            heapless::Vec::from_slice(self.frame_bytes(fb)).unwrap_or_default()
        }
    }

    /// Reads the preface or the next verified record from the buffer.
    fn next_record(&mut self, now: Instant) -> bool {
        if self.peer_preface.is_none() {
            match Preface::parse(&self.rx) {
                None => return false,
                Some(Err(_)) => {
                    self.fail(now, ErrorCode::BAD_PREFACE, "not a weft peer");
                    return false;
                }
                Some(Ok(p)) => {
                    #[cfg(feature = "alloc")]
                    let _ = self.rx.split_to(preface::LEN);
                    #[cfg(not(feature = "alloc"))]
                    {
                        // Nothing refers to the buffer yet: the preface comes first.
                        let len = self.rx.len();
                        self.rx.copy_within(preface::LEN..len, 0);
                        self.rx.truncate(len - preface::LEN);
                    }
                    match self.local_preface.negotiate(&p) {
                        Ok(v) => self.version = v,
                        Err(PrefaceError::NoCommonVersion | PrefaceError::BadMagic) => {
                            self.fail(now, ErrorCode::UNSUPPORTED_VERSION, "no common version");
                            return false;
                        }
                    }
                    if self.role == Role::Server {
                        use zerocopy::IntoBytes;
                        self.transcript.update(p.as_bytes());
                    }
                    self.peer_preface = Some(p);
                    return true;
                }
            }
        }
        // Records without a CRC are accepted only once integrity was negotiated off.
        let require = !self.integrity_off();
        let max = self.config.params.max_record_size as usize;
        #[cfg(feature = "alloc")]
        let unread = &self.rx[..];
        #[cfg(not(feature = "alloc"))]
        let unread = &self.rx[self.rx_consumed..];
        match record::parse(unread, max, require) {
            Ok(None) => false,
            Ok(Some(info)) => {
                let payload = info.payload_start..info.payload_start + info.payload_len;
                #[cfg(feature = "alloc")]
                {
                    use bytes::Buf;
                    let mut rec = self.rx.split_to(info.total_len).freeze();
                    // Trimmed in place: no reference count changes hands.
                    rec.truncate(payload.end);
                    rec.advance(payload.start);
                    self.record = rec;
                    self.record_seq += 1;
                }
                #[cfg(not(feature = "alloc"))]
                {
                    let base = self.rx_consumed;
                    self.record = base + payload.start..base + payload.end;
                    self.rx_consumed += info.total_len;
                }
                self.record_pos = 0;
                self.stats.records_received += 1;
                true
            }
            Err(code) => {
                self.fail(now, code, "bad record");
                false
            }
        }
    }

    fn next_frame_in_record(&mut self, now: Instant) {
        #[cfg(feature = "alloc")]
        let rest = &self.record[self.record_pos..];
        #[cfg(not(feature = "alloc"))]
        let rest = &self.rx[self.record.start + self.record_pos..self.record.end];
        let (t, len, hdr) = match frame::decode_header(rest) {
            Ok(h) => h,
            // Frames never span records.
            Err(FrameError::Incomplete) => {
                return self.fail(now, ErrorCode::PROTOCOL_ERROR, "frame crosses record");
            }
            Err(FrameError::Fatal(code)) => return self.fail(now, code, "bad frame header"),
        };
        let total = hdr.saturating_add(len);
        if total > self.config.params.max_frame_size as usize {
            return self.fail(now, ErrorCode::FRAME_TOO_LARGE, "frame too large");
        }
        if total > rest.len() {
            return self.fail(now, ErrorCode::PROTOCOL_ERROR, "frame crosses record");
        }
        // The most frequent frame goes straight to its handler: it has no fields to
        // decode, and an empty one takes the general path (its flood check).
        #[cfg(feature = "alloc")]
        if t == frame::ty::MESSAGE
            && len > 0
            && !matches!(self.phase, Phase::Handshake | Phase::AwaitAuth)
        {
            let span = self.record_pos..self.record_pos + total;
            self.record_pos += total;
            self.stats.frames_received += 1;
            let rec = core::mem::take(&mut self.record);
            let seq = Some(self.record_seq);
            self.on_message(
                now,
                &Src {
                    bytes: &rec,
                    span,
                    seq,
                },
                false,
            );
            self.record = rec;
            return;
        }
        #[cfg(not(feature = "alloc"))]
        let _ = t;
        #[cfg(feature = "alloc")]
        let fb = FrameRef::Rec {
            seq: self.record_seq,
            // Records are far below 4 GiB (24-bit length field).
            span: self.record_pos as u32..(self.record_pos + total) as u32,
        };
        #[cfg(not(feature = "alloc"))]
        let fb = self.record.start + self.record_pos..self.record.start + self.record_pos + total;
        self.record_pos += total;
        self.on_frame(now, fb);
    }

    /// Routes a frame according to the phase: handshake frames first, buffering of
    /// the client's pipelined frames until its proof, then normal dispatch.
    fn on_frame(&mut self, now: Instant, fb: FrameRef) {
        self.stats.frames_received += 1;
        let t = self.incoming(&fb)[0];
        match self.phase {
            Phase::Handshake => self.on_handshake_frame(now, fb),
            Phase::AwaitAuth if t == frame::ty::AUTH || t == frame::ty::CLOSE => {
                self.dispatch(now, fb)
            }
            #[cfg(feature = "alloc")]
            Phase::AwaitAuth => {
                let fb = self.local_copy(&fb);
                self.preauth_bytes += fb.len() + crate::config::PREAUTH_FRAME_OVERHEAD;
                if self.preauth_bytes > self.config.max_preauth_bytes {
                    return self.fail(
                        now,
                        ErrorCode::PREAUTH_LIMIT,
                        "too much before authentication",
                    );
                }
                self.preauth.push_back(fb);
            }
            // Without a heap nothing is buffered before authentication.
            #[cfg(not(feature = "alloc"))]
            Phase::AwaitAuth => self.fail(
                now,
                ErrorCode::PREAUTH_LIMIT,
                "too much before authentication",
            ),
            _ => self.dispatch(now, fb),
        }
    }

    fn on_handshake_frame(&mut self, now: Instant, fb: FrameRef) {
        let fb = self.local_copy(&fb);
        let (t, _, hdr) = match frame::decode_header(&fb) {
            Ok(h) => h,
            Err(_) => return self.fail(now, ErrorCode::PROTOCOL_ERROR, "bad frame"),
        };
        let body = &fb[hdr..];
        let f = match Frame::decode(t, body) {
            Ok(f) => f,
            Err(code) => return self.fail(now, code, "bad frame"),
        };
        let r: Result<(), Refusal> = match (self.role, f) {
            (
                Role::Server,
                Frame::ClientHello {
                    params,
                    auth_scheme,
                    key_id,
                    ..
                },
            ) => self.on_client_hello(now, &fb, params, auth_scheme, key_id),
            (
                Role::Client,
                Frame::ServerHello {
                    nonce,
                    params,
                    auth_scheme,
                    proof,
                    ..
                },
            ) => self.on_server_hello(now, nonce, params, auth_scheme, proof),
            (_, Frame::Close { code, reason, .. }) => {
                self.on_peer_close_error(code, reason);
                Ok(())
            }
            _ => Err((ErrorCode::PROTOCOL_ERROR, "expected hello")),
        };
        if let Err((code, reason)) = r {
            self.fail(now, code, reason);
        }
    }

    /// Counts a frame that carries nothing; true if the peer is flooding.
    pub(super) fn empty_frame(&mut self, now: Instant) -> bool {
        let limit = self.config.max_empty_frames_per_interval;
        let interval = self.config.reset_interval;
        if self.empties.hit(now, interval, limit) {
            self.fail(now, ErrorCode::EMPTY_FRAME_FLOOD, "too many empty frames");
            return true;
        }
        false
    }

    /// Every frame's handler once the handshake is done.
    fn dispatch(&mut self, now: Instant, fb: FrameRef) {
        // With alloc the record is moved out while its frame is handled (no reference
        // count changes hands) and put back after; without, the frame is copied out
        // of the receive buffer the handlers mutate around.
        #[cfg(feature = "alloc")]
        let (bytes, span, seq) = match fb {
            FrameRef::Rec { seq, span } => (
                core::mem::take(&mut self.record),
                span.start as usize..span.end as usize,
                Some(seq),
            ),
            FrameRef::Own(b) => {
                let n = b.len();
                (b, 0..n, None)
            }
        };
        #[cfg(feature = "alloc")]
        let local = &bytes[span.clone()];
        #[cfg(not(feature = "alloc"))]
        let copy = self.local_copy(&fb);
        #[cfg(not(feature = "alloc"))]
        let local = &copy[..];
        let r = match frame::decode_header(local) {
            Err(_) => Err((ErrorCode::PROTOCOL_ERROR, "bad frame")),
            Ok((t, _, hdr)) => match Frame::decode(t, &local[hdr..]) {
                Err(code) => Err((code, "bad frame")),
                Ok(f) => {
                    #[cfg(feature = "alloc")]
                    let src = Src {
                        bytes: &bytes,
                        span,
                        seq,
                    };
                    #[cfg(not(feature = "alloc"))]
                    let src = Src { span: &fb };
                    self.handle(now, &src, f)
                }
            },
        };
        #[cfg(feature = "alloc")]
        if seq.is_some() {
            self.record = bytes;
        }
        if let Err((code, reason)) = r {
            self.fail(now, code, reason);
        }
    }

    /// Hands each frame to its feature's handler; nothing else happens here.
    fn handle(&mut self, now: Instant, fb: &Src<'_>, f: Frame<'_>) -> Result<(), Refusal> {
        let pe = (ErrorCode::PROTOCOL_ERROR, "unexpected frame");
        match f {
            Frame::ClientHello { .. } | Frame::ServerHello { .. } => Err(pe),
            Frame::Auth { proof } if self.phase == Phase::AwaitAuth => self.on_auth(now, proof),
            Frame::Auth { .. } => Err(pe),
            Frame::Ping { token } => self.on_ping(token),
            Frame::Pong { token } => {
                self.on_pong(now, token);
                Ok(())
            }
            Frame::Close {
                code,
                last_request_id,
                reason,
            } => {
                self.on_peer_close(now, code, last_request_id, reason);
                Ok(())
            }
            Frame::Message { payload } => {
                self.on_message(now, fb, payload.is_empty());
                Ok(())
            }
            Frame::Request { id, timeout_ms, .. } => {
                self.on_request(now, fb, RequestId::new(id), timeout_ms)
            }
            Frame::Response { id, status, .. } => self.on_response(fb, RequestId::new(id), status),
            Frame::Cancel { id } => {
                self.on_cancel(RequestId::new(id));
                Ok(())
            }
            Frame::Subscribe {
                sub_id,
                policy,
                credit,
                filter,
                group,
            } => self.on_subscribe(fb, SubId::new(sub_id), policy, credit, filter, group),
            Frame::Unsubscribe { sub_id } => self.on_unsubscribe(SubId::new(sub_id)),
            Frame::SubCredit { sub_id, increment } => {
                self.on_sub_credit(now, SubId::new(sub_id), increment)
            }
            Frame::Publish { topic, .. } => self.on_publish(fb, topic),
            Frame::Deliver { sub_id, .. } => self.on_deliver(fb, SubId::new(sub_id)),
            Frame::SubDropped { sub_id, total } => self.on_sub_dropped(SubId::new(sub_id), total),
            #[cfg(feature = "alloc")]
            Frame::WindowUpdate { id, increment } => self.on_window_update(now, id, increment),
            #[cfg(feature = "alloc")]
            Frame::StreamData { id, flags, data } => {
                self.on_stream_data(now, StreamId::new(id), flags, data)
            }
            #[cfg(feature = "alloc")]
            Frame::StreamReset { id, code } => self.on_stream_reset(now, StreamId::new(id), code),
            #[cfg(not(feature = "alloc"))]
            Frame::WindowUpdate { .. } | Frame::StreamData { .. } | Frame::StreamReset { .. } => {
                // Streams were not offered: the capability is never negotiated.
                Err(pe)
            }
            #[cfg(feature = "alloc")]
            Frame::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => self.on_fragment(now, frag_id, flags, total_len, data),
            #[cfg(not(feature = "alloc"))]
            Frame::Fragment { .. } => {
                // We announced no room for reassembly.
                Err((ErrorCode::FRAGMENT_LIMIT, "no reassembly"))
            }
            Frame::Extension { .. } => {
                self.empty_frame(now);
                Ok(())
            }
        }
    }

    /// A FRAGMENT: reassembled, and once complete its inner frame is dispatched.
    #[cfg(feature = "alloc")]
    fn on_fragment(
        &mut self,
        now: Instant,
        frag_id: u64,
        flags: u8,
        total_len: u64,
        data: &[u8],
    ) -> Result<(), Refusal> {
        let done = self
            .reasm
            .on_fragment(frag_id, flags, total_len, data)
            .map_err(|c| (c, "bad fragment"))?;
        if let Some(inner) = done {
            // The inner frame is one of the fragmentable kinds, never a FRAGMENT, so
            // this recursion is one level deep.
            self.stats.frames_received += 1;
            self.dispatch(now, FrameRef::Own(inner));
        }
        Ok(())
    }

    /// Queues an event whose data is the frame `fb`.
    pub(super) fn push_frame_event(&mut self, ev: Event, fb: &Src<'_>) {
        #[cfg(feature = "alloc")]
        let r = self.held.refer(fb);
        #[cfg(not(feature = "alloc"))]
        let r = fb.span.clone();
        self.push_event(ev, Some(r));
    }
}

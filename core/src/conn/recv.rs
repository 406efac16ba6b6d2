//! The receive path: preface and records in, and every frame's handler
//! ([`Connection::on_frame`]).

use super::handshake::Refusal;
use super::held::{FrameRef, Src};
use super::{Connection, Event, Outcome, Phase, ServerSub, Side, EVENT_SOFT_CAP};
use crate::config::{OverflowPolicy, Role};
use crate::error::ErrorCode;
#[cfg(feature = "alloc")]
use crate::stream::{StreamEvent, StreamProtoError};
use crate::time::Instant;
use crate::wire::frame::{self, Frame, FrameError, Status};
use crate::wire::params::CAP_PUBSUB;
#[cfg(feature = "alloc")]
use crate::wire::params::CAP_STREAMS;
use crate::wire::preface::{self, Preface, PrefaceError};
use crate::wire::record;
use core::time::Duration;

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
        while self.events.len() < EVENT_SOFT_CAP {
            if matches!(self.phase, Phase::Failing | Phase::Closed) {
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
            self.on_message(&Src {
                bytes: &rec,
                span,
                seq,
            });
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

    fn on_peer_close_error(&mut self, code: ErrorCode, reason: &str) {
        self.close_received = true;
        self.set_reason(reason);
        self.first_close.get_or_insert((code, Side::Peer));
        self.enter_closed(super::CloseInfo {
            code,
            initiator: Side::Peer,
            kind: super::CloseKind::Error,
        });
    }

    /// Counts a frame that carries nothing; true if the peer is flooding.
    fn empty_frame(&mut self, now: Instant) -> bool {
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

    fn handle(&mut self, now: Instant, fb: &Src<'_>, f: Frame<'_>) -> Result<(), Refusal> {
        let client = self.role == Role::Client;
        let pe = (ErrorCode::PROTOCOL_ERROR, "unexpected frame");
        match f {
            Frame::ClientHello { .. } | Frame::ServerHello { .. } => return Err(pe),
            Frame::Auth { proof } => {
                if self.phase != Phase::AwaitAuth {
                    return Err(pe);
                }
                return self.on_auth(now, proof);
            }
            Frame::Ping { token } => {
                if self.pongs_queued >= self.config.max_queued_control {
                    return Err((ErrorCode::CONTROL_FLOOD, "too many pings"));
                }
                self.pongs_queued += 1;
                self.push_control(&Frame::Pong { token });
            }
            Frame::Pong { token } => {
                if let Some((t, sent)) = self.ping_out {
                    if t == token {
                        self.ping_out = None;
                        self.rtt_sample(now.saturating_duration_since(sent));
                    }
                }
            }
            Frame::Close {
                code,
                last_request_id,
                reason,
            } => self.on_peer_close(now, code, last_request_id, reason),
            Frame::Message { payload } => {
                if payload.is_empty() && self.empty_frame(now) {
                    return Ok(());
                }
                self.on_message(fb);
            }
            Frame::Request { id, timeout_ms, .. } => {
                self.stats.messages_received += 1;
                // Ids are unique among outstanding requests but may arrive out of order:
                // the sender's scheduler reorders by priority and lets small frames
                // pass large fragmented ones.
                if id == 0 || self.in_reqs.contains(id) {
                    return Err((ErrorCode::PROTOCOL_ERROR, "duplicate request id"));
                }
                self.max_peer_req = self.max_peer_req.max(id);
                // After our graceful CLOSE, requests above the id we announced are
                // not processed; the peer reports them as not processed.
                if self.close_sent && id > self.our_last_request {
                    return Ok(());
                }
                if self.in_reqs.len() as u64 >= self.config.params.max_concurrent_requests {
                    return Err((ErrorCode::REQUEST_LIMIT, "too many requests"));
                }
                let deadline = (timeout_ms > 0).then(|| now + Duration::from_millis(timeout_ms));
                if let Some(d) = deadline {
                    self.in_deadlines.insert(d, id);
                }
                // The limit check above keeps a fixed-capacity table within bounds.
                let _ = self.in_reqs.insert(id, deadline);
                let data = self.new_data_id();
                self.push_frame_event(Event::Request { id, deadline, data }, fb);
            }
            Frame::Response { id, status, .. } => {
                self.stats.messages_received += 1;
                if id == 0 || id >= self.next_req_id {
                    return Err((ErrorCode::PROTOCOL_ERROR, "response to unknown request"));
                }
                let Some(r) = self.out_reqs.remove(id) else {
                    return Ok(()); // late: cancelled or timed out here
                };
                if let Some(d) = r.deadline {
                    self.out_deadlines.remove(d, id);
                }
                let outcome = match status {
                    Status::Ok => Outcome::Ok,
                    Status::Error { code, .. } => Outcome::Error(code),
                    Status::NoResponder => Outcome::NoResponder,
                    Status::DeadlineExceeded => Outcome::DeadlineExceeded,
                    Status::Cancelled => Outcome::Cancelled,
                };
                let data = self.new_data_id();
                self.push_frame_event(
                    Event::Response {
                        id,
                        outcome,
                        data: Some(data),
                    },
                    fb,
                );
            }
            Frame::Cancel { id } => {
                if let Some(deadline) = self.in_reqs.remove(id) {
                    if let Some(d) = deadline {
                        self.in_deadlines.remove(d, id);
                    }
                    self.push_event(Event::RequestCancelled { id }, None);
                }
            }
            Frame::Subscribe {
                sub_id,
                policy,
                credit,
                filter,
                group,
            } => {
                if client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                let policy = OverflowPolicy::from_code(policy).ok_or(pe)?;
                let filter = core::str::from_utf8(filter).map_err(|_| pe)?;
                let group = core::str::from_utf8(group).map_err(|_| pe)?;
                let bad = (ErrorCode::PROTOCOL_ERROR, "bad filter");
                crate::topic::validate_filter(filter).map_err(|_| bad)?;
                if !group.is_empty() {
                    crate::topic::validate_queue_group(group).map_err(|_| bad)?;
                }
                if sub_id <= self.max_peer_sub {
                    return Err((ErrorCode::PROTOCOL_ERROR, "subscription id not increasing"));
                }
                self.max_peer_sub = sub_id;
                if self.server_subs.len() as u64 >= self.config.params.max_subscriptions {
                    return Err((ErrorCode::SUBSCRIPTION_LIMIT, "too many subscriptions"));
                }
                let credit = u32::try_from(credit).unwrap_or(u32::MAX);
                let _ = self.server_subs.insert(sub_id, ServerSub { credit });
                let data = self.new_data_id();
                self.push_frame_event(
                    Event::Subscribed {
                        sub_id,
                        policy,
                        credit,
                        data,
                    },
                    fb,
                );
            }
            Frame::Unsubscribe { sub_id } => {
                if client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                if self.server_subs.remove(sub_id).is_some() {
                    self.push_event(Event::Unsubscribed { sub_id }, None);
                }
            }
            Frame::SubCredit { sub_id, increment } => {
                if client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                if increment == 0 && self.empty_frame(now) {
                    return Ok(());
                }
                if let Some(s) = self.server_subs.get_mut(sub_id) {
                    let inc = u32::try_from(increment).unwrap_or(u32::MAX);
                    s.credit = s.credit.saturating_add(inc);
                    self.push_event(
                        Event::Credit {
                            sub_id,
                            increment: inc,
                        },
                        None,
                    );
                }
            }
            Frame::Publish { topic, .. } => {
                if client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                let ok = core::str::from_utf8(topic)
                    .ok()
                    .is_some_and(|t| crate::topic::validate_topic(t).is_ok());
                if !ok {
                    return Err((ErrorCode::PROTOCOL_ERROR, "bad topic"));
                }
                self.stats.messages_received += 1;
                let data = self.new_data_id();
                self.push_frame_event(Event::Published { data }, fb);
            }
            Frame::Deliver { sub_id, .. } => {
                if !client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                if sub_id == 0 || sub_id >= self.next_sub_id {
                    return Err((
                        ErrorCode::PROTOCOL_ERROR,
                        "delivery to unknown subscription",
                    ));
                }
                self.stats.messages_received += 1;
                let Some(s) = self.client_subs.get_mut(sub_id) else {
                    return Ok(()); // unsubscribed while in flight
                };
                if s.credit == 0 {
                    return Err((ErrorCode::FLOW_CONTROL_ERROR, "delivery beyond credit"));
                }
                s.credit -= 1;
                let data = self.new_data_id();
                self.push_frame_event(Event::Delivery { sub_id, data }, fb);
            }
            Frame::SubDropped { sub_id, total } => {
                if !client || !self.cap(CAP_PUBSUB) {
                    return Err(pe);
                }
                if self.client_subs.contains(sub_id) {
                    let prev = self.dropped_reported.get(sub_id).copied().unwrap_or(0);
                    let _ = self.dropped_reported.insert(sub_id, total);
                    self.stats.dropped += total.saturating_sub(prev);
                    self.push_event(Event::Dropped { sub_id, total }, None);
                }
            }
            #[cfg(feature = "alloc")]
            Frame::WindowUpdate { id, increment } => {
                if increment == 0 && self.empty_frame(now) {
                    return Ok(());
                }
                let s = self.streams_or(pe)?;
                s.on_window_update(id, increment).map_err(stream_proto)?;
            }
            #[cfg(feature = "alloc")]
            Frame::StreamData { id, flags, data } => {
                if data.is_empty() && flags == 0 && self.empty_frame(now) {
                    return Ok(());
                }
                // Copied into the stream's own buffer (`stream::recv_buf` says why):
                // a slice would keep the whole record alive.
                let s = self.streams_or(pe)?;
                s.on_data(
                    id,
                    flags & frame::STREAM_OPEN != 0,
                    flags & frame::STREAM_FIN != 0,
                    data,
                    now,
                )
                .map_err(stream_proto)?;
            }
            #[cfg(feature = "alloc")]
            Frame::StreamReset { id, code } => {
                let limit = self.config.max_resets_per_interval;
                let interval = self.config.reset_interval;
                if self.resets.hit(now, interval, limit) {
                    return Err((ErrorCode::RESET_FLOOD, "too many stream resets"));
                }
                let s = self.streams_or(pe)?;
                s.on_reset(id, code).map_err(stream_proto)?;
            }
            #[cfg(feature = "alloc")]
            Frame::Fragment {
                frag_id,
                flags,
                total_len,
                data,
            } => {
                let done = self
                    .reasm
                    .on_fragment(frag_id, flags, total_len, data)
                    .map_err(|c| (c, "bad fragment"))?;
                if let Some(inner) = done {
                    // The inner frame is one of the fragmentable kinds, never a
                    // FRAGMENT, so this recursion is one level deep.
                    self.stats.frames_received += 1;
                    self.dispatch(now, FrameRef::Own(inner));
                }
            }
            #[cfg(not(feature = "alloc"))]
            Frame::WindowUpdate { .. } | Frame::StreamData { .. } | Frame::StreamReset { .. } => {
                // Streams were not offered: the capability is never negotiated.
                return Err(pe);
            }
            #[cfg(not(feature = "alloc"))]
            Frame::Fragment { .. } => {
                // We announced no room for reassembly.
                return Err((ErrorCode::FRAGMENT_LIMIT, "no reassembly"));
            }
            Frame::Extension { .. } => {
                self.empty_frame(now);
            }
        }
        Ok(())
    }

    #[cfg(feature = "alloc")]
    fn streams_or(&mut self, e: Refusal) -> Result<&mut crate::stream::Streams, Refusal> {
        if !self.cap(CAP_STREAMS) {
            return Err(e);
        }
        self.streams.as_mut().ok_or(e)
    }

    /// Moves the stream component's events into the connection's queue.
    #[cfg(feature = "alloc")]
    pub(super) fn drain_stream_events(&mut self) {
        while let Some(e) = self
            .streams
            .as_mut()
            .and_then(|s| s.poll_event_keeping_closed())
        {
            let ev = match e {
                StreamEvent::Opened(id) => Event::StreamOpened(id),
                StreamEvent::Readable(id) | StreamEvent::Finished(id) => Event::StreamReadable(id),
                StreamEvent::Writable(id) => Event::StreamWritable(id),
                StreamEvent::Reset { id, code } => Event::StreamReset { id, code },
                StreamEvent::Closed(id) => Event::StreamClosed(id),
            };
            self.push_event(ev, None);
        }
    }

    /// A MESSAGE frame (non-empty, or empty within the flood limit).
    fn on_message(&mut self, fb: &Src<'_>) {
        self.stats.messages_received += 1;
        let data = self.new_data_id();
        self.push_frame_event(Event::Message { data }, fb);
    }

    /// Queues an event whose data is the frame `fb`.
    fn push_frame_event(&mut self, ev: Event, fb: &Src<'_>) {
        #[cfg(feature = "alloc")]
        let r = self.held.refer(fb);
        #[cfg(not(feature = "alloc"))]
        let r = fb.span.clone();
        self.push_event(ev, Some(r));
    }

    fn rtt_sample(&mut self, sample: Duration) {
        // RFC 6298 smoothing.
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
        self.min_rtt = Some(self.min_rtt.map_or(sample, |m| m.min(sample)));
        #[cfg(feature = "alloc")]
        if let (Some(s), Some(srtt)) = (self.streams.as_mut(), self.srtt) {
            s.set_rtt(u64::try_from(srtt.as_micros()).unwrap_or(u64::MAX));
        }
    }

    fn on_peer_close(&mut self, now: Instant, code: ErrorCode, last_request_id: u64, reason: &str) {
        if !code.is_graceful() {
            return self.on_peer_close_error(code, reason);
        }
        if self.close_received {
            return;
        }
        self.close_received = true;
        self.peer_last_request = last_request_id;
        // Our requests the peer will not process end now, safe to retry.
        let ids = self.out_reqs.keys_above(last_request_id);
        for id in ids {
            if let Some(r) = self.out_reqs.remove(id) {
                if let Some(d) = r.deadline {
                    self.out_deadlines.remove(d, id);
                }
            }
            self.push_event(
                Event::Response {
                    id,
                    outcome: Outcome::NotProcessed,
                    data: None,
                },
                None,
            );
        }
        if !self.close_sent {
            self.first_close = Some((code, Side::Peer));
            self.set_reason(reason);
            self.push_event(Event::Draining { code }, None);
            self.send_close(now, code, "", Side::Peer);
        }
        self.check_drained(now);
    }
}

#[cfg(feature = "alloc")]
fn stream_proto(e: StreamProtoError) -> Refusal {
    match e {
        StreamProtoError::FlowControl => (ErrorCode::FLOW_CONTROL_ERROR, "stream flow control"),
        StreamProtoError::StreamState => (ErrorCode::STREAM_STATE_ERROR, "stream state"),
        StreamProtoError::StreamLimit => (ErrorCode::STREAM_STATE_ERROR, "stream limit"),
    }
}

//! `pair_ops`: a client and a server, both honest weft-core connections, driven by
//! a structured sequence of operations: sends, requests, responses, cancels,
//! subscriptions, publishes and deliveries, streams, closes, time, and the wire
//! moved in fuzzer-chosen pieces (arbitrary split points, either direction first).
//!
//! A model of what each application did checks, as events arrive and at the end:
//! - every request ends with exactly one outcome (a cancelled one with none), and an
//!   outcome that came from the responder is the one it sent, payload and text too;
//! - messages, publishes and deliveries arrive unchanged, at most once and in order
//!   per priority level and kind (small frames may pass a fragmented one, spec
//!   section 9), with nothing skipped; requests arrive unchanged, once;
//! - stream bytes arrive unchanged and in order, and a stream read to its end holds
//!   everything the peer wrote before finishing;
//! - two honest peers never close with a protocol error;
//! - both sides reach closed; when both closed gracefully nothing was lost.

use crate::drive::{Endpoint, Got};
use crate::frames::{Num, Text};
use crate::setup::{config, T0};
use arbitrary::{Arbitrary, Unstructured};
use core::time::Duration;
use std::collections::BTreeMap;
use weft_core::conn::{CloseKind, Connection, Event, Outcome};
use weft_core::testing::{CLIENT_SEED, SERVER_SEED};
use weft_core::wire::frame::Frame;
use weft_core::{ErrorCode, OverflowPolicy, Priority, RequestId, Role, StreamId, SubId};

/// Which side acts.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The client.
    Client,
    /// The server.
    Server,
}

impl Who {
    fn ix(self) -> usize {
        self as usize
    }
    fn other(self) -> Who {
        match self {
            Who::Client => Who::Server,
            Who::Server => Who::Client,
        }
    }
}

/// One operation.
#[derive(Arbitrary, Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Send {
        who: Who,
        len: u16,
        prio: u8,
    },
    Request {
        who: Who,
        subject: Text,
        len: u16,
        timeout_ms: Option<u16>,
        prio: u8,
    },
    Respond {
        who: Who,
        which: u8,
        outcome: u8,
        len: u16,
    },
    Cancel {
        who: Who,
        which: u8,
    },
    Subscribe {
        filter: Text,
        group: Option<Text>,
        policy: u8,
    },
    Unsubscribe(u8),
    Publish {
        topic: Text,
        len: u16,
        prio: u8,
    },
    Deliver {
        which: u8,
        topic: Text,
        len: u16,
    },
    Consumed(u8),
    OpenStream(Who),
    StreamWrite {
        who: Who,
        which: u8,
        len: u16,
    },
    StreamRead {
        who: Who,
        which: u8,
        len: u16,
    },
    StreamFinish {
        who: Who,
        which: u8,
    },
    StreamReset {
        who: Who,
        which: u8,
        code: u8,
    },
    Close {
        who: Who,
        code: Num,
    },
    /// Time passes for both (ms); due timers fire.
    Time(u16),
    /// Up to `len` bytes in flight towards `to` are handed to it.
    Move {
        to: Who,
        len: u16,
    },
    /// Everything in flight both ways, until quiet.
    Flush,
}

/// The input.
#[derive(Arbitrary, Debug)]
pub struct PairInput {
    /// Configuration bits of both sides (see [`crate::setup::config`]).
    pub bits: u8,
    /// Start before the handshake (its bytes move with the ops) instead of after it.
    pub fresh: bool,
    /// The operations.
    pub ops: Vec<Op>,
}

/// A payload that names itself: `[seq as 4 bytes LE]` then a pattern.
fn payload(seq: u32, len: u16) -> Vec<u8> {
    let len = usize::from(len).max(4);
    let mut p = seq.to_le_bytes().to_vec();
    p.extend((4..len).map(|i| (seq as usize * 31 + i) as u8));
    p
}

fn seq_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(p.get(..4)?.try_into().ok()?))
}

fn prio(b: u8) -> Priority {
    crate::app::prio(b)
}

/// Something sent on an ordered channel (messages, publishes, deliveries).
#[derive(Debug)]
struct Sent {
    class: (u8, bool, u64),
    payload: Vec<u8>,
    topic: Vec<u8>,
    received: bool,
}

/// An ordered channel: entries by sequence number and, per class (priority, large,
/// subscription), the sequence numbers in sending order and how many arrived.
#[derive(Default, Debug)]
struct Channel {
    sent: Vec<Sent>,
    order: BTreeMap<(u8, bool, u64), (Vec<u32>, usize)>,
}

impl Channel {
    fn next_seq(&self) -> u32 {
        self.sent.len() as u32
    }

    fn push(&mut self, class: (u8, bool, u64), payload: Vec<u8>, topic: Vec<u8>) {
        let seq = self.next_seq();
        self.order.entry(class).or_default().0.push(seq);
        self.sent.push(Sent {
            class,
            payload,
            topic,
            received: false,
        });
    }

    fn arrived(&mut self, what: &str, got: &Got, sub: u64) {
        let seq = seq_of(&got.payload).unwrap_or_else(|| panic!("{what}: no sequence number"));
        let s = self
            .sent
            .get_mut(seq as usize)
            .unwrap_or_else(|| panic!("{what} {seq} was never sent"));
        assert!(!s.received, "{what} {seq} arrived twice");
        assert_eq!(
            s.class.2, sub,
            "{what} {seq} arrived on another subscription"
        );
        assert_eq!(s.payload, got.payload, "{what} {seq} changed");
        assert_eq!(s.topic, got.subject, "{what} {seq}: topic changed");
        s.received = true;
        let (order, n) = self.order.get_mut(&s.class).expect("class recorded");
        assert_eq!(
            order.get(*n),
            Some(&seq),
            "{what} {seq} out of order in class {:?} (expected {:?})",
            s.class,
            order.get(*n)
        );
        *n += 1;
    }

    fn all_arrived(&self, what: &str) {
        for (i, s) in self.sent.iter().enumerate() {
            assert!(
                s.received,
                "{what} {i} lost although both closed gracefully"
            );
        }
    }
}

#[derive(Debug, PartialEq)]
enum ReqState {
    Pending,
    Cancelled,
    Done(Outcome),
}

#[derive(Debug)]
struct OutReq {
    subject: Vec<u8>,
    payload: Vec<u8>,
    state: ReqState,
    arrived: bool,
    /// What the responder answered: outcome, message, payload.
    answer: Option<(Outcome, String, Vec<u8>)>,
}

/// One side's application and what it expects of the other.
#[derive(Default, Debug)]
#[cfg_attr(not(feature = "std"), allow(dead_code))]
struct Side {
    /// Our requests by id.
    reqs: BTreeMap<RequestId, OutReq>,
    /// The peer's requests we may still answer, in arrival order.
    to_answer: Vec<RequestId>,
    /// Messages we sent.
    messages: Channel,
    /// Streams we know of (opened by either side), by id: live while present.
    streams: Vec<StreamId>,
    /// Per stream: what we wrote, whether we finished; what we read, whether we saw
    /// its end, whether it was reset.
    written: BTreeMap<StreamId, (Vec<u8>, bool)>,
    read: BTreeMap<StreamId, (Vec<u8>, bool)>,
    reset: BTreeMap<StreamId, bool>,
    closed: Option<weft_core::conn::CloseInfo>,
    /// (Client) our subscriptions, live ones, and every one ever made.
    subs: Vec<SubId>,
    ever_subs: Vec<SubId>,
    /// (Server) the peer's subscriptions, live ones.
    peer_subs: Vec<SubId>,
}

struct World {
    ep: [Endpoint; 2],
    side: [Side; 2],
    /// Bytes in flight towards the client ([0]) and the server ([1]).
    wire: [Vec<u8>; 2],
    /// Publishes (client to server) and deliveries (server to client).
    publishes: Channel,
    deliveries: Channel,
    /// Close codes the applications used, and whether any stream was reset (an
    /// application resetting too fast trips RESET_FLOOD by design).
    app_codes: Vec<u64>,
    resets: bool,
    /// The client queued work before it knew the server's limits (spec 7.3: a
    /// server with smaller limits than the defaults applies them to pipelined
    /// frames, and its pre-authentication budget is its own).
    pipelined: bool,
    max_frame: usize,
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

fn outcome(b: u8) -> Outcome {
    match b % 5 {
        0 => Outcome::Ok,
        1 => Outcome::Error(u64::from(b)),
        2 => Outcome::NoResponder,
        3 => Outcome::DeadlineExceeded,
        _ => Outcome::Cancelled,
    }
}

fn text(t: &Text) -> String {
    String::from_utf8_lossy(&t.bytes()).into_owned()
}

impl World {
    fn new(input: &PairInput) -> World {
        let (c, s) = if input.fresh {
            (
                Endpoint::new(
                    Connection::new(Role::Client, config(input.bits), T0, CLIENT_SEED),
                    T0,
                ),
                Endpoint::new(
                    Connection::new(Role::Server, config(input.bits), T0, SERVER_SEED),
                    T0,
                ),
            )
        } else {
            crate::setup::handshaken(input.bits)
        };
        let mut w = World {
            ep: [c, s],
            side: [Side::default(), Side::default()],
            wire: [Vec::new(), Vec::new()],
            publishes: Channel::default(),
            deliveries: Channel::default(),
            app_codes: Vec::new(),
            resets: false,
            pipelined: false,
            max_frame: config(input.bits).params.max_frame_size as usize,
        };
        for ep in &mut w.ep {
            ep.log = Some(Vec::new());
            ep.sent.clear();
        }
        w
    }

    fn large(&self, f: &Frame<'_>) -> bool {
        f.encoded_len() > self.max_frame
    }

    /// Output of both sides into the wire, and their events into the model.
    fn settle(&mut self) {
        for who in [Who::Client, Who::Server] {
            let i = who.ix();
            self.ep[i].transmit();
            let out = self.ep[i].take_sent();
            self.wire[who.other().ix()].extend_from_slice(&out);
            self.events(who);
        }
    }

    fn events(&mut self, who: Who) {
        let i = who.ix();
        let log = self.ep[i].log.replace(Vec::new()).unwrap_or_default();
        for got in log {
            self.event(who, &got);
        }
    }

    fn event(&mut self, who: Who, got: &Got) {
        let i = who.ix();
        let peer = who.other().ix();
        match got.ev {
            Event::Message { .. } => self.side[peer].messages.arrived("message", got, 0),
            Event::Request { id, .. } => {
                let r = self.side[peer]
                    .reqs
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("request {id} was never sent"));
                assert!(!r.arrived, "request {id} arrived twice");
                assert_eq!(r.subject, got.subject, "request {id}: subject changed");
                assert_eq!(r.payload, got.payload, "request {id}: payload changed");
                r.arrived = true;
                self.side[i].to_answer.push(id);
            }
            Event::RequestCancelled { id } => self.side[i].to_answer.retain(|&r| r != id),
            Event::Response { id, outcome, .. } => {
                let r = self.side[i]
                    .reqs
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("outcome of request {id}, never sent"));
                assert_eq!(
                    r.state,
                    ReqState::Pending,
                    "second outcome {outcome:?} of request {id}"
                );
                r.state = ReqState::Done(outcome);
                let from_responder = matches!(
                    outcome,
                    Outcome::Ok | Outcome::Error(_) | Outcome::NoResponder | Outcome::Cancelled
                );
                if from_responder {
                    let (o, m, p) = r
                        .answer
                        .as_ref()
                        .unwrap_or_else(|| panic!("request {id} got {outcome:?}, never answered"));
                    assert_eq!(*o, outcome, "request {id}: outcome changed");
                    if matches!(outcome, Outcome::Ok | Outcome::Error(_)) {
                        assert_eq!(p, &got.payload, "request {id}: response payload changed");
                    }
                    if matches!(outcome, Outcome::Error(_)) {
                        assert_eq!(m, &got.text, "request {id}: error message changed");
                    }
                }
            }
            Event::Subscribed { sub_id, .. } => {
                assert_eq!(who, Who::Server, "Subscribed at the client");
                assert!(
                    self.side[peer].ever_subs.contains(&sub_id),
                    "Subscribed {sub_id}: the client never subscribed it"
                );
                assert!(
                    !self.side[i].peer_subs.contains(&sub_id),
                    "Subscribed {sub_id} twice"
                );
                self.side[i].peer_subs.push(sub_id);
            }
            Event::Unsubscribed { sub_id } => self.side[i].peer_subs.retain(|&s| s != sub_id),
            Event::Published { .. } => self.publishes.arrived("publish", got, 0),
            Event::Delivery { sub_id, .. } => {
                assert!(
                    self.side[i].subs.contains(&sub_id),
                    "delivery on subscription {sub_id}, not live at the client"
                );
                self.deliveries.arrived("delivery", got, sub_id.get());
            }
            Event::StreamOpened(id) => {
                assert!(
                    !self.side[i].streams.contains(&id),
                    "stream {id} opened twice"
                );
                self.side[i].streams.push(id);
            }
            Event::StreamReset { id, .. } => {
                self.side[i].reset.insert(id, true);
            }
            Event::StreamClosed(id) => self.side[i].streams.retain(|&s| s != id),
            Event::Closed(info) => {
                assert!(self.side[i].closed.is_none(), "closed twice");
                let c = info.code;
                let expected = c == ErrorCode::NO_ERROR
                    || c == ErrorCode::IDLE_TIMEOUT
                    || c == ErrorCode::DRAIN_TIMEOUT
                    || c == ErrorCode::HANDSHAKE_TIMEOUT
                    || (c == ErrorCode::RESET_FLOOD && self.resets)
                    || (self.pipelined
                        && [
                            ErrorCode::SUBSCRIPTION_LIMIT,
                            ErrorCode::REQUEST_LIMIT,
                            ErrorCode::PREAUTH_LIMIT,
                        ]
                        .contains(&c))
                    || self.app_codes.contains(&c.0);
                assert!(
                    expected,
                    "{who:?} closed with {c:?} ({info:?}) by honest peers"
                );
                self.side[i].closed = Some(info);
            }
            _ => {}
        }
    }

    fn apply(&mut self, op: &Op) {
        let before = self.ep[0].conn.negotiated().is_none();
        let queued = self.ep[0].conn.stats().messages_sent;
        self.apply_op(op);
        if before && self.ep[0].conn.stats().messages_sent != queued {
            self.pipelined = true;
        }
    }

    fn apply_op(&mut self, op: &Op) {
        match op {
            Op::Send { who, len, prio: p } => {
                let s = &mut self.side[who.ix()];
                let body = payload(s.messages.next_seq(), *len);
                let large = self.large(&Frame::Message { payload: &body });
                if self.ep[who.ix()].conn.send_message(&body, prio(*p)).is_ok() {
                    let class = (*p % 4, large, 0);
                    self.side[who.ix()].messages.push(class, body, Vec::new());
                }
            }
            Op::Request {
                who,
                subject,
                len,
                timeout_ms,
                prio: p,
            } => {
                let e = &mut self.ep[who.ix()];
                let subject = subject.bytes();
                let body = payload(self.side[who.ix()].reqs.len() as u32, *len);
                let t = timeout_ms.map(|ms| Duration::from_millis(u64::from(ms)));
                if let Ok(id) = e.conn.request(e.now, &subject, &body, t, prio(*p)) {
                    let old = self.side[who.ix()].reqs.insert(
                        id,
                        OutReq {
                            subject,
                            payload: body,
                            state: ReqState::Pending,
                            arrived: false,
                            answer: None,
                        },
                    );
                    assert!(old.is_none(), "request id {id} reused");
                }
            }
            Op::Respond {
                who,
                which,
                outcome: o,
                len,
            } => {
                if let Some(id) = pick(&self.side[who.ix()].to_answer, *which) {
                    self.respond(*who, id, *o, *len);
                }
            }
            Op::Cancel { who, which } => {
                let s = &mut self.side[who.ix()];
                let pending: Vec<RequestId> = s
                    .reqs
                    .iter()
                    .filter(|(_, r)| r.state == ReqState::Pending)
                    .map(|(&id, _)| id)
                    .collect();
                if let Some(id) = pick(&pending, *which) {
                    if self.ep[who.ix()].conn.cancel(id).is_ok() {
                        self.side[who.ix()].reqs.get_mut(&id).expect("known").state =
                            ReqState::Cancelled;
                    }
                }
            }
            Op::Subscribe {
                filter,
                group,
                policy,
            } => {
                let g = group.as_ref().map(text);
                let p = OverflowPolicy::from_code(policy % 4).unwrap_or_default();
                if let Ok(id) = self.ep[0].conn.subscribe(&text(filter), g.as_deref(), p) {
                    assert!(!self.side[0].subs.contains(&id), "subscription id reused");
                    self.side[0].subs.push(id);
                    self.side[0].ever_subs.push(id);
                }
            }
            Op::Unsubscribe(which) => {
                if let Some(id) = pick(&self.side[0].subs, *which) {
                    if self.ep[0].conn.unsubscribe(id).is_ok() {
                        self.side[0].subs.retain(|&s| s != id);
                    }
                }
            }
            Op::Publish {
                topic,
                len,
                prio: p,
            } => {
                let topic = text(topic);
                let body = payload(self.publishes.next_seq(), *len);
                let large = self.large(&Frame::Publish {
                    topic: topic.as_bytes(),
                    payload: &body,
                });
                if self.ep[0].conn.publish(&topic, &body, prio(*p)).is_ok() {
                    self.publishes
                        .push((*p % 4, large, 0), body, topic.into_bytes());
                }
            }
            Op::Deliver { which, topic, len } => {
                let Some(sub_id) = pick(&self.side[1].peer_subs, *which) else {
                    return;
                };
                let topic = topic.bytes();
                let body = payload(self.deliveries.next_seq(), *len);
                let large = self.large(&Frame::Deliver {
                    sub_id: sub_id.get(),
                    topic: &topic,
                    payload: &body,
                });
                if self.ep[1]
                    .conn
                    .deliver(sub_id, &topic, &body, Priority::Normal)
                    .is_ok()
                {
                    self.deliveries.push((2, large, sub_id.get()), body, topic);
                }
            }
            Op::Consumed(which) => {
                if let Some(id) = pick(&self.side[0].subs, *which) {
                    let _ = self.ep[0].conn.delivery_consumed(id);
                }
            }
            Op::OpenStream(who) => self.open_stream(*who),
            Op::StreamWrite { who, which, len } => self.stream_write(*who, *which, *len),
            Op::StreamRead { who, which, len } => self.stream_read(*who, *which, *len),
            Op::StreamFinish { who, which } => self.stream_finish(*who, *which),
            Op::StreamReset { who, which, code } => self.stream_reset(*who, *which, *code),
            Op::Close { who, code } => {
                let code = match code {
                    Num::Small(c) => ErrorCode(u64::from(*c % 24)),
                    Num::Mid(c) => ErrorCode(ErrorCode::APPLICATION_MIN + u64::from(*c)),
                    Num::Any(c) => ErrorCode(*c),
                };
                self.app_codes.push(code.0);
                let e = &mut self.ep[who.ix()];
                e.conn.close(e.now, code, "bye");
            }
            Op::Time(ms) => self.advance(u64::from(*ms)),
            Op::Move { to, len } => {
                let w = &mut self.wire[to.ix()];
                let n = usize::from(*len).min(w.len());
                let chunk: Vec<u8> = w.drain(..n).collect();
                self.ep[to.ix()].feed(&chunk);
            }
            Op::Flush => self.flush(),
        }
    }

    /// Both clocks advance together: each side's timers fire in order.
    fn advance(&mut self, ms: u64) {
        for ep in &mut self.ep {
            ep.advance(ms);
        }
    }

    fn flush(&mut self) {
        for _ in 0..1000 {
            self.settle();
            if self.wire.iter().all(Vec::is_empty) {
                return;
            }
            for to in [Who::Server, Who::Client] {
                let chunk = core::mem::take(&mut self.wire[to.ix()]);
                self.ep[to.ix()].feed(&chunk);
            }
        }
        panic!("the pair did not settle");
    }

    /// The end: everything delivered, pending requests answered, the client
    /// closes gracefully, time passes until both are closed; then the checks.
    fn finish(mut self) {
        self.flush();
        let e = &mut self.ep[0];
        e.conn.close(e.now, ErrorCode::NO_ERROR, "done");
        self.settle();
        for _ in 0..200 {
            self.flush();
            for who in [Who::Client, Who::Server] {
                for id in self.side[who.ix()].to_answer.clone() {
                    self.respond(who, id, 0, 8);
                }
            }
            self.flush();
            if self.side.iter().all(|s| s.closed.is_some()) {
                break;
            }
            self.advance(500);
        }
        for who in [Who::Client, Who::Server] {
            let s = &self.side[who.ix()];
            assert!(s.closed.is_some(), "{who:?} never closed");
            for (id, r) in &s.reqs {
                assert!(
                    r.state != ReqState::Pending,
                    "{who:?}'s request {id} ended with no outcome"
                );
            }
        }
        let graceful = self
            .side
            .iter()
            .all(|s| s.closed.is_some_and(|c| c.kind == CloseKind::Graceful));
        if graceful {
            for s in &self.side {
                s.messages.all_arrived("message");
                for (id, r) in &s.reqs {
                    if let (Some((o, _, _)), ReqState::Done(got)) = (&r.answer, &r.state) {
                        assert!(
                            got == o || *got == Outcome::DeadlineExceeded,
                            "request {id} answered {o:?} but ended {got:?}"
                        );
                    }
                }
            }
            self.publishes.all_arrived("publish");
        }
        for ep in &mut self.ep {
            ep.log = None;
            ep.finish();
        }
    }

    fn respond(&mut self, who: Who, id: RequestId, o: u8, len: u16) {
        let i = who.ix();
        let out = outcome(o);
        let msg = if matches!(out, Outcome::Error(_)) {
            format!("error {o}")
        } else {
            String::new()
        };
        let body = payload(id.get() as u32, len);
        if self.ep[i]
            .conn
            .respond(id, out, &msg, &body, prio(o))
            .is_ok()
        {
            self.side[i].to_answer.retain(|&r| r != id);
            let peer = who.other().ix();
            let r = self.side[peer].reqs.get_mut(&id).expect("request known");
            assert!(r.answer.is_none(), "request {id} answered twice");
            r.answer = Some((out, msg, body));
        }
    }
}

#[cfg(feature = "std")]
impl World {
    fn open_stream(&mut self, who: Who) {
        if let Ok(id) = self.ep[who.ix()].conn.open_stream() {
            self.side[who.ix()].streams.push(id);
        }
    }

    fn stream_write(&mut self, who: Who, which: u8, len: u16) {
        let i = who.ix();
        let Some(id) = pick(&self.side[i].streams, which) else {
            return;
        };
        let w = self.side[i].written.entry(id).or_default();
        let data: Vec<u8> = (0..usize::from(len))
            .map(|k| ((w.0.len() + k) * 7 + id.get() as usize) as u8)
            .collect();
        if let Ok(n) = self.ep[i].conn.stream_write(id, &data) {
            assert!(n <= data.len());
            assert!(!w.1, "stream {id}: write accepted after finish");
            w.0.extend_from_slice(&data[..n]);
        }
    }

    fn stream_read(&mut self, who: Who, which: u8, len: u16) {
        use weft_core::stream::ReadOutcome;
        let i = who.ix();
        let Some(id) = pick(&self.side[i].streams, which) else {
            return;
        };
        let mut buf = vec![0u8; usize::from(len)];
        let got = self.ep[i].conn.stream_read(id, &mut buf);
        let peer = &self.side[who.other().ix()];
        let written = peer.written.get(&id).cloned().unwrap_or_default();
        let was_reset = self.side[i].reset.contains_key(&id) || peer.reset.contains_key(&id);
        let r = self.side[i].read.entry(id).or_default();
        match got {
            Ok(ReadOutcome::Data(n)) => {
                assert!(n <= buf.len());
                assert!(!r.1, "stream {id}: data after its end");
                r.0.extend_from_slice(&buf[..n]);
                assert!(
                    written.0.starts_with(&r.0),
                    "stream {id}: read bytes differ from those written"
                );
            }
            Ok(ReadOutcome::Fin) => {
                r.1 = true;
                if !was_reset {
                    assert!(written.1, "stream {id}: end read, writer never finished");
                    assert_eq!(r.0, written.0, "stream {id}: end read before all data");
                }
            }
            Err(_) => {}
        }
    }

    fn stream_finish(&mut self, who: Who, which: u8) {
        let i = who.ix();
        let Some(id) = pick(&self.side[i].streams, which) else {
            return;
        };
        if self.ep[i].conn.stream_finish(id).is_ok() {
            self.side[i].written.entry(id).or_default().1 = true;
        }
    }

    fn stream_reset(&mut self, who: Who, which: u8, code: u8) {
        let i = who.ix();
        let Some(id) = pick(&self.side[i].streams, which) else {
            return;
        };
        if self.ep[i].conn.stream_reset(id, u64::from(code)).is_ok() {
            self.resets = true;
            self.side[i].reset.insert(id, true);
        }
    }
}

/// Without a heap the connection has no streams: those operations do nothing.
#[cfg(not(feature = "std"))]
impl World {
    fn open_stream(&mut self, _: Who) {}
    fn stream_write(&mut self, _: Who, _: u8, _: u16) {}
    fn stream_read(&mut self, _: Who, _: u8, _: u16) {}
    fn stream_finish(&mut self, _: Who, _: u8) {}
    fn stream_reset(&mut self, _: Who, _: u8, _: u8) {}
}

/// The target.
pub fn run(data: &[u8]) {
    let Ok(input) = PairInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    // Both sides must agree on waiving the CRC; all other bits apply to both.
    let mut w = World::new(&input);
    for op in input.ops.iter().take(512) {
        w.apply(op);
        w.settle();
    }
    w.finish();
}

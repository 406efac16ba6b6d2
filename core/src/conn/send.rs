//! The transmit side: queues of encoded frames per priority, large frames sent as
//! fragments that interleave with small ones, and the scheduler that packs frames into
//! records in the caller's buffer.

use super::store::ByteVec;
use crate::config::Priority;
use crate::wire::frame::{self, Frame};
use crate::wire::record;
#[cfg(feature = "alloc")]
use crate::wire::{
    codec::Writer,
    frame::{FRAG_FIRST, FRAG_LAST},
};
#[cfg(feature = "alloc")]
use alloc::{collections::VecDeque, vec::Vec};
#[cfg(feature = "alloc")]
use bytes::Bytes;

/// Encoded frames, consumed from the front.
#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    buf: ByteVec,
    head: usize,
}

impl FrameQueue {
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `f` encoded; false (nothing queued) if a fixed capacity is full.
    pub(crate) fn push(&mut self, f: &Frame<'_>) -> bool {
        self.push_sized(f, f.encoded_len())
    }

    /// [`push`](Self::push) of a frame whose encoded length `n` is known.
    fn push_sized(&mut self, f: &Frame<'_>, n: usize) -> bool {
        if self.buf.grow(n).is_none() {
            // A fixed buffer may have room once the consumed head is dropped.
            if self.head == 0 {
                return false;
            }
            self.compact();
            if self.buf.grow(n).is_none() {
                return false;
            }
        }
        let start = self.buf.len() - n;
        let tail = &mut self.buf.as_mut_slice()[start..];
        let written = f.encode(tail);
        debug_assert_eq!(written, Some(n));
        true
    }

    fn compact(&mut self) {
        self.buf.drain_front(self.head);
        self.head = 0;
    }

    /// Length of the next frame.
    fn peek_len(&self) -> Option<usize> {
        let (_, body, hdr) = frame::decode_header(&self.buf.as_slice()[self.head..]).ok()?;
        Some(hdr + body)
    }

    fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_len().unwrap_or(0);
        out[..n].copy_from_slice(&self.buf.as_slice()[self.head..self.head + n]);
        self.consume(n);
        n
    }

    /// Moves as many whole frames as fit into `out` with one copy; returns the bytes
    /// and the frames moved.
    fn pop_run_into(&mut self, out: &mut [u8]) -> (usize, u64) {
        let queued = &self.buf.as_slice()[self.head..];
        let (mut n, mut frames) = (0, 0);
        while let Ok((_, body, hdr)) = frame::decode_header(&queued[n..]) {
            if n + hdr + body > out.len() {
                break;
            }
            n += hdr + body;
            frames += 1;
        }
        out[..n].copy_from_slice(&queued[..n]);
        self.consume(n);
        (n, frames)
    }

    /// Drops `n` bytes from the front.
    fn consume(&mut self, n: usize) {
        self.head += n;
        // Compact once the consumed part dominates, so memory follows the queue length.
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head > 4096 && self.head * 2 > self.buf.len() {
            self.compact();
        }
    }
}

/// A frame too large for the peer's max frame size, sent as FRAGMENT frames.
#[cfg(feature = "alloc")]
#[derive(Debug)]
struct Bulk {
    frag_id: u64,
    /// The inner frame's type, length and fields before the payload.
    prefix: Vec<u8>,
    payload: Bytes,
    /// Bytes of `prefix ‖ payload` already sent.
    sent: usize,
}

#[cfg(feature = "alloc")]
impl Bulk {
    fn total(&self) -> usize {
        self.prefix.len() + self.payload.len()
    }
}

/// One priority level: small frames and fragmenting large ones, served round-robin.
#[derive(Debug, Default)]
struct Lane {
    small: FrameQueue,
    /// Bytes ever pushed to and popped from `small`: a frame has left once
    /// `popped` reaches the `pushed` value recorded when it was queued.
    pushed: u64,
    popped: u64,
    #[cfg(feature = "alloc")]
    bulk: VecDeque<Bulk>,
    turn: u8,
}

impl Lane {
    /// True if anything waits at this level (streams aside).
    fn busy(&self) -> bool {
        #[cfg(feature = "alloc")]
        if !self.bulk.is_empty() {
            return true;
        }
        !self.small.is_empty()
    }
}

/// Where a queued data frame sits, to tell later whether it has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendMark {
    /// In a lane's small queue, ending at this many bytes pushed.
    Small {
        /// Priority level.
        lane: u8,
        /// `Lane::pushed` right after the frame.
        end: u64,
    },
    /// Being fragmented under this id.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    Bulk {
        /// Priority level.
        lane: u8,
        /// The fragment id.
        frag_id: u64,
    },
}

/// Where every data lane's queue ends at one moment: each frame queued until then
/// has left once [`Tx::all_sent`] says so (a flush waits for that, spec 14.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxMark {
    /// Each lane's `pushed` then.
    small_end: [u64; Priority::LEVELS],
    /// The last fragment id given out then.
    #[cfg(feature = "alloc")]
    last_frag: u64,
}

/// A source of frames the scheduler asks when a lane is served (streams).
pub(crate) trait FrameSource {
    /// Writes one frame of priority level `prio`, at most `max` bytes, into `out`,
    /// returning its length.
    fn next_frame(&mut self, out: &mut [u8], max: usize, prio: u8) -> Option<usize>;
    /// Writes one control frame (window update, reset), if any: these go ahead of
    /// all data.
    fn next_control(&mut self, out: &mut [u8]) -> Option<usize>;
    /// True if the source has nothing to send at all.
    fn is_idle(&self) -> bool;
}

/// No streams (a build without `alloc`, tests, or a fill that sends control only).
pub(crate) struct NoStreams;

impl FrameSource for NoStreams {
    fn next_frame(&mut self, _: &mut [u8], _: usize, _: u8) -> Option<usize> {
        None
    }
    fn next_control(&mut self, _: &mut [u8]) -> Option<usize> {
        None
    }
    fn is_idle(&self) -> bool {
        true
    }
}

/// All queued output.
#[derive(Debug, Default)]
pub(crate) struct Tx {
    /// Handshake and control frames: always first.
    pub(crate) control: FrameQueue,
    lanes: [Lane; Priority::LEVELS],
    queued: usize,
    /// Part of `queued` that belongs to fragmenting (bulk) frames.
    queued_bulk: usize,
    #[cfg(feature = "alloc")]
    next_frag_id: u64,
    /// Large frames started but not finished, across lanes, and the peer's cap on
    /// them (its `max_concurrent_fragmented`).
    #[cfg(feature = "alloc")]
    fragmenting: usize,
    #[cfg(feature = "alloc")]
    pub(crate) max_fragmenting: usize,
    pub(crate) frames_sent: u64,
}

impl Tx {
    /// True once the frame at `m` has been written out completely.
    pub(crate) fn is_sent(&self, m: SendMark) -> bool {
        match m {
            SendMark::Small { lane, end } => self.lanes[lane as usize].popped >= end,
            #[cfg(feature = "alloc")]
            SendMark::Bulk { lane, frag_id } => !self.lanes[lane as usize]
                .bulk
                .iter()
                .any(|b| b.frag_id == frag_id),
            #[cfg(not(feature = "alloc"))]
            SendMark::Bulk { .. } => true,
        }
    }

    /// Where the data lanes end now.
    pub(crate) fn mark(&self) -> TxMark {
        TxMark {
            small_end: core::array::from_fn(|i| self.lanes[i].pushed),
            #[cfg(feature = "alloc")]
            last_frag: self.next_frag_id,
        }
    }

    /// True once every data frame queued before `m` was taken has been written out
    /// completely.
    pub(crate) fn all_sent(&self, m: &TxMark) -> bool {
        self.lanes.iter().zip(m.small_end).all(|(l, end)| {
            #[cfg(feature = "alloc")]
            if l.bulk.iter().any(|b| b.frag_id <= m.last_frag) {
                return false;
            }
            l.popped >= end
        })
    }

    /// Messages (data frames, large ones counted once) still waiting to be written.
    pub(crate) fn data_frames_queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| {
                let mut n = 0;
                let mut rest = &l.small.buf.as_slice()[l.small.head..];
                while let Ok((_, body, hdr)) = frame::decode_header(rest) {
                    n += 1;
                    rest = &rest[hdr + body..];
                }
                #[cfg(feature = "alloc")]
                {
                    n += l.bulk.len();
                }
                n
            })
            .sum()
    }

    /// Drops everything queued (an error close), keeping the counters.
    pub(crate) fn clear(&mut self) {
        let frames_sent = self.frames_sent;
        #[cfg(feature = "alloc")]
        let max_fragmenting = self.max_fragmenting;
        *self = Tx::default();
        self.frames_sent = frames_sent;
        #[cfg(feature = "alloc")]
        {
            self.max_fragmenting = max_fragmenting;
        }
    }

    /// Bytes queued in data lanes.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Bytes of fragmenting frames queued.
    pub(crate) fn queued_bulk(&self) -> usize {
        self.queued_bulk
    }

    /// True if nothing at all is queued.
    pub(crate) fn is_idle(&self) -> bool {
        self.control.is_empty() && self.queued == 0
    }

    /// Queues a data frame at `prio`; false (nothing queued) if a fixed capacity is
    /// full. Frames whose encoding exceeds `max_frame` go out as fragments (with
    /// `alloc`): the fields are encoded once, the payload is kept as shared bytes.
    pub(crate) fn push_data(
        &mut self,
        prio: Priority,
        f: &Frame<'_>,
        max_frame: usize,
    ) -> Option<SendMark> {
        self.push_data_sized(prio, f, f.encoded_len(), max_frame)
    }

    /// [`push_data`](Self::push_data) of a frame whose encoded length `n` is known.
    pub(crate) fn push_data_sized(
        &mut self,
        prio: Priority,
        f: &Frame<'_>,
        n: usize,
        max_frame: usize,
    ) -> Option<SendMark> {
        let lane = &mut self.lanes[prio as usize];
        if n <= max_frame {
            if !lane.small.push_sized(f, n) {
                return None;
            }
            lane.pushed += n as u64;
            self.queued += n;
            return Some(SendMark::Small {
                lane: prio as u8,
                end: lane.pushed,
            });
        }
        #[cfg(feature = "alloc")]
        {
            let (prefix, payload) = match without_payload(f) {
                Some((stripped, payload)) => {
                    let mut prefix = Vec::with_capacity(n - payload.len());
                    prefix.push(f.ty());
                    let mut lenbuf = [0u8; crate::varint::MAX_LEN];
                    let l = crate::varint::encode(f.body_len() as u64, &mut lenbuf).unwrap_or(0);
                    prefix.extend_from_slice(&lenbuf[..l]);
                    let fields = stripped.body_len();
                    let at = prefix.len();
                    prefix.resize(at + fields, 0);
                    let mut w = Writer::new(&mut prefix[at..]);
                    stripped.encode_body(&mut w);
                    debug_assert_eq!(w.finish(), Some(fields));
                    (prefix, Bytes::copy_from_slice(payload))
                }
                None => {
                    let mut full = alloc::vec![0u8; n];
                    f.encode(&mut full);
                    (full, Bytes::new())
                }
            };
            self.queued += n;
            self.queued_bulk += n;
            self.next_frag_id += 1;
            lane.bulk.push_back(Bulk {
                frag_id: self.next_frag_id,
                prefix,
                payload,
                sent: 0,
            });
            Some(SendMark::Bulk {
                lane: prio as u8,
                frag_id: self.next_frag_id,
            })
        }
        #[cfg(not(feature = "alloc"))]
        None
    }

    /// Fills `out` with records of at most `max_record` payload bytes each. Returns
    /// the bytes written. `streams` supplies stream frames at normal priority.
    pub(crate) fn fill(
        &mut self,
        out: &mut [u8],
        max_record: usize,
        max_frame: usize,
        integrity: bool,
        streams: &mut dyn FrameSource,
        data_allowed: bool,
    ) -> usize {
        let overhead = record::overhead(integrity);
        let mut pos = 0;
        loop {
            let room = out.len().saturating_sub(pos + overhead).min(max_record);
            if room == 0 {
                break;
            }
            let start = pos + record::HEADER_LEN;
            let mut used = 0;
            if data_allowed && self.control.is_empty() && streams.is_idle() {
                let (n, frames) = self.small_run(&mut out[start..start + room]);
                used += n;
                self.frames_sent += frames;
            }
            while let Some(n) = self.next_frame(
                &mut out[start + used..start + room],
                max_frame,
                streams,
                data_allowed,
            ) {
                used += n;
                self.frames_sent += 1;
            }
            if used == 0 {
                break;
            }
            match record::seal(&mut out[pos..], used, integrity) {
                Some(n) => pos += n,
                None => break,
            }
        }
        pos
    }

    /// The common case of many small messages, with one copy: when only small
    /// frames wait at the highest busy level (no fragments there, no stream data, no
    /// control frames), the scheduler would take them one by one anyway.
    fn small_run(&mut self, out: &mut [u8]) -> (usize, u64) {
        let Some(lane) = self.lanes.iter_mut().find(|l| l.busy()) else {
            return (0, 0);
        };
        #[cfg(feature = "alloc")]
        if !lane.bulk.is_empty() {
            return (0, 0);
        }
        let (n, frames) = lane.small.pop_run_into(out);
        if frames > 0 {
            lane.popped += n as u64;
            lane.turn = 1;
            self.queued -= n;
        }
        (n, frames)
    }

    /// Writes the next frame that fits in `out`.
    fn next_frame(
        &mut self,
        out: &mut [u8],
        max_frame: usize,
        streams: &mut dyn FrameSource,
        data_allowed: bool,
    ) -> Option<usize> {
        if let Some(n) = self.control.peek_len() {
            return (n <= out.len()).then(|| self.control.pop_into(out));
        }
        // Stream window updates and resets are control frames too: never behind data.
        if data_allowed {
            if let Some(n) = streams.next_control(out) {
                return Some(n);
            }
        }
        if !data_allowed {
            return None;
        }
        for (p, lane) in self.lanes.iter_mut().enumerate() {
            // Every level takes turns between small frames, fragments and streams.
            let sources = 3;
            let mut blocked = false;
            for k in 0..sources {
                let which = (lane.turn + k) % sources;
                let got = match which {
                    0 => match lane.small.peek_len() {
                        Some(n) if n <= out.len() => {
                            let n = lane.small.pop_into(out);
                            lane.popped += n as u64;
                            self.queued -= n;
                            Some(n)
                        }
                        Some(_) => {
                            blocked = true;
                            None
                        }
                        None => None,
                    },
                    #[cfg(feature = "alloc")]
                    1 => match write_fragment(
                        &mut lane.bulk,
                        out,
                        max_frame,
                        &mut self.fragmenting,
                        self.max_fragmenting,
                    ) {
                        Ok(Some((n, data))) => {
                            self.queued -= data;
                            self.queued_bulk -= data;
                            Some(n)
                        }
                        Ok(None) => None,
                        Err(()) => {
                            blocked = true;
                            None
                        }
                    },
                    #[cfg(not(feature = "alloc"))]
                    1 => None,
                    _ => streams.next_frame(out, max_frame.min(out.len()), p as u8),
                };
                if let Some(n) = got {
                    lane.turn = (which + 1) % sources;
                    return Some(n);
                }
            }
            // A higher level with pending data that did not fit waits for the next
            // record rather than letting lower levels overtake it.
            if blocked {
                return None;
            }
        }
        None
    }
}

/// The same frame with an empty payload, and the payload, for the kinds whose
/// payload comes last.
#[cfg(feature = "alloc")]
fn without_payload<'a>(f: &Frame<'a>) -> Option<(Frame<'a>, &'a [u8])> {
    let empty: &[u8] = &[];
    Some(match *f {
        Frame::Message { payload } => (Frame::Message { payload: empty }, payload),
        Frame::Request {
            id,
            timeout_ms,
            subject,
            payload,
        } => (
            Frame::Request {
                id,
                timeout_ms,
                subject,
                payload: empty,
            },
            payload,
        ),
        Frame::Response {
            id,
            status,
            payload,
        } => (
            Frame::Response {
                id,
                status,
                payload: empty,
            },
            payload,
        ),
        Frame::Publish { topic, payload } => (
            Frame::Publish {
                topic,
                payload: empty,
            },
            payload,
        ),
        Frame::Deliver {
            sub_id,
            topic,
            payload,
        } => (
            Frame::Deliver {
                sub_id,
                topic,
                payload: empty,
            },
            payload,
        ),
        _ => return None,
    })
}

/// Writes one FRAGMENT of the lane's first large frame. Large frames of one lane go
/// one after the other (so their messages stay in order) while small frames pass
/// between fragments; a new one starts only while fewer than the peer's
/// `max_concurrent_fragmented` are in progress. `Err` if `out` cannot hold a useful
/// fragment.
#[cfg(feature = "alloc")]
fn write_fragment(
    bulk: &mut VecDeque<Bulk>,
    out: &mut [u8],
    max_frame: usize,
    fragmenting: &mut usize,
    max_fragmenting: usize,
) -> Result<Option<(usize, usize)>, ()> {
    let Some(b) = bulk.front_mut() else {
        return Ok(None);
    };
    let first = b.sent == 0;
    if first && *fragmenting >= max_fragmenting {
        return Ok(None);
    }
    let total = b.total();
    let remaining = total - b.sent;
    let mut flags = if first { FRAG_FIRST } else { 0 };
    let limit = out.len().min(max_frame);
    // Header budget: type, length, id, flags and the total length on the first.
    let hdr = 1
        + 3
        + crate::varint::len(b.frag_id)
        + 1
        + if first {
            crate::varint::len(total as u64)
        } else {
            0
        };
    if limit <= hdr + 16 {
        return Err(());
    }
    let chunk = remaining.min(limit - hdr);
    if chunk == remaining {
        flags |= FRAG_LAST;
    }
    // Gather the chunk from prefix ‖ payload.
    let data: Vec<u8>;
    let slice: &[u8] = if b.sent >= b.prefix.len() {
        let off = b.sent - b.prefix.len();
        &b.payload[off..off + chunk]
    } else {
        let p_end = b.prefix.len().min(b.sent + chunk);
        let rest = chunk - (p_end - b.sent);
        data = [&b.prefix[b.sent..p_end], &b.payload[..rest]].concat();
        &data
    };
    let f = Frame::Fragment {
        frag_id: b.frag_id,
        flags,
        total_len: total as u64,
        data: slice,
    };
    let n = f.encode(out).ok_or(())?;
    b.sent += chunk;
    if first {
        *fragmenting += 1;
    }
    if flags & FRAG_LAST != 0 {
        bulk.pop_front();
        *fragmenting -= 1;
    }
    Ok(Some((n, chunk)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::decode_header;
    use std::vec::Vec;

    fn frames_in(records: &[u8], integrity: bool) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = records;
        while !rest.is_empty() {
            let info = record::parse(rest, 65_535, integrity).unwrap().unwrap();
            let mut p = &rest[info.payload_start..info.payload_start + info.payload_len];
            while !p.is_empty() {
                let (t, len, h) = decode_header(p).unwrap();
                out.push((t, p[h..h + len].to_vec()));
                p = &p[h + len..];
            }
            rest = &rest[info.total_len..];
        }
        out
    }

    #[test]
    fn control_first_then_priority_order() {
        let mut tx = Tx::default();
        tx.push_data(Priority::Low, &Frame::Message { payload: b"low" }, 16_384);
        tx.push_data(Priority::High, &Frame::Message { payload: b"high" }, 16_384);
        assert!(tx.control.push(&Frame::Ping { token: 1 }));
        let mut buf = [0u8; 256];
        let n = tx.fill(&mut buf, 65_535, 16_384, true, &mut NoStreams, true);
        let f = frames_in(&buf[..n], true);
        assert_eq!(f[0].0, frame::ty::PING);
        assert_eq!(f[1].1, b"high");
        assert_eq!(f[2].1, b"low");
        assert!(tx.is_idle());
    }

    #[test]
    #[cfg(feature = "alloc")]
    fn large_frame_fragments_interleave_with_small() {
        let mut tx = Tx {
            max_fragmenting: 8,
            ..Tx::default()
        };
        let big = Bytes::from(std::vec![7u8; 5000]);
        tx.push_data(Priority::Normal, &Frame::Message { payload: &big }, 1024);
        for _ in 0..3 {
            tx.push_data(Priority::Normal, &Frame::Message { payload: b"s" }, 1024);
        }
        let mut buf = std::vec![0u8; 1 << 16];
        let n = tx.fill(&mut buf, 65_535, 1024, false, &mut NoStreams, true);
        let f = frames_in(&buf[..n], false);
        let kinds: Vec<u8> = f.iter().map(|x| x.0).collect();
        // Small frames appear between fragments rather than after all of them.
        let first_small = kinds.iter().position(|&t| t == frame::ty::MESSAGE).unwrap();
        let last_frag = kinds
            .iter()
            .rposition(|&t| t == frame::ty::FRAGMENT)
            .unwrap();
        assert!(first_small < last_frag, "{kinds:?}");
        // Reassemble and compare.
        let mut inner = Vec::new();
        for (t, body) in &f {
            if *t == frame::ty::FRAGMENT {
                match Frame::decode(*t, body).unwrap() {
                    Frame::Fragment { data, .. } => inner.extend_from_slice(data),
                    _ => unreachable!(),
                }
            }
        }
        let (t, len, h) = decode_header(&inner).unwrap();
        assert_eq!(t, frame::ty::MESSAGE);
        assert_eq!(&inner[h..h + len], &big[..]);
        assert!(tx.is_idle());
        assert!(f.iter().all(|(_, b)| b.len() + 4 <= 1024));
    }

    #[test]
    fn runs_of_small_frames_keep_priority_order_and_record_bounds() {
        let mut tx = Tx::default();
        // 80 frames of 22 bytes: within a fixed-capacity lane too (capacity::TX).
        for i in 0..80u8 {
            let f = Frame::Message { payload: &[i; 20] };
            assert!(tx.push_data(Priority::Normal, &f, 16_384).is_some());
        }
        tx.push_data(
            Priority::High,
            &Frame::Message { payload: b"first" },
            16_384,
        );
        tx.push_data(Priority::Low, &Frame::Message { payload: b"last" }, 16_384);
        // Records of at most 100 payload bytes: four 22-byte frames each.
        let mut buf = [0u8; 8192];
        let n = tx.fill(&mut buf, 100, 16_384, true, &mut NoStreams, true);
        let f = frames_in(&buf[..n], true);
        assert_eq!(f.len(), 82, "everything fits the buffer");
        assert_eq!(tx.frames_sent, 82);
        assert_eq!(f[0].1, b"first");
        for (i, (t, body)) in f[1..81].iter().enumerate() {
            assert_eq!(*t, frame::ty::MESSAGE);
            assert_eq!(body, &[i as u8; 20]);
        }
        assert_eq!(f[81].1, b"last");
        assert!(tx.is_idle() && tx.queued_bytes() == 0);
        // Every record respected the limit.
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let info = record::parse(rest, 65_535, true).unwrap().unwrap();
            assert!(info.payload_len <= 100);
            rest = &rest[info.total_len..];
        }
    }

    /// A stream source with one pending window update.
    struct OneUpdate(bool);
    impl FrameSource for OneUpdate {
        fn next_frame(&mut self, _: &mut [u8], _: usize, _: u8) -> Option<usize> {
            None
        }
        fn next_control(&mut self, out: &mut [u8]) -> Option<usize> {
            if std::mem::take(&mut self.0) {
                Frame::WindowUpdate {
                    id: 1,
                    increment: 5,
                }
                .encode(out)
            } else {
                None
            }
        }
        fn is_idle(&self) -> bool {
            !self.0
        }
    }

    #[test]
    fn stream_control_frames_go_before_urgent_data() {
        let mut tx = Tx::default();
        tx.push_data(Priority::Urgent, &Frame::Message { payload: b"u" }, 16_384);
        let mut buf = [0u8; 256];
        let n = tx.fill(&mut buf, 65_535, 16_384, true, &mut OneUpdate(true), true);
        let f = frames_in(&buf[..n], true);
        assert_eq!(f[0].0, frame::ty::WINDOW_UPDATE);
        assert_eq!(f[1].0, frame::ty::MESSAGE);
    }

    #[test]
    fn small_buffer_writes_nothing_and_keeps_queue() {
        let mut tx = Tx::default();
        tx.push_data(
            Priority::Normal,
            &Frame::Message { payload: &[1; 100] },
            16_384,
        );
        let mut buf = [0u8; 50];
        assert_eq!(
            tx.fill(&mut buf, 65_535, 16_384, true, &mut NoStreams, true),
            0
        );
        assert_eq!(tx.queued_bytes(), 102);
    }
}

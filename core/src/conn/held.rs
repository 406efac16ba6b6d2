//! Received frames held for queued events, without a reference count per frame.
//!
//! With `alloc` a verified record is one shared [`Bytes`]. Giving every event its own
//! slice of it would cost two atomic increments and two decrements per message
//! (about a fifth of the core's receive time for 64-byte messages), so an event
//! holds the record's sequence number and a span instead, and [`Held`] keeps each
//! record an event refers to, with a plain count of the events that do. Shared bytes
//! are made only when the application asks for them (`take_payload`). Without
//! `alloc` an event holds a span of the receive buffer.

#[cfg(feature = "alloc")]
use alloc::collections::VecDeque;
#[cfg(feature = "alloc")]
use bytes::Bytes;
use core::ops::Range;

/// Where the frame of a queued event is.
#[cfg(feature = "alloc")]
#[derive(Debug)]
pub(super) enum FrameRef {
    /// A span of the received record with this sequence number.
    Rec {
        /// The record's sequence number (see [`Held`]).
        seq: u64,
        /// The frame's span within the record's payload.
        span: Range<u32>,
    },
    /// Bytes of its own: a reassembled frame, or one buffered before authentication.
    Own(Bytes),
}

/// Where the frame of a queued event is: a span of the receive buffer.
#[cfg(not(feature = "alloc"))]
pub(super) type FrameRef = Range<usize>;

/// A frame being handled: the bytes it lies in, and where.
#[cfg(feature = "alloc")]
pub(super) struct Src<'a> {
    /// The record's payload, or the frame's own bytes.
    pub(super) bytes: &'a Bytes,
    /// The frame within `bytes`.
    pub(super) span: Range<usize>,
    /// The record's sequence number when `bytes` is a received record.
    pub(super) seq: Option<u64>,
}

/// A frame being handled: its span of the receive buffer.
#[cfg(not(feature = "alloc"))]
pub(super) struct Src<'a> {
    /// The frame within the receive buffer.
    pub(super) span: &'a Range<usize>,
}

/// Records that queued events refer to, oldest first, with the number of events
/// (queued or current) that refer to each. Bounded by the event queue: a record
/// enters only when an event refers to it and leaves when the last one is gone.
#[cfg(feature = "alloc")]
#[derive(Debug, Default)]
pub(super) struct Held {
    records: VecDeque<(u64, Bytes, u32)>,
}

#[cfg(feature = "alloc")]
impl Held {
    /// A reference to `span` of `src` for an event: pins the record if `src` is
    /// one, otherwise copies the handle.
    pub(super) fn refer(&mut self, src: &Src<'_>) -> FrameRef {
        let Some(seq) = src.seq else {
            return FrameRef::Own(src.bytes.slice(src.span.clone()));
        };
        match self.records.back_mut() {
            // Sequence numbers only grow, so a pinned record is always the newest.
            Some((s, _, refs)) if *s == seq => *refs += 1,
            _ => self.records.push_back((seq, src.bytes.clone(), 1)),
        }
        FrameRef::Rec {
            seq,
            span: span32(&src.span),
        }
    }

    /// Forgets one reference; records nobody refers to any more are dropped.
    pub(super) fn release(&mut self, r: FrameRef) {
        let FrameRef::Rec { seq, .. } = r else {
            return;
        };
        // Events are consumed in order, so it is almost always the oldest record.
        match self.records.front_mut() {
            Some(e) if e.0 == seq => e.2 = e.2.saturating_sub(1),
            _ => {
                if let Some(e) = self.records.iter_mut().find(|e| e.0 == seq) {
                    e.2 = e.2.saturating_sub(1);
                }
            }
        }
        while self.records.front().is_some_and(|e| e.2 == 0) {
            self.records.pop_front();
        }
    }

    /// The bytes of a frame, and the shared bytes it lies in.
    pub(super) fn get<'a>(&'a self, r: &'a FrameRef) -> Option<(&'a [u8], &'a Bytes)> {
        match r {
            FrameRef::Own(b) => Some((b, b)),
            FrameRef::Rec { seq, span } => {
                let (_, b, _) = match self.records.front() {
                    Some(e) if e.0 == *seq => e,
                    _ => self.records.iter().find(|e| e.0 == *seq)?,
                };
                let span = span.start as usize..span.end as usize;
                Some((b.get(span)?, b))
            }
        }
    }

    /// Records held (for tests and bounds).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }
}

/// A span as `u32`s: records are far smaller than 4 GiB (the record length field
/// has 24 bits), so this never truncates.
#[cfg(feature = "alloc")]
fn span32(r: &Range<usize>) -> Range<u32> {
    r.start as u32..r.end as u32
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn records_live_exactly_as_long_as_their_events() {
        let mut h = Held::default();
        let r1 = Bytes::from_static(b"abcdef");
        let r2 = Bytes::from_static(b"ghij");
        let src = |b, span, seq| Src {
            bytes: b,
            span,
            seq: Some(seq),
        };
        let a = h.refer(&src(&r1, 0..2, 1));
        let b = h.refer(&src(&r1, 2..6, 1));
        let c = h.refer(&src(&r2, 1..3, 2));
        assert_eq!(h.len(), 2);
        assert_eq!(h.get(&a).unwrap().0, b"ab");
        assert_eq!(h.get(&b).unwrap().0, b"cdef");
        assert_eq!(h.get(&c).unwrap().0, b"hi");
        // The newer record is released first: the older stays while referred to.
        h.release(c);
        assert_eq!(h.len(), 2, "record 2 waits behind record 1");
        h.release(a);
        assert_eq!(h.len(), 2);
        h.release(b);
        assert_eq!(h.len(), 0, "nothing refers to either record");
    }

    #[test]
    fn own_bytes_need_no_record() {
        let mut h = Held::default();
        let frame = Bytes::from_static(b"xyz");
        let r = h.refer(&Src {
            bytes: &frame,
            span: 1..3,
            seq: None,
        });
        assert_eq!(h.len(), 0);
        assert_eq!(h.get(&r).unwrap().0, b"yz");
        h.release(r);
        assert_eq!(h.len(), 0);
    }
}

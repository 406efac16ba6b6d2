//! Reassembly of fragmented frames, within the configured memory.

use crate::error::ErrorCode;
use crate::wire::frame::{self, FRAG_FIRST, FRAG_LAST};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use bytes::Bytes;

/// Frame kinds that may be fragmented.
fn fragmentable(t: u8) -> bool {
    matches!(
        t,
        frame::ty::MESSAGE
            | frame::ty::REQUEST
            | frame::ty::RESPONSE
            | frame::ty::PUBLISH
            | frame::ty::DELIVER
    )
}

#[derive(Debug)]
struct Partial {
    total: usize,
    buf: Vec<u8>,
}

/// Frames being reassembled, keyed by fragment id.
#[derive(Debug)]
pub(crate) struct Reassembly {
    partial: BTreeMap<u64, Partial>,
    /// Sum of the announced totals of everything in progress.
    reserved: usize,
    max_message: usize,
    max_concurrent: usize,
    max_memory: usize,
}

impl Reassembly {
    pub(crate) fn new(max_message: usize, max_concurrent: usize, max_memory: usize) -> Self {
        Reassembly {
            partial: BTreeMap::new(),
            reserved: 0,
            max_message,
            max_concurrent,
            max_memory,
        }
    }

    /// Bytes reserved by reassemblies in progress (their claimed totals).
    pub(crate) fn memory(&self) -> usize {
        self.reserved
    }

    /// Bytes actually allocated by reassemblies in progress: at most twice what
    /// arrived, however large the claimed totals.
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.partial.values().map(|p| p.buf.capacity()).sum()
    }

    /// Takes one fragment; returns the complete inner frame when this was the last.
    pub(crate) fn on_fragment(
        &mut self,
        frag_id: u64,
        flags: u8,
        total_len: u64,
        data: &[u8],
    ) -> Result<Option<Bytes>, ErrorCode> {
        if flags & FRAG_FIRST != 0 {
            if self.partial.contains_key(&frag_id) {
                return Err(ErrorCode::PROTOCOL_ERROR);
            }
            // Every limit is checked from the announced length, before allocating.
            let total = usize::try_from(total_len).map_err(|_| ErrorCode::MESSAGE_TOO_LARGE)?;
            if total > self.max_message {
                return Err(ErrorCode::MESSAGE_TOO_LARGE);
            }
            if self.partial.len() >= self.max_concurrent
                || self.reserved.saturating_add(total) > self.max_memory
            {
                return Err(ErrorCode::FRAGMENT_LIMIT);
            }
            if data.is_empty() || !fragmentable(data[0]) {
                return Err(ErrorCode::PROTOCOL_ERROR);
            }
            self.reserved += total;
            // Nothing is reserved up front: the claimed total is only a claim, and
            // a peer must not make us hold memory it never sends.
            self.partial.insert(
                frag_id,
                Partial {
                    total,
                    buf: Vec::new(),
                },
            );
        }
        let p = self
            .partial
            .get_mut(&frag_id)
            .ok_or(ErrorCode::PROTOCOL_ERROR)?;
        if p.buf.len() + data.len() > p.total {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        grow(&mut p.buf, data.len(), p.total);
        p.buf.extend_from_slice(data);
        if flags & FRAG_LAST == 0 {
            return Ok(None);
        }
        let p = self.partial.remove(&frag_id).expect("present");
        self.reserved -= p.total;
        if p.buf.len() != p.total {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        // The inner frame must be exactly one whole frame.
        let (t, body, hdr) = frame::decode_header(&p.buf).map_err(|_| ErrorCode::PROTOCOL_ERROR)?;
        if !fragmentable(t) || hdr + body != p.buf.len() {
            return Err(ErrorCode::PROTOCOL_ERROR);
        }
        Ok(Some(Bytes::from(p.buf)))
    }
}

/// Makes room for `n` more bytes in a buffer that will end at `total` bytes: the
/// capacity at least doubles (amortised linear copying) but never exceeds `total`,
/// so a buffer holds at most twice what arrived, and exactly `total` once
/// complete (the finished frame then owns no spare capacity).
fn grow(buf: &mut Vec<u8>, n: usize, total: usize) {
    let need = buf.len() + n;
    if need <= buf.capacity() {
        return;
    }
    let want = need.max(buf.capacity() * 2).min(total);
    buf.reserve_exact(want - buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::Frame;

    fn inner(payload: &[u8]) -> Vec<u8> {
        let f = Frame::Message { payload };
        let mut v = alloc::vec![0u8; f.encoded_len()];
        f.encode(&mut v).unwrap();
        v
    }

    #[test]
    fn reassembles_interleaved() {
        let mut r = Reassembly::new(1 << 20, 4, 1 << 21);
        let a = inner(&[1; 3000]);
        let b = inner(&[2; 2000]);
        assert_eq!(
            r.on_fragment(1, FRAG_FIRST, a.len() as u64, &a[..1000]),
            Ok(None)
        );
        assert_eq!(
            r.on_fragment(2, FRAG_FIRST, b.len() as u64, &b[..1500]),
            Ok(None)
        );
        assert_eq!(r.on_fragment(1, 0, 0, &a[1000..2000]), Ok(None));
        let done_b = r.on_fragment(2, FRAG_LAST, 0, &b[1500..]).unwrap().unwrap();
        assert_eq!(&done_b[..], &b[..]);
        let done_a = r.on_fragment(1, FRAG_LAST, 0, &a[2000..]).unwrap().unwrap();
        assert_eq!(&done_a[..], &a[..]);
        assert_eq!(r.memory(), 0);
    }

    #[test]
    fn limits_checked_before_allocation() {
        let mut r = Reassembly::new(1000, 1, 5000);
        let a = inner(&[1; 10]);
        assert_eq!(
            r.on_fragment(1, FRAG_FIRST, 1001, &a),
            Err(ErrorCode::MESSAGE_TOO_LARGE)
        );
        assert_eq!(
            r.on_fragment(1, FRAG_FIRST, u64::MAX, &a),
            Err(ErrorCode::MESSAGE_TOO_LARGE)
        );
        assert_eq!(r.on_fragment(1, FRAG_FIRST, 500, &a[..3]), Ok(None));
        assert_eq!(
            r.on_fragment(2, FRAG_FIRST, 500, &a[..3]),
            Err(ErrorCode::FRAGMENT_LIMIT)
        );
        assert_eq!(
            r.on_fragment(1, FRAG_FIRST, 500, &a[..3]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        assert_eq!(r.on_fragment(9, 0, 0, &a), Err(ErrorCode::PROTOCOL_ERROR));
    }

    #[test]
    fn buffers_grow_with_the_data_not_the_claim() {
        let mut r = Reassembly::new(16 << 20, 4, 17 << 20);
        let a = inner(&[3; 40_000]);
        // A first fragment claiming 16 MiB with 5 bytes of data costs about 5 bytes.
        assert_eq!(r.on_fragment(1, FRAG_FIRST, 16 << 20, &a[..5]), Ok(None));
        assert!(r.allocated() < 64, "allocated {}", r.allocated());
        assert_eq!(
            r.memory(),
            16 << 20,
            "the claim still counts against the limit"
        );
        let mut off = 0;
        assert_eq!(
            r.on_fragment(2, FRAG_FIRST, a.len() as u64, &a[..1]),
            Ok(None)
        );
        off += 1;
        while off + 1000 < a.len() {
            assert_eq!(r.on_fragment(2, 0, 0, &a[off..off + 1000]), Ok(None));
            off += 1000;
            assert!(r.allocated() - 5 <= 2 * off && r.allocated() <= 5 + a.len());
        }
        let done = r.on_fragment(2, FRAG_LAST, 0, &a[off..]).unwrap().unwrap();
        assert_eq!(&done[..], &a[..]);
    }

    #[test]
    fn length_mismatch_and_bad_inner() {
        let mut r = Reassembly::new(1 << 20, 4, 1 << 21);
        let a = inner(&[1; 100]);
        r.on_fragment(1, FRAG_FIRST, a.len() as u64 + 1, &a[..50])
            .unwrap();
        assert_eq!(
            r.on_fragment(1, FRAG_LAST, 0, &a[50..]),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
        let ping = [frame::ty::PING, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            r.on_fragment(2, FRAG_FIRST | FRAG_LAST, 10, &ping),
            Err(ErrorCode::PROTOCOL_ERROR)
        );
    }
}

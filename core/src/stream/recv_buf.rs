//! A stream's received bytes not yet read: one owned buffer, never a slice of a
//! received record.
//!
//! Why owned: a slice of a record keeps the record's whole receive allocation alive
//! (about 64 KiB), so a peer that pads its records with skippable frames could make
//! a window's worth of stream data pin four or more times its size (probe 2 of the
//! security issue: 4 streams x 16 frames of 16,378 bytes, unread, held 4.2 MB against
//! a computed bound of 3.48 MB). Copying each DATA payload once into the stream's
//! own buffer makes what a stream holds depend only on what it buffers: the
//! allocation stays within [`max_allocation`] of the bytes held, so the sum over all
//! streams is bounded by the connection receive window (`Config::memory_bound`).
//! The application reads with a copy anyway (`Streams::read`), so the cost is one
//! extra `memcpy` per received byte.

use bytes::{Buf, Bytes, BytesMut};
use core::cmp::{max, min};

/// The slack a buffer may keep beyond 1.5 times its contents: small streams keep a
/// small allocation instead of freeing and reallocating it for every frame.
pub(crate) const SLACK: usize = 1024;

/// The most a stream buffer holding `len` bytes may have allocated.
pub(crate) const fn max_allocation(len: usize) -> usize {
    len + len / 2 + SLACK
}

/// The allocation made for `len` bytes when the buffer grows or shrinks: a quarter
/// more (at least 64 bytes), so appends cost amortised O(1) copies while the
/// allocation stays within [`max_allocation`].
const fn grown(len: usize) -> usize {
    let extra = len / 4;
    len + if extra > 64 { extra } else { 64 }
}

/// Received, unread bytes of one stream, in order.
#[derive(Debug, Default)]
pub(crate) struct RecvBuf {
    buf: BytesMut,
    /// Bytes of the allocation `buf` lies in, as this type made it: `BytesMut`
    /// reports only the capacity after its read position, and never grows on its own
    /// here (every append checks for room first).
    alloc: usize,
}

impl RecvBuf {
    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for them.
    pub(crate) fn allocated(&self) -> usize {
        self.alloc
    }

    /// Appends a copy of `data`.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // `try_reclaim` moves the unread bytes to the front of the allocation when
        // nothing else shares it; it never allocates.
        if self.buf.capacity() - self.buf.len() < data.len() && !self.buf.try_reclaim(data.len()) {
            self.reallocate(grown(self.buf.len() + data.len()));
        }
        self.buf.extend_from_slice(data);
    }

    /// Copies up to `out.len()` bytes out; returns how many.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        let n = min(out.len(), self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        self.after_read();
        n
    }

    /// Takes up to `max` bytes as shared bytes (zero-copy for the caller; the
    /// allocation is shared with this buffer until it is replaced).
    pub(crate) fn take(&mut self, max_len: usize) -> Bytes {
        let n = min(max_len, self.buf.len());
        let out = self.buf.split_to(n).freeze();
        self.after_read();
        out
    }

    /// Drops everything held and the allocation.
    pub(crate) fn clear(&mut self) {
        *self = RecvBuf::default();
    }

    /// Keeps the allocation within [`max_allocation`] as the contents shrink.
    fn after_read(&mut self) {
        let len = self.buf.len();
        if self.alloc > max_allocation(len) {
            if len == 0 {
                self.clear();
            } else {
                self.reallocate(grown(len));
            }
        }
    }

    /// Moves the contents into a new allocation of `cap` bytes.
    fn reallocate(&mut self, cap: usize) {
        let cap = max(cap, self.buf.len());
        let mut fresh = BytesMut::with_capacity(cap);
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
        self.alloc = cap;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{QuickCheck, TestResult};
    use std::vec;
    use std::vec::Vec;

    /// Whatever the appends and reads, the bytes come out in order and unchanged,
    /// and the allocation stays within `max_allocation` of what is held.
    #[test]
    fn contents_in_order_and_allocation_bounded() {
        fn prop(ops: Vec<(bool, u16)>) -> TestResult {
            let mut b = RecvBuf::default();
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u8;
            for (push, n) in ops {
                let n = usize::from(n % 20_000);
                if push {
                    let data: Vec<u8> = (0..n)
                        .map(|_| {
                            next = next.wrapping_add(1);
                            next
                        })
                        .collect();
                    b.push(&data);
                    model.extend(data);
                } else if n % 3 == 0 {
                    let got = b.take(n);
                    let want: Vec<u8> = model.drain(..got.len()).collect();
                    if got[..] != want[..] || (got.len() < n && !model.is_empty()) {
                        return TestResult::failed();
                    }
                } else {
                    let mut out = vec![0u8; n];
                    let k = b.read(&mut out);
                    let want: Vec<u8> = model.drain(..k).collect();
                    if out[..k] != want[..] || (k < n && !model.is_empty()) {
                        return TestResult::failed();
                    }
                }
                if b.len() != model.len() || b.allocated() > max_allocation(b.len()) {
                    return TestResult::failed();
                }
                if b.allocated() < b.len() {
                    return TestResult::failed();
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Vec<(bool, u16)>) -> TestResult);
    }

    /// One-byte appends do not cost an allocation each, and a drained buffer gives
    /// its allocation back once it is larger than the slack.
    #[test]
    fn small_appends_share_one_allocation_and_drained_buffers_free_it() {
        let mut b = RecvBuf::default();
        b.push(b"x");
        let first = b.allocated();
        for _ in 0..40 {
            b.push(b"x");
        }
        assert_eq!(b.allocated(), first, "41 bytes fit the first allocation");
        b.push(&[0u8; 8_000]);
        assert!(b.allocated() >= 8_041);
        let mut out = vec![0u8; 9_000];
        assert_eq!(b.read(&mut out), 8_041);
        assert_eq!(b.allocated(), 0);
    }
}

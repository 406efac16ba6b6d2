//! Bounds-checked cursors over byte slices, shared by every frame's encoder and decoder.

use crate::varint;

/// A field could not be read: the body ended early or a value was malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Reads fields from the front of a frame body.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Malformed> {
        let (&b, rest) = self.buf.split_first().ok_or(Malformed)?;
        self.buf = rest;
        Ok(b)
    }

    /// A canonical varint.
    pub fn varint(&mut self) -> Result<u64, Malformed> {
        let (v, n) = varint::decode(self.buf).map_err(|_| Malformed)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.buf.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// A varint length followed by that many bytes, at most `max` of them.
    pub fn len_prefixed(&mut self, max: usize) -> Result<&'a [u8], Malformed> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        if n > max {
            return Err(Malformed);
        }
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(&self) -> Result<(), Malformed> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }
}

/// Writes fields into a caller's buffer; any write that does not fit poisons the writer
/// so the caller checks once at the end.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer {
            buf,
            pos: 0,
            overflow: false,
        }
    }

    /// Bytes written so far, or `None` if anything did not fit.
    pub fn finish(self) -> Option<usize> {
        (!self.overflow).then_some(self.pos)
    }

    /// One byte.
    pub fn u8(&mut self, b: u8) {
        self.bytes(&[b]);
    }

    /// A canonical varint.
    pub fn varint(&mut self, v: u64) {
        if self.overflow {
            return;
        }
        match varint::encode(v, &mut self.buf[self.pos..]) {
            Some(n) => self.pos += n,
            None => self.overflow = true,
        }
    }

    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        if self.overflow {
            return;
        }
        match self.buf.get_mut(self.pos..self.pos + b.len()) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.pos += b.len();
            }
            None => self.overflow = true,
        }
    }

    /// A varint length followed by the bytes.
    pub fn len_prefixed(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.bytes(b);
    }
}

/// Encoded size of a varint-length-prefixed field.
pub fn len_prefixed_len(n: usize) -> usize {
    varint::len(n as u64) + n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_bounds() {
        let mut r = Reader::new(&[2, 0xaa, 0xbb, 0xcc]);
        assert_eq!(r.len_prefixed(1), Err(Malformed));
        let mut r = Reader::new(&[2, 0xaa, 0xbb, 0xcc]);
        assert_eq!(r.len_prefixed(2), Ok(&[0xaa, 0xbb][..]));
        assert!(r.finish().is_err());
        assert_eq!(r.u8(), Ok(0xcc));
        assert_eq!(r.u8(), Err(Malformed));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn writer_overflow_is_sticky() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        w.bytes(&[1, 2]);
        w.varint(300);
        w.u8(9);
        assert_eq!(w.finish(), None);
        let mut w = Writer::new(&mut buf);
        w.len_prefixed(&[7, 8]);
        assert_eq!(w.finish(), Some(3));
        assert_eq!(buf, [2, 7, 8]);
    }
}

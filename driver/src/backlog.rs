//! Input read from a transport that the driver has not taken yet: one type for
//! every adapter (the async [`IoTask`](crate::IoTask), the mio and the io_uring
//! event loops), so that one stop rule and one buffer policy hold everywhere.

use crate::Driver;

/// Bytes read but not yet taken by the [`Driver`]: what a connection keeps while
/// its application is behind.
///
/// **Offering.** [`offer`](Self::offer) hands the waiting bytes to
/// [`Driver::handle_input`] once. That call already retries until everything is
/// taken or the connection takes nothing twice in a row, so a short count means
/// an application queue is full: the rest stays here, the adapter stops reading,
/// and the driver's registered waker fires once the application caught up; offer
/// again then. Calling it again at once in a loop only repeats work that takes
/// nothing. Read more only once [`is_empty`](Self::is_empty).
///
/// **Buffer.** An idle connection keeps none. Fresh input is best offered
/// straight from the adapter's shared read buffer ([`offer_and_keep`]); only what
/// the driver leaves is copied into a buffer of [`capacity`](Self::new) bytes
/// (more if the rest is larger). That buffer stays while it is in use and goes
/// once a whole timer period passed without a backlog
/// ([`period_ended`](Self::period_ended)): keyed to the driver's timer, not to
/// traffic, so a connection that is backed up now and then never frees and
/// reallocates it per message. While the buffer is kept, an adapter may read
/// straight into it ([`spare`](Self::spare), [`filled`](Self::filled)) and pay no
/// copy at all.
///
/// [`offer_and_keep`]: Self::offer_and_keep
#[derive(Debug)]
pub struct Backlog {
    /// `buf[pos..len]` waits for the driver; `buf.len()` is the buffer's size.
    buf: Option<Vec<u8>>,
    pos: usize,
    len: usize,
    /// Bytes waited here since the last [`period_ended`](Self::period_ended).
    needed: bool,
    capacity: usize,
}

impl Backlog {
    /// An empty backlog that allocates `capacity` bytes when it first keeps
    /// input (one read's worth: a connection reads again only once it is empty).
    pub const fn new(capacity: usize) -> Self {
        Backlog {
            buf: None,
            pos: 0,
            len: 0,
            needed: false,
            capacity,
        }
    }

    /// Bytes waiting for the driver.
    pub fn len(&self) -> usize {
        self.len - self.pos
    }

    /// True when nothing waits: the connection may read again.
    pub fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    /// True while a buffer is kept (waiting bytes or not).
    pub fn has_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Offers the waiting bytes to the driver once (see the type's documentation
    /// for why once); returns how many it took.
    pub fn offer(&mut self, driver: &mut Driver) -> usize {
        let Some(buf) = &self.buf else {
            return 0;
        };
        if self.pos == self.len {
            return 0;
        }
        let n = driver.handle_input(&buf[self.pos..self.len]);
        self.pos += n;
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else {
            self.needed = true;
        }
        n
    }

    /// Offers freshly read `data` (read while the backlog was empty) and keeps
    /// what the driver does not take; returns how many it took.
    pub fn offer_and_keep(&mut self, driver: &mut Driver, data: &[u8]) -> usize {
        debug_assert!(self.is_empty(), "input read past a backlog");
        let n = driver.handle_input(data);
        if n < data.len() {
            self.keep(&data[n..]);
        }
        n
    }

    /// Keeps `rest` (with nothing waiting before it).
    fn keep(&mut self, rest: &[u8]) {
        let want = self.capacity.max(rest.len());
        let buf = self.buf.get_or_insert_with(|| vec![0; want]);
        if buf.len() < rest.len() {
            // A smaller buffer lent out and given back (`restore`): grow it.
            buf.resize(want, 0);
        }
        buf[..rest.len()].copy_from_slice(rest);
        self.pos = 0;
        self.len = rest.len();
        self.needed = true;
    }

    /// The kept buffer to read into, when there is one and nothing waits in it;
    /// report what was read with [`filled`](Self::filled). `None`: read elsewhere
    /// and use [`offer_and_keep`](Self::offer_and_keep).
    pub fn spare(&mut self) -> Option<&mut [u8]> {
        if !self.is_empty() {
            return None;
        }
        self.buf.as_deref_mut()
    }

    /// `n` bytes were read into the front of the [`spare`](Self::spare) buffer:
    /// they wait for the driver.
    pub fn filled(&mut self, n: usize) {
        debug_assert!(self.is_empty(), "input read past a backlog");
        let size = self.buf.as_ref().map_or(0, Vec::len);
        self.pos = 0;
        self.len = n.min(size);
    }

    /// Lends the buffer out whole, for a receive that owns its memory (io_uring):
    /// the kept one, or a new one of `len` bytes. Give it back with
    /// [`restore`](Self::restore). Only while empty.
    pub fn take_buffer(&mut self, len: usize) -> Vec<u8> {
        debug_assert!(self.is_empty(), "buffer lent out with bytes waiting");
        self.pos = 0;
        self.len = 0;
        self.buf.take().unwrap_or_else(|| vec![0; len])
    }

    /// Takes back a buffer lent out by [`take_buffer`](Self::take_buffer), with
    /// `filled` bytes received at its front, waiting for the driver.
    pub fn restore(&mut self, buf: Vec<u8>, filled: usize) {
        self.pos = 0;
        self.len = filled.min(buf.len());
        self.buf = Some(buf);
    }

    /// The connection's timer fired: a buffer that kept nothing for a whole timer
    /// period goes (the next backlog allocates one again).
    pub fn period_ended(&mut self) {
        if self.is_empty() && !self.needed {
            self.buf = None;
        }
        self.needed = false;
    }

    /// Drops the waiting bytes and the buffer: nothing will take them any more
    /// (the connection is closing, or its transport broke).
    pub fn discard(&mut self) {
        self.buf = None;
        self.pos = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;
    use crate::{block_on, block_on_timeout, connect, Driver, Handle};
    use std::time::Duration;
    use weft_core::{Config, Role};

    /// A client and a server driver joined in memory, past the handshake.
    fn pair() -> (Driver, Handle, Driver, Handle) {
        let (mut cd, ch) = connect(Role::Client, Config::default(), [1; 32]);
        let (mut sd, sh) = connect(Role::Server, Config::default(), [2; 32]);
        let mut buf = vec![0u8; 1 << 17];
        for _ in 0..8 {
            let n = cd.poll_transmit(&mut buf);
            assert_eq!(sd.handle_input(&buf[..n]), n);
            let n = sd.poll_transmit(&mut buf);
            assert_eq!(cd.handle_input(&buf[..n]), n);
        }
        assert!(ch.negotiated().is_some(), "handshake");
        (cd, ch, sd, sh)
    }

    fn numbered(i: u32) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..4].copy_from_slice(&i.to_be_bytes());
        m
    }

    /// Wire bytes of more one-way messages than the server's application queue
    /// holds.
    fn flood(cd: &mut Driver, ch: &Handle, n: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut buf = vec![0u8; 1 << 17];
        for i in 0..n {
            ch.try_send(&numbered(i as u32)).expect("send");
            if i % 64 == 63 {
                loop {
                    let k = cd.poll_transmit(&mut buf);
                    if k == 0 {
                        break;
                    }
                    wire.extend_from_slice(&buf[..k]);
                }
            }
        }
        loop {
            let k = cd.poll_transmit(&mut buf);
            if k == 0 {
                break;
            }
            wire.extend_from_slice(&buf[..k]);
        }
        wire
    }

    #[test]
    fn keeps_what_the_driver_leaves_and_offers_it_in_order() {
        let (mut cd, ch, mut sd, sh) = pair();
        const N: usize = 10_000;
        let wire = flood(&mut cd, &ch, N);
        let mut b = Backlog::new(wire.len());
        assert!(!b.has_buffer());
        let taken = b.offer_and_keep(&mut sd, &wire);
        assert!(
            taken < wire.len(),
            "the application queue bounds the driver"
        );
        assert_eq!(b.len(), wire.len() - taken);
        assert!(b.spare().is_none(), "no reading past waiting bytes");
        // Stalled: offering again at once takes nothing.
        assert_eq!(b.offer(&mut sd), 0);
        // The application reads; whenever it finds nothing ready, the test takes an
        // adapter's turn, as the driver's wake-up would: offer what waits once, then
        // transmit (which also resumes events the driver paused on the full queue).
        let mut out = vec![0u8; 1 << 17];
        let mut next = 0u32;
        let mut idle_turns = 0;
        while next < N as u32 {
            match block_on_timeout(sh.next_message(), Duration::ZERO) {
                Some(m) => {
                    let m = m.expect("open");
                    assert_eq!(&m[..], &numbered(next), "in order");
                    next += 1;
                    idle_turns = 0;
                }
                None => {
                    idle_turns += 1;
                    assert!(
                        idle_turns < 100,
                        "no message {next} after {idle_turns} turns, {} bytes waiting",
                        b.len()
                    );
                    b.offer(&mut sd);
                    while sd.poll_transmit(&mut out) > 0 {}
                }
            }
        }
        assert!(b.is_empty(), "{} bytes left over", b.len());
        assert_eq!(next as usize, N);
        assert!(b.has_buffer(), "kept through the period it was needed in");
        b.period_ended();
        assert!(b.has_buffer(), "needed during that period");
        b.period_ended();
        assert!(!b.has_buffer(), "a whole period unneeded: released");
    }

    #[test]
    fn lent_buffers_come_back_with_their_bytes_and_grow_when_too_small() {
        let (mut cd, ch, mut sd, sh) = pair();
        let wire = flood(&mut cd, &ch, 8);
        let mut b = Backlog::new(64);
        let mut buf = b.take_buffer(wire.len());
        buf[..wire.len()].copy_from_slice(&wire);
        b.restore(buf, wire.len());
        assert_eq!(b.len(), wire.len());
        assert_eq!(b.offer(&mut sd), wire.len());
        assert!(b.is_empty() && b.has_buffer());
        for i in 0..8u32 {
            let m = block_on(sh.next_message()).expect("a message");
            assert_eq!(&m[..], &numbered(i));
        }
        // A small buffer given back, then a larger rest to keep: it grows.
        b.restore(vec![0; 4], 0);
        let wire = flood(&mut cd, &ch, 10_000);
        let taken = b.offer_and_keep(&mut sd, &wire);
        assert_eq!(b.len(), wire.len() - taken);
        b.discard();
        assert!(b.is_empty() && !b.has_buffer());
    }

    #[test]
    fn reads_straight_into_the_kept_buffer() {
        let (mut cd, ch, mut sd, sh) = pair();
        let mut b = Backlog::new(1 << 16);
        assert!(b.spare().is_none(), "no buffer until one is needed");
        b.restore(vec![0; 1 << 16], 0);
        let wire = flood(&mut cd, &ch, 3);
        let spare = b.spare().expect("kept and empty");
        spare[..wire.len()].copy_from_slice(&wire);
        b.filled(wire.len());
        assert_eq!(b.offer(&mut sd), wire.len());
        for i in 0..3u32 {
            let m = block_on(sh.next_message()).expect("a message");
            assert_eq!(&m[..], &numbered(i));
        }
    }
}

//! The ring: the only module of the crate with `unsafe` code.
//!
//! The `io-uring` crate's [`SubmissionQueue::push`](io_uring::SubmissionQueue::push)
//! is an `unsafe fn`: the kernel reads and writes the memory an entry points to at
//! some later time, so the caller must keep that memory alive and untouched until
//! the entry's completion. This module makes that a matter of ownership:
//!
//! * every operation that points at memory (`Recv`, `Send`, `Timeout`) **takes the
//!   memory by value** (a heap `Vec<u8>` or a boxed `Timespec`) and stores it in
//!   `Ring::ops` under the operation's `user_data`, *before* the entry is pushed;
//! * the memory is only given back by [`Ring::reap`], once the kernel posted the
//!   completion with that `user_data` (no operation here is multishot, so that
//!   completion is the last one the kernel posts for it); nothing reads, writes,
//!   moves the heap block of, or frees a held buffer before that;
//! * if the ring is dropped with operations still in flight, their memory is
//!   leaked on purpose (never freed), since the kernel may still use it;
//! * receives may instead pick a buffer of the ring's **provided-buffer pool**
//!   ([`BufPool`], a buffer ring registered with the kernel, Linux 5.19): the pool's
//!   memory (the ring of entries and every buffer) belongs to the `Ring` and is
//!   never freed while an operation may be in flight. The kernel writes only into
//!   buffers published in the buffer ring; a buffer leaves it when a completion
//!   names it, and only then can its bytes be read, through the [`Pooled`] token
//!   that completion carries, which is not `Clone` and is consumed by
//!   [`Ring::give_back`], the only way a buffer is published again. Every entry is
//!   written before the tail that publishes it (a release store), and a slot is
//!   rewritten only after the kernel consumed it: the ring has at least as many
//!   slots as the pool has buffers;
//! * the only other `unsafe` is taking ownership of the file descriptor that a
//!   completed `Accept` returns: the kernel just installed it for us and nothing
//!   else in the process knows that number.
//!
//! File descriptors given to operations are not memory: the event loop keeps each
//! socket open until its operations completed, which matters for correctness
//! (the number is not reused under an operation) but not for memory safety.
#![allow(unsafe_code)]

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::alloc::Layout;
use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// The `user_data` of one tracked operation.
pub(crate) type OpId = u64;

/// The `user_data` of operations whose completion nobody waits for (cancellations
/// and timeout removals: they point at no memory).
const UNTRACKED: u64 = u64::MAX;

/// What an operation was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Recv,
    Send,
    Accept,
    Timeout,
}

/// Memory the kernel may use while the operation is in flight.
enum Held {
    Nothing,
    Buf(Vec<u8>),
    Time(#[allow(dead_code)] Box<types::Timespec>),
}

struct Op<T> {
    tag: T,
    kind: Kind,
    held: Held,
}

/// A provided buffer that a completed receive filled: its bytes are readable with
/// [`Ring::pooled`] until it is handed to [`Ring::give_back`] (dropping it
/// instead leaves the buffer out of the pool for good).
#[derive(Debug)]
pub(crate) struct Pooled {
    bid: u16,
    len: usize,
}

/// A completed operation, with its memory handed back.
pub(crate) struct Done<T> {
    pub(crate) id: OpId,
    pub(crate) tag: T,
    pub(crate) kind: Kind,
    /// The kernel's result: bytes moved, a new descriptor, or `-errno`.
    pub(crate) result: i32,
    /// The buffer of a `Recv` or `Send`.
    pub(crate) buf: Option<Vec<u8>>,
    /// The pool's buffer a pooled `Recv` filled (also at end of stream, if the
    /// kernel picked one): to be given back.
    pub(crate) pooled: Option<Pooled>,
    /// The accepted socket of a successful `Accept`.
    pub(crate) fd: Option<OwnedFd>,
}

/// An io_uring instance and the memory of its operations in flight. `T` tags each
/// operation for the event loop.
pub(crate) struct Ring<T> {
    uring: IoUring,
    /// Provided receive buffers; `None` where the kernel has no buffer rings.
    pool: Option<BufPool>,
    ops: HashMap<OpId, Op<T>>,
    next: OpId,
    /// Completions reaped while making room in the submission queue.
    early: Vec<Done<T>>,
}

/// The error returned when io_uring cannot be set up (see [`crate::unavailable`]).
#[derive(Debug)]
pub(crate) struct Unavailable {
    pub(crate) cause: io::Error,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "io_uring is unavailable: {} (the kernel is older than 5.6, or io_uring is \
             disabled by seccomp, a container policy or the kernel.io_uring_disabled sysctl)",
            self.cause
        )
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Wraps the cause of a failed set-up in the "io_uring is unavailable" error.
pub(crate) fn unavailable(cause: io::Error) -> io::Error {
    let kind = match cause.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EINVAL) => io::ErrorKind::Unsupported,
        Some(libc::EPERM) | Some(libc::EACCES) => io::ErrorKind::PermissionDenied,
        _ => cause.kind(),
    };
    io::Error::new(kind, Unavailable { cause })
}

/// Checks a freshly set-up ring: the set-up result itself, then that the kernel
/// supports every opcode used here. Separate from [`Ring::new`] so that tests can
/// force the failure path.
pub(crate) fn checked(setup: io::Result<IoUring>) -> io::Result<IoUring> {
    let uring = setup.map_err(unavailable)?;
    let mut probe = io_uring::Probe::new();
    uring
        .submitter()
        .register_probe(&mut probe)
        .map_err(unavailable)?;
    for code in [
        opcode::Recv::CODE,
        opcode::Send::CODE,
        opcode::Accept::CODE,
        opcode::Timeout::CODE,
        opcode::TimeoutRemove::CODE,
        opcode::AsyncCancel::CODE,
    ] {
        if !probe.is_supported(code) {
            return Err(unavailable(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("opcode {code} not supported"),
            )));
        }
    }
    Ok(uring)
}

/// The buffer group id of the pool (one pool per ring).
const POOL_GROUP: u16 = 0;
/// The most slots a buffer ring may have.
const MAX_SLOTS: usize = 1 << 15;
/// Alignment of the slot memory: the kernel wants it page-aligned, and 64 KiB
/// covers every page size Linux uses.
const SLOT_ALIGN: usize = 64 << 10;

/// How large a provided-buffer pool is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolSize {
    /// Bytes per buffer.
    pub(crate) buf_len: usize,
    /// Buffers provided at the start.
    pub(crate) initial: usize,
    /// Buffers it may grow to ([`Ring::grow_pool`]); at most 32 768.
    pub(crate) max: usize,
}

/// One slot of a buffer ring as the kernel lays it out (`struct io_uring_buf`);
/// the `resv` field of slot 0 is the ring's tail. Only the kernel reads it.
#[repr(C)]
#[allow(dead_code)]
struct Slot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 16);
const _: () = assert!(core::mem::size_of::<Slot>() == core::mem::size_of::<types::BufRingEntry>());

/// A buffer ring registered with the kernel and the buffers it provides. Buffer
/// `bid` is `bufs[bid]`, `buf_len` bytes; it is either published in the ring
/// (the kernel's to fill) or out of it, named by exactly one [`Pooled`].
struct BufPool {
    /// `mask + 1` slots of [`SLOT_ALIGN`]-aligned memory from `layout`.
    slots: NonNull<Slot>,
    layout: Layout,
    mask: u16,
    /// Slots published so far (wrapping): the tail as last stored.
    tail: u16,
    /// The buffers, each a leaked `Box<[u8]>` of `buf_len` bytes.
    bufs: Vec<NonNull<u8>>,
    buf_len: usize,
    max: usize,
}

impl BufPool {
    /// Allocates the slots and registers them as buffer group [`POOL_GROUP`] of
    /// `uring`, then provides `size.initial` buffers.
    fn new(uring: &IoUring, size: PoolSize) -> io::Result<BufPool> {
        let max = size.max.clamp(1, MAX_SLOTS);
        let entries = max.next_power_of_two();
        let layout = Layout::from_size_align(entries * core::mem::size_of::<Slot>(), SLOT_ALIGN)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout's size is not zero (at least one slot).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let slots = NonNull::new(raw.cast::<Slot>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let mut pool = BufPool {
            slots,
            layout,
            mask: u16::try_from(entries - 1).unwrap_or(u16::MAX),
            tail: 0,
            bufs: Vec::new(),
            buf_len: size.buf_len.max(1),
            max,
        };
        // SAFETY: `raw` points to `entries` zeroed slots (tail 0: nothing
        // published yet), page-aligned, and stays allocated until the pool is
        // dropped: only after the ring's operations completed (see `Ring::drop`,
        // which leaks the pool otherwise). On failure nothing was registered and
        // dropping the pool frees the slots.
        unsafe {
            uring.submitter().register_buf_ring_with_flags(
                raw as u64,
                u16::try_from(entries).unwrap_or(u16::MAX),
                POOL_GROUP,
                0,
            )?;
        }
        for _ in 0..size.initial.min(max) {
            pool.grow();
        }
        Ok(pool)
    }

    /// Adds one buffer and provides it; false at `max`.
    fn grow(&mut self) -> bool {
        if self.bufs.len() >= self.max {
            return false;
        }
        let Ok(bid) = u16::try_from(self.bufs.len()) else {
            return false;
        };
        let block: Box<[u8]> = vec![0u8; self.buf_len].into_boxed_slice();
        let Some(ptr) = NonNull::new(Box::into_raw(block).cast::<u8>()) else {
            return false;
        };
        self.bufs.push(ptr);
        self.publish(bid);
        true
    }

    /// Puts buffer `bid`, which is out of the ring, back into it.
    fn publish(&mut self, bid: u16) {
        let addr = self.bufs[usize::from(bid)].as_ptr() as u64;
        // SAFETY: `tail & mask` indexes one of the `mask + 1` slots. That slot holds
        // no published, unconsumed entry: at most `bufs.len() <= mask + 1` buffers
        // are published at once and `bid` is not one of them, so the kernel does
        // not read it now. Writing through the raw place creates no reference and
        // leaves `resv` (slot 0's is the tail) alone.
        unsafe {
            let slot = self.slots.as_ptr().add(usize::from(self.tail & self.mask));
            (*slot).addr = addr;
            (*slot).len = len32(self.buf_len);
            (*slot).bid = bid;
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: slot 0's `resv` is the ring's tail: a live, aligned u16 that the
        // kernel only reads, atomically. The release store publishes the slot
        // written above before the kernel can see the new tail.
        let tail =
            unsafe { AtomicU16::from_ptr(std::ptr::addr_of_mut!((*self.slots.as_ptr()).resv)) };
        tail.store(self.tail, Ordering::Release);
    }

    /// The bytes of a buffer out of the ring.
    fn bytes(&self, p: &Pooled) -> &[u8] {
        let ptr = self.bufs[usize::from(p.bid)];
        // SAFETY: a `Pooled` is made only for a buffer a completion named (so it is
        // out of the ring and the kernel no longer writes it) with `bid` in range
        // and `len <= buf_len`; it is published again only by `give_back`, which
        // consumes the token and needs `&mut` of the ring, so not while this
        // borrow lives. The block lives as long as the pool.
        unsafe { std::slice::from_raw_parts(ptr.as_ptr(), p.len) }
    }
}

// SAFETY: the pool owns its slots and buffers as a `Box` owns its block: nothing
// else in the process points into them (a `Pooled` is an index, read through the
// ring). Moving the pool to another thread along with its ring changes nothing
// for the kernel, which reaches the memory through the ring, wherever it is used.
unsafe impl Send for BufPool {}

impl Drop for BufPool {
    fn drop(&mut self) {
        // Reached only when the kernel can no longer use the memory: the pool was
        // never registered, or no operation is in flight (`Ring::drop`).
        for ptr in self.bufs.drain(..) {
            let raw = std::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), self.buf_len);
            // SAFETY: each pointer came from `Box::into_raw` of a `buf_len`-byte
            // boxed slice and is freed once, here.
            drop(unsafe { Box::from_raw(raw) });
        }
        // SAFETY: `slots` was allocated with `layout` and is freed once, here.
        unsafe { std::alloc::dealloc(self.slots.as_ptr().cast::<u8>(), self.layout) };
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<T: Copy> Ring<T> {
    /// A ring with `entries` submission slots (and four times as many completion
    /// slots, so that a loop with many sockets rarely overflows), and a pool of
    /// provided receive buffers of `pool` size if asked for and the kernel has
    /// buffer rings (5.19; see [`has_pool`](Self::has_pool)).
    pub(crate) fn new(entries: u32, pool: Option<PoolSize>) -> io::Result<Self> {
        let uring = checked(
            IoUring::builder()
                .setup_cqsize(entries.saturating_mul(4))
                .build(entries),
        )?;
        // Without buffer rings, receives use buffers of their own instead.
        let pool = pool.and_then(|size| BufPool::new(&uring, size).ok());
        Ok(Ring {
            uring,
            pool,
            ops: HashMap::new(),
            next: 1,
            early: Vec::new(),
        })
    }

    /// Operations submitted whose completion was not reaped yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Receives into `buf[start..]`. The buffer is the ring's until the completion.
    pub(crate) fn recv(&mut self, fd: RawFd, mut buf: Vec<u8>, start: usize, tag: T) -> OpId {
        assert!(start < buf.len(), "recv needs room");
        let dst = &mut buf[start..];
        let entry = opcode::Recv::new(types::Fd(fd), dst.as_mut_ptr(), len32(dst.len())).build();
        self.track(
            entry,
            Op {
                tag,
                kind: Kind::Recv,
                held: Held::Buf(buf),
            },
        )
    }

    /// Whether receives can use the pool ([`recv_pooled`](Self::recv_pooled)).
    pub(crate) fn has_pool(&self) -> bool {
        self.pool.is_some()
    }

    /// Receives into a buffer the kernel picks from the pool once data is there,
    /// so a waiting receive holds no memory. It completes with `-ENOBUFS` if the
    /// pool is empty then. `None` without a pool.
    pub(crate) fn recv_pooled(&mut self, fd: RawFd, tag: T) -> Option<OpId> {
        let len = len32(self.pool.as_ref()?.buf_len);
        let entry = opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
            .buf_group(POOL_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT);
        Some(self.track(
            entry,
            Op {
                tag,
                kind: Kind::Recv,
                // The kernel writes only into a pool buffer, owned by the pool.
                held: Held::Nothing,
            },
        ))
    }

    /// The received bytes in a pool buffer.
    pub(crate) fn pooled(&self, p: &Pooled) -> &[u8] {
        match &self.pool {
            Some(pool) => pool.bytes(p),
            None => &[],
        }
    }

    /// Returns a pool buffer to the kernel once its bytes were used.
    pub(crate) fn give_back(&mut self, p: Pooled) {
        if let Some(pool) = &mut self.pool {
            pool.publish(p.bid);
        }
    }

    /// Adds a buffer to the pool, up to its maximum; false if none was added.
    pub(crate) fn grow_pool(&mut self) -> bool {
        self.pool.as_mut().is_some_and(BufPool::grow)
    }

    /// Buffers in the pool (provided or out).
    #[cfg(test)]
    pub(crate) fn pool_buffers(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.bufs.len())
    }

    /// Sends `buf[range]`. The buffer is the ring's until the completion.
    pub(crate) fn send(&mut self, fd: RawFd, buf: Vec<u8>, range: Range<usize>, tag: T) -> OpId {
        let src = &buf[range];
        assert!(!src.is_empty(), "send needs bytes");
        let entry = opcode::Send::new(types::Fd(fd), src.as_ptr(), len32(src.len()))
            .flags(libc::MSG_NOSIGNAL)
            .build();
        self.track(
            entry,
            Op {
                tag,
                kind: Kind::Send,
                held: Held::Buf(buf),
            },
        )
    }

    /// Accepts one connection on a listening socket (close-on-exec).
    pub(crate) fn accept(&mut self, fd: RawFd, tag: T) -> OpId {
        let entry = opcode::Accept::new(types::Fd(fd), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC)
            .build();
        self.track(
            entry,
            Op {
                tag,
                kind: Kind::Accept,
                held: Held::Nothing,
            },
        )
    }

    /// Completes (with `-ETIME`) after `after`.
    pub(crate) fn timeout(&mut self, after: Duration, tag: T) -> OpId {
        let ts = Box::new(types::Timespec::from(after));
        let entry = opcode::Timeout::new(&*ts as *const types::Timespec).build();
        self.track(
            entry,
            Op {
                tag,
                kind: Kind::Timeout,
                held: Held::Time(ts),
            },
        )
    }

    /// Asks the kernel to end a timeout early (it completes with `-ECANCELED`).
    pub(crate) fn remove_timeout(&mut self, id: OpId) {
        self.push(&opcode::TimeoutRemove::new(id).build().user_data(UNTRACKED));
    }

    /// Asks the kernel to cancel an operation (it completes with `-ECANCELED`, or
    /// with its result if it was already done).
    pub(crate) fn cancel(&mut self, id: OpId) {
        self.push(&opcode::AsyncCancel::new(id).build().user_data(UNTRACKED));
    }

    fn track(&mut self, entry: squeue::Entry, op: Op<T>) -> OpId {
        let id = self.next;
        self.next += 1;
        // The memory is stored before the kernel can see the entry.
        self.ops.insert(id, op);
        self.push(&entry.user_data(id));
        id
    }

    fn push(&mut self, entry: &squeue::Entry) {
        for attempt in 0.. {
            assert!(attempt < 10_000, "io_uring submission queue stays full");
            // SAFETY: every pointer in `entry` points into memory owned by
            // `self.ops` under the entry's user_data (a `Vec`'s heap block or a
            // boxed `Timespec`, which do not move when their owner moves), stored
            // by `track` before this call; it is released only by `reap` after the
            // kernel posted that user_data's final completion, or leaked by `Drop`.
            // Entries with `UNTRACKED` user_data carry no pointers, only user_data
            // values. Null address pointers for `Accept` are allowed by the kernel.
            let pushed = unsafe { self.uring.submission().push(entry) };
            if pushed.is_ok() {
                return;
            }
            // The submission queue is full: hand it to the kernel and retry. If the
            // completion queue is full too (`EBUSY`), reap into `early` first.
            match self.uring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => self.reap_into_early(),
            }
        }
    }

    fn reap_into_early(&mut self) {
        let mut v = std::mem::take(&mut self.early);
        self.reap_cq(&mut v);
        self.early = v;
    }

    /// Submits what was queued and waits until at least `want` completions are
    /// ready (0: do not wait).
    pub(crate) fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        let want = if self.early.is_empty() { want } else { 0 };
        match self.uring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // Interrupted, or completions must be reaped first: the caller reaps.
                Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Moves every completion posted so far into `out`, with its memory.
    pub(crate) fn reap(&mut self, out: &mut Vec<Done<T>>) {
        out.append(&mut self.early);
        self.reap_cq(out);
    }

    fn reap_cq(&mut self, out: &mut Vec<Done<T>>) {
        let cqes: Vec<(u64, i32, u32)> = self
            .uring
            .completion()
            .map(|c| (c.user_data(), c.result(), c.flags()))
            .collect();
        for (id, result, flags) in cqes {
            if id == UNTRACKED {
                continue;
            }
            let Some(op) = self.ops.remove(&id) else {
                continue;
            };
            let fd = if op.kind == Kind::Accept && result >= 0 {
                // SAFETY: a successful accept's result is a descriptor the kernel
                // just installed for this process; nothing else owns it.
                Some(unsafe { OwnedFd::from_raw_fd(result) })
            } else {
                None
            };
            let buf = match op.held {
                Held::Buf(b) => Some(b),
                Held::Nothing | Held::Time(_) => None,
            };
            // A buffer the kernel took out of the pool for this receive.
            let pooled = match (op.kind, cqueue::buffer_select(flags), &self.pool) {
                (Kind::Recv, Some(bid), Some(pool)) if usize::from(bid) < pool.bufs.len() => {
                    Some(Pooled {
                        bid,
                        len: usize::try_from(result).unwrap_or(0).min(pool.buf_len),
                    })
                }
                _ => None,
            };
            out.push(Done {
                id,
                tag: op.tag,
                kind: op.kind,
                result,
                buf,
                pooled,
                fd,
            });
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        if self.ops.is_empty() {
            // Nothing can pick or fill a pool buffer any more: the pool is freed
            // after the ring itself (field order).
            if self.pool.is_some() {
                let _ = self.uring.submitter().unregister_buf_ring(POOL_GROUP);
            }
            return;
        }
        // The kernel may still use the memory of operations in flight, the pool's
        // included: never free it.
        for (_, op) in self.ops.drain() {
            std::mem::forget(op.held);
        }
        if let Some(pool) = self.pool.take() {
            std::mem::forget(pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_failure_is_reported_as_unavailable() {
        let Err(e) = checked(Err(io::Error::from_raw_os_error(libc::ENOSYS))) else {
            panic!("a failed set-up passed");
        };
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().starts_with("io_uring is unavailable"), "{e}");
        assert!(crate::is_unavailable(&e));
        let Err(e) = checked(Err(io::Error::from_raw_os_error(libc::EPERM))) else {
            panic!("a failed set-up passed");
        };
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("seccomp"), "{e}");
    }

    #[test]
    fn timeout_completes_and_returns_nothing_held() {
        let mut ring: Ring<u8> = Ring::new(8, None).unwrap();
        let id = ring.timeout(Duration::from_millis(1), 7);
        let mut out = Vec::new();
        for _ in 0..100 {
            ring.submit_and_wait(1).unwrap();
            ring.reap(&mut out);
            if !out.is_empty() {
                break;
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].id, out[0].tag, out[0].kind), (id, 7, Kind::Timeout));
        assert_eq!(out[0].result, -libc::ETIME);
        assert_eq!(ring.in_flight(), 0);
    }

    /// Submits and reaps until `n` completions arrived (bounded).
    fn reap_n(ring: &mut Ring<u8>, n: usize) -> Vec<Done<u8>> {
        let mut out = Vec::new();
        for _ in 0..1_000 {
            if out.len() >= n {
                break;
            }
            ring.submit_and_wait(1).unwrap();
            ring.reap(&mut out);
        }
        assert_eq!(out.len(), n, "completions");
        out
    }

    #[test]
    fn pooled_receives_cycle_the_buffers_and_run_dry_until_one_is_given_back() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let size = PoolSize {
            buf_len: 16,
            initial: 2,
            max: 3,
        };
        let mut ring: Ring<u8> = Ring::new(8, Some(size)).unwrap();
        assert!(ring.has_pool(), "this kernel has buffer rings");
        assert_eq!(ring.pool_buffers(), 2);
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = rx.as_raw_fd();

        // More receives than buffers: each buffer comes back and is used again.
        for round in 0..7u8 {
            let msg = [round; 5];
            tx.write_all(&msg).unwrap();
            let id = ring.recv_pooled(fd, round).unwrap();
            let mut done = reap_n(&mut ring, 1);
            let d = done.pop().unwrap();
            assert_eq!((d.id, d.tag, d.kind, d.result), (id, round, Kind::Recv, 5));
            assert!(d.buf.is_none());
            let p = d.pooled.expect("a pool buffer");
            assert_eq!(ring.pooled(&p), &msg);
            ring.give_back(p);
        }

        // Keep both buffers out: the next receive finds the pool empty.
        let mut held = Vec::new();
        for i in 0..2u8 {
            tx.write_all(&[i; 16]).unwrap();
            ring.recv_pooled(fd, i).unwrap();
            let d = reap_n(&mut ring, 1).pop().unwrap();
            assert_eq!(d.result, 16);
            held.push(d.pooled.expect("a pool buffer"));
        }
        tx.write_all(b"more").unwrap();
        ring.recv_pooled(fd, 9).unwrap();
        let d = reap_n(&mut ring, 1).pop().unwrap();
        assert_eq!(d.result, -libc::ENOBUFS);
        assert!(d.pooled.is_none());
        // The held buffers still hold their bytes.
        assert_eq!(ring.pooled(&held[0]), &[0u8; 16]);
        assert_eq!(ring.pooled(&held[1]), &[1u8; 16]);

        // Growing adds a third buffer (the bound), and no more.
        assert!(ring.grow_pool());
        assert!(!ring.grow_pool());
        assert_eq!(ring.pool_buffers(), 3);
        ring.recv_pooled(fd, 10).unwrap();
        let d = reap_n(&mut ring, 1).pop().unwrap();
        assert_eq!(d.result, 4);
        let p = d.pooled.expect("the new buffer");
        assert_eq!(ring.pooled(&p), b"more");
        ring.give_back(p);
        for p in held {
            ring.give_back(p);
        }
        assert_eq!(ring.in_flight(), 0);
    }
}

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
//! * the only other `unsafe` is taking ownership of the file descriptor that a
//!   completed `Accept` returns: the kernel just installed it for us and nothing
//!   else in the process knows that number.
//!
//! File descriptors given to operations are not memory: the event loop keeps each
//! socket open until its operations completed, which matters for correctness
//! (the number is not reused under an operation) but not for memory safety.
#![allow(unsafe_code)]

use io_uring::{opcode, squeue, types, IoUring};
use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
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

/// A completed operation, with its memory handed back.
pub(crate) struct Done<T> {
    pub(crate) id: OpId,
    pub(crate) tag: T,
    pub(crate) kind: Kind,
    /// The kernel's result: bytes moved, a new descriptor, or `-errno`.
    pub(crate) result: i32,
    /// The buffer of a `Recv` or `Send`.
    pub(crate) buf: Option<Vec<u8>>,
    /// The accepted socket of a successful `Accept`.
    pub(crate) fd: Option<OwnedFd>,
}

/// An io_uring instance and the memory of its operations in flight. `T` tags each
/// operation for the event loop.
pub(crate) struct Ring<T> {
    uring: IoUring,
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

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<T: Copy> Ring<T> {
    /// A ring with `entries` submission slots (and four times as many completion
    /// slots, so that a loop with many sockets rarely overflows).
    pub(crate) fn new(entries: u32) -> io::Result<Self> {
        let uring = checked(
            IoUring::builder()
                .setup_cqsize(entries.saturating_mul(4))
                .build(entries),
        )?;
        Ok(Ring {
            uring,
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
        let cqes: Vec<(u64, i32)> = self
            .uring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (id, result) in cqes {
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
            out.push(Done {
                id,
                tag: op.tag,
                kind: op.kind,
                result,
                buf,
                fd,
            });
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // The kernel may still use the memory of operations in flight: never free it.
        for (_, op) in self.ops.drain() {
            std::mem::forget(op.held);
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
        let mut ring: Ring<u8> = Ring::new(8).unwrap();
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
}

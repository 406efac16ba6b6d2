//! The I/O task over the in-memory stand-ins ([`crate::mem`]): two tasks joined by a
//! pipe, polled in turn on the test's thread with the application futures, and
//! timers that fire only when a test fires them.

use super::*;
use crate::mem::{self, ManualTimer, PipeEnd, TimerControl};
use crate::Handle;
use core::task::Waker;
use std::time::Duration;
use weft_core::{Config, Role};

/// Turns the test rig makes before a test gives up.
const TURNS_LIMIT: usize = 1_000_000;

type Task = IoTask<PipeEnd, ManualTimer>;

/// A client and a server task joined by a pipe, and futures of the test that run
/// alongside them.
struct Rig {
    client: Task,
    server: Task,
    ch: Handle,
    sh: Handle,
    ctimer: TimerControl,
    background: Vec<Pin<Box<dyn Future<Output = ()>>>>,
}

fn task(role: Role, io: PipeEnd) -> (Task, Handle, TimerControl) {
    task_with(role, io, Config::default())
}

fn task_with(role: Role, io: PipeEnd, config: Config) -> (Task, Handle, TimerControl) {
    let (driver, handle) = crate::connect(role, config, crate::os_seed());
    let (timer, control) = mem::manual_timer();
    (IoTask::new(io, driver, timer), handle, control)
}

impl Rig {
    /// The pair over a pipe of `capacity` bytes whose client end takes at most
    /// `max_write` bytes per write, with the handshake done.
    fn new(capacity: usize, max_write: usize) -> Rig {
        Rig::with_config(capacity, max_write, Config::default())
    }

    /// [`Rig::new`] with `config` on both sides.
    fn with_config(capacity: usize, max_write: usize, config: Config) -> Rig {
        let (a, b) = mem::pipe(capacity);
        let (client, ch, ctimer) =
            task_with(Role::Client, a.with_max_write(max_write), config.clone());
        let (server, sh, _) = task_with(Role::Server, b, config);
        let mut rig = Rig {
            client,
            server,
            ch,
            sh,
            ctimer,
            background: Vec::new(),
        };
        let connected = rig.ch.connected();
        rig.drive(connected).expect("handshake");
        rig
    }

    /// Polls the background futures and both tasks once.
    fn turn(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        self.background
            .retain_mut(|f| f.as_mut().poll(&mut cx).is_pending());
        assert!(
            Pin::new(&mut self.client).poll(&mut cx).is_pending(),
            "the client task ended"
        );
        assert!(
            Pin::new(&mut self.server).poll(&mut cx).is_pending(),
            "the server task ended"
        );
    }

    /// Turns until `f` completes.
    fn drive<F: Future>(&mut self, f: F) -> F::Output {
        let mut f = core::pin::pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..TURNS_LIMIT {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            self.turn();
        }
        panic!("no progress");
    }

    /// Turns until `done` holds.
    fn until(&mut self, mut done: impl FnMut(&Rig) -> bool) {
        for _ in 0..TURNS_LIMIT {
            if done(self) {
                return;
            }
            self.turn();
        }
        panic!("no progress");
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn numbered(i: u32) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..4].copy_from_slice(&i.to_be_bytes());
    m
}

/// Output the transport does not take is kept, in order; input the application
/// does not read is kept and delivered in order once it does; both buffers are
/// given back after a whole idle timer period, and grow again with the next burst.
fn buffers_are_kept_only_while_backed_up(mut rig: Rig) {
    // The handshake fit the transport and the driver took all input: an idle
    // connection owns no buffer.
    assert!(!rig.client.backlog.has_buffer() && rig.client.outbuf.is_none());

    for round in 0..2u32 {
        let big = pattern(1 << 20, round);
        let (ch, sh) = (rig.ch.clone(), rig.sh.clone());
        rig.drive(ch.send(&big)).expect("send");
        let got = rig.drive(sh.next_message()).expect("message");
        assert!(got[..] == big[..], "payload intact (round {round})");
        assert!(
            rig.client.outbuf.is_some(),
            "output was kept (round {round})"
        );

        const N: u32 = 3_000;
        let sender = rig.sh.clone();
        rig.background.push(Box::pin(async move {
            for i in 0..N {
                sender.send(&numbered(i)).await.expect("send");
            }
        }));
        rig.until(|r| !r.client.backlog.is_empty());
        for i in 0..N {
            let m = rig.drive(ch.next_message()).expect("message");
            assert_eq!(&m[..], &numbered(i), "message {i} (round {round})");
        }
        rig.until(|r| r.background.is_empty());
        assert!(
            rig.client.backlog.has_buffer(),
            "input was kept (round {round})"
        );

        // Idle: the first timer period after the backlog keeps the buffers, a
        // whole period without one gives them back.
        rig.client.release_idle_buffers();
        assert!(rig.client.backlog.has_buffer() && rig.client.outbuf.is_some());
        rig.client.release_idle_buffers();
        assert!(!rig.client.backlog.has_buffer() && rig.client.outbuf.is_none());
    }
}

/// A pipe far smaller than a message: every large write is partial, and the
/// writer waits for the reader (tokio's `duplex(1024)` in the test this replaces).
#[test]
fn buffers_are_kept_only_while_backed_up_and_grow_again_after_idleness() {
    buffers_are_kept_only_while_backed_up(Rig::new(1024, usize::MAX));
}

/// A transport taking at most 1000 bytes per write but never full (the smol
/// test's capped socket): output larger than a few writes has to be kept.
#[test]
fn buffers_are_kept_over_partial_writes_and_given_back_when_idle() {
    buffers_are_kept_only_while_backed_up(Rig::new(1 << 30, 1000));
}

#[test]
fn timer_is_rearmed_only_when_the_deadline_moves_earlier() {
    // No heartbeat (a fixed period): the next deadline is the idle timer's, which
    // every message received restarts, moving the deadline later.
    let mut config = Config::default();
    config.params.heartbeat_ms = 0;
    let mut rig = Rig::with_config(1 << 20, usize::MAX, config);
    let before = rig.ctimer.resets();
    const N: u32 = 200;
    let (ch, sh) = (rig.ch.clone(), rig.sh.clone());
    for i in 0..N {
        rig.drive(sh.send(&numbered(i))).expect("send");
        rig.drive(ch.next_message()).expect("message");
        let want = rig.client.driver.poll_timeout().expect("a deadline");
        let armed = rig.ctimer.deadline().expect("armed");
        assert!(armed <= want, "armed later than the deadline (message {i})");
    }
    let resets = rig.ctimer.resets() - before;
    assert!(resets <= 2, "{resets} timer resets for {N} messages");

    // The timer fires for the earlier instant it is still armed for: not due, so
    // the task re-arms it for the deadline and the connection goes on.
    let want = rig.client.driver.poll_timeout().expect("a deadline");
    assert!(
        rig.ctimer.deadline() < Some(want),
        "armed early (the test's premise)"
    );
    assert!(rig.ctimer.fire());
    rig.turn();
    assert_eq!(
        rig.ctimer.deadline(),
        Some(want),
        "re-armed for the deadline"
    );
    rig.drive(sh.send(b"after")).expect("send");
    let m = rig.drive(ch.next_message()).expect("message");
    assert_eq!(&m[..], b"after");
}

/// A server task whose driver finishes at once (an error close during the
/// handshake), and the test's raw end of its pipe.
fn finishing_server() -> (Task, PipeEnd, TimerControl, Instant) {
    let (a, b) = mem::pipe(1 << 20);
    let (server, handle, control) = task(Role::Server, b);
    handle.close(weft_core::ErrorCode::INTERNAL_ERROR, "test");
    drop(handle);
    (server, a, control, Instant::now())
}

/// Polls `task` until it is `Ready` (true) or, after a bounded number of polls,
/// still pending (false).
fn poll_until_ready(task: &mut Task) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    (0..1_000).any(|_| Pin::new(&mut *task).poll(&mut cx).is_ready())
}

fn read_all(raw: &mut PipeEnd) -> std::io::Result<Vec<u8>> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match raw.poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(0)) => return Ok(out),
            Poll::Ready(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => panic!("the task's end of stream did not come"),
        }
    }
}

#[test]
fn finished_task_shuts_down_then_discards_input_until_the_peers_end_of_stream() {
    let (mut server, mut raw, timer, started) = finishing_server();
    assert!(
        !poll_until_ready(&mut server),
        "ended before the peer's end of stream"
    );
    assert_eq!(server.phase, Phase::Lingering);
    // Our last bytes (the CLOSE) and then our end of stream reached the peer.
    let got = read_all(&mut raw).expect("no reset");
    assert!(!got.is_empty(), "the CLOSE was written");
    // The linger deadline is armed, `linger` after the connection finished.
    let linger = Duration::from_secs(2);
    let until = timer.deadline().expect("linger armed");
    assert!(until >= started + linger && until <= Instant::now() + linger);

    // What the peer writes meanwhile is read and discarded, not left to reset.
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..4 {
        assert!(matches!(
            raw.poll_write(&mut cx, &[7u8; 1000]),
            Poll::Ready(Ok(1000))
        ));
        assert!(
            !poll_until_ready(&mut server),
            "ended while the peer still writes"
        );
        assert_eq!(raw.unread_by_peer(), 0, "input was read");
    }
    assert!(raw.poll_shutdown(&mut cx).is_ready());
    assert!(
        poll_until_ready(&mut server),
        "the peer's end of stream ends the task"
    );
}

#[test]
fn linger_ends_at_its_deadline_with_a_peer_that_never_ends_its_stream() {
    let (mut server, mut raw, timer, _) = finishing_server();
    assert!(!poll_until_ready(&mut server));
    read_all(&mut raw).expect("no reset");
    assert!(
        !poll_until_ready(&mut server),
        "ended before the linger deadline"
    );
    assert!(timer.fire(), "the linger deadline was armed");
    assert!(
        poll_until_ready(&mut server),
        "the linger deadline ends the task"
    );
}

#[test]
fn a_failed_transport_is_dropped_without_lingering() {
    let (mut server, raw, timer, _) = finishing_server();
    // The peer is gone: the write fails and nothing is waited for.
    drop(raw);
    assert!(
        poll_until_ready(&mut server),
        "the task waited on a dead transport"
    );
    assert_eq!(timer.deadline(), None, "no linger deadline");
}

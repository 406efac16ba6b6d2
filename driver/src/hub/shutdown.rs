//! A server's graceful shutdown over its hub, in blocking form: the event-loop
//! adapters (`weft-mio`, `weft-uring`) stop accepting, then call
//! [`Hub::close_all_and_wait`], then stop their loop. The async adapters wait for
//! their connections' tasks instead, which end at the same moment.
//!
//! A connection has *ended* once its driver is dropped: closed (spec 15.2 or
//! 15.3), its transport closed by the linger policy (15.5), and nothing more
//! left for it to do. The driver detaches from the hub as it drops, which is what
//! the wait watches; its close details are read from the connection's state.

use super::{lock, Hub};
use crate::shared::Shared;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::vec::Vec;
use weft_core::config::Config;
use weft_core::conn::CloseKind;
use weft_core::error::ErrorCode;

/// How the connections of a server's graceful shutdown ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Closed gracefully: both CLOSEs exchanged and everything accepted before
    /// them drained (spec 15.2).
    pub graceful: usize,
    /// Ended otherwise before the limit: the drain timed out (`DRAIN_TIMEOUT`),
    /// the handshake failed, an error close, or the peer vanished.
    pub not_graceful: usize,
    /// Still open when the limit passed; the adapter then cuts them (their peers
    /// see the connection lost). Only a peer or a loop that does not keep to the
    /// configured timeouts gets here.
    pub cut: usize,
}

impl ShutdownReport {
    /// The connections the shutdown closed, however they ended.
    pub fn total(&self) -> usize {
        self.graceful + self.not_graceful + self.cut
    }

    /// True if every connection closed gracefully (also when there were none).
    pub fn all_graceful(&self) -> bool {
        self.graceful == self.total()
    }
}

/// Beyond the configured timeouts: the loop's own lateness in firing them
/// (a busy or shared machine), so that the limit cuts only what they failed to end.
const SLACK: Duration = Duration::from_secs(1);

/// The longest a connection with `config` may take to end once a graceful close
/// was asked of it, plus a little slack: a handshake still in progress first
/// (the close waits for it, bounded by `handshake_timeout`), then the drain
/// (`drain_timeout`, after which the core closes with `DRAIN_TIMEOUT`), then the
/// linger (`linger`, spec 15.5). With the default configuration, 23 s.
pub fn graceful_close_limit(config: &Config) -> Duration {
    config
        .handshake_timeout
        .saturating_add(config.drain_timeout)
        .saturating_add(config.linger)
        .saturating_add(SLACK)
}

impl Hub {
    /// A server's graceful shutdown, blocking the calling thread: closes every
    /// attached connection with `NO_ERROR` (each finishes its in-flight work,
    /// bounded by its `drain_timeout`, then lingers as spec 15.5 says, bounded by
    /// its `linger`) and returns once each of them has ended, or once `limit` has
    /// passed ([`graceful_close_limit`] gives the bound the configuration
    /// implies), saying how they ended.
    ///
    /// Stop accepting first: a connection attached after this call is neither
    /// closed nor waited for. Connections still open at the limit are counted as
    /// [`cut`](ShutdownReport::cut) and left to the caller, who stops its loop.
    /// Must not be called on a thread that drives the connections (an event
    /// loop's), which would wait for itself.
    pub fn close_all_and_wait(&self, limit: Duration) -> ShutdownReport {
        let conns: Vec<(u64, Shared)> = {
            let h = lock(&self.inner);
            for c in h.conns.values() {
                super::close(c, ErrorCode::NO_ERROR, "server shutting down");
            }
            h.conns.iter().map(|(k, c)| (*k, c.clone())).collect()
        };
        let all_ended = Ended {
            hub: self,
            conns: &conns,
        };
        // Timing out is an outcome here, not a failure: it is reported as cut.
        let _ = crate::block_on_timeout(all_ended, limit);
        let attached: Vec<u64> = {
            let h = lock(&self.inner);
            conns
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| h.conns.contains_key(k))
                .collect()
        };
        let mut report = ShutdownReport::default();
        for (key, c) in &conns {
            if attached.contains(key) {
                report.cut += 1;
            } else if lock(c)
                .closed
                .is_some_and(|i| i.kind == CloseKind::Graceful)
            {
                report.graceful += 1;
            } else {
                report.not_graceful += 1;
            }
        }
        report
    }
}

/// Ready once every one of `conns` has detached from the hub and its close
/// details are known (a dropping driver detaches before it records a loss).
struct Ended<'a> {
    hub: &'a Hub,
    conns: &'a [(u64, Shared)],
}

impl Future for Ended<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut h = lock(&self.hub.inner);
            if self.conns.iter().any(|(k, _)| h.conns.contains_key(k)) {
                // Registered under the lock that `detach` takes: no detach is missed.
                crate::handle::push_waker(&mut h.detach_wakers, cx.waker());
                return Poll::Pending;
            }
        }
        for (_, c) in self.conns {
            let mut st = lock(c);
            if st.closed.is_none() {
                // The driver is dropping right now: it wakes its close waiters next.
                crate::handle::push_waker(&mut st.closed_wakers, cx.waker());
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{block_on, connect, Driver};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};
    use std::time::Instant;
    use weft_core::config::Role;
    use weft_core::router::RouterConfig;

    /// Bounds a wait that must end; only a broken driver reaches it.
    const BOUND: Duration = Duration::from_secs(60);

    /// A driver waker that tells the thread playing the I/O side.
    struct Tell(Mutex<mpsc::Sender<()>>);

    impl Wake for Tell {
        fn wake(self: Arc<Self>) {
            let _ = self.0.lock().unwrap_or_else(|p| p.into_inner()).send(());
        }
    }

    fn waker() -> (Waker, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        (Waker::from(Arc::new(Tell(Mutex::new(tx)))), rx)
    }

    /// Moves bytes both ways until neither side has any.
    fn pump(a: &mut Driver, b: &mut Driver) {
        let mut buf = vec![0u8; 1 << 17];
        let mut moved = true;
        while moved {
            moved = move_once(a, b, &mut buf) | move_once(b, a, &mut buf);
        }
    }

    fn move_once(from: &mut Driver, to: &mut Driver, buf: &mut [u8]) -> bool {
        let n = from.poll_transmit(buf);
        if n > 0 {
            assert_eq!(to.handle_input(&buf[..n]), n, "input left untaken");
        }
        n > 0
    }

    #[test]
    fn waits_until_every_connection_ended_and_says_how() {
        let hub = Hub::new(RouterConfig::default());
        let (mut cd, client) = connect(Role::Client, Config::default(), [1; 32]);
        let (mut sd, server) = connect(Role::Server, Config::default(), [2; 32]);
        hub.attach(&mut sd);
        client.try_send(b"before the shutdown").unwrap();
        pump(&mut cd, &mut sd);
        let got = block_on(server.next_message());
        assert_eq!(got.as_deref(), Some(&b"before the shutdown"[..]));
        // The I/O side, as an adapter runs it: woken by the drivers (the close
        // wakes the server's), it moves bytes until both are finished, then drops
        // them, as an adapter does after the linger.
        let (w, woken) = waker();
        cd.register(&w);
        sd.register(&w);
        let io = std::thread::spawn(move || {
            while !(cd.is_finished() && sd.is_finished()) {
                woken
                    .recv_timeout(BOUND)
                    .expect("the close never woke the driver");
                pump(&mut cd, &mut sd);
            }
        });
        let report = hub.close_all_and_wait(BOUND);
        io.join().expect("the I/O side");
        let expected = ShutdownReport {
            graceful: 1,
            ..ShutdownReport::default()
        };
        assert_eq!(report, expected);
        assert!(report.all_graceful());
        let info = block_on(client.closed());
        assert_eq!(info.kind, CloseKind::Graceful, "{info}");
        assert_eq!(info.code, ErrorCode::NO_ERROR, "{info}");
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn a_connection_dropped_mid_close_is_not_graceful() {
        let hub = Hub::new(RouterConfig::default());
        let (mut cd, _client) = connect(Role::Client, Config::default(), [1; 32]);
        let (mut sd, server) = connect(Role::Server, Config::default(), [2; 32]);
        hub.attach(&mut sd);
        pump(&mut cd, &mut sd);
        let (w, woken) = waker();
        sd.register(&w);
        // The transport is lost as the close begins: nothing is exchanged.
        let io = std::thread::spawn(move || {
            woken
                .recv_timeout(BOUND)
                .expect("the close never woke the driver");
            drop(sd);
        });
        let report = hub.close_all_and_wait(BOUND);
        io.join().expect("the I/O side");
        assert_eq!(report.not_graceful, 1, "{report:?}");
        assert_eq!(report.total(), 1, "{report:?}");
        assert!(!report.all_graceful());
        assert_eq!(block_on(server.closed()).kind, CloseKind::Lost);
    }

    #[test]
    fn a_connection_nobody_drives_is_cut_at_the_limit() {
        let hub = Hub::new(RouterConfig::default());
        let (mut sd, _server) = connect(Role::Server, Config::default(), [2; 32]);
        hub.attach(&mut sd);
        // No I/O side at all: the connection cannot end, so the limit decides.
        let report = hub.close_all_and_wait(Duration::from_millis(10));
        let expected = ShutdownReport {
            cut: 1,
            ..ShutdownReport::default()
        };
        assert_eq!(report, expected);
        // Left to the caller: still attached until its driver goes.
        assert_eq!(hub.connections(), 1);
        drop(sd);
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn no_connections_returns_at_once() {
        let hub = Hub::new(RouterConfig::default());
        let started = Instant::now();
        let report = hub.close_all_and_wait(BOUND);
        assert_eq!(report, ShutdownReport::default());
        assert!(report.all_graceful());
        // Not a timing assertion on the shutdown: only that it did not wait out the bound.
        assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn the_limit_adds_the_configured_timeouts() {
        let mut c = Config {
            handshake_timeout: Duration::from_millis(100),
            drain_timeout: Duration::from_millis(200),
            linger: Duration::from_millis(300),
            ..Config::default()
        };
        assert_eq!(graceful_close_limit(&c), Duration::from_millis(600) + SLACK);
        c.drain_timeout = Duration::MAX;
        assert_eq!(graceful_close_limit(&c), Duration::MAX);
    }
}

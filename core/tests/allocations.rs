//! Steady-state allocations of the core: after warm-up, one-way messages and
//! request/response round trips between two in-memory connections allocate
//! nothing. A counting global allocator (`stats_alloc`, this test binary's only)
//! counts every allocation and reallocation; the counts are exact, not timings.

#![cfg(feature = "alloc")]

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use weft_core::conn::{Connection, Event, Outcome};
use weft_core::{Config, Instant, Priority, Role};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far.
fn allocs() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

struct Pair {
    client: Connection,
    server: Connection,
    buf: Vec<u8>,
    reply: Vec<u8>,
}

const NOW: Instant = Instant::ZERO;

impl Pair {
    fn connected() -> Pair {
        let mut p = Pair {
            client: Connection::new(Role::Client, Config::default(), NOW, [1; 32]),
            server: Connection::new(Role::Server, Config::default(), NOW, [2; 32]),
            buf: vec![0u8; 256 << 10],
            reply: Vec::with_capacity(64),
        };
        for _ in 0..16 {
            p.pump_to_server();
            p.pump_to_client();
        }
        assert!(p.client.is_established() && p.server.is_established());
        p
    }

    /// Client bytes into the server; the server echoes requests and counts
    /// messages.
    fn pump_to_server(&mut self) -> usize {
        let mut got = 0;
        loop {
            let n = self.client.poll_transmit(NOW, &mut self.buf);
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                off += self.server.handle_input(NOW, &self.buf[off..n]);
                while let Some(ev) = self.server.poll_event() {
                    match ev {
                        Event::Message { data } => {
                            got += self.server.data(data).map_or(0, |d| d.payload.len().min(1));
                        }
                        Event::Request { id, data, .. } => {
                            self.reply.clear();
                            let d = self.server.data(data).expect("request data");
                            self.reply.extend_from_slice(d.payload);
                            self.server
                                .respond(id, Outcome::Ok, "", &self.reply, Priority::Normal)
                                .expect("respond");
                        }
                        _ => {}
                    }
                }
            }
        }
        while self.client.poll_event().is_some() {}
        got
    }

    /// Server bytes into the client; counts responses.
    fn pump_to_client(&mut self) -> usize {
        let mut got = 0;
        loop {
            let n = self.server.poll_transmit(NOW, &mut self.buf);
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                off += self.client.handle_input(NOW, &self.buf[off..n]);
                while let Some(ev) = self.client.poll_event() {
                    if let Event::Response { outcome, .. } = ev {
                        assert_eq!(outcome, Outcome::Ok);
                        got += 1;
                    }
                }
            }
        }
        while self.server.poll_event().is_some() {}
        got
    }

    fn round_trip(&mut self, payload: &[u8]) {
        self.client
            .request(
                NOW,
                b"echo",
                payload,
                Some(core::time::Duration::from_secs(5)),
                Priority::Normal,
            )
            .expect("request");
        self.pump_to_server();
        assert_eq!(self.pump_to_client(), 1, "one response per round trip");
    }

    fn burst(&mut self, payload: &[u8], n: usize) {
        for _ in 0..n {
            self.client
                .send_message(payload, Priority::Normal)
                .expect("send");
        }
        assert_eq!(self.pump_to_server(), n);
    }
}

// Both scenarios in one test: the allocation counter is global to the binary, and
// tests run on parallel threads.
#[test]
fn steady_state_messages_and_round_trips_allocate_nothing() {
    let payload = [7u8; 64];
    let mut p = Pair::connected();
    // Warm-up: queues, tables and buffers reach their working sizes (one growth
    // still happens between the 100th and the 1,000th round trip).
    for _ in 0..100 {
        p.burst(&payload, 100);
    }
    for _ in 0..2_000 {
        p.round_trip(&payload);
    }
    let before = allocs();
    for _ in 0..1_000 {
        p.round_trip(&payload);
    }
    let round_trips = allocs() - before;
    let before = allocs();
    for _ in 0..100 {
        p.burst(&payload, 100);
    }
    let messages = allocs() - before;
    assert_eq!(
        (round_trips, messages),
        (0, 0),
        "allocations in 1,000 round trips and 10,000 one-way messages"
    );
}

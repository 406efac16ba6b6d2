//! Steady-state allocations of the core: after warm-up, one-way messages and
//! request/response round trips between two in-memory connections allocate
//! nothing. A counting global allocator (`stats_alloc`, this test binary's only)
//! counts every allocation and reallocation; the counts are exact, not timings.

#![cfg(feature = "alloc")]

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use weft_core::conn::{Connection, Event, Outcome};
use weft_core::testing::Pair;
use weft_core::{Priority, Role};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations so far.
fn allocs() -> u64 {
    let s = GLOBAL.stats();
    (s.allocations + s.reallocations) as u64
}

/// The shared in-memory [`Pair`] with its wire copies off (they grow without
/// bound), driven by a drain that echoes requests and counts what arrives, copying
/// nothing out: the test's own bookkeeping allocates nothing.
struct Echo {
    pair: Pair,
    reply: Vec<u8>,
}

/// What one drive delivered: one-way messages at the server, responses at the client.
#[derive(Default)]
struct Counts {
    messages: usize,
    responses: usize,
}

impl Echo {
    fn connected() -> Echo {
        let mut pair = Pair::connected();
        pair.keep_wire = false;
        Echo {
            pair,
            reply: Vec::with_capacity(64),
        }
    }

    fn drive(&mut self) -> Counts {
        let mut n = Counts::default();
        let reply = &mut self.reply;
        self.pair.drive_with(&mut |role, c: &mut Connection, _| {
            while let Some(ev) = c.poll_event() {
                match (role, ev) {
                    (Role::Server, Event::Message { data }) => {
                        n.messages += c.data(data).map_or(0, |d| d.payload.len().min(1));
                    }
                    (Role::Server, Event::Request { id, data, .. }) => {
                        reply.clear();
                        reply.extend_from_slice(c.data(data).expect("request data").payload);
                        c.respond(id, Outcome::Ok, "", reply, Priority::Normal)
                            .expect("respond");
                    }
                    (Role::Client, Event::Response { outcome, .. }) => {
                        assert_eq!(outcome, Outcome::Ok);
                        n.responses += 1;
                    }
                    _ => {}
                }
            }
        });
        n
    }

    fn round_trip(&mut self, payload: &[u8]) {
        let now = self.pair.now;
        self.pair
            .client
            .request(
                now,
                b"echo",
                payload,
                Some(core::time::Duration::from_secs(5)),
                Priority::Normal,
            )
            .expect("request");
        assert_eq!(self.drive().responses, 1, "one response per round trip");
    }

    fn burst(&mut self, payload: &[u8], n: usize) {
        for _ in 0..n {
            self.pair
                .client
                .send_message(payload, Priority::Normal)
                .expect("send");
        }
        assert_eq!(self.drive().messages, n);
    }
}

// Both scenarios in one test: the allocation counter is global to the binary, and
// tests run on parallel threads.
#[test]
fn steady_state_messages_and_round_trips_allocate_nothing() {
    let payload = [7u8; 64];
    let mut p = Echo::connected();
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

//! Tests of the router, by concern; the helpers here publish and drain as a
//! server runtime would.

mod delivery;
mod groups;
mod invariants;
mod lifecycle;
mod matching;
mod overflow;

extern crate std;

use super::*;
use crate::topic::filter_matches;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use quickcheck::{Arbitrary, Gen, QuickCheck};

const P: OverflowPolicy = OverflowPolicy::DropNewest;

fn router() -> Router {
    Router::new(RouterConfig::default())
}

fn msg(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Drains all deliveries of `conn` as (sub_id, topic, payload), the id as its
/// number and the rest as strings, so expectations read as plain literals.
fn drain(r: &mut Router, conn: ConnKey) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    while let Some(d) = r.poll_delivery(conn) {
        out.push((
            d.sub_id.get(),
            String::from_utf8(d.topic.to_vec()).unwrap(),
            String::from_utf8(d.payload.to_vec()).unwrap(),
        ));
    }
    out
}

fn drain_actions(r: &mut Router) -> Vec<RouterAction> {
    core::iter::from_fn(|| r.poll_action()).collect()
}

/// Which (conn, sub) the router routes `topic` to, via a real publish (the sub id
/// as its number).
fn receivers(r: &mut Router, topic: &str) -> Vec<(ConnKey, u64)> {
    r.publish(topic, msg("x")).unwrap();
    let conns: Vec<ConnKey> = r.conns.keys().copied().collect();
    let mut got = Vec::new();
    for c in conns {
        for (sub, _, _) in drain(r, c) {
            got.push((c, sub));
        }
    }
    got.sort_unstable();
    got
}

fn total_queued(r: &Router) -> usize {
    r.conns
        .values()
        .flat_map(|c| c.subs.values())
        .map(|s| s.queue.len())
        .sum()
}

const FILTER_TOKENS: [&str; 3] = ["a", "b", "*"];
const TOPIC_TOKENS: [&str; 2] = ["a", "b"];

fn gen_filter(g: &mut Gen) -> String {
    let n = usize::from(u8::arbitrary(g) % 3) + 1;
    let mut toks: Vec<&str> = (0..n).map(|_| *g.choose(&FILTER_TOKENS).unwrap()).collect();
    if bool::arbitrary(g) {
        toks.push(">");
    }
    toks.join(".")
}

fn gen_topic(g: &mut Gen) -> String {
    let n = usize::from(u8::arbitrary(g) % 4) + 1;
    let toks: Vec<&str> = (0..n).map(|_| *g.choose(&TOPIC_TOKENS).unwrap()).collect();
    toks.join(".")
}

fn validate_filter_ok(f: &str) -> bool {
    crate::topic::validate_filter(f).is_ok()
}

//! Tests of the stream layer, by what they check; the helpers here drive two
//! [`Streams`] against each other as a connection pair would.

mod errors;
mod flow;
mod lifecycle;
mod priority;
mod transfer;

use super::*;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;
use core::cmp::min;
use core::time::Duration;
use quickcheck::{QuickCheck, TestResult};

use crate::time::Instant;

/// The clock's origin, for the many tests in which time plays no part.
const T0: Instant = Instant::ZERO;

fn cfg(stream_win: u32, conn_win: u32) -> StreamConfig {
    StreamConfig {
        initial_stream_window: stream_win,
        max_stream_window: stream_win,
        initial_conn_window: conn_win,
        max_conn_window: conn_win,
        ..StreamConfig::default()
    }
}

fn pair(c: StreamConfig, s: StreamConfig) -> (Streams, Streams) {
    (
        Streams::new(true, c, (&s).into()),
        Streams::new(false, s, (&c).into()),
    )
}

fn deliver(to: &mut Streams, f: StreamFrame, now: Instant) -> Result<(), StreamProtoError> {
    match f {
        StreamFrame::Data {
            id,
            open,
            fin,
            data,
        } => to.on_data(id, open, fin, &data, now),
        StreamFrame::WindowUpdate { id, increment } => to.on_window_update(id, increment),
        StreamFrame::Reset { id, code } => to.on_reset(id, code),
    }
}

/// Polls one frame from `from`, checking that a DATA frame stays within
/// the stream and connection credit the sender had just before.
fn poll_checked(from: &mut Streams, max_data: usize, now: Instant) -> Option<StreamFrame> {
    let conn_before = from.stats().conn_send_credit;
    let windows: Vec<(StreamId, u64)> = from
        .map
        .iter()
        .map(|(&id, s)| (id, s.flow.send.credit()))
        .collect();
    let f = from.poll_frame(max_data, now)?;
    if let StreamFrame::Data { id, data, .. } = &f {
        let len = data.len() as u64;
        let before = windows.iter().find(|w| w.0 == *id).map_or(0, |w| w.1);
        assert!(
            len <= before,
            "frame of {len} exceeds stream credit {before}"
        );
        assert!(len <= conn_before, "frame of {len} exceeds conn credit");
        assert!(data.len() <= max_data);
        assert_eq!(from.stats().conn_send_credit, conn_before - len);
    }
    Some(f)
}

/// Moves every frame `from` has to `to`; returns how many moved.
fn flush(from: &mut Streams, to: &mut Streams, max_data: usize, now: Instant) -> usize {
    let mut n = 0;
    while let Some(f) = poll_checked(from, max_data, now) {
        deliver(to, f, now).expect("peer accepts frame");
        n += 1;
    }
    n
}

fn pump(c: &mut Streams, s: &mut Streams) {
    while flush(c, s, 1200, T0) + flush(s, c, 1200, T0) > 0 {}
}

fn events(s: &mut Streams) -> Vec<StreamEvent> {
    core::iter::from_fn(|| s.poll_event()).collect()
}

fn read_all(s: &mut Streams, id: StreamId) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 333];
    loop {
        match s.read(id, &mut buf) {
            Ok(ReadOutcome::Data(n)) => out.extend_from_slice(&buf[..n]),
            Ok(ReadOutcome::Fin) => return (out, true),
            Err(StreamError::Blocked) => return (out, false),
            Err(e) => panic!("read error {e:?}"),
        }
    }
}

fn pattern(seed: u64, off: u64, n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| ((off + i) * 31 + seed * 7 % 251) as u8)
        .collect()
}

//! Frame output order: opening frames in id order first, then DATA by priority
//! level, with a stream opened at a more urgent level's turn keeping its data.

use super::*;

/// The ids and payload lengths of every frame `c` has, as `poll_frame` orders them.
fn order(c: &mut Streams, max_data: usize) -> Vec<(StreamId, bool, usize)> {
    core::iter::from_fn(|| c.poll_frame(max_data, T0))
        .map(|f| match f {
            StreamFrame::Data { id, open, data, .. } => (id, open, data.len()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn urgent_streams_send_first_after_openings_in_id_order() {
    let (mut c, _s) = pair(StreamConfig::default(), StreamConfig::default());
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    c.set_priority(b, 0).unwrap();
    c.write(a, &[1; 30]).unwrap();
    c.write(b, &[2; 30]).unwrap();
    assert_eq!(
        order(&mut c, 10),
        vec![
            (a, true, 10),
            (b, true, 10),
            (b, false, 10),
            (b, false, 10),
            (a, false, 10),
            (a, false, 10),
        ]
    );
}

#[test]
fn opening_at_a_more_urgent_level_keeps_the_data_for_its_own_level() {
    let (mut c, _s) = pair(StreamConfig::default(), StreamConfig::default());
    let a = c.open().unwrap();
    c.write(a, &[1; 30]).unwrap();
    // Level 0 has nothing of its own, but the opening frame may not wait.
    let f = c.poll_data_frame(0, 10, T0).unwrap();
    assert!(
        matches!(f, StreamFrame::Data { id, open: true, ref data, .. } if id == a && data.is_empty())
    );
    assert_eq!(c.poll_data_frame(0, 10, T0), None);
    assert!(
        matches!(c.poll_data_frame(DEFAULT_PRIORITY, 10, T0), Some(StreamFrame::Data { id, open: false, ref data, .. }) if id == a && data.len() == 10)
    );
}

#[test]
fn set_priority_moves_a_queued_stream_and_clamps_the_level() {
    let (mut c, _s) = pair(StreamConfig::default(), StreamConfig::default());
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    c.write(a, &[1; 20]).unwrap();
    c.write(b, &[2; 20]).unwrap();
    // Both open (and queue at level 2) with their first chunk.
    assert_eq!(order(&mut c, 10).len(), 4);
    c.write(a, &[1; 20]).unwrap();
    c.write(b, &[2; 20]).unwrap();
    // a is already queued at level 2: lowering it past the last level clamps to 3.
    c.set_priority(a, 200).unwrap();
    assert_eq!(
        c.poll_data_frame(PRIORITY_LEVELS as u8 - 1, 10, T0)
            .map(|f| matches!(f, StreamFrame::Data { id, .. } if id == a)),
        Some(true)
    );
    assert_eq!(
        order(&mut c, 10),
        vec![(b, false, 10), (b, false, 10), (a, false, 10)]
    );
    assert_eq!(
        c.set_priority(StreamId::new(99), 0),
        Err(StreamError::UnknownStream)
    );
}

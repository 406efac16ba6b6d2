//! Peer misbehaviour that is a connection error.

use super::*;

#[test]
fn refusal_flood_is_a_connection_error() {
    let small = StreamConfig {
        max_concurrent_streams: 0,
        ..StreamConfig::default()
    };
    let mut s = Streams::new(false, small, (&StreamConfig::default()).into());
    let mut result = Ok(());
    for i in 0..(MIN_REFUSE_QUEUE as u64 + 1) {
        result = s.on_data(StreamId::new(2 * i + 1), true, false, &[], T0);
    }
    assert_eq!(result, Err(StreamProtoError::StreamLimit));
}

#[test]
fn receiving_beyond_window_is_flow_control_error() {
    let mut s = Streams::new(false, cfg(1000, 1500), (&cfg(1000, 1500)).into());
    let big = Bytes::from(vec![0u8; 1001]);
    assert_eq!(
        s.on_data(StreamId::new(1), true, false, &big, T0),
        Err(StreamProtoError::FlowControl)
    );
    s.on_data(StreamId::new(1), true, false, &vec![0u8; 1000], T0)
        .unwrap();
    assert_eq!(
        s.on_data(StreamId::new(1), false, false, b"x", T0),
        Err(StreamProtoError::FlowControl)
    );
    // Connection window: 500 left, two streams try more.
    s.on_data(StreamId::new(3), true, false, &vec![0u8; 500], T0)
        .unwrap();
    assert_eq!(
        s.on_data(StreamId::new(5), true, false, b"x", T0),
        Err(StreamProtoError::FlowControl)
    );
}

#[test]
fn protocol_errors() {
    let mut s = Streams::new(
        false,
        StreamConfig::default(),
        (&StreamConfig::default()).into(),
    );
    let e = |r: Result<(), StreamProtoError>| r.unwrap_err();
    // Wrong parity, id 0, never-opened ids.
    assert_eq!(
        e(s.on_data(StreamId::new(2), true, false, &[], T0)),
        StreamProtoError::StreamState
    );
    assert_eq!(
        e(s.on_data(StreamId::new(0), true, false, &[], T0)),
        StreamProtoError::StreamState
    );
    assert_eq!(
        e(s.on_data(StreamId::new(1), false, false, &[], T0)),
        StreamProtoError::StreamState
    );
    assert_eq!(e(s.on_window_update(1, 5)), StreamProtoError::StreamState);
    assert_eq!(e(s.on_window_update(2, 5)), StreamProtoError::StreamState);
    s.on_data(StreamId::new(5), true, false, &[], T0).unwrap();
    // Re-open, or open a lower id.
    assert_eq!(
        e(s.on_data(StreamId::new(5), true, false, &[], T0)),
        StreamProtoError::StreamState
    );
    assert_eq!(
        e(s.on_data(StreamId::new(3), true, false, &[], T0)),
        StreamProtoError::StreamState
    );
    // Data after FIN.
    s.on_data(StreamId::new(5), false, true, &[], T0).unwrap();
    assert_eq!(
        e(s.on_data(StreamId::new(5), false, false, b"x", T0)),
        StreamProtoError::StreamState
    );
    // Credit overflow, per stream and for the connection.
    assert_eq!(
        e(s.on_window_update(5, MAX_FLOW_LIMIT)),
        StreamProtoError::FlowControl
    );
    assert_eq!(
        e(s.on_window_update(0, u64::MAX)),
        StreamProtoError::FlowControl
    );
    s.on_window_update(5, 1000).unwrap();
    assert_eq!(s.send_window(StreamId::new(5)), Some(256 * 1024 + 1000));
    // Our own id the peer cannot know about yet.
    let mine = s.open().unwrap();
    assert_eq!(
        e(s.on_window_update(mine.get(), 5)),
        StreamProtoError::StreamState
    );
    assert_eq!(
        e(s.on_data(mine, false, false, &[], T0)),
        StreamProtoError::StreamState
    );
}

//! Opening, half-closing, resets, refusals and the events that report them.

use super::*;

#[test]
fn open_and_accept_with_open_flag_on_first_frame_only() {
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let id = c.open().unwrap();
    assert_eq!(id, StreamId::new(1));
    assert_eq!(c.open(), Ok(StreamId::new(3)));
    assert_eq!(c.write(id, b"hello"), Ok(5));
    // Opening frames leave in id order, the empty one included.
    let f1 = c.poll_frame(3, T0).unwrap();
    assert_eq!(
        f1,
        StreamFrame::Data {
            id: StreamId::new(1),
            open: true,
            fin: false,
            data: Bytes::from_static(b"hel")
        }
    );
    let f2 = c.poll_frame(3, T0).unwrap();
    assert!(
        matches!(f2, StreamFrame::Data { id, open: true, ref data, .. }
        if id == StreamId::new(3) && data.is_empty())
    );
    let f3 = c.poll_frame(3, T0).unwrap();
    assert!(matches!(
        f3,
        StreamFrame::Data {
            id,
            open: false,
            ..
        } if id == StreamId::new(1)
    ));
    assert_eq!(c.poll_frame(3, T0), None);
    for f in [f1, f2, f3] {
        deliver(&mut s, f, T0).unwrap();
    }
    assert_eq!(
        events(&mut s),
        vec![
            StreamEvent::Opened(StreamId::new(1)),
            StreamEvent::Readable(StreamId::new(1)),
            StreamEvent::Opened(StreamId::new(3))
        ]
    );
    assert_eq!(
        read_all(&mut s, StreamId::new(1)),
        (b"hello".to_vec(), false)
    );
    // Server-opened streams are even and reach the client.
    assert_eq!(s.open(), Ok(StreamId::new(2)));
    s.write(StreamId::new(2), b"x").unwrap();
    pump(&mut c, &mut s);
    assert_eq!(
        events(&mut c),
        vec![
            StreamEvent::Opened(StreamId::new(2)),
            StreamEvent::Readable(StreamId::new(2))
        ]
    );
    assert_eq!(read_all(&mut c, StreamId::new(2)), (b"x".to_vec(), false));
}

#[test]
fn half_close_each_way() {
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let id = c.open().unwrap();
    c.write(id, b"request").unwrap();
    c.finish(id).unwrap();
    assert_eq!(c.write(id, b"more"), Err(StreamError::Closed));
    assert_eq!(c.finish(id), Err(StreamError::Closed));
    // FIN rides on the last data frame.
    let f = c.poll_frame(1000, T0).unwrap();
    assert!(matches!(
        f,
        StreamFrame::Data {
            open: true,
            fin: true,
            ..
        }
    ));
    deliver(&mut s, f, T0).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            StreamEvent::Opened(id),
            StreamEvent::Readable(id),
            StreamEvent::Finished(id)
        ]
    );
    assert_eq!(read_all(&mut s, id), (b"request".to_vec(), true));
    // The other direction is still open.
    s.write(id, b"response").unwrap();
    pump(&mut c, &mut s);
    assert_eq!(read_all(&mut c, id), (b"response".to_vec(), false));
    assert_eq!(c.stats().open_streams, 1);
    // An empty FIN closes it; both sides end the stream.
    s.finish(id).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(events(&mut s), vec![StreamEvent::Closed(id)]);
    assert_eq!(
        events(&mut c),
        vec![
            StreamEvent::Readable(id),
            StreamEvent::Finished(id),
            StreamEvent::Closed(id)
        ]
    );
    assert_eq!(c.stats().open_streams, 0);
    assert_eq!(s.stats().open_streams, 0);
    // Forgotten after Closed was polled; the id is not reused.
    assert_eq!(c.read(id, &mut [0; 4]), Err(StreamError::UnknownStream));
    assert_eq!(c.open(), Ok(StreamId::new(3)));
}

#[test]
fn client_side_half_close_after_response() {
    // The client reads everything before its own FIN goes out: the
    // stream ends when the last condition (FIN sent) is met.
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let id = c.open().unwrap();
    c.write(id, b"a").unwrap();
    pump(&mut c, &mut s);
    s.write(id, b"b").unwrap();
    s.finish(id).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(read_all(&mut c, id), (b"b".to_vec(), true));
    assert!(!events(&mut c).contains(&StreamEvent::Closed(id)));
    c.finish(id).unwrap();
    pump(&mut c, &mut s);
    assert!(events(&mut c).contains(&StreamEvent::Closed(id)));
    assert_eq!(read_all(&mut s, id), (b"a".to_vec(), true));
    assert!(events(&mut s).contains(&StreamEvent::Closed(id)));
}

#[test]
fn reset_both_directions_with_code() {
    let (mut c, mut s) = pair(cfg(1000, 4000), cfg(1000, 1500));
    let id = c.open().unwrap();
    c.write(id, &[1; 900]).unwrap();
    pump(&mut c, &mut s);
    s.write(id, &[2; 10]).unwrap();
    // This frame is in flight when the client resets.
    let crossing = s.poll_frame(100, T0).unwrap();
    events(&mut s);
    // Unread data at the server is dropped on reset; credit comes back.
    c.reset(id, 42).unwrap();
    assert_eq!(c.write(id, b"x"), Err(StreamError::Closed));
    assert_eq!(c.reset(id, 1), Err(StreamError::Closed));
    assert_eq!(
        c.poll_frame(100, T0),
        Some(StreamFrame::Reset { id, code: 42 })
    );
    s.on_reset(id, 42).unwrap();
    assert_eq!(
        events(&mut s),
        vec![StreamEvent::Reset { id, code: 42 }, StreamEvent::Closed(id)]
    );
    // Server data that crossed the reset is discarded harmlessly, its
    // connection credit counted as consumed.
    deliver(&mut c, crossing, T0).unwrap();
    assert_eq!(c.conn.recv.consumed(), 10);
    assert_eq!(s.stats().resets_received, 1);
    assert_eq!(s.stats().conn_recv_credit, 1500 - 900);
    assert_eq!(
        s.poll_frame(100, T0),
        Some(StreamFrame::WindowUpdate {
            id: 0,
            increment: 900
        })
    );
    assert_eq!(s.poll_frame(100, T0), None);
    assert_eq!(events(&mut c), vec![StreamEvent::Closed(id)]);
    assert_eq!(c.stats().open_streams, 0);

    // Server resets a client-opened stream; the client's unread data is
    // dropped and reads report the code until Closed is polled.
    let id = c.open().unwrap();
    c.write(id, b"hi").unwrap();
    pump(&mut c, &mut s);
    s.write(id, b"unread").unwrap();
    pump(&mut c, &mut s);
    s.reset(id, 7).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(c.read(id, &mut [0; 8]), Err(StreamError::Reset(7)));
    assert_eq!(c.write(id, b"x"), Err(StreamError::Reset(7)));
    assert_eq!(
        events(&mut c),
        vec![
            StreamEvent::Readable(id),
            StreamEvent::Reset { id, code: 7 },
            StreamEvent::Closed(id)
        ]
    );
    assert_eq!(c.read(id, &mut [0; 8]), Err(StreamError::UnknownStream));
    assert_eq!(c.stats().resets_received, 1);
    // Late frames for the dead stream are ignored, unknown ones are not.
    assert_eq!(c.on_window_update(id.get(), 10), Ok(()));
    assert_eq!(c.on_reset(id, 7), Ok(()));
    assert_eq!(
        c.on_window_update(101, 10),
        Err(StreamProtoError::StreamState)
    );
    assert_eq!(
        c.on_reset(StreamId::new(101), 7),
        Err(StreamProtoError::StreamState)
    );
}

#[test]
fn reset_before_open_sends_nothing() {
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    c.write(a, b"x").unwrap();
    c.reset(a, 9).unwrap();
    assert_eq!(events(&mut c), vec![StreamEvent::Closed(a)]);
    let f = c.poll_frame(100, T0).unwrap();
    assert!(matches!(f, StreamFrame::Data { id, open: true, .. } if id == b));
    assert_eq!(c.poll_frame(100, T0), None);
    // Skipping id 1 is fine for the server.
    deliver(&mut s, f, T0).unwrap();
    assert_eq!(events(&mut s), vec![StreamEvent::Opened(b)]);
}

#[test]
fn stream_limit_on_open() {
    let small = StreamConfig {
        max_concurrent_streams: 2,
        ..StreamConfig::default()
    };
    let (mut c, mut s) = pair(StreamConfig::default(), small);
    let a = c.open().unwrap();
    c.open().unwrap();
    assert_eq!(c.open(), Err(StreamError::Limit));
    // A slot frees once the stream ended and Closed was polled.
    c.reset(a, 0).unwrap();
    assert_eq!(c.open(), Err(StreamError::Limit));
    events(&mut c);
    assert_eq!(c.open(), Ok(StreamId::new(5)));
    pump(&mut c, &mut s);
}

#[test]
fn peer_over_limit_is_refused() {
    let small = StreamConfig {
        max_concurrent_streams: 1,
        ..StreamConfig::default()
    };
    let mut lying = PeerStreamParams::from(&small);
    lying.max_concurrent_streams = 10;
    let mut c = Streams::new(true, StreamConfig::default(), lying);
    let mut s = Streams::new(false, small, (&StreamConfig::default()).into());
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    c.write(b, &[0; 500]).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(events(&mut s), vec![StreamEvent::Opened(a)]);
    assert_eq!(s.stats().streams_refused, 1);
    assert_eq!(
        events(&mut c),
        vec![
            StreamEvent::Reset {
                id: b,
                code: STREAM_REFUSED
            },
            StreamEvent::Closed(b)
        ]
    );
    // The refused stream's payload counts as consumed at once.
    assert_eq!(s.conn.recv.consumed(), 500);
    assert_eq!(s.stats().bytes_received, 500);
    // Re-opening a refused (lower) id is a protocol error.
    assert_eq!(
        s.on_data(b, true, false, &[], T0),
        Err(StreamProtoError::StreamState)
    );
}

#[test]
fn events_are_deduplicated() {
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let id = c.open().unwrap();
    for _ in 0..50 {
        c.write(id, b"abc").unwrap();
        flush(&mut c, &mut s, 2, T0);
    }
    assert_eq!(
        events(&mut s),
        vec![StreamEvent::Opened(id), StreamEvent::Readable(id)]
    );
    assert_eq!(read_all(&mut s, id).0.len(), 150);
}

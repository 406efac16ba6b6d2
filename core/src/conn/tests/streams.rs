//! Streams (spec section 11): flow control, resets and the rapid-reset limit, stream
//! protocol errors, receive-buffer memory, and priorities among messages.

use super::*;

fn read_all(c: &mut Connection, id: StreamId) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.stream_read(id, &mut buf) {
            Ok(crate::stream::ReadOutcome::Data(n)) => out.extend_from_slice(&buf[..n]),
            Ok(crate::stream::ReadOutcome::Fin) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

#[test]
fn stream_round_trip_with_flow_control() {
    let mut cc = Config::default();
    cc.params.initial_stream_window = 16 << 10;
    cc.params.initial_conn_window = 32 << 10;
    let mut p = Pair::new(cc.clone(), cc);
    p.drive();
    let id = p.client.open_stream().unwrap();
    assert_eq!(id.get() % 2, 1, "client streams are odd");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7) as u8).collect();
    let mut sent = 0;
    let mut received = Vec::new();
    for _ in 0..10_000 {
        if sent < data.len() {
            sent += p.client.stream_write(id, &data[sent..]).unwrap_or(0);
            if sent == data.len() {
                p.client.stream_finish(id).unwrap();
            }
        }
        p.drive();
        let (chunk, fin) = read_all(&mut p.server, id);
        received.extend_from_slice(&chunk);
        if fin {
            break;
        }
    }
    assert!(received == data);
    let ev = p.take_server();
    assert!(ev.iter().any(|g| g.ev == Event::StreamOpened(id)));
    // The server answers and finishes its direction; the stream then closes.
    p.server.stream_write(id, b"done").unwrap();
    p.server.stream_finish(id).unwrap();
    p.drive();
    let (reply, fin) = read_all(&mut p.client, id);
    assert_eq!((reply.as_slice(), fin), (&b"done"[..], true));
    p.drive();
    assert!(p
        .take_client()
        .iter()
        .any(|g| g.ev == Event::StreamClosed(id)));
}

#[test]
fn stream_reset_and_rapid_reset_flood() {
    let mut p = Pair::connected();
    let id = p.client.open_stream().unwrap();
    p.client.stream_write(id, b"x").unwrap();
    p.drive();
    p.client.stream_reset(id, 99).unwrap();
    // Moved by hand so the server's events wait: until the application polls the
    // stream's Closed event, reading it reports the peer's code, not a bare Closed.
    let n = p.client.poll_transmit(p.now, &mut p.buf);
    assert_eq!(p.server.handle_input(p.now, &p.buf[..n]), n);
    let mut buf = [0u8; 8];
    assert_eq!(
        p.server.stream_read(id, &mut buf),
        Err(Error::StreamReset(99))
    );
    p.drive();
    assert!(p
        .take_server()
        .iter()
        .any(|g| g.ev == Event::StreamReset { id, code: 99 }));

    let mut sc = Config::default();
    sc.max_resets_per_interval = 5;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    let mut frames = Vec::new();
    let mut ids = Vec::new();
    for k in 0..8u64 {
        ids.push(2 * k + 1);
    }
    for &id in &ids {
        frames.push(Frame::StreamData {
            id,
            flags: frame::STREAM_OPEN,
            data: b"a",
        });
        frames.push(Frame::StreamReset { id, code: 0 });
    }
    p.inject_to_server(&frames);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::RESET_FLOOD
    );
}

#[test]
fn stream_protocol_errors() {
    let mut p = Pair::connected();
    // Wrong parity: the client may not open even ids.
    p.inject_to_server(&[Frame::StreamData {
        id: 2,
        flags: frame::STREAM_OPEN,
        data: b"",
    }]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::STREAM_STATE_ERROR
    );
    let mut p = Pair::connected();
    let big = vec![0u8; 10_000];
    let frames: Vec<Frame<'_>> = (0..30)
        .map(|k| Frame::StreamData {
            id: 1,
            flags: if k == 0 { frame::STREAM_OPEN } else { 0 },
            data: &big,
        })
        .collect();
    for chunk in frames.chunks(5) {
        p.inject_to_server(chunk);
    }
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::FLOW_CONTROL_ERROR
    );
}

#[test]
fn tiny_stream_data_does_not_pin_large_records() {
    let mut p = Pair::connected();
    // Each record: a large message (consumed by the app) plus one byte of stream
    // data that nobody reads yet.
    let pad = vec![0u8; 16_000];
    for k in 0..50u64 {
        let frames = [
            Frame::Message { payload: &pad },
            Frame::StreamData {
                id: 1,
                flags: if k == 0 { frame::STREAM_OPEN } else { 0 },
                data: b"x",
            },
        ];
        p.inject_to_server(&frames);
        p.take_server();
    }
    assert!(p.server.is_established());
    // The 50 buffered bytes own only a small allocation: had each stayed a slice
    // of its record, they would keep 50 records of 16 KB alive.
    let streams = p.server.streams.as_mut().unwrap();
    let st = streams.stats();
    assert_eq!(st.recv_buffered, 50);
    assert!(
        st.recv_allocated <= crate::stream::max_recv_allocation(50),
        "50 unread bytes hold an allocation of {}",
        st.recv_allocated
    );
    let mut total = 0;
    while let Ok(Some(chunk)) = streams.read_chunk(StreamId::new(1), 64) {
        assert!(chunk.iter().all(|&b| b == b'x'));
        total += chunk.len();
        if total == 50 {
            break;
        }
    }
    assert_eq!(total, 50);
}

#[test]
fn stream_priorities_are_honoured_with_messages() {
    let mut p = Pair::connected();
    let low = p.client.open_stream().unwrap();
    let urgent = p.client.open_stream().unwrap();
    p.client.stream_set_priority(low, Priority::Low).unwrap();
    p.client
        .stream_set_priority(urgent, Priority::Urgent)
        .unwrap();
    p.client.stream_write(low, &[1u8; 8000]).unwrap();
    p.client.stream_write(urgent, &[2u8; 8000]).unwrap();
    for _ in 0..3 {
        p.client.send_message(b"normal", Priority::Normal).unwrap();
    }
    p.client_wire.clear();
    p.drive();
    // Frames in wire order: (type, stream id, data length).
    let mut order = Vec::new();
    let mut rest = &p.client_wire[..];
    while !rest.is_empty() {
        let info = record::parse(rest, 65_535, false).unwrap().unwrap();
        let mut pl = &rest[info.payload_start..info.payload_start + info.payload_len];
        while !pl.is_empty() {
            let (t, len, h) = frame::decode_header(pl).unwrap();
            match Frame::decode(t, &pl[h..h + len]).unwrap() {
                Frame::StreamData { id, data, .. } => order.push((t, id, data.len())),
                Frame::Message { payload } => order.push((t, 0, payload.len())),
                _ => {}
            }
            pl = &pl[h + len..];
        }
        rest = &rest[info.total_len..];
    }
    let pos = |pred: &dyn Fn(&(u8, u64, usize)) -> bool| order.iter().position(pred).unwrap();
    let urgent_data = pos(&|f| f.1 == urgent.get() && f.2 > 0);
    let first_msg = pos(&|f| f.0 == frame::ty::MESSAGE);
    let last_msg = order
        .iter()
        .rposition(|f| f.0 == frame::ty::MESSAGE)
        .unwrap();
    let low_data = pos(&|f| f.1 == low.get() && f.2 > 0);
    assert!(urgent_data < first_msg, "{order:?}");
    assert!(last_msg < low_data, "{order:?}");
}

//! Credit and windows: senders stop at credit, updates follow reads, windows
//! auto-tune within their bounds, and send buffers push back.

use super::*;

#[test]
fn sender_stops_exactly_at_window() {
    let (mut c, mut s) = pair(cfg(1000, 1_000_000), cfg(1000, 2500));
    let ids = [c.open().unwrap(), c.open().unwrap(), c.open().unwrap()];
    for &id in &ids {
        assert_eq!(c.write(id, &[7; 5000]), Ok(5000));
    }
    // Stream windows (1000 each) bind before the connection's 2500.
    let mut per_stream = [0u64; 3];
    while let Some(f) = poll_checked(&mut c, 300, T0) {
        if let StreamFrame::Data { id, data, .. } = &f {
            per_stream[(id.get() / 2) as usize] += data.len() as u64;
        }
        deliver(&mut s, f, T0).unwrap();
    }
    assert_eq!(per_stream.iter().sum::<u64>(), 2500);
    assert!(per_stream.iter().all(|&n| n <= 1000));
    assert_eq!(c.stats().conn_send_credit, 0);
    assert_eq!(c.stats().bytes_sent, 2500);
    // Reading returns credit, and sending resumes.
    for &id in &ids {
        read_all(&mut s, id);
    }
    assert!(flush(&mut s, &mut c, 300, T0) > 0);
    assert!(flush(&mut c, &mut s, 300, T0) > 0);
}

#[test]
fn window_update_only_after_reads() {
    let (mut c, mut s) = pair(cfg(1000, 100_000), cfg(1000, 100_000));
    let id = c.open().unwrap();
    c.write(id, &[1; 1000]).unwrap();
    flush(&mut c, &mut s, 10_000, T0);
    // Data arrived but nothing was read: no credit goes back.
    assert_eq!(s.poll_frame(1000, T0), None);
    let mut buf = [0u8; 499];
    s.read(id, &mut buf).unwrap();
    assert_eq!(s.poll_frame(1000, T0), None, "less than half consumed");
    s.read(id, &mut [0u8; 1]).unwrap();
    assert_eq!(
        s.poll_frame(1000, T0),
        Some(StreamFrame::WindowUpdate {
            id: id.get(),
            increment: 500
        })
    );
    // Updates are coalesced: many reads, one frame.
    for _ in 0..5 {
        s.read(id, &mut [0u8; 100]).unwrap();
    }
    assert_eq!(
        s.poll_frame(1000, T0),
        Some(StreamFrame::WindowUpdate {
            id: id.get(),
            increment: 500
        })
    );
    assert_eq!(s.poll_frame(1000, T0), None);
    assert_eq!(s.recv_window(id), Some(1000));
}

/// Streams `total` bytes on one stream with the server reading all it
/// can each round; returns the final stream and connection windows.
fn run_autotune(rtt: u64, step: u64, total: usize) -> (u64, u64) {
    let local = StreamConfig {
        initial_stream_window: 1000,
        max_stream_window: 8000,
        initial_conn_window: 4000,
        max_conn_window: 6000,
        max_send_buffer: 100_000,
        ..StreamConfig::default()
    };
    let (mut c, mut s) = pair(local, local);
    s.set_rtt(rtt);
    let id = c.open().unwrap();
    let data = pattern(3, 0, total);
    let mut written = 0;
    let mut got = Vec::new();
    let mut now = Instant::ZERO;
    let mut max_seen = 0;
    for _ in 0..100_000 {
        now = now + Duration::from_micros(step);
        if written < total {
            written += c.write(id, &data[written..]).unwrap_or(0);
        }
        flush(&mut c, &mut s, 1 << 20, now);
        got.extend(read_all(&mut s, id).0);
        flush(&mut s, &mut c, 1 << 20, now);
        max_seen = max_seen.max(s.recv_window(id).unwrap());
        assert!(s.stats().conn_recv_window <= 6000);
        if got.len() == total {
            break;
        }
    }
    assert_eq!(got, data);
    assert!(max_seen <= 8000);
    (s.recv_window(id).unwrap(), s.stats().conn_recv_window)
}

#[test]
fn window_autotuning_grows_to_max_and_never_beyond() {
    // Updates every 10us with a 1ms RTT: the window must grow to its cap.
    assert_eq!(run_autotune(1000, 10, 200_000), (8000, 6000));
    // No RTT known: no growth.
    assert_eq!(run_autotune(0, 10, 200_000), (1000, 4000));
    // Updates slower than 2 x RTT: no growth beyond the one doubling of
    // the first update, which comes right after the first data arrived
    // (the reader emptied a whole initial window at once).
    assert_eq!(run_autotune(1000, 5000, 50_000), (2000, 4000));
}

#[test]
fn write_blocked_changes_nothing() {
    let local = StreamConfig {
        max_send_buffer: 100,
        ..StreamConfig::default()
    };
    let (mut c, mut s) = pair(local, local);
    let id = c.open().unwrap();
    assert_eq!(c.write(id, &[1; 60]), Ok(60));
    assert_eq!(c.write(id, &[2; 60]), Ok(40), "partial write");
    let stats = c.stats();
    let window = c.send_window(id);
    assert_eq!(c.write(id, &[3; 10]), Err(StreamError::Blocked));
    assert_eq!(c.stats(), stats);
    assert_eq!(c.send_window(id), window);
    assert_eq!(c.write(id, &[]), Ok(0));
    assert_eq!(
        c.write(StreamId::new(99), b"x"),
        Err(StreamError::UnknownStream)
    );
    // Exactly the 100 accepted bytes go out, then room is reported.
    let f = c.poll_frame(1000, T0).unwrap();
    let mut expected = vec![1u8; 60];
    expected.extend_from_slice(&[2; 40]);
    assert!(matches!(&f, StreamFrame::Data { data, .. } if data[..] == expected[..]));
    assert_eq!(c.poll_frame(1000, T0), None);
    assert_eq!(events(&mut c), vec![StreamEvent::Writable(id)]);
    deliver(&mut s, f, T0).unwrap();
    assert_eq!(c.write(id, &[3; 10]), Ok(10));
}

#[test]
fn connection_wide_send_buffer_bounds_all_streams() {
    let cfg = StreamConfig {
        max_send_buffer: 10_000,
        max_total_send_buffer: 1_000,
        ..StreamConfig::default()
    };
    let mut c = Streams::new(true, cfg, PeerStreamParams::from(&StreamConfig::default()));
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    assert_eq!(c.write(a, &[1; 800]), Ok(800));
    assert_eq!(c.write(b, &[2; 800]), Ok(200), "only what the total allows");
    assert_eq!(c.write(b, &[2; 1]), Err(StreamError::Blocked));
    assert_eq!(c.stats().send_buffered, 1_000);
    while c.poll_event().is_some() {}
    // Sending drains the buffers; the blocked stream hears it may write again.
    let mut woke = false;
    for _ in 0..100 {
        if c.poll_frame(300, T0).is_none() {
            break;
        }
        while let Some(e) = c.poll_event() {
            woke |= e == StreamEvent::Writable(b);
        }
    }
    assert!(woke);
    assert!(c.stats().send_buffered <= 500);
    assert!(c.write(b, &[2; 100]).is_ok());
}

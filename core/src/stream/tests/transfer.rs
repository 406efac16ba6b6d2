//! Bytes arrive intact and in order, under any chunking, across many streams
//! sharing the connection fairly, and under random schedules.

use super::*;

#[test]
fn ordered_bytes_both_ways_with_various_chunking() {
    for (max_data, read_size) in [(1, 1), (7, 100), (1000, 3), (65536, 65536)] {
        let (mut c, mut s) = pair(cfg(4096, 8192), cfg(4096, 8192));
        let id = c.open().unwrap();
        let up = pattern(1, 0, 20_000);
        let down = pattern(2, 0, 15_000);
        let (mut wu, mut wd) = (0, 0);
        let (mut got_up, mut got_down) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; read_size];
        let mut server_knows = false;
        for _ in 0..100_000 {
            if wu < up.len() {
                wu += c.write(id, &up[wu..]).unwrap_or(0);
            }
            if server_knows && wd < down.len() {
                wd += s.write(id, &down[wd..]).unwrap_or(0);
            }
            flush(&mut c, &mut s, max_data, T0);
            server_knows = true;
            while let Ok(ReadOutcome::Data(n)) = s.read(id, &mut buf) {
                got_up.extend_from_slice(&buf[..n]);
            }
            flush(&mut s, &mut c, max_data, T0);
            while let Ok(ReadOutcome::Data(n)) = c.read(id, &mut buf) {
                got_down.extend_from_slice(&buf[..n]);
            }
            if got_up.len() == up.len() && got_down.len() == down.len() {
                break;
            }
        }
        assert_eq!(got_up, up);
        assert_eq!(got_down, down);
    }
}

#[test]
fn read_chunk_is_zero_copy_and_reports_fin() {
    let (mut c, mut s) = pair(StreamConfig::default(), StreamConfig::default());
    let id = c.open().unwrap();
    c.write(id, b"hello world").unwrap();
    c.finish(id).unwrap();
    pump(&mut c, &mut s);
    assert_eq!(s.read_chunk(id, 5), Ok(Some(Bytes::from_static(b"hello"))));
    assert_eq!(
        s.read_chunk(id, 100),
        Ok(Some(Bytes::from_static(b" world")))
    );
    assert_eq!(s.read_chunk(id, 100), Ok(None));
    assert_eq!(s.read(id, &mut [0; 4]), Ok(ReadOutcome::Fin));
}

#[test]
fn hundred_streams_one_mib_each_fair_and_deadlock_free() {
    const N: usize = 100;
    const SIZE: u64 = 1 << 20;
    let local = StreamConfig {
        max_concurrent_streams: N as u32,
        initial_stream_window: 16 * 1024,
        max_stream_window: 16 * 1024,
        initial_conn_window: 64 * 1024,
        max_conn_window: 64 * 1024,
        max_send_buffer: 32 * 1024,
        max_total_send_buffer: N * 32 * 1024,
    };
    let (mut c, mut s) = pair(local, local);
    let ids: Vec<StreamId> = (0..N).map(|_| c.open().unwrap()).collect();
    assert_eq!(c.open(), Err(StreamError::Limit));
    // `pattern` repeats every 256 bytes.
    let pat = pattern(0, 0, 256 * 40);
    let chunk = |off: u64, n: usize| {
        let start = (off % 256) as usize;
        &pat[start..start + n]
    };
    let mut written = [0u64; N];
    let mut received = [0u64; N];
    let mut server_done = [false; N];
    let mut client_closed = 0;
    let mut server_closed = 0;
    let mut buf = vec![0u8; 8192];
    let mut max_spread = 0;
    let mut rounds = 0;
    while client_closed < N || server_closed < N {
        rounds += 1;
        assert!(rounds < 200_000, "no progress: deadlock");
        for (i, &id) in ids.iter().enumerate() {
            if written[i] < SIZE {
                let n = min(SIZE - written[i], 8192) as usize;
                if let Ok(k) = c.write(id, chunk(written[i], n)) {
                    written[i] += k as u64;
                    if written[i] == SIZE {
                        c.finish(id).unwrap();
                    }
                }
            }
        }
        flush(&mut c, &mut s, 4096, T0);
        for (i, &id) in ids.iter().enumerate() {
            if server_done[i] {
                continue;
            }
            loop {
                match s.read(id, &mut buf) {
                    Ok(ReadOutcome::Data(n)) => {
                        assert!(buf[..n] == *chunk(received[i], n), "corrupt data");
                        received[i] += n as u64;
                    }
                    Ok(ReadOutcome::Fin) => {
                        assert_eq!(received[i], SIZE);
                        s.finish(id).unwrap();
                        server_done[i] = true;
                        break;
                    }
                    Err(StreamError::Blocked) | Err(StreamError::UnknownStream) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        flush(&mut s, &mut c, 4096, T0);
        for &id in &ids {
            let _ = c.read(id, &mut buf);
        }
        server_closed += events(&mut s)
            .iter()
            .filter(|e| matches!(e, StreamEvent::Closed(_)))
            .count();
        client_closed += events(&mut c)
            .iter()
            .filter(|e| matches!(e, StreamEvent::Closed(_)))
            .count();
        let spread = received.iter().max().unwrap() - received.iter().min().unwrap();
        max_spread = max_spread.max(spread);
    }
    assert!(received.iter().all(|&r| r == SIZE));
    // Round-robin: no stream gets ahead of another by more than a
    // stream window plus a frame.
    assert!(max_spread <= 16 * 1024 + 4096, "spread {max_spread}");
    assert_eq!(c.stats().open_streams, 0);
    assert_eq!(s.stats().open_streams, 0);
    assert_eq!(s.stats().bytes_received, N as u64 * SIZE);
}

/// Random write sizes, read sizes, frame sizes, windows and RTT on two
/// streams sharing the connection window: bytes arrive intact, no frame
/// exceeds credit (checked in `poll_checked`, and by the receiver), and
/// credit never underflows (debug arithmetic would panic).
fn prop_transfer(
    writes: Vec<u16>,
    reads: Vec<u16>,
    frames: Vec<u8>,
    windows: (u16, u16, u16),
    rtt: u8,
) -> TestResult {
    // Frame sizes of only 0 can move no data at all: nothing to check there.
    if reads.is_empty() || frames.iter().all(|&f| f == 0) {
        return TestResult::discard();
    }
    let stream_win = 1 + u32::from(windows.0 % 3000);
    let conn_win = 1 + u32::from(windows.1 % 5000);
    let local = StreamConfig {
        max_concurrent_streams: 4,
        initial_stream_window: stream_win,
        max_stream_window: stream_win * 4,
        initial_conn_window: conn_win,
        max_conn_window: conn_win * 4,
        max_send_buffer: 1 + usize::from(windows.2 % 4000),
        max_total_send_buffer: usize::MAX,
    };
    let (mut c, mut s) = pair(local, local);
    s.set_rtt(u64::from(rtt));
    let ids = [c.open().unwrap(), c.open().unwrap()];
    let mut sent: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (k, w) in writes.iter().enumerate() {
        pending[k % 2].extend(pattern(k as u64, 0, usize::from(w % 2000)));
    }
    let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut fin = [false; 2];
    let mut finished = [false; 2];
    let (mut ri, mut fi) = (0, 0);
    let mut now = Instant::ZERO;
    for _ in 0..200_000 {
        now = now + Duration::from_micros(5);
        for i in 0..2 {
            let off = sent[i].len();
            if off < pending[i].len() {
                let r = c.write(ids[i], &pending[i][off..]);
                let before = sent[i].len();
                match r {
                    Ok(n) => sent[i].extend_from_slice(&pending[i][off..off + n]),
                    Err(StreamError::Blocked) => assert_eq!(sent[i].len(), before),
                    Err(e) => panic!("{e:?}"),
                }
            } else if !finished[i] {
                c.finish(ids[i]).unwrap();
                finished[i] = true;
            }
        }
        // Move a random number of frames of random size.
        let burst = 1 + frames[fi % frames.len()] % 4;
        for _ in 0..burst {
            let max_data = usize::from(frames[fi % frames.len()]) * 7;
            fi += 1;
            match poll_checked(&mut c, max_data, now) {
                Some(f) => {
                    if deliver(&mut s, f, now).is_err() {
                        return TestResult::failed();
                    }
                }
                None => break,
            }
        }
        for i in 0..2 {
            let mut buf = vec![0u8; 1 + usize::from(reads[ri % reads.len()] % 3000)];
            ri += 1;
            match s.read(ids[i], &mut buf) {
                Ok(ReadOutcome::Data(n)) => got[i].extend_from_slice(&buf[..n]),
                Ok(ReadOutcome::Fin) => fin[i] = true,
                Err(StreamError::Blocked) | Err(StreamError::UnknownStream) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        while let Some(f) = poll_checked(&mut s, 1000, now) {
            if deliver(&mut c, f, now).is_err() {
                return TestResult::failed();
            }
        }
        if s.stats().conn_recv_window > u64::from(conn_win) * 4
            || ids.iter().any(|&id| {
                s.recv_window(id)
                    .is_some_and(|w| w > u64::from(stream_win) * 4)
            })
        {
            return TestResult::failed();
        }
        if fin == [true, true] {
            break;
        }
    }
    TestResult::from_bool(fin == [true, true] && got == pending && sent == pending)
}

#[test]
fn quickcheck_transfer_roundtrip_and_credit() {
    QuickCheck::new()
        .tests(60)
        .quickcheck(prop_transfer as fn(_, _, _, _, _) -> TestResult);
}

//! One-way messages (spec section 9), their priorities (section 13), fragmentation
//! (section 12) and the send queue bound.

use super::*;

#[test]
fn messages_in_priority_order() {
    let mut p = Pair::connected();
    p.client.send_message(b"low", Priority::Low).unwrap();
    p.client.send_message(b"normal", Priority::Normal).unwrap();
    p.client.send_message(b"urgent", Priority::Urgent).unwrap();
    p.client.send_message(b"high", Priority::High).unwrap();
    p.drive();
    let got: Vec<Vec<u8>> = p.take_server().into_iter().map(|g| g.payload).collect();
    assert_eq!(
        got,
        vec![
            b"urgent".to_vec(),
            b"high".to_vec(),
            b"normal".to_vec(),
            b"low".to_vec()
        ]
    );
    assert_eq!(p.server.stats().messages_received, 4);
    assert_eq!(p.client.stats().messages_sent, 4);
}

#[cfg(feature = "alloc")]
#[test]
fn received_records_are_held_only_while_events_refer_to_them() {
    let mut p = Pair::connected();
    for i in 0..100u8 {
        p.client.send_message(&[i; 10], Priority::Normal).unwrap();
    }
    let n = p.client.poll_transmit(p.now, &mut p.buf);
    assert_eq!(p.server.handle_input(p.now, &p.buf[..n]), n);
    assert!(p.server.held.len() >= 1, "queued events pin their record");
    let mut kept = Vec::new();
    while let Some(ev) = p.server.poll_event() {
        if let Event::Message { data } = ev {
            kept.push(p.server.take_payload(data).unwrap());
        }
    }
    assert_eq!(p.server.held.len(), 0, "no event left, no record held");
    // Payloads taken as shared bytes outlive the connection's hold on the record.
    assert_eq!(kept.len(), 100);
    for (i, b) in kept.iter().enumerate() {
        assert_eq!(&b[..], &[i as u8; 10]);
    }
}

#[cfg(feature = "alloc")]
#[test]
fn sixteen_mib_message_interleaves_with_small_ones() {
    let mut p = Pair::connected();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    // The whole message frame must fit the peer's maximum message size.
    let big = &big[..(16 << 20) - 16];
    p.client.send_message(big, Priority::Normal).unwrap();
    for i in 0..3u8 {
        p.client.send_message(&[i], Priority::Normal).unwrap();
    }
    p.drive();
    let got = p.take_server();
    let sizes: Vec<usize> = got.iter().map(|g| g.payload.len()).collect();
    assert_eq!(sizes.len(), 4);
    assert_eq!(
        sizes[0], 1,
        "a small message is not stuck behind the large one"
    );
    let g = got.iter().find(|g| g.payload.len() > 1).unwrap();
    assert!(g.payload == big);
    assert_eq!(p.server.stats().reassembly_bytes, 0);
}

#[cfg(feature = "alloc")]
#[test]
fn sender_respects_peer_cap_on_fragmented_messages() {
    for cap in [1u64, 2, 8] {
        let mut sc = Config::default();
        sc.params.max_concurrent_fragmented = cap;
        let mut p = Pair::new(Config::default(), sc);
        p.drive();
        p.take_server();
        // Large messages on every priority level, more than the cap.
        let prios = [
            Priority::Urgent,
            Priority::High,
            Priority::Normal,
            Priority::Low,
        ];
        for i in 0..12u8 {
            p.client
                .send_message(&vec![i; 20_000], prios[i as usize % 4])
                .unwrap();
        }
        p.drive();
        let got = p.take_server();
        assert_eq!(got.len(), 12, "cap {cap}: all delivered, no FRAGMENT_LIMIT");
        // Within one priority level large messages keep their order.
        for lvl in 0..4u8 {
            let order: Vec<u8> = got
                .iter()
                .map(|g| g.payload[0])
                .filter(|i| i % 4 == lvl)
                .collect();
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(order, sorted);
        }
    }
}

#[cfg(feature = "alloc")]
#[test]
fn oversize_message_is_refused_for_sender() {
    let mut sc = Config::default();
    sc.params.max_message_size = 100_000;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    let before = p.client.stats();
    assert_eq!(
        p.client.send_message(&vec![0u8; 100_000], Priority::Normal),
        Err(Error::MessageTooLarge)
    );
    assert_eq!(p.client.stats(), before);
    p.client
        .send_message(&vec![0u8; 99_000], Priority::Normal)
        .unwrap();
    p.take_server();
    p.drive();
    assert_eq!(p.take_server()[0].payload.len(), 99_000);
}

#[cfg(feature = "alloc")]
#[test]
fn send_queue_bound_reports_blocked_then_writable() {
    let mut cc = Config::default();
    cc.max_queued_bytes = 10_000;
    let mut p = Pair::new(cc, Config::default());
    p.drive();
    p.take_client();
    p.take_server();
    let mut sent = 0;
    while p
        .client
        .send_message(&[7u8; 1000], Priority::Normal)
        .is_ok()
    {
        sent += 1;
        assert!(sent < 100, "the bound holds");
    }
    assert!((9..=11).contains(&sent), "{sent}");
    p.drive();
    assert!(p.take_client().iter().any(|g| g.ev == Event::Writable));
    let got = p.take_server();
    assert_eq!(got.len(), sent);
}

#[cfg(feature = "alloc")]
#[test]
fn peer_without_reassembly_gets_whole_frames_only() {
    let mut sc = Config::default();
    sc.params.max_concurrent_fragmented = 0;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    assert_eq!(
        p.client.send_message(&vec![0u8; 20_000], Priority::Normal),
        Err(Error::MessageTooLarge)
    );
    assert!(p
        .client
        .send_message(&vec![0u8; 16_000], Priority::Normal)
        .is_ok());
}

#[test]
fn small_messages_cost_at_most_eight_bytes_each_with_integrity() {
    // Without alloc the transmit queue holds 2 KiB: fewer messages at once.
    let n: usize = if cfg!(feature = "alloc") { 64 } else { 48 };
    let mut p = Pair::connected();
    assert!(p.client.negotiated().unwrap().integrity);
    p.client_wire.clear();
    for _ in 0..n {
        p.client.send_message(&[7u8; 32], Priority::Normal).unwrap();
    }
    p.drive();
    let got = p.take_server();
    assert_eq!(got.len(), n);
    // Everything the client wrote for them: record headers, CRC trailers, frames.
    let overhead = p.client_wire.len() - n * 32;
    assert!(
        overhead <= n * 8,
        "{overhead} bytes of overhead for {n} messages"
    );
    // Coalesced: one record carries them all.
    assert_eq!(
        p.client_wire.len(),
        n * 34 + record::HEADER_LEN + record::TRAILER_LEN
    );
}

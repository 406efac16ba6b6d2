//! Inputs the fuzz targets (`fuzz/`) found failing, each reduced to the behaviour
//! it broke. The raw inputs are also kept in `fuzz/regressions/<target>/` and
//! replayed by the fuzz crate's own tests; these tests say what was wrong in
//! words and run with the rest of weft-core's tests.

// Each test imports what it uses: some need `alloc`, and a build without it must
// not warn about imports only they use.

/// Found by `server_raw`: one input holding a record that opens a stream and then a
/// record that fails its CRC. The stream's `StreamOpened` was queued after
/// `Closed`, which must be the last event.
#[cfg(feature = "alloc")]
#[test]
fn stream_opened_in_the_last_input_comes_before_closed() {
    use weft_core::conn::Event;
    use weft_core::testing::{feed, record_of, Pair};
    use weft_core::wire::frame::{Frame, STREAM_OPEN};
    let mut p = Pair::connected();
    let mut bytes = record_of(
        &[Frame::StreamData {
            id: 1,
            flags: STREAM_OPEN,
            data: b"x",
        }],
        true,
    );
    let mut bad = record_of(&[Frame::Ping { token: 1 }], true);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    bytes.extend_from_slice(&bad);
    let mut ev = Vec::new();
    feed(&mut p.server, p.now, &bytes, &mut ev);
    let kinds: Vec<Event> = ev.iter().map(|g| g.ev).collect();
    let closed = kinds
        .iter()
        .position(|e| matches!(e, Event::Closed(_)))
        .expect("the bad record closes the connection");
    assert_eq!(closed, kinds.len() - 1, "events after Closed: {kinds:?}");
    assert!(
        kinds.contains(&Event::StreamOpened(weft_core::StreamId::new(1))),
        "{kinds:?}"
    );
}

/// Found reading a `pair_ops` failure: before SERVER_HELLO a client knows none of
/// the server's limits and must assume the defaults (spec 7.3, 256 requests and 256
/// subscriptions), but it assumed none: with a larger request budget of its own,
/// or any number of subscriptions, it pipelined past the defaults and a default
/// server closed with REQUEST_LIMIT or SUBSCRIPTION_LIMIT. (Without a heap the
/// connection's tables hold far fewer.)
#[cfg(feature = "alloc")]
#[test]
fn a_client_pipelines_no_more_than_the_default_limits() {
    use weft_core::conn::Event;
    use weft_core::testing::Pair;
    use weft_core::{Config, Error, OverflowPolicy, Priority};
    let cc = Config {
        max_outstanding_requests: 1000,
        ..Config::default()
    };
    let mut p = Pair::new(cc, Config::default());
    let now = p.now;
    let mut requests = 0;
    while p
        .client
        .request(now, b"svc", b"", None, Priority::Normal)
        .is_ok()
    {
        requests += 1;
        assert!(requests <= 1000);
    }
    assert_eq!(requests, 256);
    assert_eq!(
        p.client.request(now, b"svc", b"", None, Priority::Normal),
        Err(Error::Blocked)
    );
    let mut subs = 0;
    while p
        .client
        .subscribe("a.b", None, OverflowPolicy::DropOldest)
        .is_ok()
    {
        subs += 1;
        assert!(subs <= 1000);
    }
    assert_eq!(subs, 256);
    p.drive();
    assert!(p.client.is_established() && p.server.is_established());
    let ev = p.take_server();
    assert_eq!(weft_core::testing::closed(&ev), None);
    let n = |f: fn(&Event) -> bool| ev.iter().filter(|g| f(&g.ev)).count();
    assert_eq!(n(|e| matches!(e, Event::Request { .. })), 256);
    assert_eq!(n(|e| matches!(e, Event::Subscribed { .. })), 256);
}

//! Inputs the fuzz targets (`fuzz/`) found failing, each reduced to the behaviour
//! it broke. The raw inputs are also kept in `fuzz/regressions/<target>/` and
//! replayed by the fuzz crate's own tests; these tests say what was wrong in
//! words and run with the rest of weft-core's tests.

use weft_core::conn::Event;
use weft_core::testing::{feed, record_of, Pair};
use weft_core::wire::frame::Frame;

/// Found by `server_raw`: one input holding a record that opens a stream and then a
/// record that fails its CRC. The stream's `StreamOpened` was queued after
/// `Closed`, which must be the last event.
#[cfg(feature = "alloc")]
#[test]
fn stream_opened_in_the_last_input_comes_before_closed() {
    use weft_core::wire::frame::STREAM_OPEN;
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
    assert!(kinds.contains(&Event::StreamOpened(1)), "{kinds:?}");
}

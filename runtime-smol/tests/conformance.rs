//! The conformance catalogue with smol on both sides, over loopback sockets.

#[test]
fn conformance_catalogue() {
    weft_conformance::run_catalogue(&weft_conformance::runtimes::smol::Smol::new()).finish("smol");
}

//! The conformance catalogue over weft-mio, client and server.

#[test]
fn catalogue() {
    weft_conformance::run_catalogue(&weft_conformance::runtimes::mio::Mio::new()).finish("mio");
}

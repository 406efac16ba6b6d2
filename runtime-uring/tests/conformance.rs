//! The conformance catalogue over io_uring on both sides.

#[test]
fn catalogue() {
    weft_conformance::run_catalogue(&weft_conformance::runtimes::uring::Uring::new())
        .finish("uring");
}

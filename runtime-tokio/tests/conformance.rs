//! The whole conformance catalogue with `weft-tokio` on both sides, over loopback.

#[test]
fn conformance_catalogue() {
    weft_conformance::run_catalogue(&weft_conformance::runtimes::tokio::Tokio::new())
        .finish("tokio");
}

//! The interop matrix: every client runtime against every server runtime (4 × 4
//! pairs), each pair running the representative scenarios of
//! [`weft_conformance::MATRIX_IDS`]. Needs all four runtime features (the default).
#![cfg(all(
    feature = "tokio",
    feature = "smol",
    feature = "mio",
    feature = "uring"
))]

use weft_conformance::runtimes::{mio::Mio, smol::Smol, tokio::Tokio, uring::Uring};
use weft_conformance::{run_matrix, Runtime, MATRIX_IDS};

#[test]
fn interop_matrix() {
    let tokio = Tokio::new();
    let smol = Smol::new();
    let mio = Mio::new();
    let uring = Uring::new();
    let runtimes: [&dyn Runtime; 4] = [&tokio, &smol, &mio, &uring];
    let report = run_matrix(&runtimes);
    assert_eq!(
        report.len(),
        16 * MATRIX_IDS.len(),
        "every pair ran every scenario"
    );
    report.finish("matrix");
}

//! Runs the whole catalogue on the std-thread test runtime
//! ([`weft_conformance::testing::Threads`]): validation of the scenarios
//! themselves, independent of the four real adapters.

use weft_conformance::testing::Threads;
use weft_conformance::{catalogue, run_catalogue};

#[test]
fn catalogue_on_threads() {
    let n = catalogue().len();
    assert!(n >= 60, "catalogue has only {n} scenarios");
    let mut ids: Vec<&str> = catalogue().iter().map(|s| s.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate scenario ids");
    for id in weft_conformance::MATRIX_IDS {
        assert!(ids.contains(id), "matrix scenario {id} missing");
    }
    let started = std::time::Instant::now();
    let report = run_catalogue(&Threads::new());
    println!("{n} scenarios in {:.1?}", started.elapsed());
    report.finish("threads");
}

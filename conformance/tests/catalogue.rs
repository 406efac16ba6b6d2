//! Runs the whole catalogue on the std-thread test runtime
//! ([`weft_conformance::testing::Threads`]): validation of the scenarios
//! themselves, independent of the four real adapters.

use weft_conformance::report::Outcome;
use weft_conformance::testing::Threads;
use weft_conformance::{catalogue, run_catalogue};

/// The catalogue, in order. Adding, removing or renaming a scenario is a change
/// to this list too, so none goes missing unnoticed.
const CATALOGUE: &[&str] = &[
    "handshake/psk",
    "rpc/echo",
    "close/graceful",
    "handshake/peer-addresses",
    "handshake/no-auth",
    "handshake/key-selection",
    "handshake/wrong-key",
    "handshake/unknown-key-id",
    "handshake/auth-required",
    "handshake/server-without-keys",
    "handshake/version-mismatch",
    "handshake/bad-preface",
    "handshake/pipelined-request",
    "handshake/timeout",
    "handshake/negotiated",
    "handshake/integrity-kept",
    "rpc/error",
    "rpc/no-responder",
    "rpc/deadline",
    "rpc/cancel-on-drop",
    "rpc/responder-cancel",
    "rpc/concurrent",
    "rpc/request-cap",
    "rpc/large",
    "message/one-way",
    "message/ordering",
    "message/16mib",
    "message/priorities",
    "message/too-large-local",
    "pubsub/wildcard-star",
    "pubsub/wildcard-gt",
    "pubsub/gt-not-zero-tokens",
    "pubsub/fan-out",
    "pubsub/self-delivery",
    "pubsub/queue-group",
    "pubsub/unsubscribe",
    "pubsub/credit-wait",
    "pubsub/drop-oldest",
    "pubsub/drop-newest",
    "pubsub/slow-consumer",
    "pubsub/subscription-limit",
    "pubsub/subscribe-acknowledged",
    "stream/echo",
    "stream/flow-control",
    "stream/half-close",
    "stream/reset",
    "stream/reset-code",
    "stream/concurrent-100",
    "stream/limit-local",
    "stream/limit-refused",
    "close/graceful-in-flight",
    "close/client-graceful",
    "close/application-code",
    "close/error-immediate",
    "close/abrupt-loss",
    "close/drop-last-handle",
    "close/drain-timeout-local",
    "close/stats",
    "close/linger-reads-to-eof",
    "close/linger-bounded",
    "close/linger-ends-write-first",
    "close/during-handshake",
    "close/drop-during-handshake",
    "close/shutdown-delivers",
    "limits/first-frame-not-hello",
    "limits/bad-crc",
    "limits/bad-header-check",
    "limits/missing-trailer",
    "limits/reserved-record-flag",
    "limits/oversize-record",
    "limits/oversize-frame",
    "limits/unknown-frame",
    "frames/extension-ignored",
    "limits/wrong-direction",
    "limits/duplicate-request-id",
    "limits/message-too-large",
    "limits/fragment-limit",
    "limits/request-flood",
    "limits/subscribe-flood",
    "limits/ping-flood",
    "limits/empty-frame-flood",
    "limits/reset-flood",
    "limits/flow-control",
    "limits/stream-parity",
    "limits/preauth",
    "limits/idle-timeout",
    "limits/drain-timeout",
];

#[test]
fn catalogue_on_threads() {
    let ids: Vec<&str> = catalogue().iter().map(|s| s.id).collect();
    assert_eq!(ids, CATALOGUE, "the catalogue changed");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "duplicate scenario ids");
    for id in weft_conformance::MATRIX_IDS {
        assert!(ids.contains(id), "matrix scenario {id} missing");
    }
    let started = std::time::Instant::now();
    let report = run_catalogue(&Threads::new());
    println!("{} scenarios in {:.1?}", ids.len(), started.elapsed());
    // Every scenario of the catalogue ran once, in order, and passed.
    let ran: Vec<&str> = report.rows().map(|(id, ..)| id).collect();
    assert_eq!(ran, CATALOGUE, "the run does not match the catalogue");
    for (id, client, server, _) in report.rows() {
        assert_eq!((client, server), ("threads", "threads"), "{id}");
    }
    // Writes the report, and fails listing the failures if any.
    report.finish("threads");
    let passed: Vec<&str> = report
        .rows()
        .filter(|r| *r.3 == Outcome::Pass)
        .map(|r| r.0)
        .collect();
    assert_eq!(passed, CATALOGUE, "every scenario passed");
}

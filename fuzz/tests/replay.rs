//! Replays the committed corpus and the regression inputs of every target on any
//! toolchain, without libFuzzer: `cargo test` in `fuzz/`.

use std::path::Path;

fn replay(target: &str) {
    let n = weft_fuzz::replay(target, Path::new(env!("CARGO_MANIFEST_DIR")));
    assert!(n > 0, "no corpus for {target}");
    println!("{target}: {n} inputs");
}

#[test]
fn wire_decode() {
    replay("wire_decode");
}

#[test]
fn server_raw() {
    replay("server_raw");
}

#[test]
fn server_frames() {
    replay("server_frames");
}

#[test]
fn client_hostile() {
    replay("client_hostile");
}

#[test]
fn pair_ops() {
    replay("pair_ops");
}

#[test]
fn topic_match() {
    replay("topic_match");
}

/// The no-alloc corpus against the heap-backed connection (`noalloc/` replays it
/// against the one without a heap).
#[test]
fn noalloc_inputs_with_std() {
    replay("noalloc");
}

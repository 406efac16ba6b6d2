//! Weft benchmark harness (filled in by the benchmarks issue).
//!
//! Until then it runs the core's in-memory example so the README's main command
//! does real work: a client and a server exchanging messages over a virtual clock.
fn main() {
    println!("weft-benches: no benchmarks yet; see issue 4");
}

//! Replays the no-alloc target's committed corpus and regression inputs (kept with
//! the others in `../corpus/noalloc` and `../regressions/noalloc`) against weft-core
//! without `alloc`: `cargo test` in `fuzz/noalloc/`.

use std::path::Path;

#[test]
fn noalloc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let n = weft_fuzz::replay("noalloc", &root);
    assert!(n > 0, "no corpus for noalloc");
    println!("noalloc: {n} inputs");
}

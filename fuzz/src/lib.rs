//! Harnesses of the weft-core fuzz targets.
//!
//! Every target is a plain function of the input bytes, so the same code runs under
//! libFuzzer (the binaries in `fuzz_targets/` and `noalloc/fuzz_targets/`) and as
//! ordinary tests that replay the committed corpus on any toolchain
//! (`cargo test` in this folder: see `tests/replay.rs`).
//!
//! With the default feature `std`, weft-core is built with `std` (streams, the
//! router, zero-copy payloads); without it, weft-core has no `alloc` and the
//! `noalloc` target drives the fixed-capacity connection. The harness itself
//! always uses `std`: it runs on a host.

pub mod app;
pub mod drive;
pub mod frames;
pub mod hostile;
pub mod noalloc;
pub mod pair_ops;
pub mod setup;
pub mod topic_match;
pub mod wire_decode;

/// A target: a function of the input bytes.
pub type Target = fn(&[u8]);

/// The targets, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_decode", wire_decode::run),
    ("server_raw", hostile::server_raw),
    ("server_frames", hostile::server_frames),
    ("client_hostile", hostile::client_hostile),
    ("pair_ops", pair_ops::run),
    ("topic_match", topic_match::run),
    ("noalloc", noalloc::run),
];

/// Runs target `name` on `data`; false if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => {
            f(data);
            true
        }
        None => false,
    }
}

/// Runs target `name` on every file of `root/corpus/name` and
/// `root/regressions/name` (in name order); returns how many ran. A failing input
/// is named in the panic.
pub fn replay(name: &str, root: &std::path::Path) -> usize {
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let r = std::panic::catch_unwind(|| run(name, &data));
            if let Err(e) = r {
                eprintln!("{name}: {} failed", f.display());
                std::panic::resume_unwind(e);
            }
            n += 1;
        }
    }
    n
}

/// The input as target `name` reads it, for a person: the structured targets'
/// decoded `arbitrary` value (`{:#?}`), the byte targets' bytes.
pub fn describe(name: &str, data: &[u8]) -> String {
    use arbitrary::{Arbitrary, Unstructured};
    fn show<'a, T: Arbitrary<'a> + core::fmt::Debug>(data: &'a [u8]) -> String {
        match T::arbitrary_take_rest(Unstructured::new(data)) {
            Ok(v) => format!("{v:#?}"),
            Err(e) => format!("(not an input: {e})"),
        }
    }
    match name {
        "server_frames" => show::<hostile::ServerInput>(data),
        "client_hostile" => show::<hostile::ClientInput>(data),
        "pair_ops" => show::<pair_ops::PairInput>(data),
        "topic_match" => show::<topic_match::TopicInput>(data),
        "noalloc" => match data.split_first() {
            Some((&m, rest)) => {
                let t = ["server_frames", "client_hostile", "server_raw", "pair_ops"]
                    [usize::from(m % 4)];
                format!("{t}:\n{}", describe(t, rest))
            }
            None => String::from("(empty)"),
        },
        _ => format!("{data:02x?}"),
    }
}

//! `noalloc`: the connection without a heap (weft-core built with neither `alloc`
//! nor `std`, fixed capacities, no fragmentation, no streams), as the project in
//! `noalloc/` builds it. The first byte picks the harness, the rest is its input:
//! a server fed frames (`server_frames`), a client facing a hostile server
//! (`client_hostile`), a server fed raw bytes (`server_raw`), or an honest pair
//! (`pair_ops`). In the main project, which has weft-core with `std`, the same
//! inputs run against the heap-backed connection.

/// The target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => crate::hostile::server_frames(rest),
        1 => crate::hostile::client_hostile(rest),
        2 => crate::hostile::server_raw(rest),
        _ => crate::pair_ops::run(rest),
    }
}

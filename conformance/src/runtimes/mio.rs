//! The `mio` runtime under test (filled in with the weft-mio adapter).

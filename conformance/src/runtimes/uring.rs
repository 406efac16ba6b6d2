//! The `uring` runtime under test (filled in with the weft-uring adapter).

//! The `tokio` runtime under test (filled in with the weft-tokio adapter).

//! The `smol` runtime under test (filled in with the weft-smol adapter).

//! Blocking Weft adapter over a mio event loop.
//!
//! This crate is a placeholder in the workspace: it is filled in by the runtime,
//! conformance and benchmark issues. It exposes nothing yet.
#![forbid(unsafe_code)]

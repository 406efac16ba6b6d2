//! Weft adapter for the tokio runtime.
//!
//! This crate is a placeholder in the workspace: it is filled in by the runtime,
//! conformance and benchmark issues. It exposes nothing yet.
#![forbid(unsafe_code)]

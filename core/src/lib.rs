//! Weft core: the sans-IO state machine of the Weft messaging protocol.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod auth;
pub mod config;
pub mod conn;
#[cfg(feature = "std")]
pub mod driver;
pub mod error;
pub mod integrity;
#[cfg(feature = "alloc")]
pub mod router;
pub mod secrets;
#[cfg(feature = "alloc")]
pub mod stream;
pub mod time;
pub mod topic;
pub mod varint;
pub mod wire;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use config::{Config, OverflowPolicy, Priority, Role};
pub use error::{Error, ErrorCode, InvalidKind};
pub use time::Instant;

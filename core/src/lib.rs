//! Weft core: the sans-IO state machine of the Weft messaging protocol.
//!
//! Bytes and timer events in; bytes to send, events and the next deadline out. No
//! sockets, clock, threads or locks inside; randomness enters as a 32-byte seed. The
//! layers, from the ground up:
//!
//! - [`varint`], [`integrity`] (CRC-32C), [`wire`]: the codec of prefaces, records,
//!   frames and parameters (spec sections 2 to 6).
//! - [`time`], [`config`], [`error`], [`ids`]: the core's own `Instant`, the
//!   configuration with every bound, the one error type, and the request,
//!   subscription and stream id types.
//! - [`auth`], [`secrets`]: handshake proofs, and the per-connection secrets derived
//!   from the seed.
//! - [`topic`]: subject and topic validation and matching.
//! - [`conn`]: the [`conn::Connection`] state machine; with `alloc` also [`stream`]
//!   (byte streams) and [`router`] (server-side pub/sub across connections).
//!
//! Without `alloc` it runs on fixed capacities; with `alloc` payloads are zero-copy
//! `Bytes`. The threads, locks and clock a runtime needs live one crate up, in
//! `weft-driver`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", feature = "testing", test))]
extern crate std;

pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod ids;
pub mod integrity;
#[cfg(feature = "alloc")]
pub mod router;
pub mod secrets;
#[cfg(feature = "alloc")]
pub mod stream;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod topic;
pub mod varint;
pub mod wire;

pub use config::{Config, OverflowPolicy, Priority, Role};
pub use error::{Error, ErrorCode, InvalidKind};
pub use ids::{RequestId, StreamId, SubId};
pub use time::Instant;

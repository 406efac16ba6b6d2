//! The [`Runtime`](crate::Runtime) implementation of each adapter, one module per
//! runtime, each behind the feature of the same name.

#[cfg(feature = "mio")]
pub mod mio;
#[cfg(feature = "smol")]
pub mod smol;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "uring")]
pub mod uring;

//! The runtime-independent half of an adapter's stream type, written once.

/// Defines an adapter's byte-stream newtype around a [`WeftStream`](crate::WeftStream)
/// with the methods every adapter's stream has: `open` and `accept` on a
/// [`Handle`](crate::Handle), `id`, `reset`, `into_inner`, and `From<WeftStream>`.
/// The adapter adds its runtime's read and write traits, which are all that differ.
///
/// ```
/// weft_driver::stream_type! {
///     /// A Weft stream as some runtime's byte stream.
///     #[derive(Debug)]
///     pub struct Stream(weft_driver::WeftStream);
/// }
/// ```
#[macro_export]
macro_rules! stream_type {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($fvis:vis $inner:ty);) => {
        $(#[$meta])*
        $vis struct $name($fvis $inner);

        impl $name {
            /// Opens a new stream on `handle`'s connection.
            pub fn open(handle: &$crate::Handle) -> Result<$name, $crate::__private::Error> {
                handle.open_stream().map($name)
            }

            /// The next stream the peer opens on `handle`'s connection; `None` once
            /// the connection is closed.
            pub async fn accept(handle: &$crate::Handle) -> Option<$name> {
                handle.accept_stream().await.map($name)
            }

            /// The stream id.
            pub fn id(&self) -> $crate::StreamId {
                self.0.id()
            }

            /// Aborts both directions with an application code.
            pub fn reset(&mut self, code: u64) {
                self.0.reset(code);
            }

            /// The core stream inside.
            pub fn into_inner(self) -> $crate::WeftStream {
                self.0
            }
        }

        impl From<$crate::WeftStream> for $name {
            fn from(s: $crate::WeftStream) -> $name {
                $name(s)
            }
        }
    };
}

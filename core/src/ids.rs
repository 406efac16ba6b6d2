//! The ids the protocol hands the application: request, subscription and stream
//! ids.
//!
//! On the wire all three are plain varints (spec sections 8, 10 and 11), and they
//! used to be bare `u64`s in every API as well. That made it easy to pass a
//! subscription id where a stream id was expected, or a peer's request id to
//! `cancel` (which takes one of ours): the numbers are all small and overlap, so
//! the mistake type-checked and then failed at run time with `UnknownId`, or
//! worse, hit another live entry with the same number. Each id now has its own
//! type, so such a mix-up is a compile error.
//!
//! The newtypes wrap and unwrap at the edge of the wire layer: the frame structs of
//! [`wire::frame`](crate::wire::frame) keep `u64` (they describe the encoding, where
//! for example a WINDOW_UPDATE's id 0 means the connection rather than a stream);
//! the connection's frame dispatch wraps the decoded numbers, and its commands
//! unwrap them when they encode a frame. There is deliberately no `From<u64>` for
//! the ids: building one from a number is rare (tests, tools speaking the wire)
//! and is spelled out with `new`.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(u64);

        impl $name {
            #[doc = concat!("The ", $what, " with this number as carried on the wire.")]
            ///
            /// Ids come from the connection (or, for the peer's ids, from decoded
            /// frames); building one by hand is for tests and tools.
            #[inline]
            #[must_use]
            pub const fn new(raw: u64) -> Self {
                $name(raw)
            }

            #[doc = concat!("The number of this ", $what, ", as carried on the wire.")]
            #[inline]
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        /// Just the number, as it appears on the wire and in logs.
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }

        /// The number on the wire; the way back is the explicit `new`.
        impl From<$name> for u64 {
            #[inline]
            fn from(id: $name) -> u64 {
                id.0
            }
        }
    };
}

id_type!(
    /// A request's id: one of ours (returned by `Connection::request`, carried by
    /// `Event::Response`) or one of the peer's (carried by `Event::Request`, answered
    /// with `Connection::respond`). Ids start at 1 and are unique among a side's
    /// outstanding requests.
    RequestId,
    "request id"
);

id_type!(
    /// A subscription's id: the client's own (returned by `Connection::subscribe`,
    /// carried by `Event::Delivery`), or, on the server, the peer's (carried by
    /// `Event::Subscribed` and used with the router). Ids start at 1 and increase.
    SubId,
    "subscription id"
);

id_type!(
    /// A byte stream's id (returned by `Connection::open_stream`, carried by the
    /// `Stream*` events). The low bit tells which side opened it (spec section 11).
    StreamId,
    "stream id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_display_the_number() {
        let r = RequestId::new(7);
        assert_eq!((r.get(), u64::from(r)), (7, 7));
        assert_eq!(
            std::format!("{r} {} {}", SubId::new(0), StreamId::new(u64::MAX)),
            "7 0 18446744073709551615"
        );
        assert!(StreamId::new(1) < StreamId::new(2));
        assert_eq!(std::format!("{:?}", SubId::new(3)), "SubId(3)");
    }
}

//! Error codes carried on the wire and the error type of the API.
//!
//! [`ErrorCode`] is the protocol's table (spec section "Error codes"): the code a
//! CLOSE frame carries. [`Error`] is what an API call returns when it cannot be done;
//! a failed call changes no state.

use core::fmt;

/// A connection error code as carried in a CLOSE frame (a varint on the wire).
///
/// Codes below [`ErrorCode::APPLICATION_MIN`] belong to the protocol; codes from it
/// upwards are the application's own and close the connection gracefully.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrorCode(pub u64);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $val:expr, $text:expr;)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: ErrorCode = ErrorCode($val);)*

            /// The name of a protocol code, or `None` for unknown and application codes.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// Graceful close, nothing went wrong.
    NO_ERROR = 0, "NO_ERROR";
    /// A malformed, unexpected or out-of-order frame, or a bad field value.
    PROTOCOL_ERROR = 1, "PROTOCOL_ERROR";
    /// A record failed its header check or CRC-32C, or lacked a required checksum.
    INTEGRITY_ERROR = 2, "INTEGRITY_ERROR";
    /// The peer's first bytes were not a Weft preface.
    BAD_PREFACE = 3, "BAD_PREFACE";
    /// The two version ranges do not overlap.
    UNSUPPORTED_VERSION = 4, "UNSUPPORTED_VERSION";
    /// Authentication failed: wrong key, unknown key id or bad proof (indistinguishable).
    AUTH_FAILED = 5, "AUTH_FAILED";
    /// One side requires authentication and the other did not offer it.
    AUTH_REQUIRED = 6, "AUTH_REQUIRED";
    /// A record or frame exceeded the receiver's advertised maximum.
    FRAME_TOO_LARGE = 7, "FRAME_TOO_LARGE";
    /// A message (after reassembly) exceeded the receiver's maximum message size.
    MESSAGE_TOO_LARGE = 8, "MESSAGE_TOO_LARGE";
    /// A frame type this version does not know, outside the ignorable range.
    UNKNOWN_FRAME = 9, "UNKNOWN_FRAME";
    /// The peer sent more than the credit it was granted.
    FLOW_CONTROL_ERROR = 10, "FLOW_CONTROL_ERROR";
    /// A frame for a stream in a state that does not allow it.
    STREAM_STATE_ERROR = 11, "STREAM_STATE_ERROR";
    /// The peer exceeded the advertised cap on outstanding requests.
    REQUEST_LIMIT = 12, "REQUEST_LIMIT";
    /// The peer exceeded the advertised cap on subscriptions.
    SUBSCRIPTION_LIMIT = 13, "SUBSCRIPTION_LIMIT";
    /// The handshake did not complete in time.
    HANDSHAKE_TIMEOUT = 14, "HANDSHAKE_TIMEOUT";
    /// Nothing was received for the idle timeout (or heartbeats went unanswered).
    IDLE_TIMEOUT = 15, "IDLE_TIMEOUT";
    /// Too many stream resets in one interval (rapid reset).
    RESET_FLOOD = 16, "RESET_FLOOD";
    /// Too many control replies queued for a peer that does not read (ping flood).
    CONTROL_FLOOD = 17, "CONTROL_FLOOD";
    /// Too many empty frames.
    EMPTY_FRAME_FLOOD = 18, "EMPTY_FRAME_FLOOD";
    /// Too many bytes sent before authentication completed.
    PREAUTH_LIMIT = 19, "PREAUTH_LIMIT";
    /// A subscriber with the disconnect overflow policy fell behind.
    SLOW_CONSUMER = 20, "SLOW_CONSUMER";
    /// Too many messages being reassembled at once.
    FRAGMENT_LIMIT = 21, "FRAGMENT_LIMIT";
    /// Graceful drain did not finish in time.
    DRAIN_TIMEOUT = 22, "DRAIN_TIMEOUT";
    /// An internal invariant failed; the connection is closed defensively.
    INTERNAL_ERROR = 23, "INTERNAL_ERROR";
}

impl ErrorCode {
    /// First code of the application range.
    pub const APPLICATION_MIN: u64 = 0x1000;

    /// True for codes whose close drains in-flight work first: [`ErrorCode::NO_ERROR`]
    /// and the application range. Protocol errors close at once.
    pub fn is_graceful(self) -> bool {
        self.0 == 0 || self.0 >= Self::APPLICATION_MIN
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why an application command was refused. A refused call changes no state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The caller's buffer cannot hold even the smallest unit of output.
    BufferTooSmall,
    /// A bound was reached (outstanding requests, queued bytes, credit); retry after
    /// the matching event.
    Blocked,
    /// The message exceeds the peer's (or our) maximum message size.
    MessageTooLarge,
    /// The operation needs an established connection.
    NotConnected,
    /// The connection is closing or closed.
    Closed,
    /// No such request, subscription or stream.
    UnknownId,
    /// An argument is invalid; the kind says which.
    Invalid(InvalidKind),
    /// The peer did not negotiate the capability this call needs.
    NotNegotiated,
    /// The peer reset the stream with this application code (its RESET_STREAM).
    StreamReset(u64),
}

/// Which argument of a call was invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidKind {
    /// A subject, topic or filter does not follow the syntax.
    Topic,
    /// A reason or error message is longer than allowed.
    TooLong,
    /// The configuration is inconsistent.
    Config,
    /// Only the other role may do this.
    Role,
    /// A value lies outside its allowed range.
    Range,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall => f.write_str("buffer too small"),
            Error::Blocked => f.write_str("blocked by a limit; retry later"),
            Error::MessageTooLarge => f.write_str("message too large"),
            Error::NotConnected => f.write_str("connection not established"),
            Error::Closed => f.write_str("connection closing or closed"),
            Error::UnknownId => f.write_str("unknown id"),
            Error::Invalid(k) => write!(f, "invalid argument: {k:?}"),
            Error::NotNegotiated => f.write_str("capability not negotiated"),
            Error::StreamReset(code) => write!(f, "stream reset by peer (code {code})"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_graceful() {
        assert_eq!(ErrorCode::AUTH_FAILED.name(), Some("AUTH_FAILED"));
        assert_eq!(ErrorCode(0x1234).name(), None);
        assert!(ErrorCode::NO_ERROR.is_graceful());
        assert!(ErrorCode(ErrorCode::APPLICATION_MIN).is_graceful());
        assert!(!ErrorCode::PROTOCOL_ERROR.is_graceful());
    }

    /// Every error type is a `core::error::Error`, with or without std.
    #[test]
    fn errors_are_core_errors() {
        fn is_error<E: core::error::Error>(_: &E) {}
        is_error(&Error::StreamReset(7));
        is_error(&crate::auth::AuthConfigError::KeyLength);
        assert_eq!(
            alloc_free_display(Error::StreamReset(7)).as_str(),
            "stream reset by peer (code 7)"
        );
    }

    fn alloc_free_display(e: Error) -> heapless::String<64> {
        use core::fmt::Write;
        let mut s = heapless::String::new();
        let _ = write!(s, "{e}");
        s
    }
}

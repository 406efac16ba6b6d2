//! What the connection hands the application: events, outcomes, data views, statistics.

use crate::config::OverflowPolicy;
use crate::error::ErrorCode;
use crate::ids::{RequestId, StreamId, SubId};
use crate::time::Instant;
use crate::wire::params::Params;
use core::time::Duration;

/// Handle to the data (subject, payload, text) of the event just returned by
/// `poll_event`. The data stays readable until the next `poll_event` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataId(pub(crate) u64);

/// A view of an event's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data<'a> {
    /// Request subject, publish topic, delivery topic or subscription filter; empty
    /// otherwise.
    pub subject: &'a [u8],
    /// Application payload; for `Subscribed` the queue group (empty for none).
    pub payload: &'a [u8],
    /// Error message of an error response; empty otherwise.
    pub text: &'a str,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The responder answered; the payload is the result.
    Ok,
    /// The responder failed with this application code; the message is in `text`.
    Error(u64),
    /// Nobody serves the subject.
    NoResponder,
    /// The deadline passed (locally or at the responder).
    DeadlineExceeded,
    /// The responder cancelled it.
    Cancelled,
    /// The peer closed gracefully without processing it: safe to retry elsewhere.
    NotProcessed,
    /// The connection ended (error close, drain timeout or loss) before an answer
    /// arrived: the request may or may not have been processed.
    Lost,
}

/// Which side ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// This endpoint.
    Local,
    /// The peer.
    Peer,
}

/// How the connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// Both sides exchanged CLOSE and drained.
    Graceful,
    /// Closed at once with an error code.
    Error,
    /// The transport ended without a CLOSE.
    Lost,
}

/// Details of a closed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The code of the CLOSE that ended it (for `Lost`, `NO_ERROR`).
    pub code: ErrorCode,
    /// Who ended it.
    pub initiator: Side,
    /// How.
    pub kind: CloseKind,
}

impl core::fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let by = match self.initiator {
            Side::Local => "by us",
            Side::Peer => "by the peer",
        };
        match self.kind {
            CloseKind::Graceful => write!(f, "connection closed gracefully {by} ({})", self.code),
            CloseKind::Error => write!(f, "connection closed on error {by}: {}", self.code),
            CloseKind::Lost => f.write_str("connection lost (the transport ended without a CLOSE)"),
        }
    }
}

/// A close is an error to whoever expected the connection to go on (a failed
/// handshake, a shutdown that could not drain).
impl core::error::Error for CloseInfo {}

/// Something happened. Events carry ids; data is read with `Connection::data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed; `Connection::negotiated` tells the outcome.
    Connected,
    /// A one-way message arrived.
    Message {
        /// Its payload.
        data: DataId,
    },
    /// The peer asks something; answer with `Connection::respond`.
    Request {
        /// The peer's request id.
        id: RequestId,
        /// When the requester gives up, if it set a deadline.
        deadline: Option<Instant>,
        /// Subject and payload.
        data: DataId,
    },
    /// One of our requests ended.
    Response {
        /// Our request id.
        id: RequestId,
        /// How it ended.
        outcome: Outcome,
        /// Payload and error text (`None` for outcomes decided locally).
        data: Option<DataId>,
    },
    /// A request from the peer was cancelled by it or passed its deadline; do not
    /// answer it.
    RequestCancelled {
        /// The peer's request id.
        id: RequestId,
    },
    /// (Server) The peer subscribed.
    Subscribed {
        /// The peer's subscription id.
        sub_id: SubId,
        /// What to do when it falls behind.
        policy: OverflowPolicy,
        /// Initial credit in messages.
        credit: u32,
        /// Filter in `subject`, queue group in `payload`.
        data: DataId,
    },
    /// (Server) The peer unsubscribed.
    Unsubscribed {
        /// The peer's subscription id.
        sub_id: SubId,
    },
    /// (Server) The peer granted more deliveries to a subscription.
    Credit {
        /// The peer's subscription id.
        sub_id: SubId,
        /// Added credit.
        increment: u32,
    },
    /// (Server) The peer published; topic in `subject`.
    Published {
        /// Topic and payload.
        data: DataId,
    },
    /// (Client) A message arrived on a subscription; topic in `subject`.
    Delivery {
        /// Our subscription id.
        sub_id: SubId,
        /// Topic and payload.
        data: DataId,
    },
    /// (Client) The server dropped messages for a subscription.
    Dropped {
        /// Our subscription id.
        sub_id: SubId,
        /// Total dropped so far.
        total: u64,
    },
    /// The peer opened a stream.
    StreamOpened(StreamId),
    /// A stream has data (or its end) to read.
    StreamReadable(StreamId),
    /// A stream can take more writes.
    StreamWritable(StreamId),
    /// The peer reset a stream.
    StreamReset {
        /// Stream id.
        id: StreamId,
        /// The peer's code.
        code: u64,
    },
    /// A stream is fully over (both directions ended, or reset) and its id retired.
    StreamClosed(StreamId),
    /// Sends that returned `Blocked` may be retried.
    Writable,
    /// The peer processed everything queued before the flush of this id
    /// (`Connection::flush`).
    Flushed(super::FlushId),
    /// The peer started a graceful close: finish in-flight work; new requests fail.
    Draining {
        /// The peer's close code.
        code: ErrorCode,
    },
    /// The connection is over; nothing more will happen.
    Closed(CloseInfo),
}

impl Event {
    /// The handle of the data this event carries, if it carries any.
    pub fn data_id(&self) -> Option<DataId> {
        match *self {
            Event::Message { data }
            | Event::Request { data, .. }
            | Event::Subscribed { data, .. }
            | Event::Published { data }
            | Event::Delivery { data, .. } => Some(data),
            Event::Response { data, .. } => data,
            _ => None,
        }
    }
}

/// What the handshake settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Protocol version.
    pub version: u8,
    /// Capabilities both sides have.
    pub capabilities: u64,
    /// Whether records carry CRC-32C.
    pub integrity: bool,
    /// Heartbeat interval, if any.
    pub heartbeat: Option<Duration>,
    /// Idle timeout, if any.
    pub idle_timeout: Option<Duration>,
    /// Whether the peer proved the pre-shared key.
    pub authenticated: bool,
    /// The peer's announced limits.
    pub peer: Params,
}

/// Per-connection counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed to `poll_transmit`'s buffer.
    pub bytes_sent: u64,
    /// Bytes accepted by `handle_input`.
    pub bytes_received: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received (fragments and inner frames both count).
    pub frames_received: u64,
    /// Records sent... as counted on receipt: records received.
    pub records_received: u64,
    /// Messages, requests, responses, publications and deliveries queued for sending.
    pub messages_sent: u64,
    /// Messages, requests, responses, publications and deliveries received.
    pub messages_received: u64,
    /// Connection errors (0 or 1) and refused peer frames.
    pub errors: u64,
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// Round-trip time variation.
    pub rtt_var: Option<Duration>,
    /// Smallest round-trip time seen.
    pub min_rtt: Option<Duration>,
    /// Messages the server reported dropped on our subscriptions (client), or that
    /// we reported dropped (server).
    pub dropped: u64,
    /// Bytes waiting to be sent.
    pub queued_bytes: u64,
    /// Data frames (messages, requests, responses, publications, deliveries) that
    /// were accepted but never written out because the connection ended first.
    /// Frames already written may still have been lost in transit: only requests
    /// learn that (`Outcome::Lost`). If the handshake never completed, every data
    /// frame accepted counts, written or not: the peer processes none of them.
    pub unsent: u64,
    /// Bytes of messages being reassembled.
    pub reassembly_bytes: u64,
    /// Connection-level stream send credit left.
    pub stream_send_window: u64,
    /// Connection-level stream receive window.
    pub stream_recv_window: u64,
}

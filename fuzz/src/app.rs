//! Application commands the fuzzer may issue on the connection under test, between
//! its inputs. Errors are fine (a command that fails changes nothing); panics not.

use crate::drive::Endpoint;
use crate::frames::{Num, Payload, Text};
use arbitrary::Arbitrary;
use core::time::Duration;
use weft_core::conn::Outcome;
use weft_core::{ErrorCode, OverflowPolicy, Priority, RequestId, SubId};

/// A priority from any byte.
pub fn prio(b: u8) -> Priority {
    match b % 4 {
        0 => Priority::Urgent,
        1 => Priority::High,
        2 => Priority::Normal,
        _ => Priority::Low,
    }
}

/// An outcome from any byte.
pub fn outcome(b: u8) -> Outcome {
    match b % 7 {
        0 => Outcome::Ok,
        1 => Outcome::Error(u64::from(b)),
        2 => Outcome::NoResponder,
        3 => Outcome::DeadlineExceeded,
        4 => Outcome::Cancelled,
        5 => Outcome::NotProcessed,
        _ => Outcome::Lost,
    }
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

fn text(t: &Text) -> String {
    String::from_utf8_lossy(&t.bytes()).into_owned()
}

/// One command.
#[derive(Arbitrary, Debug, Clone)]
#[allow(missing_docs)]
pub enum App {
    Respond {
        which: u8,
        outcome: u8,
        message: Text,
        payload: Payload,
    },
    Send {
        payload: Payload,
        prio: u8,
    },
    Request {
        subject: Text,
        payload: Payload,
        timeout_ms: Option<u16>,
        prio: u8,
    },
    Cancel(u8),
    Subscribe {
        filter: Text,
        group: Option<Text>,
        policy: u8,
    },
    Unsubscribe(u8),
    Publish {
        topic: Text,
        payload: Payload,
        prio: u8,
    },
    Deliver {
        which: u8,
        topic: Text,
        payload: Payload,
    },
    ReportDropped {
        which: u8,
        total: u64,
    },
    Consumed(u8),
    OpenStream,
    StreamWrite {
        which: u8,
        data: Payload,
    },
    StreamRead {
        which: u8,
        len: u16,
    },
    StreamFinish(u8),
    StreamReset {
        which: u8,
        code: Num,
    },
    StreamPriority {
        which: u8,
        prio: u8,
    },
    Close {
        code: Num,
        reason: Text,
    },
}

/// What the application side remembers between commands.
#[derive(Default, Debug)]
pub struct AppState {
    /// Our request ids.
    pub requests: Vec<RequestId>,
    /// Our subscription ids.
    pub subs: Vec<SubId>,
}

impl App {
    /// Issues the command on `ep`, then drains its events and output.
    pub fn apply(&self, ep: &mut Endpoint, st: &mut AppState) {
        let now = ep.now;
        let c = &mut ep.conn;
        match self {
            App::Respond {
                which,
                outcome: o,
                message,
                payload,
            } => {
                if let Some(id) = pick(&ep.requests, *which) {
                    let _ = c.respond(id, outcome(*o), &text(message), &payload.bytes(), prio(*o));
                }
            }
            App::Send { payload, prio: p } => {
                let _ = c.send_message(&payload.bytes(), prio(*p));
            }
            App::Request {
                subject,
                payload,
                timeout_ms,
                prio: p,
            } => {
                let t = timeout_ms.map(|ms| Duration::from_millis(u64::from(ms)));
                if let Ok(id) = c.request(now, &subject.bytes(), &payload.bytes(), t, prio(*p)) {
                    st.requests.push(id);
                }
            }
            App::Cancel(which) => {
                if let Some(id) = pick(&st.requests, *which) {
                    let _ = c.cancel(id);
                }
            }
            App::Subscribe {
                filter,
                group,
                policy,
            } => {
                let g = group.as_ref().map(text);
                let p = OverflowPolicy::from_code(policy % 4).unwrap_or_default();
                if let Ok(id) = c.subscribe(&text(filter), g.as_deref(), p) {
                    st.subs.push(id);
                }
            }
            App::Unsubscribe(which) => {
                if let Some(id) = pick(&st.subs, *which) {
                    let _ = c.unsubscribe(id);
                }
            }
            App::Publish {
                topic,
                payload,
                prio: p,
            } => {
                let _ = c.publish(&text(topic), &payload.bytes(), prio(*p));
            }
            App::Deliver {
                which,
                topic,
                payload,
            } => {
                if let Some(id) = pick(&ep.subs, *which) {
                    let _ = c.deliver(id, &topic.bytes(), &payload.bytes(), Priority::Normal);
                }
            }
            App::ReportDropped { which, total } => {
                if let Some(id) = pick(&ep.subs, *which) {
                    let _ = c.report_dropped(id, *total);
                }
            }
            App::Consumed(which) => {
                if let Some(id) = pick(&st.subs, *which) {
                    let _ = c.delivery_consumed(id);
                }
            }
            App::OpenStream
            | App::StreamWrite { .. }
            | App::StreamRead { .. }
            | App::StreamFinish(_)
            | App::StreamReset { .. }
            | App::StreamPriority { .. } => self.stream(ep),
            App::Close { code, reason } => c.close(now, ErrorCode(code.get()), &text(reason)),
        }
        ep.drain_events();
        ep.transmit();
    }
}

#[cfg(feature = "std")]
impl App {
    fn stream(&self, ep: &mut Endpoint) {
        match self {
            App::OpenStream => {
                if let Ok(id) = ep.conn.open_stream() {
                    ep.streams.push(id);
                }
            }
            App::StreamWrite { which, data } => {
                if let Some(id) = pick(&ep.streams, *which) {
                    let _ = ep.conn.stream_write(id, &data.bytes());
                }
            }
            App::StreamRead { which, len } => {
                if let Some(id) = pick(&ep.streams, *which) {
                    let mut buf = vec![0u8; usize::from(*len)];
                    if let Ok(weft_core::stream::ReadOutcome::Data(n)) =
                        ep.conn.stream_read(id, &mut buf)
                    {
                        assert!(n <= buf.len());
                    }
                }
            }
            App::StreamFinish(which) => {
                if let Some(id) = pick(&ep.streams, *which) {
                    let _ = ep.conn.stream_finish(id);
                }
            }
            App::StreamReset { which, code } => {
                if let Some(id) = pick(&ep.streams, *which) {
                    let _ = ep.conn.stream_reset(id, code.get());
                }
            }
            App::StreamPriority { which, prio: p } => {
                if let Some(id) = pick(&ep.streams, *which) {
                    let _ = ep.conn.stream_set_priority(id, prio(*p));
                }
            }
            _ => {}
        }
    }
}

/// Without a heap the connection has no streams: stream commands do nothing.
#[cfg(not(feature = "std"))]
impl App {
    fn stream(&self, _: &mut Endpoint) {}
}

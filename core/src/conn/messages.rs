//! One-way messages: MESSAGE out and in (spec section 9).

use super::Event;
use super::{Connection, Src};
use crate::config::Priority;
use crate::error::Error;
use crate::time::Instant;
use crate::wire::frame::Frame;

impl Connection {
    /// Queues a one-way message.
    pub fn send_message(&mut self, payload: &[u8], prio: Priority) -> Result<(), Error> {
        self.can_send_app()?;
        self.queue_data(prio, &Frame::Message { payload })
            .map(|_| ())
    }

    /// A MESSAGE frame. An empty one counts toward the empty-frame flood limit and
    /// is dropped when the limit is hit.
    pub(super) fn on_message(&mut self, now: Instant, fb: &Src<'_>, empty: bool) {
        if empty && self.empty_frame(now) {
            return;
        }
        self.stats.messages_received += 1;
        let data = self.new_data_id();
        self.push_frame_event(Event::Message { data }, fb);
    }
}

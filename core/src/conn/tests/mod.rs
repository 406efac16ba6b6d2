//! Scenario tests: a client and a server driven in memory on a virtual clock, one
//! file per conformance scenario group (`conformance/src/scenarios/`), so that a
//! behaviour is found under the same name in both places. The [`Pair`] that drives
//! them is `crate::testing`'s, shared with the integration tests.

// Tests tweak one config field at a time, which reads better than struct updates.
#![allow(clippy::field_reassign_with_default, clippy::type_complexity)]

use super::*;
use crate::auth::PskAuthenticator;
use crate::config::OverflowPolicy;
use crate::error::InvalidKind;
use crate::ids::RequestId;
#[cfg(feature = "alloc")]
use crate::ids::{StreamId, SubId};
use crate::testing::{auth_handle, closed, collect, psk, record_of, Got, Pair, KEY};
use crate::wire::frame::Frame;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

mod close;
mod flush;
mod handshake;
mod limits;
mod messages;
mod pubsub;
mod rpc;
// Streams need a heap.
#[cfg(feature = "alloc")]
mod streams;

fn requests_of(ev: &[Got]) -> Vec<(RequestId, Vec<u8>, Vec<u8>, Option<Instant>)> {
    ev.iter()
        .filter_map(|g| match g.ev {
            Event::Request { id, deadline, .. } => {
                Some((id, g.subject.clone(), g.payload.clone(), deadline))
            }
            _ => None,
        })
        .collect()
}

fn responses_of(ev: &[Got]) -> Vec<(RequestId, Outcome, Vec<u8>, String)> {
    ev.iter()
        .filter_map(|g| match g.ev {
            Event::Response { id, outcome, .. } => {
                Some((id, outcome, g.payload.clone(), g.text.clone()))
            }
            _ => None,
        })
        .collect()
}

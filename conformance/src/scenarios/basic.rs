//! Handshake, request/response and close scenarios used by the interop matrix.

use super::{connect, psk_config, run, start, KEY};
use crate::{Runtime, Scenario};
use weft_core::conn::{CloseKind, Outcome};
use weft_core::Config;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "handshake/psk",
            spec: "§7",
            requirement: "Both sides prove the pre-shared key over the handshake transcript.",
            expected: "Both connected, each reports an authenticated peer.",
            run: handshake_psk,
        },
        Scenario {
            id: "rpc/echo",
            spec: "§8",
            requirement: "A request is answered with its correlation id.",
            expected: "Response Ok with the request's payload.",
            run: rpc_echo,
        },
        Scenario {
            id: "close/graceful",
            spec: "§15.2",
            requirement: "A graceful close drains and both sides see it as graceful.",
            expected: "Client sees Closed{kind: Graceful}; in-flight request answered first.",
            run: close_graceful,
        },
    ]
}

fn handshake_psk(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = start(server, psk_config(b"conformance", KEY))?;
    let h = connect(client, &srv, psk_config(b"conformance", KEY))?;
    let n = h.negotiated().ok_or("no negotiated values")?;
    let r = if n.authenticated {
        Ok(())
    } else {
        Err("peer not authenticated".to_string())
    };
    drop(h);
    (srv.stop)();
    r
}

fn rpc_echo(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = start(server, Config::default())?;
    let h = connect(client, &srv, Config::default())?;
    let reply = run(client, h.request(b"echo", b"ping", None)).map_err(|e| format!("{e}"))?;
    (srv.stop)();
    if reply.outcome == Outcome::Ok && &reply.payload[..] == b"ping" {
        Ok(())
    } else {
        Err(format!("unexpected reply {reply:?}"))
    }
}

fn close_graceful(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = start(server, Config::default())?;
    let h = connect(client, &srv, Config::default())?;
    let reply = run(client, h.request(b"close", b"", None)).map_err(|e| format!("{e}"))?;
    if reply.outcome != Outcome::Ok {
        return Err(format!("close request: {reply:?}"));
    }
    let info = run(client, h.closed());
    (srv.stop)();
    if info.kind == CloseKind::Graceful {
        Ok(())
    } else {
        Err(format!("close was {info:?}"))
    }
}

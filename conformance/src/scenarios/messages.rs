//! One-way messages (§9), their order, a maximal 16 MiB message (§12) and
//! priorities (§13).

use super::raw::{self, Raw};
use super::{check, connect_to, count, join2, run, serve};
use crate::{Runtime, Scenario};
use weft_core::wire::frame::{self, ty, Frame};
use weft_core::{Config, Error, Priority};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "message/one-way",
            spec: "§9",
            requirement: "One-way messages are delivered, at most once, without acknowledgement.",
            expected: "10 messages sent; the server's `count` reports 10.",
            run: one_way,
        },
        Scenario {
            id: "message/ordering",
            spec: "§9",
            requirement: "Messages are delivered in order per direction.",
            expected: "1,000 numbered messages reflected by the server arrive back in order; count 1,000.",
            run: ordering,
        },
        Scenario {
            id: "message/16mib",
            spec: "§9, §12, §6.2 (MAX_MESSAGE_SIZE)",
            requirement: "A message of the maximum size (16 MiB frame) is fragmented and reassembled both ways.",
            expected: "A 16 MiB message reflected by the server comes back identical; count 1.",
            run: sixteen_mib,
        },
        Scenario {
            id: "message/priorities",
            spec: "§13",
            requirement: "The scheduler sends a higher level's queued frames before a lower level's, and priorities never lose messages.",
            expected: "A scripted server stops reading; the client queues a 16 MiB low message, then a small high one: every byte of the low message still queued then arrives after the high MESSAGE. And 400 messages over the four levels all arrive (count 400) and all are reflected back.",
            run: priorities,
        },
        Scenario {
            id: "message/too-large-local",
            spec: "§9, §6.3",
            requirement: "A message above the receiver's max_message_size is refused locally; nothing is sent.",
            expected: "Server max_message_size 64 KiB: a 100 KiB send fails MessageTooLarge; the connection keeps working (count 0).",
            run: too_large_local,
        },
    ]
}

fn one_way(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let n = run(client, async {
        for i in 0..10 {
            h.send(format!("m{i}").as_bytes())
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        count(&h).await
    })?;
    check(n == 10, || format!("server counted {n}"))
}

fn ordering(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let (sent, got) = run(client, async {
        join2(
            async {
                for i in 0..1000 {
                    h.send(format!("reflect:{i}").as_bytes())
                        .await
                        .map_err(|e| format!("send {i}: {e}"))?;
                }
                Ok::<(), String>(())
            },
            async {
                for i in 0..1000 {
                    let m = h.next_message().await.ok_or("closed")?;
                    let want = format!("reflect:{i}");
                    check(m[..] == *want.as_bytes(), || {
                        format!("message {i} was {:?}", String::from_utf8_lossy(&m))
                    })?;
                }
                Ok::<(), String>(())
            },
        )
        .await
    });
    sent?;
    got?;
    let n = run(client, count(&h))?;
    check(n == 1000, || format!("server counted {n}"))
}

fn sixteen_mib(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    // MESSAGE frame = type (1) + length varint (4) + payload: exactly 16 MiB.
    let mut big = super::pattern((16 << 20) - 5, 9);
    big[..8].copy_from_slice(b"reflect:");
    let back = run(client, async {
        h.send(&big).await.map_err(|e| format!("send: {e}"))?;
        h.next_message().await.ok_or_else(|| "closed".to_string())
    })?;
    check(back[..] == big[..], || {
        format!("reflected message differs (len {})", back.len())
    })?;
    let n = run(client, count(&h))?;
    check(n == 1, || format!("server counted {n}"))
}

/// Bytes of the 16 MiB low message (within the default `max_message_size`).
const LOW_LEN: usize = (16 << 20) - 64;
/// What the client's `queued_bytes` may count besides the low message: the high
/// MESSAGE frame (1 + 1 + 4 bytes) if still queued, and a control frame or two
/// (a PING) queued meanwhile.
const NOT_LOW: usize = 256;

/// §13 ordering, from the wire: a scripted server completes the handshake and
/// then reads nothing, so the transport takes at most its socket buffers (a few
/// MiB; an unread receive buffer does not grow) and the rest of a 16 MiB low
/// message waits in the client's queue. A high message queued then must be sent
/// before all of what is left of the low one: the peer counts the low fragment
/// bytes that come after the high MESSAGE, which must be at least what the client
/// still held of the low message after queuing the high one.
fn held_back_order(client: &dyn Runtime) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("raw listener: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("raw listener: {e}"))?;
    let h = client
        .connect(addr, Config::default())
        .map_err(|e| format!("connect: {e}"))?;
    let mut r = Raw::accept(&listener)?;
    r.read_client_hello()?;
    r.send_server_hello(&raw::client_params())?;
    run(client, h.connected()).map_err(|c| format!("handshake: {c:?}"))?;
    let mut low = super::pattern(LOW_LEN, 5);
    low[..4].copy_from_slice(b"low:");
    run(client, async {
        h.send_with(&low, Priority::Low)
            .await
            .map_err(|e| format!("low send: {e}"))?;
        h.send_with(b"high", Priority::High)
            .await
            .map_err(|e| format!("high send: {e}"))
    })?;
    // Low bytes still queued now were queued when the high message was.
    let queued = usize::try_from(h.stats().queued_bytes).unwrap_or(usize::MAX);
    let low_left = queued.saturating_sub(NOT_LOW);
    check(low_left > 0, || {
        format!(
            "the transport took the whole low message before the high one was queued \
             (client queue {queued} bytes): the scripted peer could not hold it back"
        )
    })?;
    // Now read everything: low fragments, the high message, the rest.
    let (mut low_seen, mut after_high, mut high_at) = (0usize, 0usize, None);
    let mut low_done = false;
    for _ in 0..200_000 {
        if low_done && high_at.is_some() {
            break;
        }
        let (t, body) = r.read_frame()?.ok_or("EOF before both messages arrived")?;
        match Frame::decode(t, &body) {
            Ok(Frame::Message { payload }) => {
                check(payload == b"high" && high_at.is_none(), || {
                    format!("unexpected MESSAGE of {} bytes", payload.len())
                })?;
                check(!low_done, || {
                    "the high message came after the whole low message".into()
                })?;
                high_at = Some(low_seen);
            }
            Ok(Frame::Fragment { flags, data, .. }) => {
                check(!low_done, || {
                    "a FRAGMENT after the low message's last".into()
                })?;
                low_seen += data.len();
                if high_at.is_some() {
                    after_high += data.len();
                }
                low_done = flags & frame::FRAG_LAST != 0;
            }
            Ok(_) if t == ty::CLOSE => return Err("the client closed".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("bad frame {t:#04x}: {e:?}")),
        }
    }
    let at = high_at.ok_or("the high message never arrived")?;
    check(low_done, || "the low message never completed".into())?;
    check(after_high >= low_left, || {
        format!(
            "only {after_high} bytes of the low message came after the high one (which \
             came after {at} bytes), but {low_left} were still queued when it was queued"
        )
    })
}

fn priorities(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    held_back_order(client)?;
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let levels = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let (sent, got) = run(client, async {
        join2(
            async {
                for i in 0..400usize {
                    let p = format!("reflect:{i}:{}", "x".repeat(i % 50));
                    h.send_with(p.as_bytes(), levels[i % 4])
                        .await
                        .map_err(|e| format!("send {i}: {e}"))?;
                }
                Ok::<(), String>(())
            },
            async {
                let mut seen = vec![false; 400];
                for _ in 0..400 {
                    let m = h.next_message().await.ok_or("closed")?;
                    let s = String::from_utf8_lossy(&m).to_string();
                    let i: usize = s
                        .split(':')
                        .nth(1)
                        .and_then(|x| x.parse().ok())
                        .ok_or_else(|| format!("bad message {s}"))?;
                    check(i < 400 && !seen[i], || format!("duplicate or bad {s}"))?;
                    seen[i] = true;
                }
                Ok::<(), String>(())
            },
        )
        .await
    });
    sent?;
    got?;
    let n = run(client, count(&h))?;
    check(n == 400, || format!("server counted {n}"))
}

fn too_large_local(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut s = Config::default();
    s.params.max_message_size = 64 << 10;
    let srv = serve(server, s)?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let r = h.try_send(&vec![1u8; 100 << 10]);
    check(r == Err(Error::MessageTooLarge), || {
        format!("send gave {r:?}")
    })?;
    let n = run(client, count(&h))?;
    check(n == 0, || format!("server counted {n}"))
}

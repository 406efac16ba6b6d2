//! One-way messages (§9), their order, a maximal 16 MiB message (§12) and
//! priorities (§13).

use super::{check, connect_to, count, join2, run, serve};
use crate::{Runtime, Scenario};
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
            requirement: "Priorities reorder transmission but never lose messages.",
            expected: "400 messages over the four levels all arrive (count 400) and all are reflected back.",
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

fn priorities(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
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

//! Publish/subscribe (§10): wildcards, queue groups, unsubscribe, credit, the
//! overflow policies and the subscription limit.

use super::{check, connect_to, hub_sync, run, serve, within, yield_now};
use crate::{Runtime, Scenario};
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use weft_core::conn::{CloseKind, Side};
use weft_core::{Config, Error, ErrorCode, OverflowPolicy};
use weft_driver::{Handle, Subscription};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "pubsub/wildcard-star",
            spec: "§10.1",
            requirement: "`*` matches exactly one token at any position.",
            expected: "Filter a.*.c gets a.b.c and a.x.c, not a.c nor a.b.b.c (read up to a matching sentinel).",
            run: star,
        },
        Scenario {
            id: "pubsub/wildcard-gt",
            spec: "§10.1",
            requirement: "`>` matches one or more trailing tokens.",
            expected: "Filter a.> gets a.b and a.b.c.d, not b.a.",
            run: gt,
        },
        Scenario {
            id: "pubsub/gt-not-zero-tokens",
            spec: "§10.1",
            requirement: "`>` does not match zero tokens.",
            expected: "Filter a.> does not get `a`; only the sentinel a.end is delivered.",
            run: gt_zero,
        },
        Scenario {
            id: "pubsub/fan-out",
            spec: "§10.3",
            requirement: "Every matching ungrouped subscription, on any connection, gets each message.",
            expected: "Two subscribers on two connections each get all 20 messages once (pub/sub order is not specified).",
            run: fan_out,
        },
        Scenario {
            id: "pubsub/self-delivery",
            spec: "§10.3",
            requirement: "Subscriptions of the publishing connection match too.",
            expected: "A connection subscribed to t.self gets its own publication.",
            run: self_delivery,
        },
        Scenario {
            id: "pubsub/queue-group",
            spec: "§10.3, §18.6",
            requirement: "Each message goes to exactly one member of a queue group, and to every plain subscriber.",
            expected: "3 clients in group `workers` + 1 plain: the 30 messages are split over the members with no duplicate and none missing; the plain one gets all 30.",
            run: queue_group,
        },
        Scenario {
            id: "pubsub/unsubscribe",
            spec: "§10.2",
            requirement: "UNSUBSCRIBE stops deliveries to the subscription.",
            expected: "After dropping one of two matching subscriptions, 10 publications arrive exactly once each (messages_received grows by 10, not 20).",
            run: unsubscribe,
        },
        Scenario {
            id: "pubsub/credit-wait",
            spec: "§10.4, §10.5 (WAIT)",
            requirement: "With credit 4 and the wait policy a slow subscriber still gets everything; the publisher is held back, nothing dropped.",
            expected: "All 3,000 messages received exactly once, dropped() = 0.",
            run: credit_wait,
        },
        Scenario {
            id: "pubsub/drop-oldest",
            spec: "§10.5 (DROP_OLDEST), §5.17",
            requirement: "A full subscription queue drops its oldest message and reports the running total.",
            expected: "3,000 x 1 KiB to a subscriber that does not read: delivered + dropped = 3,000, dropped > 0, no duplicates, the newest kept.",
            run: drop_oldest,
        },
        Scenario {
            id: "pubsub/drop-newest",
            spec: "§10.5 (DROP_NEWEST), §5.17",
            requirement: "A full subscription queue drops the new message and reports the running total.",
            expected: "delivered + dropped = 3,000, dropped > 0, no duplicates, the oldest kept.",
            run: drop_newest,
        },
        Scenario {
            id: "pubsub/slow-consumer",
            spec: "§10.5 (DISCONNECT), §17",
            requirement: "A subscriber with the disconnect policy that falls behind is closed; the publisher goes on.",
            expected: "Subscriber closed: SLOW_CONSUMER, initiator Peer, kind Error; the publisher's connection still answers echo.",
            run: slow_consumer,
        },
        Scenario {
            id: "pubsub/subscription-limit",
            spec: "§10.2, §6.3",
            requirement: "A client holds at most the server's MAX_SUBSCRIPTIONS subscriptions.",
            expected: "Server limit 3: the 4th subscribe is refused locally (Blocked); after dropping one, subscribing works again.",
            run: subscription_limit,
        },
        Scenario {
            id: "pubsub/subscribe-acknowledged",
            spec: "§14.1, §10.2",
            requirement: "A subscribe completes only once the server registered it: a publication from another connection right after it is delivered.",
            expected: "5 trials: subscriber's subscribe completes, then a second connection publishes 10 messages at once; all 10 are delivered, in order, every trial.",
            run: subscribe_acknowledged,
        },
    ]
}

const T: Duration = Duration::from_secs(10);

/// Subscribes and waits until the server registered the subscription.
fn sub(
    client: &dyn Runtime,
    h: &Handle,
    filter: &str,
    group: Option<&str>,
    p: OverflowPolicy,
) -> Result<Subscription, String> {
    run(client, h.subscribe(filter, group, p)).map_err(|e| format!("subscribe {filter}: {e}"))
}

async fn publish(h: &Handle, topic: &str, payload: &[u8]) -> Result<(), String> {
    h.publish(topic, payload)
        .await
        .map_err(|e| format!("publish {topic}: {e}"))
}

/// Reads `n` deliveries (topic, payload), bounded by a protocol deadline.
async fn take(
    h: &Handle,
    s: &mut Subscription,
    n: usize,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for _ in 0..n {
        match within(h, T, s.next_delivery()).await {
            Some(Some(d)) => out.push((
                String::from_utf8_lossy(&d.topic).to_string(),
                d.payload.to_vec(),
            )),
            other => return Err(format!("after {} deliveries: {other:?}", out.len())),
        }
    }
    Ok(out)
}

/// Subscribes `filter` on one connection, publishes `topics` then `sentinel` from
/// another, and returns the topics delivered (sorted) once the sentinel and the
/// `expected` ones arrived.
fn matching(
    client: &dyn Runtime,
    server: &dyn Runtime,
    filter: &str,
    topics: &[&str],
    expected: &[&str],
    sentinel: &str,
) -> Result<Vec<String>, String> {
    let srv = serve(server, Config::default())?;
    let s = connect_to(client, srv.addr, Config::default())?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let mut subn = sub(client, &s, filter, None, OverflowPolicy::Wait)?;
    run(client, async {
        for t in topics {
            publish(&p, t, t.as_bytes()).await?;
        }
        publish(&p, sentinel, b"end").await?;
        // Pub/sub order is not specified: read until the sentinel and every topic
        // expected to match have been seen (bounded by the number published).
        let mut got = Vec::new();
        let mut sentinel_seen = false;
        for _ in 0..=topics.len() {
            if sentinel_seen && expected.iter().all(|e| got.iter().any(|g| g == e)) {
                break;
            }
            let d = take(&s, &mut subn, 1).await?.remove(0);
            if d.0 == sentinel {
                sentinel_seen = true;
            } else {
                got.push(d.0);
            }
        }
        got.sort();
        Ok(got)
    })
}

fn star(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let got = matching(
        client,
        server,
        "a.*.c",
        &["a.b.c", "a.c", "a.b.b.c", "a.x.c"],
        &["a.b.c", "a.x.c"],
        "a.end.c",
    )?;
    check(got == ["a.b.c", "a.x.c"], || format!("delivered {got:?}"))
}

fn gt(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let got = matching(
        client,
        server,
        "a.>",
        &["a.b", "b.a", "a.b.c.d"],
        &["a.b", "a.b.c.d"],
        "a.end",
    )?;
    check(got == ["a.b", "a.b.c.d"], || format!("delivered {got:?}"))
}

fn gt_zero(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let got = matching(client, server, "a.>", &["a"], &[], "a.end")?;
    check(got.is_empty(), || format!("delivered {got:?}"))
}

fn fan_out(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let a = connect_to(client, srv.addr, Config::default())?;
    let b = connect_to(client, srv.addr, Config::default())?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let mut sa = sub(client, &a, "fan.out", None, OverflowPolicy::Wait)?;
    let mut sb = sub(client, &b, "fan.out", None, OverflowPolicy::Wait)?;
    run(client, async {
        for i in 0..20 {
            publish(&p, "fan.out", format!("{i}").as_bytes()).await?;
        }
        for (h, s) in [(&a, &mut sa), (&b, &mut sb)] {
            let mut got: Vec<Vec<u8>> = take(h, s, 20).await?.into_iter().map(|d| d.1).collect();
            got.sort();
            let mut want: Vec<Vec<u8>> = (0..20).map(|i| format!("{i}").into_bytes()).collect();
            want.sort();
            check(got == want, || format!("delivered {got:?}"))?;
        }
        Ok(())
    })
}

fn self_delivery(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let mut s = sub(client, &h, "t.self", None, OverflowPolicy::Wait)?;
    run(client, async {
        publish(&h, "t.self", b"me").await?;
        let d = take(&h, &mut s, 1).await?;
        check(d[0].1 == b"me", || format!("got {d:?}"))
    })
}

fn queue_group(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    const N: usize = 30;
    let srv = serve(server, Config::default())?;
    let members: Vec<Handle> = (0..3)
        .map(|_| connect_to(client, srv.addr, Config::default()))
        .collect::<Result<_, _>>()?;
    let plain = connect_to(client, srv.addr, Config::default())?;
    let publisher = connect_to(client, srv.addr, Config::default())?;
    let mut subs: Vec<Subscription> = members
        .iter()
        .map(|m| sub(client, m, "jobs.new", Some("workers"), OverflowPolicy::Wait))
        .collect::<Result<_, _>>()?;
    let mut psub = sub(client, &plain, "jobs.new", None, OverflowPolicy::Wait)?;
    run(client, async {
        for i in 0..N {
            publish(&publisher, "jobs.new", format!("{i}").as_bytes()).await?;
        }
        let mut pseen = [0u32; N];
        for (_, m) in take(&plain, &mut psub, N).await? {
            let i: usize = String::from_utf8_lossy(&m).parse().unwrap_or(N);
            check(i < N, || format!("plain got {m:?}"))?;
            pseen[i] += 1;
        }
        check(pseen.iter().all(|&c| c == 1), || {
            format!("plain deliveries per message: {pseen:?}")
        })?;
        // The group's share: N deliveries in all, over the three members.
        let mut seen = [0u32; N];
        let mut total = 0;
        let r = within(
            &publisher,
            T,
            poll_fn(|cx| {
                for s in subs.iter_mut() {
                    while let Poll::Ready(d) = s.poll_next(cx) {
                        let Some(d) = d else {
                            return Poll::Ready(Err("member closed".to_string()));
                        };
                        let i: usize = String::from_utf8_lossy(&d.payload).parse().unwrap_or(N);
                        if i < N {
                            seen[i] += 1;
                        }
                        total += 1;
                    }
                }
                if total >= N {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }),
        )
        .await;
        match r {
            Some(r) => r?,
            None => return Err(format!("group got only {total} of {N}")),
        }
        check(total == N && seen.iter().all(|&c| c == 1), || {
            format!("group deliveries per message: {seen:?}")
        })
    })
}

fn unsubscribe(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let s = connect_to(client, srv.addr, Config::default())?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let first = sub(client, &s, "u.t", None, OverflowPolicy::Wait)?;
    let mut second = sub(client, &s, "u.*", None, OverflowPolicy::Wait)?;
    drop(first);
    run(client, hub_sync(&s))?;
    let before = s.stats().messages_received;
    run(client, async {
        for i in 0..10 {
            publish(&p, "u.t", format!("{i}").as_bytes()).await?;
        }
        publish(&p, "u.end", b"end").await?;
        let got = take(&s, &mut second, 11).await?;
        check(got.iter().filter(|d| d.0 == "u.end").count() == 1, || {
            format!("got {got:?}")
        })
    })?;
    let delta = s.stats().messages_received - before;
    check(delta == 11, || {
        format!("{delta} deliveries arrived for 11 publications")
    })
}

fn credit_wait(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    const N: usize = 3000;
    let srv = serve(server, Config::default())?;
    let cfg = Config {
        subscription_credit: 4,
        ..Config::default()
    };
    let s = connect_to(client, srv.addr, cfg)?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let mut subn = sub(client, &s, "slow.t", None, OverflowPolicy::Wait)?;
    let r = run(client, async {
        let mut publisher = core::pin::pin!(async {
            for i in 0..N {
                publish(&p, "slow.t", format!("{i}").as_bytes()).await?;
            }
            Ok::<(), String>(())
        });
        let mut reader = core::pin::pin!(async {
            let mut seen = vec![false; N];
            for k in 0..N {
                let d = match within(&s, T, subn.next_delivery()).await {
                    Some(Some(d)) => d,
                    other => return Err(format!("after {k} deliveries: {other:?}")),
                };
                let i: usize = String::from_utf8_lossy(&d.payload).parse().unwrap_or(N);
                check(i < N && !seen[i], || {
                    format!("duplicate or bad delivery {:?}", d.payload)
                })?;
                seen[i] = true;
                // A slow reader: let the publisher run between deliveries.
                yield_now().await;
            }
            Ok::<(), String>(())
        });
        let mut published = None;
        poll_fn(|cx| {
            if published.is_none() {
                if let Poll::Ready(r) = publisher.as_mut().poll(cx) {
                    published = Some(r);
                }
            }
            // The reader decides the end (it is bounded); the publisher must be done by then.
            reader.as_mut().poll(cx).map(|r| {
                r.and_then(|()| {
                    published
                        .clone()
                        .unwrap_or_else(|| Err("publisher still held back".into()))
                })
            })
        })
        .await
    });
    r?;
    check(subn.dropped() == 0, || {
        format!("dropped {}", subn.dropped())
    })
}

fn dropping(
    client: &dyn Runtime,
    server: &dyn Runtime,
    policy: OverflowPolicy,
) -> Result<(), String> {
    const N: usize = 3000;
    let srv = serve(server, Config::default())?;
    let cfg = Config {
        subscription_credit: 2,
        ..Config::default()
    };
    let s = connect_to(client, srv.addr, cfg)?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let mut subn = sub(client, &s, "burst.t", None, policy)?;
    let pad = vec![b'.'; 1024];
    run(client, async {
        for i in 0..N {
            let mut m = format!("{i}:").into_bytes();
            m.extend_from_slice(&pad);
            publish(&p, "burst.t", &m).await?;
        }
        // Every publication was routed once the publisher sees its own sync.
        hub_sync(&p).await
    })?;
    let got = run(client, async {
        let mut got: Vec<usize> = Vec::new();
        for _ in 0..N {
            if got.len() as u64 + subn.dropped() >= N as u64 {
                break;
            }
            match within(&s, T, subn.next_delivery()).await {
                Some(Some(d)) => {
                    let s = String::from_utf8_lossy(&d.payload).to_string();
                    got.push(
                        s.split(':')
                            .next()
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(N),
                    );
                }
                other => {
                    return Err(format!(
                        "{} delivered + {} dropped of {N}, then {other:?}",
                        got.len(),
                        subn.dropped()
                    ))
                }
            }
        }
        Ok(got)
    })?;
    let dropped = subn.dropped();
    check(got.len() as u64 + dropped == N as u64, || {
        format!("{} delivered + {dropped} dropped != {N}", got.len())
    })?;
    check(dropped > 0, || "nothing dropped".into())?;
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    check(sorted.len() == got.len(), || "duplicate deliveries".into())?;
    match policy {
        OverflowPolicy::DropOldest => {
            check(got.contains(&(N - 1)), || "newest message not kept".into())
        }
        _ => check(got.contains(&0), || "oldest message not kept".into()),
    }
}

fn drop_oldest(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    dropping(client, server, OverflowPolicy::DropOldest)
}

fn drop_newest(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    dropping(client, server, OverflowPolicy::DropNewest)
}

fn slow_consumer(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let cfg = Config {
        subscription_credit: 2,
        ..Config::default()
    };
    let s = connect_to(client, srv.addr, cfg)?;
    let p = connect_to(client, srv.addr, Config::default())?;
    let _subn = sub(client, &s, "firehose", None, OverflowPolicy::Disconnect)?;
    let pad = vec![b'.'; 1024];
    run(client, async {
        for _ in 0..3000 {
            publish(&p, "firehose", &pad).await?;
        }
        hub_sync(&p).await
    })?;
    let info = run(client, within(&p, T, s.closed())).ok_or("subscriber not closed")?;
    check(
        info.code == ErrorCode::SLOW_CONSUMER
            && info.initiator == Side::Peer
            && info.kind == CloseKind::Error,
        || format!("subscriber closed with {info:?}"),
    )?;
    let e = run(client, super::ask(&p, "echo", b"on"))?;
    check(e == b"on", || format!("publisher echo {e:?}"))
}

fn subscription_limit(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let mut scfg = Config::default();
    scfg.params.max_subscriptions = 3;
    let srv = serve(server, scfg)?;
    let h = connect_to(client, srv.addr, Config::default())?;
    let mut keep = Vec::new();
    for i in 0..3 {
        keep.push(sub(
            client,
            &h,
            &format!("lim.{i}"),
            None,
            OverflowPolicy::Wait,
        )?);
    }
    let r = run(client, h.subscribe("lim.3", None, OverflowPolicy::Wait)).map(|_| ());
    check(r == Err(Error::Blocked), || {
        format!("4th subscribe gave {r:?}")
    })?;
    keep.pop();
    let mut again = sub(client, &h, "lim.again", None, OverflowPolicy::Wait)?;
    run(client, async {
        publish(&h, "lim.again", b"ok").await?;
        let d = match take(&h, &mut again, 1).await {
            Ok(d) => d,
            Err(e) => {
                let c = within(&h, Duration::from_millis(100), h.closed()).await;
                return Err(format!("{e}; connection closed: {c:?}"));
            }
        };
        check(d[0].1 == b"ok", || format!("got {d:?}"))
    })
}

fn subscribe_acknowledged(client: &dyn Runtime, server: &dyn Runtime) -> Result<(), String> {
    let srv = serve(server, Config::default())?;
    let p = connect_to(client, srv.addr, Config::default())?;
    for trial in 0..5 {
        let s = connect_to(client, srv.addr, Config::default())?;
        let topic = format!("ack.t{trial}");
        let mut subn = sub(client, &s, &topic, None, OverflowPolicy::Wait)?;
        let got = run(client, async {
            for i in 0..10u8 {
                publish(&p, &topic, &[i]).await?;
            }
            take(&s, &mut subn, 10).await
        })
        .map_err(|e| format!("trial {trial}: {e}"))?;
        let payloads: Vec<Vec<u8>> = got.into_iter().map(|d| d.1).collect();
        let want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i]).collect();
        check(payloads == want, || {
            format!("trial {trial}: delivered {payloads:?}")
        })?;
    }
    Ok(())
}

//! What the application asks of a connection: a failed command changes nothing
//! (property 9), and two regressions of the sender's scheduler found while
//! writing properties 4 and 9.

use super::*;

// ===================================================================================
// 9. A failed command changes nothing
// ===================================================================================

#[derive(Clone, Debug)]
enum Cmd {
    Message {
        size: usize,
        off: usize,
        prio: Priority,
    },
    Request {
        subject: Vec<u8>,
        size: usize,
        timeout_ms: Option<u64>,
        prio: Priority,
    },
    Subscribe {
        filter: String,
        group: Option<String>,
        policy: OverflowPolicy,
    },
    Publish {
        topic: String,
        size: usize,
        prio: Priority,
    },
    Cancel(u64),
    Unsubscribe(u64),
    /// Drain `poll_transmit` (the peer reads).
    Flush,
}

fn cmd_size(g: &mut Gen) -> usize {
    match range(g, 0, 9) {
        0 => range(g, 1 << 20, 2 << 20) as usize,
        1 => range(g, 16_000, 300_000) as usize,
        _ => upto(g, 4096),
    }
}

fn prio(g: &mut Gen) -> Priority {
    *g.choose(&[
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ])
    .unwrap()
}

/// A filter or topic string, valid or not (empty, too long, bad tokens).
fn maybe_bad_topic(g: &mut Gen) -> String {
    match range(g, 0, 5) {
        0 => String::new(),
        1 => "a.".repeat(range(g, 100, 200) as usize) + "b",
        2 => text_upto(g, 40),
        _ => topic_text(g),
    }
}

impl Arbitrary for Cmd {
    fn arbitrary(g: &mut Gen) -> Self {
        match range(g, 0, 9) {
            0 | 1 => Cmd::Message {
                size: cmd_size(g),
                off: upto(g, 4095),
                prio: prio(g),
            },
            2 => Cmd::Request {
                subject: if chance(g, 1, 5) {
                    vec![b'x'; range(g, 250, 300) as usize]
                } else {
                    subject(g)
                },
                size: cmd_size(g),
                timeout_ms: if chance(g, 1, 2) {
                    Some(range(g, 0, 10_000))
                } else {
                    None
                },
                prio: prio(g),
            },
            3 => Cmd::Subscribe {
                filter: maybe_bad_topic(g),
                group: match range(g, 0, 3) {
                    0 => Some(maybe_bad_topic(g)),
                    1 => Some("g".repeat(range(g, 1, 80) as usize)),
                    _ => None,
                },
                policy: *g
                    .choose(&[
                        OverflowPolicy::Wait,
                        OverflowPolicy::DropOldest,
                        OverflowPolicy::DropNewest,
                        OverflowPolicy::Disconnect,
                    ])
                    .unwrap(),
            },
            4 => Cmd::Publish {
                topic: maybe_bad_topic(g),
                size: cmd_size(g),
                prio: prio(g),
            },
            5 => Cmd::Cancel(range(g, 0, 12)),
            6 => Cmd::Unsubscribe(range(g, 0, 12)),
            _ => Cmd::Flush,
        }
    }
}

/// What a run observed after each command: the result, the stats, and the bytes of
/// a flush.
#[derive(Debug, PartialEq)]
struct Step {
    result: Result<u64, weft_core::Error>,
    stats: Stats,
    sent: Vec<u8>,
}

/// Runs `cmds` except the skipped ones on a fresh established client. Returns the
/// stats before the first command, one step per command run plus a final flush, and
/// the events.
fn run_cmds(cmds: &[Cmd], skip: &[bool]) -> (Stats, Vec<Step>, Vec<Got>) {
    let p = Pair::established(Config::default(), Config::default());
    let mut c = p.client;
    let initial = c.stats();
    let mut steps = Vec::new();
    for (cmd, &skip) in cmds.iter().zip(skip) {
        if skip {
            continue;
        }
        let mut sent = Vec::new();
        let result = match cmd {
            Cmd::Message { size, off, prio } => {
                c.send_message(pattern_slice(*off, *size), *prio).map(|_| 0)
            }
            Cmd::Request {
                subject,
                size,
                timeout_ms,
                prio,
            } => c
                .request(
                    NOW,
                    subject,
                    pattern_slice(*size, *size),
                    timeout_ms.map(std::time::Duration::from_millis),
                    *prio,
                )
                .map(u64::from),
            Cmd::Subscribe {
                filter,
                group,
                policy,
            } => c
                .subscribe(filter, group.as_deref(), *policy)
                .map(u64::from),
            Cmd::Publish { topic, size, prio } => {
                c.publish(topic, pattern_slice(7, *size), *prio).map(|_| 0)
            }
            Cmd::Cancel(id) => c.cancel(RequestId::new(*id)).map(|_| 0),
            Cmd::Unsubscribe(id) => c.unsubscribe(SubId::new(*id)).map(|_| 0),
            Cmd::Flush => {
                flush(&mut c, NOW, &mut sent);
                Ok(0)
            }
        };
        steps.push(Step {
            result,
            stats: c.stats(),
            sent,
        });
    }
    let mut sent = Vec::new();
    flush(&mut c, NOW, &mut sent);
    steps.push(Step {
        result: Ok(0),
        stats: c.stats(),
        sent,
    });
    let mut ev = Vec::new();
    collect(&mut c, &mut ev);
    (initial, steps, ev)
}

fn prop_commit_on_success(cmds: Vec<Cmd>) -> TestResult {
    verdict((|| {
        let all = vec![false; cmds.len()];
        let (init1, first, ev1) = run_cmds(&cmds, &all);
        let failed: Vec<bool> = first[..cmds.len()]
            .iter()
            .map(|s| s.result.is_err())
            .collect();
        let (init2, second, ev2) = run_cmds(&cmds, &failed);
        ensure!(init1 == init2, "runs start differently");
        // The first run without its failed steps; each failed step must have left the
        // stats as they were before it (and sends nothing: it is not a flush).
        let mut expect = Vec::new();
        let mut before = init1;
        for (i, s) in first.iter().enumerate() {
            if i < cmds.len() && failed[i] {
                ensure!(
                    s.stats == before,
                    "failed {:?} ({:?}) changed stats: {before:?} -> {:?}",
                    cmds[i],
                    s.result,
                    s.stats
                );
                continue;
            }
            before = s.stats;
            expect.push(s);
        }
        ensure!(expect.len() == second.len(), "step counts");
        for (i, (a, b)) in expect.iter().zip(&second).enumerate() {
            ensure!(
                a.result == b.result,
                "step {i}: result {:?} vs {:?}",
                a.result,
                b.result
            );
            ensure!(
                a.stats == b.stats,
                "step {i}: stats {:?} vs {:?}",
                a.stats,
                b.stats
            );
            ensure!(
                a.sent == b.sent,
                "step {i}: sent bytes differ ({} vs {})",
                a.sent.len(),
                b.sent.len()
            );
        }
        // `Writable` follows a `Blocked` refusal by design (the retry signal); every
        // other event must be the same.
        let strip = |ev: Vec<Got>| -> Vec<Got> {
            ev.into_iter()
                .filter(|g| !matches!(g.ev, Event::Writable))
                .collect()
        };
        ensure!(strip(ev1) == strip(ev2), "events differ");
        Ok(())
    })())
}

#[test]
fn p9_failed_commands_change_nothing() {
    check(
        "p9_commit_on_success",
        150,
        prop_commit_on_success as fn(Vec<Cmd>) -> TestResult,
    );
}

// ===================================================================================
// Found while writing property 4: request ids must arrive in increasing order, but
// the sender's scheduler reorders requests.
// ===================================================================================

#[derive(Clone, Debug)]
struct ReqSpec {
    size: usize,
    prio: Priority,
}

impl Arbitrary for ReqSpec {
    fn arbitrary(g: &mut Gen) -> Self {
        ReqSpec {
            size: if chance(g, 1, 4) {
                range(g, 16_000, 40_000) as usize
            } else {
                upto(g, 2_000)
            },
            prio: prio(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let prio = self.prio;
        let mut out = Vec::new();
        if self.size > 0 {
            out.push(ReqSpec { size: 0, prio });
            out.push(ReqSpec {
                size: self.size / 2,
                prio,
            });
        }
        if prio != Priority::Normal {
            out.push(ReqSpec {
                size: self.size,
                prio: Priority::Normal,
            });
        }
        Box::new(out.into_iter())
    }
}

#[derive(Clone, Debug)]
struct Requests(Vec<ReqSpec>);

impl Arbitrary for Requests {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 1, 8);
        Requests((0..n).map(|_| ReqSpec::arbitrary(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().filter(|v| !v.is_empty()).map(Requests))
    }
}

/// Well-formed requests from an established client never make the server close, and
/// every one of them reaches the server.
fn prop_requests_arrive(r: Requests) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        let mut ids = Vec::new();
        for spec in &r.0 {
            let payload = pattern_slice(spec.size, spec.size);
            if let Ok(id) = p.client.request(NOW, b"svc.echo", payload, None, spec.prio) {
                ids.push(id);
            }
        }
        p.drive();
        if let Some(info) = closed(&p.s_events) {
            return Err(format!(
                "server closed with {info:?} ({:?}); client sent {}",
                p.server.close_reason(),
                describe(&p.client_wire)
            ));
        }
        let got: Vec<RequestId> = p
            .s_events
            .iter()
            .filter_map(|g| match g.ev {
                Event::Request { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        ensure!(sorted == ids, "sent {ids:?}, server saw {got:?}");
        Ok(())
    })())
}

#[test]
fn regression_requests_reordered_by_the_scheduler_are_accepted() {
    check(
        "bug_request_order",
        200,
        prop_requests_arrive as fn(Requests) -> TestResult,
    );
}

// ===================================================================================
// Found while writing property 9: a CANCEL overtakes the request it cancels.
// ===================================================================================

/// A request cancelled before it was sent is either never seen by the responder, or
/// seen and then cancelled: the responder is never left holding a request the
/// requester gave up on.
fn prop_cancel_reaches_responder(spec: ReqSpec) -> TestResult {
    verdict((|| {
        let mut p = Pair::established(Config::default(), Config::default());
        let payload = pattern_slice(spec.size, spec.size);
        let Ok(id) = p.client.request(NOW, b"svc.echo", payload, None, spec.prio) else {
            return Ok(());
        };
        p.client.cancel(id).map_err(|e| format!("cancel: {e:?}"))?;
        p.drive();
        let seen = p
            .s_events
            .iter()
            .position(|g| matches!(g.ev, Event::Request { id: i, .. } if i == id));
        let cancelled = p
            .s_events
            .iter()
            .position(|g| g.ev == Event::RequestCancelled { id });
        match (seen, cancelled) {
            (None, _) => Ok(()),
            (Some(s), Some(c)) if c > s => Ok(()),
            _ => Err(format!(
                "server got request {id} but no later cancel; client sent {}",
                describe(&p.client_wire)
            )),
        }
    })())
}

#[test]
fn regression_cancel_never_overtakes_its_request() {
    check(
        "bug_cancel_order",
        100,
        prop_cancel_reaches_responder as fn(ReqSpec) -> TestResult,
    );
}

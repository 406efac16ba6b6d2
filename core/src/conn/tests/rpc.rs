//! Requests and responses (spec section 8): outcomes, deadlines, CANCEL and the
//! outstanding-request limits on both sides.

use super::*;

#[test]
fn request_outcomes() {
    let mut p = Pair::connected();
    let now = p.now;
    let a = p
        .client
        .request(now, b"a", b"1", None, Priority::Normal)
        .unwrap();
    let b = p
        .client
        .request(now, b"b", b"2", None, Priority::Normal)
        .unwrap();
    let c = p
        .client
        .request(now, b"c", b"3", None, Priority::Normal)
        .unwrap();
    let d = p
        .client
        .request(now, b"d", b"4", None, Priority::Normal)
        .unwrap();
    assert_eq!((a.get(), b.get(), c.get(), d.get()), (1, 2, 3, 4));
    p.drive();
    let reqs = requests_of(&p.take_server());
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].3, None);
    p.server
        .respond(RequestId::new(1), Outcome::Ok, "", b"one", Priority::Normal)
        .unwrap();
    p.server
        .respond(
            RequestId::new(2),
            Outcome::Error(4004),
            "not found",
            b"",
            Priority::Normal,
        )
        .unwrap();
    p.server
        .respond(
            RequestId::new(3),
            Outcome::NoResponder,
            "",
            b"",
            Priority::Normal,
        )
        .unwrap();
    p.server
        .respond(
            RequestId::new(4),
            Outcome::Cancelled,
            "",
            b"",
            Priority::Normal,
        )
        .unwrap();
    assert_eq!(
        p.server
            .respond(RequestId::new(4), Outcome::Ok, "", b"", Priority::Normal),
        Err(Error::UnknownId),
        "answered once only"
    );
    p.drive();
    let r = responses_of(&p.take_client());
    assert_eq!(
        r[0],
        (
            RequestId::new(1),
            Outcome::Ok,
            b"one".to_vec(),
            String::new()
        )
    );
    assert_eq!(
        r[1],
        (
            RequestId::new(2),
            Outcome::Error(4004),
            Vec::new(),
            "not found".to_string()
        )
    );
    assert_eq!(r[2].1, Outcome::NoResponder);
    assert_eq!(r[3].1, Outcome::Cancelled);
}

#[test]
fn deadline_exceeded_locally_and_responder_told() {
    let mut p = Pair::connected();
    let id = p
        .client
        .request(
            p.now,
            b"slow",
            b"",
            Some(Duration::from_millis(250)),
            Priority::Normal,
        )
        .unwrap();
    p.drive();
    let reqs = requests_of(&p.take_server());
    assert_eq!(
        reqs[0].3,
        Some(p.now + Duration::from_millis(250)),
        "deadline carried"
    );
    p.advance(Duration::from_millis(249));
    assert!(responses_of(&p.take_client()).is_empty());
    p.advance(Duration::from_millis(1));
    assert_eq!(
        responses_of(&p.take_client())[0].1,
        Outcome::DeadlineExceeded
    );
    assert!(p
        .take_server()
        .iter()
        .any(|g| g.ev == Event::RequestCancelled { id }));
    // A late answer is ignored, not an error.
    assert_eq!(
        p.server.respond(id, Outcome::Ok, "", b"", Priority::Normal),
        Err(Error::UnknownId)
    );
    assert!(p.client.is_established());
}

#[test]
fn responder_deadline_forgets_request() {
    let mut p = Pair::connected();
    // The server's clock runs ahead of the client's here: its own timer fires.
    p.client
        .request(
            p.now,
            b"x",
            b"",
            Some(Duration::from_secs(1)),
            Priority::Normal,
        )
        .unwrap();
    p.drive();
    p.take_server();
    let t = p.server.poll_timeout().unwrap();
    p.server
        .handle_timeout(t.max(p.now + Duration::from_secs(1)));
    let mut ev = Vec::new();
    collect(&mut p.server, &mut ev);
    assert!(ev.iter().any(|g| g.ev
        == Event::RequestCancelled {
            id: RequestId::new(1)
        }));
}

#[test]
fn cancel_by_requester() {
    let mut p = Pair::connected();
    let id = p
        .client
        .request(p.now, b"x", b"", None, Priority::Normal)
        .unwrap();
    p.drive();
    p.take_server();
    p.client.cancel(id).unwrap();
    assert_eq!(p.client.cancel(id), Err(Error::UnknownId));
    p.drive();
    assert!(p
        .take_server()
        .iter()
        .any(|g| g.ev == Event::RequestCancelled { id }));
    assert!(responses_of(&p.take_client()).is_empty());
}

#[test]
fn outstanding_request_cap_blocks_without_queueing() {
    let mut cc = Config::default();
    cc.max_outstanding_requests = 2;
    let mut p = Pair::new(cc, Config::default());
    p.drive();
    p.client
        .request(p.now, b"a", b"", None, Priority::Normal)
        .unwrap();
    p.client
        .request(p.now, b"a", b"", None, Priority::Normal)
        .unwrap();
    let before = p.client.stats();
    assert_eq!(
        p.client.request(p.now, b"a", b"", None, Priority::Normal),
        Err(Error::Blocked)
    );
    assert_eq!(p.client.stats(), before, "a refused call changes nothing");
    p.drive();
    p.server
        .respond(RequestId::new(1), Outcome::Ok, "", b"", Priority::Normal)
        .unwrap();
    p.drive();
    assert_eq!(
        p.client.request(p.now, b"a", b"", None, Priority::Normal),
        Ok(RequestId::new(3)),
        "room again after a response"
    );
}

#[test]
fn request_limit_against_hostile_peer() {
    let mut sc = Config::default();
    sc.params.max_concurrent_requests = 2;
    let mut p = Pair::new(Config::default(), sc);
    p.drive();
    let frames: Vec<Frame<'_>> = (1..=3)
        .map(|id| Frame::Request {
            id,
            timeout_ms: 0,
            subject: b"s",
            payload: b"",
        })
        .collect();
    p.inject_to_server(&frames);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::REQUEST_LIMIT
    );
    assert_eq!(
        closed(&p.take_client()).unwrap().code,
        ErrorCode::REQUEST_LIMIT
    );
}

#[test]
fn request_ids_must_increase() {
    let mut p = Pair::connected();
    let f = Frame::Request {
        id: 5,
        timeout_ms: 0,
        subject: b"s",
        payload: b"",
    };
    p.inject_to_server(&[f, f]);
    assert_eq!(
        closed(&p.take_server()).unwrap().code,
        ErrorCode::PROTOCOL_ERROR
    );
}

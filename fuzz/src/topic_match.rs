//! `topic_match`: topic, filter and queue-group validation and wildcard matching
//! against a simple reference, and (with `std`) the router's fan-out against the
//! same reference.
//!
//! Input: strings built from an alphabet that means something to topics (tokens,
//! dots, wildcards, whitespace and control characters ASCII and not, multi-byte
//! characters) or from raw bytes, then subscriptions naming those strings as
//! filters and queue groups. Checks: each validator agrees with the reference on
//! what is valid (and on `Empty` and `TooLong`); every valid topic is a valid
//! filter matching itself; `filter_matches` agrees with the reference on every
//! valid (filter, topic) pair; the router hands each published message to exactly
//! the matching plain subscriptions and to one matching member of each group.

use arbitrary::{Arbitrary, Unstructured};
use weft_core::topic::{
    filter_matches, validate_filter, validate_queue_group, validate_topic, TopicError,
    MAX_QUEUE_GROUP_LEN, MAX_TOPIC_LEN, MAX_TOPIC_LEVELS,
};

/// Pieces strings are made of.
const ALPHABET: &[&str] = &[
    "a",
    "b",
    "c",
    "ab",
    ".",
    ".",
    "*",
    ">",
    " ",
    "\t",
    "\n",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{3000}",
    "\u{200b}",
    "é",
    "ü.x",
    "-",
    "_",
    "a.b",
    "*.",
    ".>",
    "aaaaaaaaaaaaaaaa",
];

/// One string.
#[derive(Arbitrary, Debug)]
pub enum Str {
    /// Alphabet pieces, by index.
    Pieces(Vec<u8>),
    /// `n` copies of alphabet piece `piece`, for the length and level limits.
    Repeat {
        /// The piece.
        piece: u8,
        /// Copies.
        n: u16,
    },
    /// Any bytes, lossily made UTF-8.
    Raw(Vec<u8>),
}

impl Str {
    fn build(&self) -> String {
        match self {
            Str::Pieces(p) => p
                .iter()
                .map(|&i| ALPHABET[usize::from(i) % ALPHABET.len()])
                .collect(),
            Str::Repeat { piece, n } => {
                ALPHABET[usize::from(*piece) % ALPHABET.len()].repeat(usize::from(*n % 600))
            }
            Str::Raw(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

/// A subscription: a string as filter, maybe another as queue group, and the
/// connection it belongs to.
#[derive(Arbitrary, Debug)]
pub struct Sub {
    /// Index of the filter string.
    pub filter: u8,
    /// Index of the group string.
    pub group: Option<u8>,
    /// Connection key (0..4).
    pub conn: u8,
}

/// The input.
#[derive(Arbitrary, Debug)]
pub struct TopicInput {
    /// The strings.
    pub strings: Vec<Str>,
    /// Subscriptions on them.
    pub subs: Vec<Sub>,
}

fn bad_char(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Reference: a valid topic.
pub fn ref_topic(s: &str) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    !s.is_empty()
        && s.len() <= MAX_TOPIC_LEN
        && tokens.len() <= MAX_TOPIC_LEVELS
        && tokens
            .iter()
            .all(|t| !t.is_empty() && t.chars().all(|c| c != '*' && c != '>' && !bad_char(c)))
}

/// Reference: a valid filter.
pub fn ref_filter(s: &str) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    let last = tokens.len() - 1;
    !s.is_empty()
        && s.len() <= MAX_TOPIC_LEN
        && tokens.len() <= MAX_TOPIC_LEVELS
        && tokens.iter().enumerate().all(|(i, t)| {
            *t == "*"
                || (*t == ">" && i == last)
                || (!t.is_empty() && t.chars().all(|c| c != '*' && c != '>' && !bad_char(c)))
        })
}

/// Reference: a valid queue group name.
pub fn ref_group(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_QUEUE_GROUP_LEN
        && s.chars()
            .all(|c| c != '.' && c != '*' && c != '>' && !bad_char(c))
}

/// Reference matcher on token lists.
pub fn ref_match(f: &[&str], t: &[&str]) -> bool {
    match (f.split_first(), t.split_first()) {
        (None, None) => true,
        (Some((&">", _)), Some(_)) => true,
        (Some((&"*", fr)), Some((_, tr))) => ref_match(fr, tr),
        (Some((a, fr)), Some((b, tr))) => a == b && ref_match(fr, tr),
        _ => false,
    }
}

fn matches(f: &str, t: &str) -> bool {
    let f: Vec<&str> = f.split('.').collect();
    let t: Vec<&str> = t.split('.').collect();
    ref_match(&f, &t)
}

fn check_errors(s: &str, r: Result<(), TopicError>, max: usize, what: &str) {
    if s.is_empty() {
        assert_eq!(r, Err(TopicError::Empty), "{what} {s:?}");
    } else if s.len() > max {
        assert_eq!(r, Err(TopicError::TooLong), "{what} {s:?}");
    } else {
        assert_ne!(r, Err(TopicError::Empty), "{what} {s:?}");
        assert_ne!(r, Err(TopicError::TooLong), "{what} {s:?}");
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let Ok(input) = TopicInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let strings: Vec<String> = input.strings.iter().take(64).map(Str::build).collect();
    for s in &strings {
        let t = validate_topic(s);
        let f = validate_filter(s);
        let g = validate_queue_group(s);
        assert_eq!(t.is_ok(), ref_topic(s), "validate_topic({s:?}) = {t:?}");
        assert_eq!(f.is_ok(), ref_filter(s), "validate_filter({s:?}) = {f:?}");
        assert_eq!(
            g.is_ok(),
            ref_group(s),
            "validate_queue_group({s:?}) = {g:?}"
        );
        check_errors(s, t, MAX_TOPIC_LEN, "topic");
        check_errors(s, f, MAX_TOPIC_LEN, "filter");
        check_errors(s, g, MAX_QUEUE_GROUP_LEN, "group");
        if t.is_ok() {
            assert!(f.is_ok(), "topic {s:?} is not a valid filter");
            assert!(filter_matches(s, s), "topic {s:?} does not match itself");
        }
    }
    for f in strings.iter().filter(|s| ref_filter(s)) {
        for t in strings.iter().filter(|s| ref_topic(s)) {
            assert_eq!(
                filter_matches(f, t),
                matches(f, t),
                "filter_matches({f:?}, {t:?})"
            );
        }
    }
    // On invalid input the answer is unspecified, but it must not panic.
    for f in &strings {
        for t in &strings {
            let _ = filter_matches(f, t);
        }
    }
    #[cfg(feature = "std")]
    router(&strings, &input.subs);
}

#[cfg(feature = "std")]
fn router(strings: &[String], subs: &[Sub]) {
    use std::collections::{BTreeMap, BTreeSet};
    use weft_core::router::{Router, RouterConfig, RouterError};
    use weft_core::{OverflowPolicy, SubId};

    if strings.is_empty() {
        return;
    }
    let mut r = Router::new(RouterConfig::default());
    // (conn, sub id) -> (filter, group)
    let mut live: BTreeMap<(u64, SubId), (&str, Option<&str>)> = BTreeMap::new();
    for (i, s) in subs.iter().take(64).enumerate() {
        let filter = &strings[usize::from(s.filter) % strings.len()];
        let group = s
            .group
            .map(|g| strings[usize::from(g) % strings.len()].as_str());
        let key = (u64::from(s.conn % 4), SubId::new(i as u64 + 1));
        let res = r.subscribe(
            key.0,
            key.1,
            filter,
            group,
            OverflowPolicy::DropNewest,
            1_000,
        );
        let valid = ref_filter(filter) && group.is_none_or(ref_group);
        match res {
            Ok(()) => {
                assert!(valid, "router took {filter:?} in {group:?}");
                live.insert(key, (filter.as_str(), group));
            }
            Err(RouterError::InvalidFilter(_) | RouterError::InvalidQueueGroup(_)) => {
                assert!(!valid, "router refused {filter:?} in {group:?}: {res:?}")
            }
            Err(e) => panic!("subscribe {filter:?}: {e:?}"),
        }
    }
    assert_eq!(r.subscription_count(), live.len());
    for topic in strings {
        let res = r.publish(topic, bytes::Bytes::copy_from_slice(topic.as_bytes()));
        if !ref_topic(topic) {
            assert!(
                matches!(res, Err(RouterError::InvalidTopic(_))),
                "publish {topic:?}: {res:?}"
            );
            continue;
        }
        let out = res.unwrap_or_else(|e| panic!("publish {topic:?}: {e:?}"));
        let mut got = BTreeSet::new();
        for conn in 0..4 {
            while let Some(d) = r.poll_delivery(conn) {
                assert_eq!(&d.topic[..], topic.as_bytes());
                assert!(got.insert((conn, d.sub_id)), "delivered twice");
            }
        }
        let mut plain = BTreeSet::new();
        let mut groups: BTreeMap<&str, BTreeSet<(u64, SubId)>> = BTreeMap::new();
        for (&k, &(f, g)) in &live {
            if matches(f, topic) {
                match g {
                    None => {
                        plain.insert(k);
                    }
                    Some(g) => {
                        groups.entry(g).or_default().insert(k);
                    }
                }
            }
        }
        let expected = plain.len() + groups.len();
        assert_eq!(out.matched as usize, expected, "matched for {topic:?}");
        assert_eq!(got.len(), expected, "deliveries for {topic:?}: {got:?}");
        for k in &plain {
            assert!(got.contains(k), "{k:?} missed {topic:?}");
        }
        for (g, members) in &groups {
            let n = members.intersection(&got).count();
            assert_eq!(n, 1, "group {g:?} got {topic:?} {n} times");
        }
        while r.poll_action().is_some() {}
    }
}

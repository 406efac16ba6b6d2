//! Topic and filter syntax: validation and wildcard matching.
//!
//! Weft topics follow the NATS conventions:
//!
//! * A **topic** (what a publisher sends to) is 1..=[`MAX_TOPIC_LEN`] bytes of
//!   UTF-8 made of 1..=[`MAX_TOPIC_LEVELS`] non-empty tokens separated by `.`,
//!   e.g. `sensors.kitchen.temp`. It may not contain whitespace, control
//!   characters, `*` or `>`.
//! * A **filter** (what a subscriber listens on) has the same syntax plus two
//!   wildcards, each of which must be a whole token:
//!   * `*` matches exactly one token (`sensors.*.temp`);
//!   * `>` as the **last** token matches one or more remaining tokens
//!     (`sensors.>` matches `sensors.kitchen` and `sensors.kitchen.temp`, but
//!     not `sensors`).
//!
//! Nothing in this module allocates, so it is available without the `alloc`
//! feature (an embedded client can validate before sending).

use core::fmt;

/// Maximum length of a topic or filter, in bytes.
///
/// Bounded so that routing cost and per-message topic storage are bounded.
pub const MAX_TOPIC_LEN: usize = 256;

/// Maximum number of `.`-separated tokens in a topic or filter.
///
/// Bounded so that trie walks (and their recursion depth) are bounded.
pub const MAX_TOPIC_LEVELS: usize = 16;

/// Maximum length of a queue group name, in bytes.
pub const MAX_QUEUE_GROUP_LEN: usize = 64;

/// The token separator.
pub const SEPARATOR: char = '.';

/// The single-token wildcard, valid only as a whole filter token.
pub const WILDCARD_ONE: &str = "*";

/// The multi-token tail wildcard, valid only as the last filter token.
pub const WILDCARD_TAIL: &str = ">";

/// Why a topic, filter or queue group name was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicError {
    /// The string is empty.
    Empty,
    /// The string is longer than its maximum ([`MAX_TOPIC_LEN`] or
    /// [`MAX_QUEUE_GROUP_LEN`]).
    TooLong,
    /// More than [`MAX_TOPIC_LEVELS`] tokens.
    TooManyLevels,
    /// A token is empty (leading, trailing or doubled `.`).
    EmptyLevel,
    /// Whitespace or a control character (or a `.` in a queue group name).
    InvalidChar,
    /// A `*` or `>` character in a published topic or queue group name.
    WildcardInTopic,
    /// In a filter: `>` that is not the last token, or `*` / `>` that is only
    /// part of a token (such as `a*`).
    MisplacedWildcard,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            TopicError::Empty => "topic is empty",
            TopicError::TooLong => "topic is too long",
            TopicError::TooManyLevels => "topic has too many levels",
            TopicError::EmptyLevel => "topic has an empty level",
            TopicError::InvalidChar => "topic contains an invalid character",
            TopicError::WildcardInTopic => "wildcard character in a published topic",
            TopicError::MisplacedWildcard => "wildcard is not a whole token or '>' is not last",
        };
        f.write_str(msg)
    }
}

impl core::error::Error for TopicError {}

/// Whitespace and control characters are rejected everywhere: they would make
/// topics ambiguous in logs and text-based tooling, and NATS rejects them too.
fn is_forbidden_char(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

fn is_wildcard_char(c: char) -> bool {
    c == '*' || c == '>'
}

/// Checks the length and level-count rules shared by topics and filters.
fn check_shape(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    // Counting separators up front reports TooManyLevels for long topics
    // regardless of what else is wrong with them, which keeps errors stable.
    let levels = s.bytes().filter(|&b| b == b'.').count() + 1;
    if levels > MAX_TOPIC_LEVELS {
        return Err(TopicError::TooManyLevels);
    }
    Ok(())
}

/// Validates a topic that a message is published to.
///
/// # Errors
///
/// Returns the first rule the topic breaks; see [`TopicError`].
pub fn validate_topic(topic: &str) -> Result<(), TopicError> {
    check_shape(topic)?;
    for token in topic.split(SEPARATOR) {
        if token.is_empty() {
            return Err(TopicError::EmptyLevel);
        }
        for c in token.chars() {
            if is_wildcard_char(c) {
                return Err(TopicError::WildcardInTopic);
            }
            if is_forbidden_char(c) {
                return Err(TopicError::InvalidChar);
            }
        }
    }
    Ok(())
}

/// Validates a subscription filter (a topic that may contain `*` tokens and a
/// final `>` token).
///
/// # Errors
///
/// Returns the first rule the filter breaks; see [`TopicError`].
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_shape(filter)?;
    let mut tokens = filter.split(SEPARATOR).peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return Err(TopicError::EmptyLevel);
        }
        if token == WILDCARD_ONE {
            continue;
        }
        if token == WILDCARD_TAIL {
            if tokens.peek().is_some() {
                return Err(TopicError::MisplacedWildcard);
            }
            continue;
        }
        for c in token.chars() {
            if is_wildcard_char(c) {
                return Err(TopicError::MisplacedWildcard);
            }
            if is_forbidden_char(c) {
                return Err(TopicError::InvalidChar);
            }
        }
    }
    Ok(())
}

/// Validates a queue group name: a single topic token of
/// 1..=[`MAX_QUEUE_GROUP_LEN`] bytes without `.`, wildcards, whitespace or
/// control characters.
///
/// # Errors
///
/// [`TopicError::Empty`], [`TopicError::TooLong`],
/// [`TopicError::WildcardInTopic`], or [`TopicError::InvalidChar`] (which
/// includes a `.`).
pub fn validate_queue_group(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_QUEUE_GROUP_LEN {
        return Err(TopicError::TooLong);
    }
    for c in name.chars() {
        if is_wildcard_char(c) {
            return Err(TopicError::WildcardInTopic);
        }
        if c == SEPARATOR || is_forbidden_char(c) {
            return Err(TopicError::InvalidChar);
        }
    }
    Ok(())
}

/// Returns whether `filter` matches `topic`.
///
/// Both inputs are assumed to be valid ([`validate_filter`] and
/// [`validate_topic`]); on invalid input the answer is unspecified but the
/// function never panics. It does not allocate.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split(SEPARATOR);
    let mut t = topic.split(SEPARATOR);
    loop {
        match (f.next(), t.next()) {
            (None, None) => return true,
            // `>` is always last in a valid filter and needs at least one
            // token, which the `Some(_)` on the topic side guarantees.
            (Some(WILDCARD_TAIL), Some(_)) => return true,
            (Some(WILDCARD_ONE), Some(_)) => {}
            (Some(a), Some(b)) => {
                if a != b {
                    return false;
                }
            }
            // One side ran out first: lengths differ.
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    // Tests always run with std, even when the crate is built without
    // `alloc`, so the property test below can use owned strings.
    extern crate std;

    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck};
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn valid_topics() {
        for t in [
            "a",
            "a.b.c",
            "sensors.kitchen.temp",
            "ünïcödé.ok",
            "a-b_c:d",
        ] {
            assert_eq!(validate_topic(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn invalid_topics() {
        let cases = [
            ("", TopicError::Empty),
            (".", TopicError::EmptyLevel),
            ("a.", TopicError::EmptyLevel),
            (".a", TopicError::EmptyLevel),
            ("a..b", TopicError::EmptyLevel),
            ("a b", TopicError::InvalidChar),
            ("a\tb", TopicError::InvalidChar),
            ("a\u{7f}", TopicError::InvalidChar),
            ("a.*", TopicError::WildcardInTopic),
            ("a.>", TopicError::WildcardInTopic),
            ("a>b", TopicError::WildcardInTopic),
        ];
        for (t, e) in cases {
            assert_eq!(validate_topic(t), Err(e), "{t:?}");
        }
    }

    #[test]
    fn length_and_level_limits() {
        let max_len = "a".repeat(MAX_TOPIC_LEN);
        assert_eq!(validate_topic(&max_len), Ok(()));
        assert_eq!(validate_filter(&max_len), Ok(()));
        let too_long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(validate_topic(&too_long), Err(TopicError::TooLong));
        assert_eq!(validate_filter(&too_long), Err(TopicError::TooLong));

        let levels = |n: usize| std::vec!["a"; n].join(".");
        assert_eq!(validate_topic(&levels(MAX_TOPIC_LEVELS)), Ok(()));
        assert_eq!(
            validate_topic(&levels(MAX_TOPIC_LEVELS + 1)),
            Err(TopicError::TooManyLevels)
        );
        assert_eq!(
            validate_filter(&levels(MAX_TOPIC_LEVELS + 1)),
            Err(TopicError::TooManyLevels)
        );
    }

    #[test]
    fn filters() {
        for f in ["a", "*", ">", "a.*", "a.>", "*.*.>", "a.*.c"] {
            assert_eq!(validate_filter(f), Ok(()), "{f}");
        }
        let cases = [
            ("", TopicError::Empty),
            ("a..b", TopicError::EmptyLevel),
            (">.a", TopicError::MisplacedWildcard),
            ("a.>.b", TopicError::MisplacedWildcard),
            ("a*", TopicError::MisplacedWildcard),
            ("a.b>", TopicError::MisplacedWildcard),
            ("**", TopicError::MisplacedWildcard),
            ("a. b", TopicError::InvalidChar),
        ];
        for (f, e) in cases {
            assert_eq!(validate_filter(f), Err(e), "{f:?}");
        }
    }

    #[test]
    fn queue_groups() {
        assert_eq!(validate_queue_group("workers"), Ok(()));
        assert_eq!(validate_queue_group(""), Err(TopicError::Empty));
        assert_eq!(
            validate_queue_group(&"g".repeat(MAX_QUEUE_GROUP_LEN)),
            Ok(())
        );
        assert_eq!(
            validate_queue_group(&"g".repeat(MAX_QUEUE_GROUP_LEN + 1)),
            Err(TopicError::TooLong)
        );
        assert_eq!(validate_queue_group("a.b"), Err(TopicError::InvalidChar));
        assert_eq!(validate_queue_group("a b"), Err(TopicError::InvalidChar));
        assert_eq!(validate_queue_group("*"), Err(TopicError::WildcardInTopic));
        assert_eq!(validate_queue_group(">"), Err(TopicError::WildcardInTopic));
    }

    #[test]
    fn literal_matching() {
        assert!(filter_matches("a.b.c", "a.b.c"));
        assert!(!filter_matches("a.b.c", "a.b.d"));
        assert!(!filter_matches("a.b", "a.b.c"));
        assert!(!filter_matches("a.b.c", "a.b"));
        // Token boundaries matter, not string prefixes.
        assert!(!filter_matches("a.bc", "a.b"));
        assert!(!filter_matches("ab", "a"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(filter_matches("a.*.c", "a.b.c"));
        assert!(filter_matches("*", "x"));
        assert!(filter_matches("*.*", "x.y"));
        assert!(!filter_matches("a.*", "a"));
        assert!(!filter_matches("a.*", "a.b.c"));
        assert!(!filter_matches("*", "x.y"));
    }

    #[test]
    fn tail_matches_one_or_more_tokens() {
        assert!(filter_matches("a.>", "a.b"));
        assert!(filter_matches("a.>", "a.b.c.d"));
        assert!(filter_matches(">", "x"));
        assert!(filter_matches(">", "x.y.z"));
        assert!(filter_matches("*.>", "a.b"));
        // `>` never matches zero tokens.
        assert!(!filter_matches("a.>", "a"));
        assert!(!filter_matches("a.b.>", "a.b"));
        assert!(!filter_matches("*.>", "a"));
        assert!(!filter_matches("a.>", "b.c"));
    }

    /// A random valid topic over a tiny alphabet, so that collisions (and
    /// therefore matches) are frequent.
    #[derive(Clone, Debug)]
    struct SmallTopic(String);

    impl Arbitrary for SmallTopic {
        fn arbitrary(g: &mut Gen) -> Self {
            let n = *g.choose(&[1usize, 2, 3, 4]).unwrap_or(&1);
            let toks: Vec<&str> = (0..n)
                .map(|_| *g.choose(&["a", "b", "c"]).unwrap_or(&"a"))
                .collect();
            SmallTopic(toks.join("."))
        }
    }

    #[test]
    fn prop_topic_is_valid_and_matches_itself() {
        fn prop(t: SmallTopic, star_at: u8, tail: bool) -> bool {
            let topic = t.0;
            if validate_topic(&topic).is_err() || !filter_matches(&topic, &topic) {
                return false;
            }
            // Replacing any token by `*` keeps a match; replacing the
            // suffix starting at a token by `>` keeps a match.
            let toks: Vec<&str> = topic.split('.').collect();
            let i = usize::from(star_at) % toks.len();
            let mut f: Vec<&str> = toks.clone();
            if tail {
                f.truncate(i);
                f.push(">");
            } else {
                f[i] = "*";
            }
            let filter = f.join(".");
            validate_filter(&filter).is_ok()
                && validate_topic(&filter).is_err()
                && filter_matches(&filter, &topic)
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(SmallTopic, u8, bool) -> bool);
    }
}

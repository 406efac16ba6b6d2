//! Small generators the properties share.

use super::*;

/// Uniform in `lo..=hi`.
pub(crate) fn range(g: &mut Gen, lo: u64, hi: u64) -> u64 {
    let span = hi - lo;
    if span == u64::MAX {
        u64::arbitrary(g)
    } else {
        lo + u64::arbitrary(g) % (span + 1)
    }
}

pub(crate) fn upto(g: &mut Gen, hi: usize) -> usize {
    range(g, 0, hi as u64) as usize
}

pub(crate) fn chance(g: &mut Gen, num: u64, den: u64) -> bool {
    range(g, 1, den) <= num
}

/// A `u64` of a random bit width, so that varints of every length turn up.
pub(crate) fn any_u64(g: &mut Gen) -> u64 {
    let bits = range(g, 0, 64);
    if bits == 0 {
        0
    } else {
        u64::arbitrary(g) >> (64 - bits)
    }
}

/// A length of at most `max`, biased towards small values and both ends.
pub(crate) fn len_upto(g: &mut Gen, max: usize) -> usize {
    match range(g, 0, 7) {
        0 => 0,
        1 => max,
        2 => upto(g, max),
        _ => upto(g, max.min(g.size())),
    }
}

/// Deterministic filler bytes from the generator (fast for large buffers).
pub(crate) fn noise(g: &mut Gen, n: usize) -> Vec<u8> {
    let mut s = u64::arbitrary(g) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(n);
    out
}

pub(crate) fn bytes_upto(g: &mut Gen, max: usize) -> Vec<u8> {
    let n = len_upto(g, max);
    noise(g, n)
}

/// Valid UTF-8 of at most `max` bytes, with multi-byte characters.
pub(crate) fn text_upto(g: &mut Gen, max: usize) -> String {
    let target = len_upto(g, max);
    let mut s = String::new();
    while s.len() < target {
        let c = char::arbitrary(g);
        if s.len() + c.len_utf8() > target {
            break;
        }
        s.push(c);
    }
    s
}

/// A payload: usually small, sometimes a few KiB.
pub(crate) fn payload(g: &mut Gen) -> Vec<u8> {
    let n = if chance(g, 1, 6) {
        upto(g, 3000)
    } else {
        upto(g, g.size())
    };
    noise(g, n)
}

pub(crate) const TOKENS: &[&str] = &["a", "b", "c", "foo", "bar", "x1", "*", ">", "", "a b", "é"];

/// A subject, topic or filter: often made of plausible tokens (valid or not),
/// sometimes arbitrary bytes of up to 256.
pub(crate) fn subject(g: &mut Gen) -> Vec<u8> {
    if chance(g, 1, 4) {
        return bytes_upto(g, frame::MAX_SUBJECT);
    }
    topic_text(g).into_bytes()
}

pub(crate) fn topic_text(g: &mut Gen) -> String {
    let levels = range(g, 1, 5);
    let mut parts = Vec::new();
    for _ in 0..levels {
        // Mostly tokens that are valid in topics, so that many frames get deep.
        let t = if chance(g, 3, 4) {
            *g.choose(&TOKENS[..6]).unwrap()
        } else {
            *g.choose(TOKENS).unwrap()
        };
        parts.push(t);
    }
    parts.join(".")
}

/// A pattern buffer larger than any payload the tests use, sliced instead of
/// generating megabytes per case.
pub(crate) fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut s: u32 = 0x1234_5678;
        (0..(2 << 20) + 4096)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect()
    })
}

pub(crate) fn pattern_slice(off: usize, len: usize) -> &'static [u8] {
    &pattern()[off % 4096..off % 4096 + len]
}

//! Reading records back, for checks and readable failure messages.

use super::*;

/// The 4-byte header of a record of `len` payload bytes, with a correct check byte.
pub(crate) fn header(len: u16, flags: u8) -> [u8; 4] {
    let [a, b] = len.to_be_bytes();
    [a, b, flags, header_check([a, b, flags])]
}

/// The length of the first complete record in `wire`.
pub(crate) fn first_record_len(wire: &[u8]) -> usize {
    record::parse(wire, record::MAX_PAYLOAD, false)
        .expect("valid record")
        .expect("complete record")
        .total_len
}

/// A readable summary of a connection's output: the preface, then each record's
/// frames as `type:len`, for failure messages.
pub(crate) fn describe(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = wire;
    if rest.starts_with(&preface::MAGIC) && rest.len() >= preface::LEN {
        out.push_str("preface ");
        rest = &rest[preface::LEN..];
    }
    while !rest.is_empty() {
        let Ok(Some(info)) = record::parse(rest, record::MAX_PAYLOAD, false) else {
            out.push_str(&format!("<{} unparsed bytes>", rest.len()));
            break;
        };
        out.push('[');
        let mut p = &rest[info.payload_start..][..info.payload_len];
        while let Ok((t, len, h)) = frame::decode_header(p) {
            if h + len > p.len() {
                break;
            }
            let f = Frame::decode(t, &p[h..h + len]);
            match f {
                Ok(Frame::Close { code, reason, .. }) => {
                    out.push_str(&format!(" CLOSE({code:?} {reason:?})"))
                }
                _ => out.push_str(&format!(" {t:#04x}:{len}")),
            }
            p = &p[h + len..];
        }
        out.push_str(" ] ");
        rest = &rest[info.total_len..];
    }
    out
}

#[cfg(feature = "alloc")]
pub(crate) fn message_events(events: &[Got]) -> usize {
    events
        .iter()
        .filter(|g| matches!(g.ev, Event::Message { .. }))
        .count()
}

//! `wire_decode`: the record, frame, parameter and preface decoders on any bytes.
//!
//! Input: the first byte picks the view (record stream or bare frames), the rest is
//! decoded. Checks: no panic; a record that parses is sealed again to the same
//! bytes; every frame that decodes encodes to exactly the bytes it came from (varints
//! are canonical) with `encoded_len` bytes, and decodes again to the same frame; a
//! parameter list that decodes encodes canonically and decodes to the same values.

use weft_core::wire::codec::Writer;
use weft_core::wire::frame::{self, Frame};
use weft_core::wire::params::Params;
use weft_core::wire::preface::Preface;
use weft_core::wire::record;

/// The target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = Preface::parse(rest).map(|p| p.map(|p| p.negotiate(&Preface::new(1, 1))));
    if mode & 1 == 0 {
        records(rest, mode & 2 != 0, usize::from(mode >> 2) * 256 + 1024);
    } else {
        frames(rest);
    }
}

fn records(mut buf: &[u8], require_integrity: bool, max_payload: usize) {
    for _ in 0..1000 {
        match record::parse(buf, max_payload, require_integrity) {
            Ok(Some(info)) => {
                assert!(info.payload_len >= 1 && info.payload_len <= max_payload);
                assert!(info.total_len <= buf.len());
                let rec = &buf[..info.total_len];
                let payload = &rec[info.payload_start..info.payload_start + info.payload_len];
                // Sealing the payload again gives the record back.
                let integrity = info.total_len == record::overhead(true) + info.payload_len;
                let mut again = vec![0u8; info.total_len];
                again[record::HEADER_LEN..record::HEADER_LEN + payload.len()]
                    .copy_from_slice(payload);
                let n = record::seal(&mut again, payload.len(), integrity).expect("seal");
                assert_eq!(n, info.total_len);
                assert_eq!(&again[..], rec, "record re-seals differently");
                frames(payload);
                buf = &buf[info.total_len..];
            }
            Ok(None) => {
                // Incomplete: every prefix of it is incomplete too, never an error.
                return;
            }
            Err(_) => return,
        }
    }
}

fn frames(mut buf: &[u8]) {
    while !buf.is_empty() {
        let Ok((t, len, hdr)) = frame::decode_header(buf) else {
            return;
        };
        let Some(body) = buf.get(hdr..hdr.saturating_add(len)) else {
            return;
        };
        if let Ok(f) = Frame::decode(t, body) {
            check_frame(&f, &buf[..hdr + len]);
        }
        buf = &buf[hdr + len..];
    }
}

fn check_frame(f: &Frame<'_>, wire: &[u8]) {
    assert_eq!(f.ty(), wire[0], "type of {f:?}");
    let n = f.encoded_len();
    let mut out = vec![0u8; n + 8];
    // Too small a buffer is refused, never overrun.
    assert_eq!(
        f.encode(&mut out[..n - 1]),
        None,
        "encode into short buffer"
    );
    let m = f.encode(&mut out).expect("encode");
    assert_eq!(m, n, "encoded_len of {f:?}");
    assert_eq!(&out[..m], wire, "re-encoding {f:?}");
    let (t, len, hdr) = frame::decode_header(&out[..m]).expect("header again");
    assert_eq!(hdr + len, m);
    let g = Frame::decode(t, &out[hdr..m]).expect("decode again");
    assert_eq!(&g, f, "round trip");
    match *f {
        Frame::ClientHello { params, .. } | Frame::ServerHello { params, .. } => {
            check_params(params)
        }
        _ => {}
    }
}

fn check_params(bytes: &[u8]) {
    let Ok(p) = Params::decode(bytes) else {
        return;
    };
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    let n = w.finish().expect("parameters fit in 512 bytes");
    assert_eq!(n, p.encoded_len());
    assert_eq!(Params::decode(&buf[..n]), Ok(p), "parameters round trip");
    assert!(
        n <= bytes.len() || bytes.is_empty(),
        "canonical form is no longer"
    );
}

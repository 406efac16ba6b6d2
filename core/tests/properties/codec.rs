//! The codecs on their own, with no connection: frames, records, parameters,
//! prefaces and varints (properties 1, 2, 3, 6 and 8, or their codec halves).

use super::*;

// ===================================================================================
// 1. Frame encode/decode round trip
// ===================================================================================

fn prop_frame_round_trip(m: FrameModel) -> TestResult {
    verdict((|| {
        let f = m.as_frame();
        let n = f.encoded_len();
        let mut buf = vec![0xa5u8; n + 8];
        let written = f.encode(&mut buf);
        ensure!(
            written == Some(n),
            "encode wrote {written:?}, encoded_len {n}"
        );
        ensure!(
            f.encode(&mut vec![0u8; n - 1]).is_none(),
            "encode into {} bytes claims success",
            n - 1
        );
        let (t, body_len, hdr) =
            frame::decode_header(&buf[..n]).map_err(|e| format!("decode_header: {e:?}"))?;
        ensure!(t == f.ty(), "type {t:#x} != {:#x}", f.ty());
        ensure!(hdr + body_len == n, "header {hdr} + body {body_len} != {n}");
        ensure!(body_len == f.body_len(), "body_len mismatch");
        let back = Frame::decode(t, &buf[hdr..n]);
        ensure!(back == Ok(f), "decoded {back:?}");
        Ok(())
    })())
}

#[test]
fn p1_frame_encode_decode_round_trip() {
    check(
        "p1_frame_round_trip",
        500,
        prop_frame_round_trip as fn(FrameModel) -> TestResult,
    );
}

// ===================================================================================
// 2. Decoders never panic (and accept only canonical encodings)
// ===================================================================================

/// A valid frame encoding with a few random mutations, or plain random bytes.
#[derive(Clone, Debug)]
struct Mangled {
    t: u8,
    body: Vec<u8>,
}

impl Arbitrary for Mangled {
    fn arbitrary(g: &mut Gen) -> Self {
        if chance(g, 1, 4) {
            return Mangled {
                t: u8::arbitrary(g),
                body: bytes_upto(g, 300),
            };
        }
        let m = FrameModel::arbitrary(g);
        let enc = m.encode();
        let (_, _, hdr) = frame::decode_header(&enc).expect("valid");
        let mut body = enc[hdr..].to_vec();
        let mut t = enc[0];
        for _ in 0..range(g, 0, 3) {
            match range(g, 0, 5) {
                0 if !body.is_empty() => {
                    let i = upto(g, body.len() - 1);
                    body[i] ^= 1 << range(g, 0, 7);
                }
                1 if !body.is_empty() => {
                    let i = upto(g, body.len() - 1);
                    body[i] = u8::arbitrary(g);
                }
                2 => {
                    let k = upto(g, body.len());
                    body.truncate(k);
                }
                3 => {
                    let i = upto(g, body.len());
                    body.insert(i, u8::arbitrary(g));
                }
                4 => t = u8::arbitrary(g),
                _ => {}
            }
        }
        Mangled { t, body }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let t = self.t;
        Box::new(self.body.shrink().map(move |body| Mangled { t, body }))
    }
}

fn prop_frame_decode_total(m: Mangled) -> TestResult {
    verdict((|| {
        let Mangled { t, body } = &m;
        match Frame::decode(*t, body) {
            Ok(f) => {
                // Whatever decodes re-encodes to exactly the same bytes: the decoder
                // accepts only what the encoder can produce.
                ensure!(f.ty() == *t, "type changed");
                ensure!(f.body_len() == body.len(), "body_len {}", f.body_len());
                let mut out = vec![0u8; f.encoded_len()];
                let n = f.encode(&mut out).ok_or("re-encode failed")?;
                let (_, _, hdr) = frame::decode_header(&out[..n]).map_err(|e| format!("{e:?}"))?;
                ensure!(
                    out[hdr..n] == body[..],
                    "re-encoding differs: {:?}",
                    &out[hdr..n]
                );
            }
            Err(code) => {
                ensure!(code.name().is_some(), "undocumented code {code:?}");
                let known = ALL_KINDS.contains(t);
                ensure!(
                    (code == ErrorCode::UNKNOWN_FRAME) != known,
                    "type {t:#x} gave {code:?}"
                );
            }
        }
        Ok(())
    })())
}

fn prop_decode_header_total(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        match frame::decode_header(&bytes) {
            Ok((t, len, hdr)) => {
                ensure!(
                    (2..=1 + varint::MAX_LEN).contains(&hdr),
                    "header length {hdr}"
                );
                ensure!(hdr <= bytes.len(), "header beyond input");
                ensure!(t == bytes[0], "type");
                ensure!(
                    varint::decode(&bytes[1..]) == Ok((len as u64, hdr - 1)),
                    "length"
                );
            }
            Err(FrameError::Incomplete) => {
                ensure!(
                    bytes.len() <= varint::MAX_LEN,
                    "incomplete on {} bytes",
                    bytes.len()
                );
            }
            Err(FrameError::Fatal(c)) => ensure!(c.name().is_some(), "undocumented {c:?}"),
        }
        Ok(())
    })())
}

/// Bytes that are often close to a record: a valid header or whole record, mutated.
#[derive(Clone, Debug)]
struct RecordInput {
    bytes: Vec<u8>,
    max: usize,
    require: bool,
}

impl Arbitrary for RecordInput {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut bytes = match range(g, 0, 2) {
            0 => bytes_upto(g, 300),
            1 => {
                let len = range(g, 0, 65_535) as u16;
                let mut v = header(len, range(g, 0, 3) as u8).to_vec();
                v.extend(bytes_upto(g, 300));
                v
            }
            _ => {
                let mut p = payload(g);
                if p.is_empty() {
                    p.push(0);
                }
                seal(&p, bool::arbitrary(g))
            }
        };
        if !bytes.is_empty() && chance(g, 1, 3) {
            let i = upto(g, bytes.len() - 1);
            bytes[i] ^= u8::arbitrary(g);
        }
        if chance(g, 1, 4) {
            let k = upto(g, bytes.len());
            bytes.truncate(k);
        }
        let max = match range(g, 0, 3) {
            0 => usize::arbitrary(g),
            1 => record::MAX_PAYLOAD,
            _ => upto(g, 70_000),
        };
        RecordInput {
            bytes,
            max,
            require: bool::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let (max, require) = (self.max, self.require);
        Box::new(self.bytes.shrink().map(move |bytes| RecordInput {
            bytes,
            max,
            require,
        }))
    }
}

fn prop_record_parse_total(r: RecordInput) -> TestResult {
    verdict((|| {
        match record::parse(&r.bytes, r.max, r.require) {
            Ok(Some(info)) => {
                ensure!(info.payload_start == record::HEADER_LEN, "payload start");
                ensure!(info.payload_len >= 1, "empty record accepted");
                ensure!(info.payload_len <= r.max, "payload above max");
                ensure!(info.total_len <= r.bytes.len(), "record beyond input");
                let trailer = info.total_len - record::HEADER_LEN - info.payload_len;
                ensure!(
                    trailer == 0 || trailer == record::TRAILER_LEN,
                    "trailer {trailer}"
                );
                ensure!(
                    !r.require || trailer == record::TRAILER_LEN,
                    "CRC not required"
                );
            }
            Ok(None) => ensure!(
                r.bytes.len() < record::HEADER_LEN + 65_535 + record::TRAILER_LEN,
                "incomplete with {} bytes",
                r.bytes.len()
            ),
            Err(c) => ensure!(c.name().is_some(), "undocumented {c:?}"),
        }
        Ok(())
    })())
}

fn prop_params_and_preface_total(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        if let Ok(p) = Params::decode(&bytes) {
            ensure!(p.validate().is_ok(), "decoded params fail validation");
            let mut buf = vec![0u8; p.encoded_len()];
            let mut w = weft_core::wire::codec::Writer::new(&mut buf);
            p.encode(&mut w);
            let n = w.finish().ok_or("params encode")?;
            ensure!(
                Params::decode(&buf[..n]) == Ok(p),
                "params do not round trip"
            );
        }
        match Preface::parse(&bytes) {
            None => ensure!(
                bytes.len() < preface::LEN,
                "None with {} bytes",
                bytes.len()
            ),
            Some(Ok(p)) => ensure!(p.magic == preface::MAGIC, "bad magic accepted"),
            Some(Err(_)) => ensure!(bytes[..4] != preface::MAGIC, "good magic refused"),
        }
        Ok(())
    })())
}

/// Parameter lists: ascending (id, value) pairs of small ids, sometimes shuffled.
#[derive(Clone, Debug)]
struct ParamBytes(Vec<u8>);

impl Arbitrary for ParamBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut ids: Vec<u64> = (0..range(g, 0, 8)).map(|_| range(g, 0, 16)).collect();
        ids.sort_unstable();
        if chance(g, 1, 5) {
            ids.reverse();
        }
        let mut out = Vec::new();
        for id in ids {
            let v = if chance(g, 1, 2) {
                range(g, 0, 70_000)
            } else {
                any_u64(g)
            };
            let mut b = [0u8; varint::MAX_LEN];
            let n = varint::encode(id, &mut b).unwrap();
            out.extend_from_slice(&b[..n]);
            let n = varint::encode(v, &mut b).unwrap();
            out.extend_from_slice(&b[..n]);
        }
        if chance(g, 1, 4) {
            out.extend(bytes_upto(g, 8));
        }
        if chance(g, 1, 4) {
            out = [b"WEFT".as_slice(), &out].concat();
        }
        ParamBytes(out)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(ParamBytes))
    }
}

fn prop_params_structured(p: ParamBytes) -> TestResult {
    prop_params_and_preface_total(p.0)
}

#[test]
fn p2_frame_decode_never_panics() {
    check(
        "p2_frame_decode",
        500,
        prop_frame_decode_total as fn(Mangled) -> TestResult,
    );
}

#[test]
fn p2_decode_header_never_panics() {
    check(
        "p2_decode_header",
        500,
        prop_decode_header_total as fn(Vec<u8>) -> TestResult,
    );
}

#[test]
fn p2_record_parse_never_panics() {
    check(
        "p2_record_parse",
        500,
        prop_record_parse_total as fn(RecordInput) -> TestResult,
    );
}

#[test]
fn p2_params_and_preface_never_panic() {
    check(
        "p2_params_preface_random",
        300,
        prop_params_and_preface_total as fn(Vec<u8>) -> TestResult,
    );
    check(
        "p2_params_preface_structured",
        300,
        prop_params_structured as fn(ParamBytes) -> TestResult,
    );
}

// ===================================================================================
// 3. A strict prefix of a record is incomplete
// ===================================================================================

#[derive(Clone, Debug)]
struct RecordModel {
    frames: Vec<FrameModel>,
    integrity: bool,
}

impl RecordModel {
    fn payload(&self) -> Vec<u8> {
        self.frames.iter().flat_map(FrameModel::encode).collect()
    }
}

impl Arbitrary for RecordModel {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 1, 4);
        RecordModel {
            frames: (0..n).map(|_| FrameModel::arbitrary(g)).collect(),
            integrity: bool::arbitrary(g),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let integrity = self.integrity;
        Box::new(
            self.frames
                .shrink()
                .filter(|f| !f.is_empty())
                .map(move |frames| RecordModel { frames, integrity }),
        )
    }
}

fn prop_record_prefix(m: RecordModel) -> TestResult {
    verdict((|| {
        let p = m.payload();
        let rec = seal(&p, m.integrity);
        let requires: &[bool] = if m.integrity {
            &[false, true]
        } else {
            &[false]
        };
        for &req in requires {
            for max in [p.len(), record::MAX_PAYLOAD] {
                for k in 0..rec.len() {
                    let r = record::parse(&rec[..k], max, req);
                    ensure!(
                        r == Ok(None),
                        "prefix {k}/{} (max {max}, req {req}): {r:?}",
                        rec.len()
                    );
                }
                let info = record::parse(&rec, max, req).map_err(|e| format!("{e:?}"))?;
                let info = info.ok_or("whole record incomplete")?;
                ensure!(info.total_len == rec.len(), "total_len {}", info.total_len);
                ensure!(
                    rec[info.payload_start..][..info.payload_len] == p[..],
                    "payload differs"
                );
            }
        }
        Ok(())
    })())
}

#[test]
fn p3_record_prefix_is_incomplete() {
    check(
        "p3_record_prefix",
        300,
        prop_record_prefix as fn(RecordModel) -> TestResult,
    );
}

// ===================================================================================
// 6. Oversize lengths are refused before allocation (the record parser)
// ===================================================================================

fn prop_oversize_record_header(max: u16, len: u16, flags: bool, require: bool) -> TestResult {
    verdict((|| {
        let max = usize::from(max.min(65_534));
        let len = (max as u64 + 1 + u64::from(len) % (65_535 - max as u64)) as u16;
        let h = header(len, u8::from(flags));
        for k in 0..4 {
            ensure!(
                record::parse(&h[..k], max, require) == Ok(None),
                "prefix {k}"
            );
        }
        let r = record::parse(&h, max, require);
        ensure!(
            r == Err(ErrorCode::FRAME_TOO_LARGE),
            "len {len} > max {max}: {r:?}"
        );
        Ok(())
    })())
}

#[test]
fn p6_oversize_record_header_refused_from_four_bytes() {
    check(
        "p6_record_header",
        500,
        prop_oversize_record_header as fn(u16, u16, bool, bool) -> TestResult,
    );
}

// ===================================================================================
// 8. Varints
// ===================================================================================

#[derive(Clone, Debug)]
struct AnyU64(u64);

impl Arbitrary for AnyU64 {
    fn arbitrary(g: &mut Gen) -> Self {
        AnyU64(any_u64(g))
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(AnyU64))
    }
}

fn prop_varint(v: AnyU64, pad: u8, tail: Vec<u8>) -> TestResult {
    verdict((|| {
        let v = v.0;
        let mut buf = [0u8; varint::MAX_LEN];
        let n = varint::encode(v, &mut buf).ok_or("encode")?;
        ensure!(n == varint::len(v), "len");
        let enc = &buf[..n];
        ensure!(varint::decode(enc) == Ok((v, n)), "round trip");
        let mut with_tail = enc.to_vec();
        with_tail.extend_from_slice(&tail);
        ensure!(varint::decode(&with_tail) == Ok((v, n)), "trailing bytes");
        for k in 0..n {
            ensure!(
                varint::decode(&enc[..k]) == Err(VarintError::Incomplete),
                "prefix {k}"
            );
        }
        // Padded (non-canonical) forms: set the continuation bit and add p - 1
        // bytes of 0x80 then a 0x00; every length up to and past MAX_LEN.
        let p = 1 + usize::from(pad) % 12;
        let mut padded = enc.to_vec();
        *padded.last_mut().unwrap() |= 0x80;
        padded.extend(std::iter::repeat_n(0x80, p - 1));
        padded.push(0x00);
        let r = varint::decode(&padded);
        ensure!(
            r == Err(VarintError::Invalid),
            "padded by {p}: {padded:02x?} gave {r:?}"
        );
        Ok(())
    })())
}

/// Whatever decodes is canonical: re-encoding reproduces the consumed bytes.
fn prop_varint_canonical(bytes: Vec<u8>) -> TestResult {
    verdict((|| {
        match varint::decode(&bytes) {
            Ok((v, n)) => {
                let mut buf = [0u8; varint::MAX_LEN];
                let m = varint::encode(v, &mut buf).ok_or("encode")?;
                ensure!(
                    buf[..m] == bytes[..n],
                    "accepted non-canonical {:02x?}",
                    &bytes[..n]
                );
            }
            Err(VarintError::Incomplete) => {
                ensure!(
                    bytes.len() < varint::MAX_LEN,
                    "incomplete at {} bytes",
                    bytes.len()
                );
                ensure!(
                    bytes.iter().all(|b| b & 0x80 != 0),
                    "incomplete with a last byte"
                );
            }
            Err(VarintError::Invalid) => {}
        }
        Ok(())
    })())
}

/// Bytes shaped like varints: continuation bits set, then a final byte.
#[derive(Clone, Debug)]
struct VarintLike(Vec<u8>);

impl Arbitrary for VarintLike {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = range(g, 0, 12) as usize;
        let mut v: Vec<u8> = (0..n).map(|_| u8::arbitrary(g) | 0x80).collect();
        if chance(g, 3, 4) {
            v.push(if chance(g, 1, 2) {
                range(g, 0, 2) as u8
            } else {
                u8::arbitrary(g) & 0x7f
            });
        }
        VarintLike(v)
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(VarintLike))
    }
}

fn prop_varint_like(v: VarintLike) -> TestResult {
    prop_varint_canonical(v.0)
}

#[test]
fn p8_varint_round_trip_and_canonical() {
    check(
        "p8_varint",
        500,
        prop_varint as fn(AnyU64, u8, Vec<u8>) -> TestResult,
    );
    check(
        "p8_varint_canonical_random",
        500,
        prop_varint_canonical as fn(Vec<u8>) -> TestResult,
    );
    check(
        "p8_varint_canonical_shaped",
        500,
        prop_varint_like as fn(VarintLike) -> TestResult,
    );
}

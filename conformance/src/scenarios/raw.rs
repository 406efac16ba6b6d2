//! A scripted peer on a plain `std::net::TcpStream`: it writes bytes built straight
//! from the spec with the core's wire types and reads the other side's replies with
//! them. Reads time out (3 s) and every read loop is bounded. It is a client
//! ([`Raw::connect`]) or the server of one client connection ([`Raw::accept`]),
//! which then sees exactly what the client wrote, when it wrote it.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;
use weft_core::wire::codec::Writer;
use weft_core::wire::frame::{self, ty, Frame};
use weft_core::wire::params::{Params, CAPS_V1};
use weft_core::wire::preface::MAGIC;
use weft_core::wire::record;
use weft_core::ErrorCode;

/// Frames read before a reader gives up looking for the one it wants.
const MAX_FRAMES: usize = 200_000;

/// The raw peer.
#[derive(Debug)]
pub struct Raw {
    sock: TcpStream,
    rx: Vec<u8>,
    preface: Option<[u8; 8]>,
    frames: VecDeque<(u8, Vec<u8>)>,
    eof: bool,
    /// The end came as a reset, not as the peer's end of stream.
    reset: bool,
}

/// The 8-byte preface of a sender speaking `min..=max`.
pub fn preface(min: u8, max: u8) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&[min, max, 0, 0]);
    p
}

/// One frame's whole encoding.
pub fn frame(f: &Frame<'_>) -> Vec<u8> {
    let mut out = vec![0u8; f.encoded_len()];
    let n = f.encode(&mut out).expect("frame fits its encoded length");
    out.truncate(n);
    out
}

/// A record with the CRC trailer around `payload` (whole frames).
pub fn record(payload: &[u8]) -> Vec<u8> {
    sealed(payload, true)
}

/// A record without the CRC trailer.
pub fn record_plain(payload: &[u8]) -> Vec<u8> {
    sealed(payload, false)
}

fn sealed(payload: &[u8], integrity: bool) -> Vec<u8> {
    let mut out = vec![0u8; payload.len() + record::overhead(integrity)];
    out[record::HEADER_LEN..record::HEADER_LEN + payload.len()].copy_from_slice(payload);
    let n = record::seal(&mut out, payload.len(), integrity).expect("record payload 1..=65535");
    out.truncate(n);
    out
}

/// The encoded parameter list of `p`.
pub fn params(p: &Params) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = Writer::new(&mut buf);
    p.encode(&mut w);
    let n = w.finish().expect("params fit 512 bytes");
    buf.truncate(n);
    buf
}

/// The client parameters the raw peer announces: pub/sub and streams, defaults
/// otherwise.
pub fn client_params() -> Params {
    Params {
        capabilities: CAPS_V1,
        ..Params::default()
    }
}

/// A CLIENT_HELLO frame.
pub fn client_hello(p: &Params, scheme: u8, key_id: &[u8]) -> Vec<u8> {
    let ps = params(p);
    frame(&Frame::ClientHello {
        nonce: [7u8; frame::NONCE_LEN],
        params: &ps,
        auth_scheme: scheme,
        key_id,
        token: b"",
    })
}

/// Frames written back to back (to put in one record).
pub fn frames(fs: &[Frame<'_>]) -> Vec<u8> {
    fs.iter().flat_map(frame).collect()
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Result<Raw, String> {
        let sock = TcpStream::connect(addr).map_err(|e| format!("raw connect: {e}"))?;
        Raw::with(sock)
    }

    /// Takes the connection a client made to `listener` (on 127.0.0.1). Every
    /// [`Runtime::connect`](crate::Runtime::connect) returns once the TCP
    /// connection is established, so it is waiting: this never blocks (a client
    /// that had not connected yet is an error, not a hang).
    pub fn accept(listener: &TcpListener) -> Result<Raw, String> {
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("raw listener: {e}"))?;
        let (sock, _) = listener
            .accept()
            .map_err(|e| format!("raw accept (no connection from the client): {e}"))?;
        sock.set_nonblocking(false)
            .map_err(|e| format!("raw socket options: {e}"))?;
        Raw::with(sock)
    }

    fn with(sock: TcpStream) -> Result<Raw, String> {
        sock.set_read_timeout(Some(Duration::from_secs(3)))
            .and_then(|()| sock.set_write_timeout(Some(Duration::from_secs(3))))
            .and_then(|()| sock.set_nodelay(true))
            .map_err(|e| format!("raw socket options: {e}"))?;
        Ok(Raw {
            sock,
            rx: Vec::new(),
            preface: None,
            frames: VecDeque::new(),
            eof: false,
            reset: false,
        })
    }

    /// Writes `bytes`; an error is returned (the peer may have closed already).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sock
            .write_all(bytes)
            .map_err(|e| format!("raw write: {e}"))
    }

    /// Writes `bytes` and reports the socket's own error: for a scenario that
    /// tells a reset or a closed peer from a peer that stopped reading.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// A second handle on the socket (same options), to write from another thread
    /// while this one reads.
    pub fn writer(&self) -> Result<TcpStream, String> {
        self.sock
            .try_clone()
            .map_err(|e| format!("raw socket clone: {e}"))
    }

    /// Reads, discarding, until the peer's end of stream; a reset (or running out
    /// of time) instead is an error. Frames already parsed are discarded too.
    pub fn expect_clean_eof(&mut self) -> Result<(), String> {
        self.frames.clear();
        for _ in 0..100_000 {
            if !self.fill()? {
                break;
            }
        }
        if self.reset {
            return Err("the connection was reset instead of ending cleanly".into());
        }
        if !self.eof {
            return Err("no end of stream".into());
        }
        Ok(())
    }

    /// Writes `bytes`, ignoring a peer that already closed (its CLOSE is still read).
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.sock.write_all(bytes);
    }

    /// Sends a frame in its own CRC record.
    pub fn send_frame(&mut self, f: &Frame<'_>) -> Result<(), String> {
        self.send(&record(&frame(f)))
    }

    /// Preface and CLIENT_HELLO (no authentication, pub/sub and streams), then
    /// waits for the SERVER_HELLO: the connection is established on return.
    pub fn handshake(&mut self) -> Result<(), String> {
        self.handshake_with(&client_params())
    }

    /// [`handshake`](Self::handshake) announcing `p`.
    pub fn handshake_with(&mut self, p: &Params) -> Result<(), String> {
        let mut out = preface(1, 1);
        out.extend(record(&client_hello(p, 0, b"")));
        self.send(&out)?;
        self.wait_for(|t, _| t == ty::SERVER_HELLO)
            .map(|_| ())
            .map_err(|e| format!("raw handshake: {e}"))
    }

    /// Server side: reads the client's preface and its CLIENT_HELLO (the first
    /// frame), and returns the hello's body. Nothing is sent.
    pub fn read_client_hello(&mut self) -> Result<Vec<u8>, String> {
        let p = self.peer_preface()?;
        if p[..4] != MAGIC[..] {
            return Err(format!("client preface {p:?}"));
        }
        match self.read_frame()? {
            Some((t, body)) if t == ty::CLIENT_HELLO => Ok(body),
            Some((t, _)) => Err(format!("client's first frame has type {t:#04x}")),
            None => Err("EOF before the CLIENT_HELLO".into()),
        }
    }

    /// Server side: sends the preface and a SERVER_HELLO (no authentication)
    /// announcing `p`; the client is connected once it reads them.
    pub fn send_server_hello(&mut self, p: &Params) -> Result<(), String> {
        let ps = params(p);
        let mut out = preface(1, 1);
        out.extend(record(&frame(&Frame::ServerHello {
            nonce: [9u8; frame::NONCE_LEN],
            params: &ps,
            auth_scheme: 0,
            proof: b"",
            token: b"",
        })));
        self.send(&out)
    }

    /// The peer's preface, once read.
    pub fn peer_preface(&mut self) -> Result<[u8; 8], String> {
        for _ in 0..100 {
            if let Some(p) = self.preface {
                return Ok(p);
            }
            if !self.fill()? {
                return Err("EOF before the preface".into());
            }
            self.take_preface();
        }
        Err("no preface".into())
    }

    fn take_preface(&mut self) {
        if self.preface.is_none() && self.rx.len() >= 8 {
            let mut p = [0u8; 8];
            p.copy_from_slice(&self.rx[..8]);
            self.rx.drain(..8);
            self.preface = Some(p);
        }
    }

    /// Reads more bytes; false at EOF.
    fn fill(&mut self) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        let mut buf = [0u8; 64 << 10];
        match self.sock.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.rx.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            // A reset after the peer's CLOSE counts as the end.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                self.eof = true;
                self.reset = true;
                Ok(false)
            }
            Err(e) => Err(format!("raw read: {e}")),
        }
    }

    /// The next frame from the peer (type, body); `None` at EOF.
    pub fn read_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, String> {
        for _ in 0..10_000 {
            if let Some(f) = self.frames.pop_front() {
                return Ok(Some(f));
            }
            self.take_preface();
            if self.preface.is_some() {
                match record::parse(&self.rx, record::MAX_PAYLOAD, false) {
                    Ok(Some(info)) => {
                        let payload = self.rx
                            [info.payload_start..info.payload_start + info.payload_len]
                            .to_vec();
                        self.rx.drain(..info.total_len);
                        let mut pos = 0;
                        while pos < payload.len() {
                            let (t, len, hdr) = frame::decode_header(&payload[pos..])
                                .map_err(|e| format!("peer sent a bad frame header: {e:?}"))?;
                            let end = pos + hdr + len;
                            if end > payload.len() {
                                return Err("peer frame crosses its record".into());
                            }
                            self.frames.push_back((t, payload[pos + hdr..end].to_vec()));
                            pos = end;
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(c) => return Err(format!("peer sent a bad record: {c:?}")),
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
        Err("no complete frame".into())
    }

    /// Reads frames until one satisfies `want` (returned); a CLOSE or EOF first is
    /// an error.
    pub fn wait_for(
        &mut self,
        mut want: impl FnMut(u8, &[u8]) -> bool,
    ) -> Result<(u8, Vec<u8>), String> {
        for _ in 0..MAX_FRAMES {
            let Some((t, body)) = self.read_frame()? else {
                return Err("EOF".into());
            };
            if want(t, &body) {
                return Ok((t, body));
            }
            if t == ty::CLOSE {
                return Err(format!("peer closed: {:?}", close_code(&body)));
            }
        }
        Err("frame not seen".into())
    }

    /// Reads until the peer's CLOSE and returns its code.
    pub fn expect_close(&mut self) -> Result<ErrorCode, String> {
        for _ in 0..MAX_FRAMES {
            match self.read_frame()? {
                None => return Err("EOF without a CLOSE".into()),
                Some((t, body)) if t == ty::CLOSE => {
                    return close_code(&body).ok_or_else(|| "malformed CLOSE".to_string())
                }
                Some(_) => {}
            }
        }
        Err("no CLOSE".into())
    }

    /// Reads until a CLOSE carrying `want` (other CLOSEs, e.g. a graceful one first,
    /// are skipped); fails at EOF.
    pub fn expect_close_code(&mut self, want: ErrorCode) -> Result<(), String> {
        let mut seen = Vec::new();
        for _ in 0..16 {
            match self.expect_close() {
                Ok(c) if c == want => return Ok(()),
                Ok(c) => seen.push(c),
                Err(e) => return Err(format!("expected CLOSE({want:?}), saw {seen:?} then {e}")),
            }
        }
        Err(format!("expected CLOSE({want:?}), saw {seen:?}"))
    }
}

/// The code of a CLOSE frame's body.
pub fn close_code(body: &[u8]) -> Option<ErrorCode> {
    match Frame::decode(ty::CLOSE, body) {
        Ok(Frame::Close { code, .. }) => Some(code),
        _ => None,
    }
}

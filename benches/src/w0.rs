//! Workload W0, "core alone, no I/O", and the same-run baselines ("limits").
//!
//! W0: a client and a server [`Connection`] in memory on a virtual clock (one
//! constant [`Instant`]; the protocol has no clock of its own). The client sends
//! one-way messages with `send_message`; its bytes go through `poll_transmit` into a
//! reusable 256 KiB buffer and into the server's `handle_input`; the server drains
//! `poll_event` and reads each payload with `data(id)`, adding its first byte to a
//! checksum so the read cannot be optimised away. The sender is kept ahead but
//! bounded: it sends until the send queue answers `Blocked`, then one buffer is
//! transmitted and delivered, and the next step refills the queue.
//!
//! Limits: memcpy of a 1 MiB buffer, and CRC-32C over a 64 KiB block with
//! [`weft_core::integrity::crc32c`] (hardware where available) and
//! [`weft_core::integrity::crc32c_portable`].

use crate::measure::{Bench, Work};
use std::hint::black_box;
use weft_core::conn::{Connection, Event};
use weft_core::{Config, Error, Instant, Priority, Role};

/// Size of the transmit buffer: large, so many records go per call.
pub const TRANSMIT_BUF: usize = 256 << 10;
/// Message sizes of W0.
pub const SIZES: [usize; 4] = [64, 1 << 10, 64 << 10, 1 << 20];
/// Size of the memcpy baseline's buffer.
pub const MEMCPY_LEN: usize = 1 << 20;
/// Size of the CRC baselines' block.
pub const CRC_BLOCK: usize = 64 << 10;

/// What a benchmark measures, for naming its rows and computing ratios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// W0: one-way messages of `size` bytes, CRC on or off.
    CoreOneWay {
        /// Payload size in bytes.
        size: usize,
        /// Whether the records carry CRC-32C.
        integrity: bool,
    },
    /// The memcpy limit.
    Memcpy,
    /// The CRC-32C limit: `weft_core::integrity::crc32c` (`hw`) or the portable path.
    Crc32c {
        /// True for `crc32c` (hardware where available), false for `crc32c_portable`.
        hw: bool,
    },
}

/// A benchmark of the catalogue, not yet built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Unique name, matched by filters (e.g. `w0/64B/crc=on`, `limit/memcpy`).
    pub name: String,
    /// The workload column of the report (e.g. `W0 1-way 64B`, `limit`).
    pub workload: String,
    /// The system column (e.g. `weft-core crc=on`, `memcpy`, `crc32c-hw`).
    pub system: String,
    /// What it measures.
    pub kind: Kind,
}

impl Spec {
    /// Builds the benchmark (for W0 this creates the connections and completes the
    /// handshake).
    pub fn build(&self) -> Box<dyn Bench> {
        match self.kind {
            Kind::CoreOneWay { size, integrity } => {
                Box::new(CoreOneWay::new(self.name.clone(), size, integrity))
            }
            Kind::Memcpy => Box::new(Memcpy::new(self.name.clone())),
            Kind::Crc32c { hw } => Box::new(Crc::new(self.name.clone(), hw)),
        }
    }
}

/// A size for names: `64B`, `1KiB`, `64KiB`, `1MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{}MiB", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{}KiB", size >> 10)
    } else {
        format!("{size}B")
    }
}

/// True when `crc32c` runs on CRC instructions on this machine (SSE4.2 on x86_64,
/// the ARMv8 CRC extension on aarch64), as the `crc32c` crate detects at run time.
pub fn crc_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse4.2")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("crc")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The system name of the `crc32c` limit: `crc32c-hw` when the hardware path is
/// available, `crc32c-auto(sw)` when `crc32c` falls back to software.
pub fn crc_hw_system() -> &'static str {
    if crc_hardware() {
        "crc32c-hw"
    } else {
        "crc32c-auto(sw)"
    }
}

/// Every benchmark, limits first, in run order.
pub fn catalog() -> Vec<Spec> {
    let mut v = vec![
        Spec {
            name: "limit/memcpy".into(),
            workload: "limit".into(),
            system: "memcpy".into(),
            kind: Kind::Memcpy,
        },
        Spec {
            name: "limit/crc32c-hw".into(),
            workload: "limit".into(),
            system: crc_hw_system().into(),
            kind: Kind::Crc32c { hw: true },
        },
        Spec {
            name: "limit/crc32c-portable".into(),
            workload: "limit".into(),
            system: "crc32c-portable".into(),
            kind: Kind::Crc32c { hw: false },
        },
    ];
    for size in SIZES {
        for integrity in [true, false] {
            let crc = if integrity { "on" } else { "off" };
            v.push(Spec {
                name: format!("w0/{}/crc={crc}", size_label(size)),
                workload: format!("W0 1-way {}", size_label(size)),
                system: format!("weft-core crc={crc}"),
                kind: Kind::CoreOneWay { size, integrity },
            });
        }
    }
    v
}

/// W0: one-way messages from a client to a server connection, in memory.
pub struct CoreOneWay {
    name: String,
    now: Instant,
    client: Connection,
    server: Connection,
    payload: Vec<u8>,
    buf: Vec<u8>,
    checksum: u64,
}

impl CoreOneWay {
    /// Creates the two connections (CRC negotiated on or off) and completes the
    /// handshake. Panics if the handshake does not complete or negotiates
    /// something else.
    pub fn new(name: String, size: usize, integrity: bool) -> Self {
        let now = Instant::ZERO;
        let mut config = Config::default();
        config.params.integrity = integrity;
        let client = Connection::new(Role::Client, config.clone(), now, [1; 32]);
        let server = Connection::new(Role::Server, config, now, [2; 32]);
        let payload = (0..size).map(|i| (i % 251) as u8 + 1).collect();
        let mut b = CoreOneWay {
            name,
            now,
            client,
            server,
            payload,
            buf: vec![0u8; TRANSMIT_BUF],
            checksum: 0,
        };
        for _ in 0..16 {
            if b.client.is_established() && b.server.is_established() {
                break;
            }
            b.pump_client();
            b.pump_server();
        }
        assert!(
            b.client.is_established() && b.server.is_established(),
            "{}: handshake did not complete",
            b.name
        );
        let neg = b.server.negotiated().expect("established");
        assert_eq!(
            neg.integrity, integrity,
            "{}: integrity negotiation",
            b.name
        );
        b
    }

    /// One `poll_transmit` from the client, fed to the server and delivered.
    fn pump_client(&mut self) -> Work {
        let n = self.client.poll_transmit(self.now, &mut self.buf);
        let mut work = Work::default();
        let mut off = 0;
        while off < n {
            let took = self.server.handle_input(self.now, &self.buf[off..n]);
            off += took;
            let got = drain_server(&mut self.server, &mut self.checksum);
            assert!(
                took > 0 || got.items > 0,
                "{}: server took no input and produced no event",
                self.name
            );
            work += got;
        }
        work += drain_server(&mut self.server, &mut self.checksum);
        while self.client.poll_event().is_some() {}
        work
    }

    /// Whatever the server has to send (the handshake; nothing in steady state).
    fn pump_server(&mut self) {
        loop {
            let n = self.server.poll_transmit(self.now, &mut self.buf);
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                off += self.client.handle_input(self.now, &self.buf[off..n]);
                while self.client.poll_event().is_some() {}
            }
        }
        while self.server.poll_event().is_some() {}
    }
}

/// Drains the server's events, reading every message's payload.
fn drain_server(server: &mut Connection, checksum: &mut u64) -> Work {
    let mut work = Work::default();
    while let Some(ev) = server.poll_event() {
        if let Event::Message { data } = ev {
            let d = server.data(data).expect("data of the current event");
            *checksum = checksum.wrapping_add(u64::from(d.payload.first().copied().unwrap_or(0)));
            work.items += 1;
            work.bytes += d.payload.len() as u64;
        }
    }
    work
}

impl Bench for CoreOneWay {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self) -> Work {
        // Keep the sender ahead but bounded: fill the send queue until it blocks.
        loop {
            match self.client.send_message(&self.payload, Priority::Normal) {
                Ok(()) => {}
                Err(Error::Blocked) => break,
                Err(e) => panic!("{}: send_message: {e}", self.name),
            }
        }
        let work = self.pump_client();
        self.pump_server();
        assert!(
            !self.server.is_closed() && !self.client.is_closed(),
            "{}: connection closed: {} / {}",
            self.name,
            self.client.close_reason(),
            self.server.close_reason()
        );
        black_box(self.checksum);
        work
    }
}

/// The memcpy limit: copies a 1 MiB buffer per step.
pub struct Memcpy {
    name: String,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Memcpy {
    /// Allocates and touches both buffers.
    pub fn new(name: String) -> Self {
        Memcpy {
            name,
            src: (0..MEMCPY_LEN).map(|i| (i % 253) as u8).collect(),
            dst: vec![1u8; MEMCPY_LEN],
        }
    }
}

impl Bench for Memcpy {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self) -> Work {
        self.dst.copy_from_slice(black_box(&self.src));
        black_box(&mut self.dst);
        Work {
            items: 1,
            bytes: MEMCPY_LEN as u64,
        }
    }
}

/// The CRC-32C limit: four checksums of a 64 KiB block per step.
pub struct Crc {
    name: String,
    hw: bool,
    block: Vec<u8>,
}

impl Crc {
    /// `hw`: `crc32c` (hardware where available); otherwise `crc32c_portable`.
    pub fn new(name: String, hw: bool) -> Self {
        Crc {
            name,
            hw,
            block: (0..CRC_BLOCK).map(|i| (i % 239) as u8).collect(),
        }
    }
}

impl Bench for Crc {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self) -> Work {
        const BLOCKS: u64 = 4;
        for _ in 0..BLOCKS {
            let data = black_box(self.block.as_slice());
            let c = if self.hw {
                weft_core::integrity::crc32c(data)
            } else {
                weft_core::integrity::crc32c_portable(data)
            };
            black_box(c);
        }
        Work {
            items: BLOCKS,
            bytes: BLOCKS * CRC_BLOCK as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_labelled() {
        let c = catalog();
        let mut names: Vec<_> = c.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.len());
        assert_eq!(size_label(64), "64B");
        assert_eq!(size_label(1 << 10), "1KiB");
        assert_eq!(size_label(64 << 10), "64KiB");
        assert_eq!(size_label(1 << 20), "1MiB");
    }

    #[test]
    fn core_one_way_delivers_every_size_both_ways() {
        for size in SIZES {
            for integrity in [true, false] {
                let mut b = CoreOneWay::new("t".into(), size, integrity);
                let mut w = Work::default();
                for _ in 0..64 {
                    w += b.step();
                    if w.items >= 2 {
                        break;
                    }
                }
                assert!(w.items >= 2, "size {size} integrity {integrity}");
                assert_eq!(w.bytes, w.items * size as u64);
            }
        }
    }
}

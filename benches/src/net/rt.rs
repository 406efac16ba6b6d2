//! The four adapters: how each one listens and accepts one connection, and how each
//! one connects, in the calling thread (which the benchmark has pinned; threads the
//! adapter starts from there inherit the pinning).

use super::apps::{bounded, drive_client, drive_server, other, Ctl, SETUP_WAIT};
use super::{Runtime, Workload};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use weft_core::Config;

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Listens on an ephemeral loopback port, sends the address on `addr`, accepts one
/// connection and serves it until it is over.
pub(crate) fn server(
    rt: Runtime,
    kind: Workload,
    ctl: Arc<Ctl>,
    addr: SyncSender<SocketAddr>,
) -> io::Result<()> {
    let cfg = Config::default();
    match rt {
        Runtime::Tokio => {
            let rt = weft_tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let server = weft_tokio::Server::bind("127.0.0.1:0", cfg).await?;
                let _ = addr.send(server.local_addr()?);
                let h = bounded(server.accept(), SETUP_WAIT)
                    .await
                    .ok_or_else(|| timed_out("accept"))??;
                drop(server);
                drive_server(kind, h, ctl).await;
                Ok(())
            })
        }
        Runtime::Smol => {
            let ex = Arc::new(weft_smol::Executor::new());
            weft_smol::block_on(ex.run(async {
                let server =
                    weft_smol::Server::bind(([127, 0, 0, 1], 0), cfg)?.with_executor(ex.clone());
                let _ = addr.send(server.local_addr()?);
                let h = bounded(server.accept(), SETUP_WAIT)
                    .await
                    .ok_or_else(|| timed_out("accept"))??;
                drive_server(kind, h, ctl).await;
                drop(server);
                Ok(())
            }))
        }
        Runtime::Mio => {
            let server = weft_mio::Server::bind("127.0.0.1:0", cfg)?;
            let _ = addr.send(server.local_addr());
            let h = server
                .accept_timeout(SETUP_WAIT)?
                .ok_or_else(|| timed_out("accept"))?;
            weft_mio::block_on(drive_server(kind, h, ctl));
            server.shutdown();
            Ok(())
        }
        #[cfg(target_os = "linux")]
        Runtime::Uring => {
            let server = weft_uring::Server::bind("127.0.0.1:0", cfg)?;
            let _ = addr.send(server.local_addr());
            let h = weft_driver::block_on(bounded(server.next_connection(), SETUP_WAIT))
                .flatten()
                .ok_or_else(|| timed_out("accept"))?;
            weft_driver::block_on(drive_server(kind, h, ctl));
            drop(server);
            Ok(())
        }
    }
}

/// Connects to `addr`, says so on `ready` once the handshake is done, runs the
/// load generator until told to stop, and closes.
pub(crate) fn client(
    rt: Runtime,
    kind: Workload,
    ctl: Arc<Ctl>,
    addr: SocketAddr,
    ready: SyncSender<()>,
) -> io::Result<()> {
    let cfg = Config::default();
    match rt {
        Runtime::Tokio => {
            let rt = weft_tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let h = bounded(weft_tokio::connect(addr, cfg), SETUP_WAIT)
                    .await
                    .ok_or_else(|| timed_out("connect"))??;
                drive_client(kind, h, ctl, ready).await
            })
        }
        Runtime::Smol => {
            let ex = weft_smol::Executor::new();
            weft_smol::block_on(ex.run(async {
                let h = bounded(weft_smol::connect_on(addr, cfg, &ex), SETUP_WAIT)
                    .await
                    .ok_or_else(|| timed_out("connect"))??;
                drive_client(kind, h, ctl, ready).await
            }))
        }
        Runtime::Mio => {
            // Connects on a loop thread of its own and waits for the handshake.
            let c = weft_mio::Client::connect(addr, cfg)?;
            let r = weft_mio::block_on(drive_client(kind, c.handle().clone(), ctl, ready));
            drop(c);
            r
        }
        #[cfg(target_os = "linux")]
        Runtime::Uring => {
            let c = weft_uring::Client::connect(addr, cfg)?;
            let r = weft_driver::block_on(drive_client(kind, c.handle().clone(), ctl, ready));
            drop(c);
            r
        }
    }
    .map_err(|e| other(format!("{rt:?} client: {e}")))
}

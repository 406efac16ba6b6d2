//! The NATS baselines: a `nats-server` process on 127.0.0.1 (when one is on the
//! PATH) and the `async-nats` client, one current-thread tokio runtime per side.
//!
//! - W2 (`w2/pingpong-64B/nats`): request/reply, one outstanding. The requester
//!   (load generator) calls `Client::request` with the 64 B payload; a responder
//!   on the server's CPU answers every request with the same payload. A round trip
//!   is requester -> server -> responder -> server -> requester: the path NATS
//!   users get for request/reply (Weft's server answers requests itself).
//! - W5 (`w5/pubsub-1to1-64B/nats`, driven by `net::w45`): one publisher client
//!   publishes 64 B messages on one subject, one subscriber client (its own
//!   connection) counts the deliveries; both on the load generator's runtime, like
//!   Weft's W5. The publisher keeps at most [`PUBSUB_WINDOW`] messages undelivered
//!   (NATS has no flow control: a publisher that outruns its subscriber gets it
//!   cut off as a slow consumer; Weft's `Wait` policy paces the publisher).
//!
//! The server process is started per pass from the pinned server thread, so it
//! inherits that thread's CPU affinity (one CPU: the Go runtime then runs with
//! GOMAXPROCS=1), and is stopped when its [`NatsServer`] guard drops, also on a
//! panic. It runs under a small `sh` watchdog that stops it when its standard
//! input (a pipe from this process) closes, so it cannot outlive the benchmark
//! even when the process exits without dropping the guard. Every wait is bounded.

use super::tokio_tcp::runtime;
use super::{
    timed_out, Client, Counter, Workload, IO_TIMEOUT, PINGS_PER_STEP, SETUP_TIMEOUT, SMALL,
};
use crate::measure::Work;
use bytes::Bytes;
use futures::StreamExt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::time::timeout;

/// The executable looked for on the PATH.
pub const EXECUTABLE: &str = "nats-server";
/// W5: most messages published and not yet delivered.
pub const PUBSUB_WINDOW: u64 = 16 << 10;
/// W2's request subject.
const ECHO: &str = "weft.bench.echo";
/// Tells W2's responder to end.
const QUIT: &str = "weft.bench.quit";
/// W5's subject.
const TOPIC: &str = "weft.bench.w5";
/// Bound on the server's start (listening and sending its INFO line).
const START_WAIT: Duration = Duration::from_secs(10);
/// Bound on the server's exit once told to stop (then the watchdog is killed).
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Runs `"$@"` (the server) with its input from /dev/null and stops it when this
/// script's input reaches its end; exits when the server does.
const WATCHDOG: &str = r#"exec 3<&0 0</dev/null
"$@" &
p=$!
{ read -r _ <&3; kill "$p" 2>/dev/null; } &
wait "$p""#;

/// `nats-server` on the PATH, if there is one (looked up once).
pub fn executable() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join(EXECUTABLE))
                .find(|p| is_executable(p))
        })
        .as_deref()
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True when the NATS rows can run.
pub fn available() -> bool {
    executable().is_some()
}

/// The header line about the NATS rows.
pub fn header() -> String {
    match executable() {
        Some(p) => {
            let version = Command::new(p)
                .arg("--version")
                .stderr(Stdio::null())
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "version unknown".into());
            format!(
                "NATS: {version} ({}) on 127.0.0.1, started per pass on the server CPU; async-nats 0.46 clients. W2: request/reply\n    \
                 via a responder on the server CPU (2 hops through the broker); W5: publisher and subscriber on the load CPU,\n    \
                 at most {PUBSUB_WINDOW} messages undelivered (no slow-consumer drops).\n",
                p.display()
            )
        }
        None => format!(
            "NATS: rows skipped - {EXECUTABLE} not on the PATH (Debian/Ubuntu: apt-get install nats-server).\n"
        ),
    }
}

/// A running `nats-server`, stopped (and its log removed) on drop.
pub(crate) struct NatsServer {
    /// The watchdog shell; the server is its child.
    child: Child,
    log: PathBuf,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl NatsServer {
    /// Starts `nats-server -a 127.0.0.1 -p PORT` on a free port from the calling
    /// thread (whose CPU affinity it inherits) and waits (bounded) until it
    /// accepts connections and greets them.
    pub(crate) fn start() -> io::Result<NatsServer> {
        let exe = executable()
            .ok_or_else(|| io::Error::other(format!("{EXECUTABLE} not on the PATH")))?;
        // A free port: bind, read it back, let it go (the server takes it next).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        NatsServer::start_on(exe, port)
    }

    /// As [`NatsServer::start`], on `port`.
    pub(crate) fn start_on(exe: &Path, port: u16) -> io::Result<NatsServer> {
        let log =
            std::env::temp_dir().join(format!("weft-bench-nats-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log)?;
        let child = Command::new("sh")
            .args(["-c", WATCHDOG, "sh"])
            .arg(exe)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| io::Error::other(format!("starting {}: {e}", exe.display())))?;
        let mut server = NatsServer {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{EXECUTABLE} exited ({status}) before it was ready: {}",
                    self.log_text()
                )));
            }
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                let mut greeting = [0u8; 4];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{EXECUTABLE} not ready on {} within {START_WAIT:?}: {}",
                    self.addr,
                    self.log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let t = t.trim();
        if t.is_empty() {
            "(no output)".into()
        } else {
            t.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        }
    }

    /// The URL clients connect to.
    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // The end of the watchdog's input stops the server; the watchdog exits
        // with it.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + STOP_WAIT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn nats_err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> io::Error + '_ {
    move |e| io::Error::other(format!("nats {what}: {e}"))
}

/// Connects a client to `url` (bounded).
pub(crate) async fn connect(url: &str) -> io::Result<async_nats::Client> {
    let c = async_nats::ConnectOptions::new()
        .connection_timeout(SETUP_TIMEOUT)
        .connect(url);
    timeout(SETUP_TIMEOUT, c)
        .await
        .map_err(|_| timed_out("nats connect"))?
        .map_err(nats_err("connect"))
}

/// W2's server side: starts `nats-server` on `listener`'s port (letting the
/// listener go first) and runs the responder until the requester says it is done
/// (or is idle for [`IO_TIMEOUT`]); then the server is killed.
pub(super) fn w2_server(listener: std::net::TcpListener, _counter: &Counter) -> io::Result<()> {
    // The requester counts the round trips.
    let port = listener.local_addr()?.port();
    drop(listener);
    let exe =
        executable().ok_or_else(|| io::Error::other(format!("{EXECUTABLE} not on the PATH")))?;
    let server = NatsServer::start_on(exe, port)?;
    runtime()?.block_on(async {
        let client = connect(&server.url()).await?;
        let mut subs = client
            .subscribe("weft.bench.>")
            .await
            .map_err(nats_err("subscribe"))?;
        client.flush().await.map_err(nats_err("flush"))?;
        loop {
            let Ok(next) = timeout(IO_TIMEOUT, subs.next()).await else {
                return Ok(()); // idle: the requester is gone
            };
            let Some(m) = next else {
                return Ok(());
            };
            if m.subject.as_str() == QUIT {
                return Ok(());
            }
            if let Some(reply) = m.reply {
                client
                    .publish(reply, m.payload)
                    .await
                    .map_err(nats_err("reply"))?;
            }
        }
    })
    // `server` drops here: the process is killed.
}

/// W2's requester.
pub(super) struct NatsClient {
    client: async_nats::Client,
    payload: Bytes,
    rt: Runtime,
}

impl NatsClient {
    /// Connects to the server on `addr` once it is up and the responder answers
    /// (both bounded by [`SETUP_TIMEOUT`]: the server thread is starting them).
    pub(super) fn connect(w: Workload, addr: SocketAddr) -> io::Result<NatsClient> {
        assert_eq!(w, Workload::PingPong, "NATS runs W2 (and W5) only");
        let rt = runtime()?;
        let payload = Bytes::from(super::framed(SMALL, 1).split_off(4));
        let url = format!("nats://{addr}");
        let client = rt.block_on(async {
            let deadline = Instant::now() + SETUP_TIMEOUT;
            let client = loop {
                match connect(&url).await {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            // Until the responder has subscribed: "no responders" before that.
            loop {
                match timeout(IO_TIMEOUT, client.request(ECHO, payload.clone())).await {
                    Ok(Ok(_)) => break,
                    Ok(Err(e))
                        if e.kind() == async_nats::RequestErrorKind::NoResponders
                            && Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(Err(e)) => return Err(nats_err("first request")(e)),
                    Err(_) => return Err(timed_out("nats first request")),
                }
            }
            Ok::<_, io::Error>(client)
        })?;
        Ok(NatsClient {
            client,
            payload,
            rt,
        })
    }
}

impl Client for NatsClient {
    fn batch(&mut self, rtts: &mut Vec<u64>) -> io::Result<Work> {
        let NatsClient {
            client,
            payload,
            rt,
        } = self;
        let batch = async {
            for _ in 0..PINGS_PER_STEP {
                let t = Instant::now();
                let r = client
                    .request(ECHO, payload.clone())
                    .await
                    .map_err(nats_err("request"))?;
                rtts.push(t.elapsed().as_nanos() as u64);
                if r.payload.len() != SMALL {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("nats reply of {} bytes", r.payload.len()),
                    ));
                }
            }
            Ok::<(), io::Error>(())
        };
        rt.block_on(async { timeout(IO_TIMEOUT, batch).await })
            .map_err(|_| timed_out("client batch"))??;
        Ok(Work {
            items: PINGS_PER_STEP as u64,
            bytes: (PINGS_PER_STEP * SMALL) as u64,
        })
    }
}

impl Drop for NatsClient {
    fn drop(&mut self) {
        // Ends the responder (and so the server) now rather than at its idle timeout.
        let client = self.client.clone();
        self.rt.block_on(async move {
            let quit = async {
                let _ = client.publish(QUIT, Bytes::new()).await;
                let _ = client.flush().await;
            };
            let _ = timeout(Duration::from_secs(2), quit).await;
        });
    }
}

/// W5's load: connects a subscriber and a publisher to `url`, subscribes, calls
/// `ready` once the first message was delivered, then publishes until `stop`
/// returns true (or `lifetime` has passed), calling `delivered` for each delivery
/// with its payload length.
pub(crate) fn w5_load(
    url: &str,
    lifetime: Duration,
    stop: impl Fn() -> bool,
    delivered: impl Fn(u64) + Send + Sync + 'static,
    ready: impl FnOnce(),
) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let rt = runtime()?;
    rt.block_on(async {
        let subscriber = connect(url).await?;
        let publisher = connect(url).await?;
        let mut sub = subscriber
            .subscribe(TOPIC)
            .await
            .map_err(nats_err("subscribe"))?;
        // The server has the subscription once it answers the flush's PING.
        subscriber.flush().await.map_err(nats_err("flush"))?;
        let count = Arc::new(AtomicU64::new(0));
        let more = Arc::new(tokio::sync::Notify::new());
        let (c, m) = (count.clone(), more.clone());
        // Ends with the runtime (or when the subscription closes).
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                c.fetch_add(1, Ordering::Relaxed);
                delivered(msg.payload.len() as u64);
                m.notify_one();
            }
        });
        let payload = Bytes::from(super::framed(SMALL, 1).split_off(4));
        let deadline = Instant::now() + lifetime;
        let mut ready = Some(ready);
        let mut published = 0u64;
        let mut rounds = 0u32;
        while !stop() && (rounds % 256 != 0 || Instant::now() < deadline) {
            rounds = rounds.wrapping_add(1);
            loop {
                let got = count.load(Ordering::Relaxed);
                if got > 0 {
                    if let Some(r) = ready.take() {
                        r();
                    }
                }
                if published - got < PUBSUB_WINDOW {
                    break;
                }
                if timeout(IO_TIMEOUT, more.notified()).await.is_err() {
                    return Err(io::Error::other(format!(
                        "nats: {} of {published} messages delivered and no more in {IO_TIMEOUT:?}",
                        count.load(Ordering::Relaxed)
                    )));
                }
            }
            publisher
                .publish(TOPIC, payload.clone())
                .await
                .map_err(nats_err("publish"))?;
            published += 1;
            if published == 1 {
                // Make the first message go out now: readiness waits for it.
                publisher.flush().await.map_err(nats_err("flush"))?;
            }
        }
        Ok(())
    })
    // Dropping the runtime drops both connections.
}

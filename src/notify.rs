//! systemd's service notifications: `READY=1` once lookout serves, and
//! `WATCHDOG=1` only while it is really alive, so that systemd restarts a
//! wedged server (`Type=notify`, `WatchdogSec=` in the packaged unit).
//!
//! The protocol is one datagram on the Unix socket named by `$NOTIFY_SOCKET`
//! (`@` for Linux's abstract namespace): std's `UnixDatagram` does it in a
//! few lines, so no crate. Without `$NOTIFY_SOCKET` (not under systemd)
//! nothing here runs.
//!
//! Alive means both, checked before each ping (every half `$WATCHDOG_USEC`):
//! - the HTTP server answers: a real `GET /healthz` to its own listener over
//!   loopback, with a short deadline. A runtime that still runs this task
//!   while the accept loop or the connection places are gone fails here.
//!   It connects from 127.0.0.2 when the listener takes IPv4 loopback, so a
//!   reverse proxy holding 127.0.0.1's per-address places cannot make it
//!   fail. An HTTPS listener is not probed (this check speaks plain HTTP);
//!   the camera check still applies.
//! - every camera's supervisor loop has ticked within [`STALE_AFTER`]. A
//!   camera that is unplugged and retrying still ticks (the backoff loop
//!   beats too): it is down, not wedged, and a restart would not plug it in,
//!   so it must not put lookout in a restart loop.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::source::StatusCell;

/// A camera supervisor that has not ticked for this long is wedged (it ticks
/// every second, see `source::HEARTBEAT`).
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// Longest wait for the `/healthz` answer (less when pings are more often).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where systemd listens for this service's notifications.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, if any.
    pub fn from_env() -> Option<io::Result<Notifier>> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        Some(Notifier::new(name.as_encoded_bytes()))
    }

    /// A notifier for the socket `name` (a path, or `@` and an abstract name).
    pub fn new(name: &[u8]) -> io::Result<Notifier> {
        use std::os::unix::ffi::OsStrExt;
        let addr = match name.strip_prefix(b"@") {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?
            }
            None => {
                std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(name))?
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one notification, e.g. `READY=1`. A datagram send does not
    /// block on a listening socket.
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.addr)
            .map(|_| ())
    }
}

/// How often to ping: half of `$WATCHDOG_USEC`, as sd_watchdog_enabled
/// advises, when the watchdog is on and meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// What the watchdog checks before each ping.
pub struct Health {
    /// The address the server listens on.
    pub listen: SocketAddr,
    /// Whether it speaks TLS (not probed then, see the module docs).
    pub tls: bool,
    /// Each camera's source status, whose heartbeat its supervisor updates.
    pub cameras: Vec<StatusCell>,
}

impl Health {
    /// Why lookout is not alive, or `None` when it is.
    pub async fn check(&self, timeout: Duration) -> Option<String> {
        for cell in &self.cameras {
            let status = crate::sync::lock(cell);
            let age = status.heartbeat_age();
            if age.is_none_or(|a| a > STALE_AFTER) {
                return Some(format!(
                    "camera source {} has not ticked for {}",
                    status.uri,
                    age.map_or("ever".to_string(), |a| format!("{:.1} s", a.as_secs_f64()))
                ));
            }
        }
        if self.tls {
            return None;
        }
        match tokio::time::timeout(timeout, probe(self.listen)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("GET /healthz on {} failed: {e}", self.listen)),
            Err(_) => Some(format!(
                "GET /healthz on {} gave no answer within {} ms",
                self.listen,
                timeout.as_millis()
            )),
        }
    }
}

/// One `GET /healthz` on loopback; `Ok` for a 200.
async fn probe(listen: SocketAddr) -> io::Result<()> {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let to = SocketAddr::new(ip, listen.port());
    let socket = match ip {
        IpAddr::V4(v4) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            if v4.is_loopback() {
                // Its own per-address place (see the module docs); harmless
                // if the system refuses.
                let _ = socket.bind(SocketAddr::from(([127, 0, 0, 2], 0)));
            }
            socket
        }
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    let mut stream = socket.connect(to).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "answered {:?}",
            String::from_utf8_lossy(&head)
        )))
    }
}

/// Says `READY=1`, then pings the watchdog (when it is on) each time
/// `health` passes, until `shutdown`, when it says `STOPPING=1`.
pub async fn run(notifier: Notifier, health: Health, shutdown: CancellationToken) {
    if let Err(e) = notifier.send("READY=1") {
        tracing::warn!("cannot tell systemd lookout is ready: {e}");
    }
    if let Some(every) = watchdog_interval() {
        tracing::info!(
            "systemd watchdog: pinging every {} ms while the server and cameras are alive",
            every.as_millis()
        );
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            let verdict = tokio::select! {
                v = health.check(every.min(PROBE_TIMEOUT)) => v,
                _ = shutdown.cancelled() => break,
            };
            match verdict {
                None => {
                    if failing {
                        tracing::info!("systemd watchdog: alive again, pinging");
                        failing = false;
                    }
                    if let Err(e) = notifier.send("WATCHDOG=1") {
                        tracing::warn!("cannot ping the systemd watchdog: {e}");
                    }
                }
                Some(why) => {
                    if !failing {
                        tracing::warn!(
                            "systemd watchdog: not pinging, {why}; systemd restarts \
                             lookout if this lasts"
                        );
                        failing = true;
                    }
                }
            }
        }
    } else {
        shutdown.cancelled().await;
    }
    let _ = notifier.send("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.as_os_str().as_encoded_bytes())
            .unwrap()
            .send("READY=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("lookout-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(format!("@{name}").as_bytes())
            .unwrap()
            .send("WATCHDOG=1")
            .unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}

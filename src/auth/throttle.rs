//! Slowing down credential guessing per client address, in a way that
//! parallel requests cannot skip.
//!
//! Every failed credential (a wrong password, an unknown token or cookie,
//! something malformed) and every password check refused as busy is
//! [`Throttle::record`]ed against the client's address ([`crate::peers::key`]).
//! Only password checks wait for a slot ([`Throttle::admit`]): a session or
//! token is cheap to check and is checked at once, so other people's failures
//! from the same address (a NAT, a reverse proxy that is not
//! `--trusted-proxy`) never lock out a valid one. An address with recent
//! failures gets password slots spaced by its current delay (250 ms,
//! doubling per failure, at most 10 s): each admitted attempt pushes the
//! address's next slot forward by that delay *before* anything is checked,
//! so eight parallel guesses are checked one delay apart instead of all at
//! once. An attempt whose slot is more than [`MAX_WAIT`] away is refused at
//! once (429 with Retry-After), so a flood holds at most about ten seconds'
//! worth of sockets per address, while a person retrying at the login form
//! only sees a slower answer.
//!
//! An address without failures is never delayed, so a correct client (Home
//! Assistant polling `/snapshot.jpg` every second) pays nothing.
//!
//! Failures are logged at most once a minute per address, with a count, so a
//! guessing run shows up in the log without flooding it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::peers::key;

/// First delay after a failure; doubles per failure.
pub(crate) const THROTTLE_START: Duration = Duration::from_millis(250);
/// Longest delay between two checks for one address.
pub(crate) const THROTTLE_MAX: Duration = Duration::from_secs(10);
/// Longest an attempt is held before its check; further out it is refused
/// with 429. Equal to the longest delay, so a client that retries one at a
/// time is always served (slowly), never refused.
pub(crate) const MAX_WAIT: Duration = THROTTLE_MAX;
/// Failures older than this are forgotten.
const FORGET: Duration = Duration::from_secs(900);
/// At most one warning per address this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond, the longest quiet one is dropped,
/// so an attacker with many addresses cannot grow the table without bound.
const MAX_CLIENTS: usize = 4096;

/// An attempt refused without a check: the address must wait this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When the address's next slot is free.
    pub retry_after: Duration,
}

/// Recent failures of one address.
#[derive(Debug)]
struct Client {
    /// Failures in a row (reset by a success, forgotten after [`FORGET`]).
    failures: u32,
    last_failure: Instant,
    /// The earliest time the next attempt may be checked.
    next_slot: Instant,
    /// When a warning about this address was last logged.
    warned_at: Option<Instant>,
    /// Failures since that warning.
    unlogged: u32,
    /// Attempts refused with 429 since that warning.
    refused: u32,
}

/// Failures per client address and the slots they lead to.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    clients: Mutex<HashMap<IpAddr, Client>>,
}

/// The delay after `failures` failures in a row.
pub(crate) fn delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    THROTTLE_START
        .saturating_mul(1u32 << (failures - 1).min(10))
        .min(THROTTLE_MAX)
}

impl Throttle {
    /// Reserves the next slot for an attempt from `ip` and says how long to
    /// wait for it, or refuses when that slot is too far out. Reserving
    /// happens under the lock, so parallel attempts get successive slots.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Duration, Throttled> {
        let now = Instant::now();
        let mut clients = crate::sync::lock(&self.clients);
        let Some(c) = clients.get_mut(&key(ip)) else {
            return Ok(Duration::ZERO);
        };
        if c.failures == 0 || now.duration_since(c.last_failure) > FORGET {
            return Ok(Duration::ZERO);
        }
        let slot = c.next_slot.max(now);
        let wait = slot - now;
        if wait > MAX_WAIT {
            c.refused = c.refused.saturating_add(1);
            return Err(Throttled { retry_after: wait });
        }
        c.next_slot = slot + delay(c.failures);
        Ok(wait)
    }

    /// Records the outcome of a checked attempt from `ip`; `what` names the
    /// kind of credential for the log.
    pub(crate) fn record(&self, ip: IpAddr, ok: bool, what: &str) {
        let mut clients = crate::sync::lock(&self.clients);
        let k = key(ip);
        if ok {
            clients.remove(&k);
            return;
        }
        let now = Instant::now();
        if !clients.contains_key(&k) && clients.len() >= MAX_CLIENTS {
            make_room(&mut clients, now);
        }
        let c = clients.entry(k).or_insert(Client {
            failures: 0,
            last_failure: now,
            next_slot: now,
            warned_at: None,
            unlogged: 0,
            refused: 0,
        });
        if now.duration_since(c.last_failure) > FORGET {
            c.failures = 0;
        }
        c.failures = c.failures.saturating_add(1);
        c.last_failure = now;
        c.next_slot = c.next_slot.max(now + delay(c.failures));
        c.unlogged = c.unlogged.saturating_add(1);
        if c.warned_at
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY)
        {
            tracing::warn!(
                "failed sign-in from {ip} ({what}): {} failure(s) and {} refused attempt(s) \
                 from there since the last report, {} in a row; its next check waits {:?}",
                c.unlogged,
                c.refused,
                c.failures,
                delay(c.failures),
            );
            c.warned_at = Some(now);
            c.unlogged = 0;
            c.refused = 0;
        }
    }
}

/// Forgets old failures, then the quietest address if the table is still full.
fn make_room(clients: &mut HashMap<IpAddr, Client>, now: Instant) {
    clients.retain(|_, c| now.duration_since(c.last_failure) <= FORGET);
    if clients.len() >= MAX_CLIENTS {
        if let Some(oldest) = clients
            .iter()
            .min_by_key(|(_, c)| c.last_failure)
            .map(|(k, _)| *k)
        {
            clients.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[tokio::test(start_paused = true)]
    async fn failures_double_the_delay_up_to_the_cap() {
        let t = Throttle::default();
        assert_eq!(t.admit(IP), Ok(Duration::ZERO));
        t.record(IP, false, "test");
        assert_eq!(t.admit(IP), Ok(Duration::from_millis(250)));
        tokio::time::advance(Duration::from_millis(250)).await;
        t.record(IP, false, "test");
        t.record(IP, false, "test");
        // Three failures: the next slot is 1 s after the last one.
        assert_eq!(t.admit(IP), Ok(Duration::from_secs(1)));
        assert_eq!(delay(30), THROTTLE_MAX);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(t.admit(other), Ok(Duration::ZERO), "per address");
        t.record(IP, true, "test");
        assert_eq!(t.admit(IP), Ok(Duration::ZERO), "a success clears");
    }

    #[tokio::test(start_paused = true)]
    async fn parallel_attempts_take_successive_slots_then_are_refused() {
        let t = Throttle::default();
        t.record(IP, false, "test");
        t.record(IP, false, "test");
        // Two failures: 500 ms apart from now on.
        let waits: Vec<_> = (0..25).map(|_| t.admit(IP)).collect();
        for (i, w) in waits.iter().take(20).enumerate() {
            let slot = Duration::from_millis(500) * (i as u32 + 1);
            assert_eq!(*w, Ok(slot), "attempt {i}");
        }
        assert!(
            matches!(waits[20], Err(Throttled { retry_after }) if retry_after > MAX_WAIT),
            "{:?}",
            waits[20]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_are_forgotten_and_ipv6_counts_by_prefix() {
        let t = Throttle::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        t.record(a, false, "test");
        assert_eq!(t.admit(b), Ok(Duration::from_millis(250)), "same /64");
        tokio::time::advance(FORGET + Duration::from_secs(1)).await;
        assert_eq!(t.admit(a), Ok(Duration::ZERO));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        t.record(mapped, false, "test");
        assert_eq!(t.admit(IP), Ok(Duration::from_millis(250)), "v4-mapped");
    }
}

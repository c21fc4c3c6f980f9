//! Who a request comes from: the unit client addresses are counted by, and
//! the client address a trusted reverse proxy forwards.
//!
//! Every per-client limit (the sign-in throttle, the connection cap, the cap
//! on requests behind a proxy) and every log line that names a client uses
//! [`key`], so a client cannot step around one of them by changing the last
//! bits of its IPv6 address.
//!
//! Behind a reverse proxy on the same machine, every client's peer address is
//! the proxy's. Keying limits on it lets one internet client lock out the
//! household's browser, Home Assistant and Prometheus at once. So for
//! requests whose peer is a `--trusted-proxy`, the client is the address the
//! proxy forwarded (`Forwarded: for=`, RFC 7239, else `X-Forwarded-For`).
//! From any other peer these headers are ignored: anyone can write them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

/// The unit addresses are counted by: an IPv4 address, or an IPv6 /64 (one
/// home or one server usually gets a whole /64, so single addresses are free
/// to rotate through). IPv4-mapped IPv6 addresses count as their IPv4.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// What each client address ([`key`]) holds of a per-client cap: its open
/// connections, or its requests under way behind a proxy. Cloning shares
/// the count.
#[derive(Debug, Clone, Default)]
pub struct Places(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One place of one address, given back when dropped.
#[derive(Debug)]
pub struct Place {
    places: Places,
    key: IpAddr,
}

impl Places {
    /// A place for `ip`, unless its address holds `max` already.
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<Place> {
        let key = key(ip);
        let mut map = crate::sync::lock(&self.0);
        let n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Place {
            places: self.clone(),
            key,
        })
    }

    /// Addresses holding at least one place.
    pub fn holders(&self) -> usize {
        crate::sync::lock(&self.0).len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut map = crate::sync::lock(&self.places.0);
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A `--trusted-proxy` value that is neither an address nor a CIDR block.
#[derive(Debug, thiserror::Error)]
#[error(
    "bad trusted proxy {0:?}: expected an address or a CIDR block, e.g. 127.0.0.1, ::1 or 10.0.0.0/8"
)]
pub struct BadProxy(pub String);

/// The reverse proxies whose forwarded client address is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`127.0.0.1`, `::1`) and blocks (`10.0.0.0/8`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<TrustedProxies, BadProxy> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let s = item.as_ref().trim();
            if s.is_empty() {
                continue;
            }
            let net = match s.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => IpNet::from(
                    s.parse::<IpAddr>()
                        .map_err(|_| BadProxy(s.to_string()))?
                        .to_canonical(),
                ),
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client a request from `peer` speaks for: `peer` itself, unless it
    /// is a trusted proxy, in which case the nearest forwarded address that is
    /// not a trusted proxy. `forwarded` is the `Forwarded` header's values,
    /// `x_forwarded_for` the `X-Forwarded-For` header's (each in order of
    /// appearance); `Forwarded` wins when both are given.
    ///
    /// The list is read from the right: each proxy appends the address it
    /// saw, so the rightmost entries are the ones trusted proxies wrote, and
    /// anything left of the first untrusted address is the client's own
    /// claim. An entry that is not an address (`unknown`, an obfuscated
    /// name, garbage) ends the walk at the last address that was believed.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Forwarded {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return Forwarded {
                ip: peer,
                via: None,
            };
        }
        let mut hops: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect();
        if hops.is_empty() {
            hops = x_forwarded_for
                .into_iter()
                .flat_map(|v| v.split(','))
                .collect();
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop_address(hop) else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        Forwarded {
            ip: client,
            via: (client != peer).then_some(peer),
        }
    }
}

/// The client behind a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// The client's address.
    pub ip: IpAddr,
    /// The trusted proxy it came through, when it did.
    pub via: Option<IpAddr>,
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// The address of one hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, each possibly quoted.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    let (ip, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_ipv4_addresses_and_ipv6_prefixes() {
        assert_eq!(key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(key(ip("2001:db8:1:2:ffff::9")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        let from = |peer: &str, fwd: &[&str], xff: &[&str]| {
            proxies.client(ip(peer), fwd.iter().copied(), xff.iter().copied())
        };
        // Untrusted peer: its headers are ignored.
        assert_eq!(
            from("192.0.2.9", &[], &["203.0.113.5"]),
            Forwarded {
                ip: ip("192.0.2.9"),
                via: None
            }
        );
        // Trusted: the rightmost untrusted hop, not the client's own claim.
        assert_eq!(
            from("127.0.0.1", &[], &["198.51.100.1, 203.0.113.5"]).ip,
            ip("203.0.113.5")
        );
        assert_eq!(
            from("127.0.0.1", &[], &["198.51.100.1", "203.0.113.5, 10.1.1.1"]).ip,
            ip("203.0.113.5"),
            "several headers, through a second trusted proxy"
        );
        assert_eq!(
            from("127.0.0.1", &[], &["203.0.113.5"]).via,
            Some(ip("127.0.0.1"))
        );
        // No header: the proxy itself.
        assert_eq!(from("127.0.0.1", &[], &[]).ip, ip("127.0.0.1"));
        // RFC 7239, quoted IPv6 with a port, and it wins over X-Forwarded-For.
        assert_eq!(
            from(
                "127.0.0.1",
                &["for=\"[2001:db8::7]:4711\";proto=https"],
                &["203.0.113.5"]
            )
            .ip,
            ip("2001:db8::7")
        );
        assert_eq!(
            from("127.0.0.1", &["For=192.0.2.60:80, for=198.51.100.17"], &[]).ip,
            ip("198.51.100.17")
        );
        // Garbage ends the walk at the last believed address.
        assert_eq!(from("127.0.0.1", &[], &["unknown"]).ip, ip("127.0.0.1"));
        assert_eq!(
            from("127.0.0.1", &[], &["203.0.113.5, 10.0.0.3, _hidden"]).ip,
            ip("127.0.0.1")
        );
        assert_eq!(
            from("::ffff:127.0.0.1", &[], &["203.0.113.5"]).ip,
            ip("203.0.113.5"),
            "an IPv4 proxy on a dual-stack socket"
        );
    }

    #[test]
    fn bad_proxies_are_refused() {
        assert!(TrustedProxies::parse(&["not-an-ip"]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        let p = TrustedProxies::parse(&["10.1.2.3/8", "::1"]).unwrap();
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("11.0.0.1")));
    }
}

//! One password check at a time per client address: a second one from
//! there would only take a check thread from everyone else.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

/// An address's one password check under way; ends when dropped.
pub(super) struct Turn<'a> {
    checking: &'a Mutex<HashSet<IpAddr>>,
    key: IpAddr,
}

impl<'a> Turn<'a> {
    /// The turn of `ip`'s address, unless it has one already.
    pub(super) fn take(checking: &'a Mutex<HashSet<IpAddr>>, ip: IpAddr) -> Option<Turn<'a>> {
        let key = crate::peers::key(ip);
        // Not `then_some(Turn { .. })`: that builds (and drops, which locks)
        // a Turn even when the address has one, under this very lock.
        let free = crate::sync::lock(checking).insert(key);
        if free {
            Some(Turn { checking, key })
        } else {
            None
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        crate::sync::lock(self.checking).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn an_address_has_one_turn_at_a_time() {
        let checking = Mutex::new(HashSet::new());
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let turn = Turn::take(&checking, a).expect("a free address");
        assert!(Turn::take(&checking, same_64).is_none(), "one per /64");
        assert!(Turn::take(&checking, IP).is_some(), "another address");
        drop(turn);
        assert!(Turn::take(&checking, a).is_some(), "given back");
    }
}

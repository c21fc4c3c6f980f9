//! What a credential may do. A Prometheus scraper or a wall display needs to
//! look, never to delete snapshots or turn recording off, so a long-lived
//! token can be made `read`: every GET and HEAD, and the `status` and `ping`
//! commands. Everything else (the password, browser sessions, one-hour API
//! tokens, and long-lived tokens made before scopes existed) is `control`.

use std::fmt;

/// A credential's reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scope {
    /// Look: GET and HEAD, and the `status` and `ping` commands.
    Read,
    /// Everything.
    Control,
}

impl Scope {
    /// The spelling in the store, on the command line and in replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
        }
    }

    /// The scope stored with a token. Anything but `control` is `read`: a
    /// value this version does not know must never widen what a token does.
    pub fn from_stored(stored: &str) -> Scope {
        match stored {
            "control" => Scope::Control,
            _ => Scope::Read,
        }
    }

    /// Whether this scope covers an action that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Control || needed == Scope::Read
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_scopes_never_widen() {
        assert_eq!(Scope::from_stored("control"), Scope::Control);
        assert_eq!(Scope::from_stored("read"), Scope::Read);
        assert_eq!(Scope::from_stored("admin"), Scope::Read);
        assert_eq!(Scope::from_stored(""), Scope::Read);
        for s in [Scope::Read, Scope::Control] {
            assert_eq!(Scope::from_stored(s.as_str()), s);
        }
    }

    #[test]
    fn control_covers_read() {
        assert!(Scope::Control.allows(Scope::Control));
        assert!(Scope::Control.allows(Scope::Read));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Control));
    }
}

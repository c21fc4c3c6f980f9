//! What a request presents ([`Credential`]) and what checking it decides
//! ([`Verdict`]): the vocabulary between the web's extractors and
//! [`Auth::verify`](super::Auth::verify).

use super::scope::Scope;
use super::throttle::Throttled;

/// Credentials a request presents.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A user name and password (login form, `/api/login`, HTTP Basic).
    Password {
        /// The user name.
        user: &'a str,
        /// The password.
        pass: &'a str,
    },
    /// A session cookie or bearer token, valid only as one of `kinds`.
    Token {
        /// The secret as sent.
        secret: &'a str,
        /// Token kinds accepted here (`session`, `api`, `long`).
        kinds: &'a [&'a str],
        /// How it was sent, for the log (`cookie`, `bearer`).
        via: &'static str,
    },
    /// Something in the place of credentials that cannot be one (a Basic
    /// value that does not decode, an unknown scheme). Counts as a failure.
    Malformed,
}

impl Credential<'_> {
    /// What was presented, for the log.
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Credential::Password { .. } => "password",
            Credential::Token { via, .. } => via,
            Credential::Malformed => "malformed credentials",
        }
    }
}

/// What [`Auth::verify`](super::Auth::verify) decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are good, for what they may do.
    Granted(Scope),
    /// The credentials are wrong (counted against the address).
    Denied,
    /// Too many recent failures from this address: try again later.
    Throttled(Throttled),
    /// Too many password checks running or waiting, or another one from this
    /// address under way: try again in a moment.
    Busy,
}

//! Web Push: the VAPID key pair (RFC 8292), subscriptions, the aes128gcm
//! payload (RFC 8291) and the request that carries it (RFC 8030).
//!
//! The flow: the browser subscribes with [`Vapid::public_key`] as its
//! `applicationServerKey` and posts its `PushSubscriptionJSON`, which
//! [`parse_subscription`] checks; a push is [`request`] (encrypt, sign,
//! headers), sent by the caller. All cryptography is ring's.

mod ece;
mod error;
mod request;
mod subscription;
mod vapid;

pub use ece::{encrypt, MAX_PAYLOAD, RECORD_SIZE};
pub use error::PushError;
pub use request::{request, topic, PushOptions, PushRequest, Urgency, MAX_TOPIC_LEN};
pub use subscription::{parse_subscription, Subscription, MAX_ENDPOINT_LEN};
pub use vapid::{Vapid, KEY_FILE, TOKEN_LIFETIME_SECS};

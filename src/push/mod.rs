//! Notifications on the phone: one per incident, with the picture, by Web
//! Push (RFC 8030, 8291, 8292) and ntfy.

pub mod webpush;

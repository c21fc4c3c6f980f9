//! Web Push: the VAPID key pair, subscriptions, and the aes128gcm payload.

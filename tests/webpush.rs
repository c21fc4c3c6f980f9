//! Web Push against a real push service (web-push-testing, on a loopback
//! port): it subscribes with our VAPID key like a browser, checks each
//! push's token and decrypts its body, so a message read back equal to the
//! one sent proves the whole chain (subscription, aes128gcm, VAPID) as a
//! push service and a browser see it. And what it refuses: an unsubscribed
//! browser (410) and a push signed by another key.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::webpush::PushService;
use lookout::push::webpush::{
    parse_subscription, request, topic, PushOptions, PushRequest, Subscription, Urgency, Vapid,
    MAX_PAYLOAD,
};
use serde_json::json;

const SUBJECT: &str = "mailto:owner@example.org";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn options(topic: Option<&str>) -> PushOptions<'_> {
    PushOptions {
        ttl: 600,
        urgency: Urgency::High,
        topic,
        subject: SUBJECT,
    }
}

fn push(vapid: &Vapid, sub: &Subscription, payload: &str) -> PushRequest {
    request(vapid, sub, payload.as_bytes(), &options(None), now()).expect("request")
}

/// A VAPID key and a subscription made with it at `service`.
async fn subscribed(service: &PushService) -> (tempfile::TempDir, Vapid, Subscription, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let vapid = Vapid::load_or_create(dir.path()).expect("vapid key");
    let (json, hash) = service.subscribe(vapid.public_key()).await;
    // Its endpoint is plain http on localhost: taken only when asked.
    assert!(parse_subscription(&json, false).is_err(), "{json}");
    let sub = parse_subscription(&json, true).expect("the service's subscription");
    (dir, vapid, sub, hash)
}

#[tokio::test]
async fn a_push_is_decrypted_by_the_push_service() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    let (_dir, vapid, sub, hash) = subscribed(&service).await;

    let payload = json!({
        "title": "Person at the door",
        "camera": "door",
        "at": 1_800_000_000,
        "text": "née à 7 h 🙂",
    })
    .to_string();
    let (status, body) = service.send(&push(&vapid, &sub, &payload)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        service.messages(&hash).await,
        std::slice::from_ref(&payload)
    );

    // The largest payload fills the one 4096-byte record exactly; and a
    // topic and normal urgency are taken.
    let big = "x".repeat(MAX_PAYLOAD);
    let t = topic("door");
    let opts = PushOptions {
        urgency: Urgency::Normal,
        ..options(Some(&t))
    };
    let req = request(&vapid, &sub, big.as_bytes(), &opts, now()).expect("request");
    assert_eq!(req.body.len(), 4096);
    let (status, body) = service.send(&req).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(service.wait_for_messages(&hash, 2).await, [payload, big]);
}

#[tokio::test]
async fn an_unsubscribed_browser_answers_410() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    let (_dir, vapid, sub, hash) = subscribed(&service).await;
    let (status, body) = service.send(&push(&vapid, &sub, "before")).await;
    assert_eq!(status, 201, "{body}");

    service.expire(&hash).await;
    let (status, body) = service.send(&push(&vapid, &sub, "after")).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(service.messages(&hash).await, ["before"]);
}

#[tokio::test]
async fn a_push_signed_with_another_key_is_refused() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    let (_dir, vapid, sub, hash) = subscribed(&service).await;
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = Vapid::load_or_create(other_dir.path()).expect("vapid key");
    assert_ne!(other.public_key(), vapid.public_key());

    // Another server's key altogether.
    let (status, body) = service.send(&push(&other, &sub, "forged")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Crypto-Key"), "{body}");

    // Our public key with a token the other key signed: the service checks
    // the signature itself, not only the key named beside it.
    let mut forged = push(&vapid, &sub, "forged");
    let theirs = other
        .authorization(&sub.endpoint, SUBJECT, now())
        .expect("token");
    let their_token = theirs
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .map(|(t, _)| t.to_owned())
        .expect("vapid header");
    for (name, value) in &mut forged.headers {
        if name == "Authorization" {
            *value = format!("vapid t={their_token}, k={}", vapid.public_key());
        }
    }
    let (status, body) = service.send(&forged).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("authentication token"), "{body}");

    assert!(service.messages(&hash).await.is_empty());
    // And the right key still gets through.
    let (status, body) = service.send(&push(&vapid, &sub, "genuine")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(service.messages(&hash).await, ["genuine"]);
}

//! The HTTP request that delivers one push (RFC 8030 section 5): a POST of
//! the encrypted body to the subscription's endpoint, with the headers push
//! services require. Built as plain data so the sender decides on the client,
//! timeouts and retries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest;

use super::ece::encrypt;
use super::error::PushError;
use super::subscription::Subscription;
use super::vapid::Vapid;

/// How urgent a push is (RFC 8030 section 5.3): a phone in power saving
/// delivers `High` at once and may hold `Normal` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// What goes with a push besides the payload.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions<'a> {
    /// How long, in seconds, the push service keeps the message for a phone
    /// that is offline; 0 delivers now or never.
    pub ttl: u32,
    pub urgency: Urgency,
    /// A later push with the same topic replaces an earlier one still
    /// undelivered (RFC 8030 section 5.4): at most 32 base64url characters;
    /// [`topic`] makes one from any key.
    pub topic: Option<&'a str>,
    /// The operator's contact for the push service: a `mailto:` or
    /// `https:` URL (the VAPID `sub` claim).
    pub subject: &'a str,
}

/// One push, ready to send: POST `body` to `url` with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl PushRequest {
    /// The request on `client` (a POST with these headers and body).
    pub fn to_reqwest(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut request = client.post(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.body(self.body.clone())
    }
}

/// The longest topic RFC 8030 allows.
pub const MAX_TOPIC_LEN: usize = 32;

/// A topic for `key` (say a camera's name): the first 24 bytes of its
/// SHA-256, base64url, so exactly 32 characters, whatever `key` holds.
pub fn topic(key: &str) -> String {
    let hash = digest::digest(&digest::SHA256, key.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..24])
}

/// Encrypts `payload` for `sub` and builds the request, signed with `vapid`
/// for a token valid from `now_unix`.
pub fn request(
    vapid: &Vapid,
    sub: &Subscription,
    payload: &[u8],
    options: &PushOptions<'_>,
    now_unix: u64,
) -> Result<PushRequest, PushError> {
    if let Some(topic) = options.topic {
        check_topic(topic)?;
    }
    let authorization = vapid.authorization(&sub.endpoint, options.subject, now_unix)?;
    let body = encrypt(sub, payload)?;
    let mut headers = vec![
        ("TTL".to_owned(), options.ttl.to_string()),
        ("Urgency".to_owned(), options.urgency.as_str().to_owned()),
        ("Content-Encoding".to_owned(), "aes128gcm".to_owned()),
        (
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        ),
        ("Authorization".to_owned(), authorization),
    ];
    if let Some(topic) = options.topic {
        headers.push(("Topic".to_owned(), topic.to_owned()));
    }
    Ok(PushRequest {
        url: sub.endpoint.clone(),
        headers,
        body,
    })
}

fn check_topic(topic: &str) -> Result<(), PushError> {
    let base64url = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || !base64url {
        return Err(PushError::Invalid(format!(
            "push topic {topic:?} is not 1 to {MAX_TOPIC_LEN} base64url characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::webpush::parse_subscription;

    const ENDPOINT: &str = "https://push.example.net/wpush/v2/abc";

    fn sub() -> Subscription {
        let v = serde_json::json!({
            "endpoint": ENDPOINT,
            "keys": {
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg",
            },
        });
        parse_subscription(&v, false).unwrap()
    }

    fn options(topic: Option<&str>) -> PushOptions<'_> {
        PushOptions {
            ttl: 3600,
            urgency: Urgency::High,
            topic,
            subject: "mailto:owner@example.org",
        }
    }

    fn header<'a>(r: &'a PushRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_request_carries_what_push_services_require() {
        let dir = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(dir.path()).unwrap();
        let t = topic("door");
        let r = request(&vapid, &sub(), b"{}", &options(Some(&t)), 1_800_000_000).unwrap();
        assert_eq!(r.url, ENDPOINT);
        assert_eq!(header(&r, "ttl"), Some("3600"));
        assert_eq!(header(&r, "urgency"), Some("high"));
        assert_eq!(header(&r, "topic"), Some(t.as_str()));
        assert_eq!(header(&r, "content-encoding"), Some("aes128gcm"));
        assert_eq!(header(&r, "content-type"), Some("application/octet-stream"));
        let auth = header(&r, "authorization").unwrap();
        assert!(auth.starts_with("vapid t="), "{auth}");
        assert!(
            auth.ends_with(&format!(", k={}", vapid.public_key())),
            "{auth}"
        );
        assert_eq!(r.body.len(), 86 + 2 + 1 + 16);

        let without = request(&vapid, &sub(), b"{}", &options(None), 0).unwrap();
        assert_eq!(header(&without, "topic"), None);
        let normal = PushOptions {
            urgency: Urgency::Normal,
            ..options(None)
        };
        let r = request(&vapid, &sub(), b"{}", &normal, 0).unwrap();
        assert_eq!(header(&r, "urgency"), Some("normal"));
    }

    #[test]
    fn topics_are_short_base64url() {
        let t = topic("a camera name with spaces / and more, much longer than 32");
        assert_eq!(t.len(), 32);
        assert!(check_topic(&t).is_ok());
        assert_eq!(topic("door"), topic("door"));
        assert_ne!(topic("door"), topic("yard"));

        let dir = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(dir.path()).unwrap();
        let long = "a".repeat(33);
        for bad in ["", "has space", "plus+", long.as_str()] {
            let err = request(&vapid, &sub(), b"{}", &options(Some(bad)), 0).unwrap_err();
            assert!(matches!(err, PushError::Invalid(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_reqwest_request_has_the_same_parts() {
        let dir = tempfile::tempdir().unwrap();
        let vapid = Vapid::load_or_create(dir.path()).unwrap();
        let r = request(&vapid, &sub(), b"hi", &options(None), 0).unwrap();
        crate::install_crypto_provider();
        let built = r.to_reqwest(&reqwest::Client::new()).build().unwrap();
        assert_eq!(built.method(), reqwest::Method::POST);
        assert_eq!(built.url().as_str(), ENDPOINT);
        for (name, value) in &r.headers {
            assert_eq!(built.headers()[name.as_str()], value.as_str(), "{name}");
        }
        let body = built.body().and_then(|b| b.as_bytes()).unwrap();
        assert_eq!(body, &r.body[..]);
    }
}

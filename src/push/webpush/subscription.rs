//! A browser's push subscription: where to send (the endpoint) and the keys
//! to encrypt for. Everything in it comes from a client, so it is checked
//! once here, with a reason fit for a 400 reply, and is sound afterwards.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use ring::agreement;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::PushError;

/// Longest endpoint taken. Real ones are under 500 bytes; the cap keeps a
/// client from storing megabytes in a field the server sends to.
pub const MAX_ENDPOINT_LEN: usize = 2048;

/// base64url as browsers write it (no padding), also taking it padded.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A validated push subscription. Serializes as the browser's
/// `PushSubscriptionJSON` (`{"endpoint", "keys": {"p256dh", "auth"}}`,
/// base64url keys); deserializing checks it again, with `http://` allowed
/// for loopback endpoints (what was stored passed `parse_subscription`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "SubscriptionJson")]
pub struct Subscription {
    pub endpoint: String,
    p256dh: [u8; 65],
    auth: [u8; 16],
}

impl Subscription {
    /// The user agent's ECDH public key (uncompressed P-256 point, on the
    /// curve).
    pub fn p256dh(&self) -> &[u8; 65] {
        &self.p256dh
    }

    /// The user agent's authentication secret.
    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }
}

/// The endpoint only: the keys are of no use in a log, and `auth` is a
/// secret.
impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SubscriptionJson {
    endpoint: String,
    keys: KeysJson,
}

#[derive(Serialize)]
struct KeysJson {
    p256dh: String,
    auth: String,
}

impl From<Subscription> for SubscriptionJson {
    fn from(s: Subscription) -> Self {
        SubscriptionJson {
            endpoint: s.endpoint,
            keys: KeysJson {
                p256dh: URL_SAFE_NO_PAD.encode(s.p256dh),
                auth: URL_SAFE_NO_PAD.encode(s.auth),
            },
        }
    }
}

impl TryFrom<Value> for Subscription {
    type Error = PushError;

    fn try_from(v: Value) -> Result<Self, PushError> {
        parse_subscription(&v, true)
    }
}

fn bad(why: impl Into<String>) -> PushError {
    PushError::Subscription(why.into())
}

/// Parses and checks a `PushSubscriptionJSON` from a client. The endpoint
/// must be an `https://` URL of at most 2048 bytes (`http://` only with
/// `allow_loopback_http` and a loopback host: the tests' push service); the
/// keys base64url, `p256dh` a P-256 point on the curve and `auth` 16 bytes.
/// `expirationTime` and fields this code does not know are ignored, as
/// browsers may add some.
pub fn parse_subscription(v: &Value, allow_loopback_http: bool) -> Result<Subscription, PushError> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the subscription is not a JSON object"))?;
    let endpoint = match obj.get("endpoint") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("\"endpoint\" is not a string")),
        None => return Err(bad("\"endpoint\" is missing")),
    };
    check_endpoint(endpoint, allow_loopback_http)?;
    let keys = match obj.get("keys") {
        Some(Value::Object(keys)) => keys,
        Some(_) => return Err(bad("\"keys\" is not an object")),
        None => return Err(bad("\"keys\" is missing")),
    };
    let key = |name: &str| -> Result<Vec<u8>, PushError> {
        match keys.get(name) {
            Some(Value::String(s)) => B64URL
                .decode(s)
                .map_err(|_| bad(format!("keys.{name} is not base64url"))),
            Some(_) => Err(bad(format!("keys.{name} is not a string"))),
            None => Err(bad(format!("keys.{name} is missing"))),
        }
    };
    let p256dh: [u8; 65] = key("p256dh")?.try_into().map_err(|k: Vec<u8>| {
        bad(format!(
            "keys.p256dh is {} bytes, not the 65 of an uncompressed P-256 key",
            k.len()
        ))
    })?;
    check_point(&p256dh)?;
    let auth: [u8; 16] = key("auth")?
        .try_into()
        .map_err(|k: Vec<u8>| bad(format!("keys.auth is {} bytes, not 16", k.len())))?;
    Ok(Subscription {
        endpoint: endpoint.clone(),
        p256dh,
        auth,
    })
}

fn check_endpoint(endpoint: &str, allow_loopback_http: bool) -> Result<(), PushError> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(bad(format!(
            "\"endpoint\" is {} bytes, over the {MAX_ENDPOINT_LEN} taken",
            endpoint.len()
        )));
    }
    let url =
        url::Url::parse(endpoint).map_err(|e| bad(format!("\"endpoint\" is not a URL ({e})")))?;
    let host = url.host().ok_or_else(|| bad("\"endpoint\" has no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("\"endpoint\" carries a user name or password"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_loopback_http && is_loopback(&host) => Ok(()),
        "http" => Err(bad("\"endpoint\" is not https")),
        other => Err(bad(format!("\"endpoint\" scheme {other:?} is not https"))),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `point` is a P-256 public key one can agree with. ring checks
/// that the point is on the curve (NIST SP 800-56A's partial validation)
/// before any agreement, and that is the check taken: an agreement with a
/// throwaway key.
fn check_point(point: &[u8; 65]) -> Result<(), PushError> {
    if point[0] != 4 {
        return Err(bad("keys.p256dh is not an uncompressed P-256 point"));
    }
    let mine =
        agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &SystemRandom::new())
            .map_err(|_| PushError::Crypto("generating a key"))?;
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
    agreement::agree_ephemeral(mine, &theirs, |_| ())
        .map_err(|_| bad("keys.p256dh is not a point on the P-256 curve"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 8291 Appendix A's user agent key and secret: a real point.
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const ENDPOINT: &str = "https://push.example.net/wpush/v2/gAAAAABh";

    fn sub(endpoint: &str, p256dh: &str, auth: &str) -> Value {
        json!({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})
    }

    fn refused(v: &Value, loopback: bool) -> String {
        match parse_subscription(v, loopback) {
            Err(PushError::Subscription(why)) => why,
            other => panic!("{v} was not refused as a bad subscription: {other:?}"),
        }
    }

    /// A point with the UA key's x and another y: not on the curve.
    fn off_curve() -> String {
        let mut raw = URL_SAFE_NO_PAD.decode(UA_PUBLIC).unwrap();
        raw[64] ^= 1;
        URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn a_browser_subscription_is_taken() {
        let v = json!({
            "endpoint": ENDPOINT,
            "expirationTime": null,
            "keys": {"p256dh": UA_PUBLIC, "auth": AUTH},
        });
        let s = parse_subscription(&v, false).unwrap();
        assert_eq!(s.endpoint, ENDPOINT);
        assert_eq!(URL_SAFE_NO_PAD.encode(s.p256dh()), UA_PUBLIC);
        assert_eq!(URL_SAFE_NO_PAD.encode(s.auth()), AUTH);
        // Padded base64url is the same key.
        let padded = sub(ENDPOINT, UA_PUBLIC, &format!("{AUTH}=="));
        assert_eq!(parse_subscription(&padded, false).unwrap(), s);
    }

    #[test]
    fn it_is_stored_as_the_browser_wrote_it_and_read_back() {
        let v = sub(ENDPOINT, UA_PUBLIC, AUTH);
        let s = parse_subscription(&v, false).unwrap();
        let stored = serde_json::to_value(&s).unwrap();
        assert_eq!(stored, v);
        let back: Subscription = serde_json::from_value(stored).unwrap();
        assert_eq!(back, s);
        // Reading checks too.
        let broken = sub(ENDPOINT, &off_curve(), AUTH);
        assert!(serde_json::from_value::<Subscription>(broken).is_err());
    }

    #[test]
    fn the_debug_form_keeps_the_secret() {
        let s = parse_subscription(&sub(ENDPOINT, UA_PUBLIC, AUTH), false).unwrap();
        let shown = format!("{s:?}");
        assert!(shown.contains(ENDPOINT));
        assert!(!shown.contains(AUTH), "{shown}");
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let why = refused(&sub(ENDPOINT, &off_curve(), AUTH), false);
        assert!(why.contains("not a point on the P-256 curve"), "{why}");
        // Coordinates at or above the field's prime.
        let mut big = [0xffu8; 65];
        big[0] = 4;
        let why = refused(&sub(ENDPOINT, &URL_SAFE_NO_PAD.encode(big), AUTH), false);
        assert!(why.contains("curve"), "{why}");
        // (0, 0), the usual stand-in for the point at infinity.
        let mut zero = [0u8; 65];
        zero[0] = 4;
        let why = refused(&sub(ENDPOINT, &URL_SAFE_NO_PAD.encode(zero), AUTH), false);
        assert!(why.contains("curve"), "{why}");
    }

    #[test]
    fn a_compressed_or_short_key_is_refused() {
        let mut raw = URL_SAFE_NO_PAD.decode(UA_PUBLIC).unwrap();
        raw[0] = 2;
        let why = refused(&sub(ENDPOINT, &URL_SAFE_NO_PAD.encode(&raw), AUTH), false);
        assert!(why.contains("uncompressed"), "{why}");
        let why = refused(
            &sub(ENDPOINT, &URL_SAFE_NO_PAD.encode(&raw[..33]), AUTH),
            false,
        );
        assert!(why.contains("33 bytes"), "{why}");
        let why = refused(&sub(ENDPOINT, UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSI"), false);
        assert!(why.contains("keys.auth is 15 bytes"), "{why}");
    }

    #[test]
    fn keys_must_be_base64url() {
        // Standard base64's '+' and '/'.
        let std_b64 = UA_PUBLIC.replace('-', "+").replace('_', "/");
        let why = refused(&sub(ENDPOINT, &std_b64, AUTH), false);
        assert_eq!(why, "keys.p256dh is not base64url");
        let why = refused(&sub(ENDPOINT, UA_PUBLIC, "not base64!"), false);
        assert_eq!(why, "keys.auth is not base64url");
        let v = json!({"endpoint": ENDPOINT, "keys": {"p256dh": 5, "auth": AUTH}});
        assert_eq!(refused(&v, false), "keys.p256dh is not a string");
    }

    #[test]
    fn missing_parts_are_named() {
        assert_eq!(
            refused(&json!([ENDPOINT]), false),
            "the subscription is not a JSON object"
        );
        assert_eq!(
            refused(&json!({"keys": {"p256dh": UA_PUBLIC, "auth": AUTH}}), false),
            "\"endpoint\" is missing"
        );
        assert_eq!(
            refused(&json!({"endpoint": ENDPOINT}), false),
            "\"keys\" is missing"
        );
        assert_eq!(
            refused(&json!({"endpoint": ENDPOINT, "keys": "x"}), false),
            "\"keys\" is not an object"
        );
        assert_eq!(
            refused(
                &json!({"endpoint": ENDPOINT, "keys": {"auth": AUTH}}),
                false
            ),
            "keys.p256dh is missing"
        );
        assert_eq!(
            refused(&json!({"endpoint": 1, "keys": {}}), false),
            "\"endpoint\" is not a string"
        );
    }

    #[test]
    fn the_endpoint_must_be_https() {
        let why = refused(&sub("http://push.example.net/x", UA_PUBLIC, AUTH), true);
        assert_eq!(why, "\"endpoint\" is not https");
        let why = refused(&sub("ftp://push.example.net/x", UA_PUBLIC, AUTH), true);
        assert!(why.contains("\"ftp\""), "{why}");
        let why = refused(&sub("push.example.net/x", UA_PUBLIC, AUTH), false);
        assert!(why.starts_with("\"endpoint\" is not a URL"), "{why}");
        let why = refused(
            &sub("https://user:pw@push.example.net/x", UA_PUBLIC, AUTH),
            false,
        );
        assert!(why.contains("password"), "{why}");
        let why = refused(&sub("data:text/plain,hello", UA_PUBLIC, AUTH), true);
        assert!(why.contains("no host"), "{why}");
    }

    #[test]
    fn http_only_to_loopback_and_only_when_allowed() {
        for ok in [
            "http://localhost:8090/notify/x",
            "http://127.0.0.1:8090/notify/x",
            "http://[::1]:8090/notify/x",
        ] {
            assert!(
                parse_subscription(&sub(ok, UA_PUBLIC, AUTH), true).is_ok(),
                "{ok}"
            );
            let why = refused(&sub(ok, UA_PUBLIC, AUTH), false);
            assert_eq!(why, "\"endpoint\" is not https", "{ok}");
        }
        for bad in ["http://192.168.1.2/x", "http://localhost.example.org/x"] {
            refused(&sub(bad, UA_PUBLIC, AUTH), true);
        }
    }

    #[test]
    fn a_huge_endpoint_is_refused() {
        let long = format!("{ENDPOINT}/{}", "a".repeat(MAX_ENDPOINT_LEN));
        let why = refused(&sub(&long, UA_PUBLIC, AUTH), false);
        assert!(why.contains("over the 2048"), "{why}");
        // The longest taken.
        let pad = MAX_ENDPOINT_LEN - ENDPOINT.len() - 1;
        let longest = format!("{ENDPOINT}/{}", "a".repeat(pad));
        assert_eq!(longest.len(), MAX_ENDPOINT_LEN);
        assert!(parse_subscription(&sub(&longest, UA_PUBLIC, AUTH), false).is_ok());
    }
}

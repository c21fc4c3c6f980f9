//! The payload's encryption for one subscription (RFC 8291 over RFC 8188's
//! aes128gcm): a fresh key pair and salt per message, ECDH with the user
//! agent's key, HKDF-SHA256 down to an AES-128-GCM key and nonce, and a
//! single record. The key schedule and the record are pure functions of
//! their inputs so they can be checked against the RFC's worked example
//! (ring will not take a fixed ephemeral private key).

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf};

use super::error::PushError;
use super::subscription::Subscription;

/// The record size announced in the header. Push services take a body of
/// at most 4096 bytes; one record of this size is what they all accept.
pub const RECORD_SIZE: u32 = 4096;

/// The header: salt (16), rs (4), idlen (1), the sender's public key (65).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;

/// AES-GCM's tag, and the delimiter that ends the last record's padding.
const TAG_LEN: usize = 16;

/// The largest payload: a 4096-byte body less the header, the tag and the
/// padding delimiter.
pub const MAX_PAYLOAD: usize = RECORD_SIZE as usize - HEADER_LEN - TAG_LEN - 1;

/// Encrypts `payload` for `sub` as an aes128gcm body: the header, then one
/// record (payload, delimiter 0x02, tag). Errors if the payload is over
/// [`MAX_PAYLOAD`] (3,993) bytes.
pub fn encrypt(sub: &Subscription, payload: &[u8]) -> Result<Vec<u8>, PushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PushError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| PushError::Crypto("drawing a salt"))?;
    let mine = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| PushError::Crypto("generating a key"))?;
    let as_public = mine
        .compute_public_key()
        .map_err(|_| PushError::Crypto("computing a public key"))?;
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, sub.p256dh());
    agreement::agree_ephemeral(mine, &theirs, |secret| {
        seal(
            secret,
            sub.auth(),
            &salt,
            sub.p256dh(),
            as_public.as_ref(),
            payload,
        )
    })
    .map_err(|_| PushError::Crypto("key agreement"))?
}

/// The body for given keys: what [`encrypt`] does once the ECDH secret,
/// salt and sender key are drawn.
pub(super) fn seal(
    ecdh_secret: &[u8],
    auth_secret: &[u8; 16],
    salt: &[u8; 16],
    ua_public: &[u8; 65],
    as_public: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, PushError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PushError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let id_len = u8::try_from(as_public.len())
        .map_err(|_| PushError::Crypto("sender key too long for the header"))?;
    let ikm = input_keying_material(ecdh_secret, auth_secret, ua_public, as_public)?;
    let (cek, nonce) = content_keys(&ikm, salt)?;

    let mut body = Vec::with_capacity(HEADER_LEN + payload.len() + 1 + TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(id_len);
    body.extend_from_slice(as_public);
    let header_len = body.len();

    // The one record is also the last: its padding delimiter is 2, with no
    // padding after it (RFC 8188 section 2).
    let mut record = Vec::with_capacity(payload.len() + 1 + TAG_LEN);
    record.extend_from_slice(payload);
    record.push(2);
    let key = aead::UnboundKey::new(&aead::AES_128_GCM, &cek)
        .map_err(|_| PushError::Crypto("AES key"))?;
    // The first record's nonce is the derived one, XORed with sequence 0.
    aead::LessSafeKey::new(key)
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| PushError::Crypto("AES-GCM"))?;
    body.extend_from_slice(&record);
    debug_assert!(body.len() - header_len <= RECORD_SIZE as usize);
    Ok(body)
}

/// RFC 8291 section 3.4: IKM = HKDF(salt = auth_secret, ikm = ecdh_secret,
/// info = "WebPush: info" 0x00 ua_public as_public, 32 bytes).
fn input_keying_material(
    ecdh_secret: &[u8],
    auth_secret: &[u8; 16],
    ua_public: &[u8; 65],
    as_public: &[u8],
) -> Result<[u8; 32], PushError> {
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth_secret).extract(ecdh_secret);
    let mut ikm = [0u8; 32];
    expand(
        &prk_key,
        &[b"WebPush: info\0", ua_public, as_public],
        &mut ikm,
    )?;
    Ok(ikm)
}

/// RFC 8188 section 2.2 and 2.3: the content encryption key and nonce from
/// the IKM and the message's salt.
fn content_keys(ikm: &[u8; 32], salt: &[u8; 16]) -> Result<([u8; 16], [u8; 12]), PushError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut cek = [0u8; 16];
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek)?;
    let mut nonce = [0u8; 12];
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce)?;
    Ok((cek, nonce))
}

/// HKDF-Expand to `out.len()` bytes.
fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), PushError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| PushError::Crypto("HKDF"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// RFC 8291 Appendix A (section 5's example), every value base64url.
    mod rfc {
        pub(super) const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
        pub(super) const AS_PUBLIC: &str =
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        pub(super) const UA_PUBLIC: &str =
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        pub(super) const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
        pub(super) const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
        pub(super) const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
        pub(super) const IKM: &str = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
        pub(super) const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
        pub(super) const NONCE: &str = "4h_95klXJ5E_qnoN";
        pub(super) const HEADER: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        pub(super) const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    }

    fn b64<const N: usize>(s: &str) -> [u8; N] {
        let v = URL_SAFE_NO_PAD.decode(s).expect("base64url");
        v.try_into().expect("length")
    }

    fn rfc_seal(payload: &[u8]) -> Result<Vec<u8>, PushError> {
        seal(
            &b64::<32>(rfc::ECDH_SECRET),
            &b64(rfc::AUTH),
            &b64(rfc::SALT),
            &b64(rfc::UA_PUBLIC),
            &b64::<65>(rfc::AS_PUBLIC),
            payload,
        )
    }

    #[test]
    fn the_key_schedule_matches_rfc_8291() {
        let ikm = input_keying_material(
            &b64::<32>(rfc::ECDH_SECRET),
            &b64(rfc::AUTH),
            &b64(rfc::UA_PUBLIC),
            &b64::<65>(rfc::AS_PUBLIC),
        )
        .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(ikm), rfc::IKM);
        let (cek, nonce) = content_keys(&ikm, &b64(rfc::SALT)).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(cek), rfc::CEK);
        assert_eq!(URL_SAFE_NO_PAD.encode(nonce), rfc::NONCE);
    }

    #[test]
    fn the_body_matches_rfc_8291() {
        let body = rfc_seal(rfc::PLAINTEXT.as_bytes()).unwrap();
        let header = URL_SAFE_NO_PAD.decode(rfc::HEADER).unwrap();
        assert_eq!(header.len(), 86);
        assert_eq!(&body[..86], &header[..]);
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), rfc::BODY);
    }

    #[test]
    fn the_payload_is_capped_at_one_record() {
        let most = vec![b'x'; MAX_PAYLOAD];
        assert_eq!(MAX_PAYLOAD, 3993);
        let body = rfc_seal(&most).unwrap();
        assert_eq!(body.len(), 4096);
        let err = rfc_seal(&[b'x'; MAX_PAYLOAD + 1]).unwrap_err();
        assert!(
            matches!(
                err,
                PushError::PayloadTooLarge {
                    len: 3994,
                    max: 3993
                }
            ),
            "{err:?}"
        );
    }

    /// What the user agent does: ECDH with the sender key from the header,
    /// the same key schedule, then AES-GCM open. It checks `encrypt`'s
    /// wiring (which key goes where); the RFC tests check the schedule.
    #[test]
    fn encrypt_opens_with_the_user_agents_key() {
        let rng = SystemRandom::new();
        let ua = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let ua_public: [u8; 65] = ua
            .compute_public_key()
            .unwrap()
            .as_ref()
            .try_into()
            .unwrap();
        let auth = [7u8; 16];
        let v = serde_json::json!({
            "endpoint": "https://push.example.net/x",
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(ua_public),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            },
        });
        let sub = super::super::parse_subscription(&v, false).unwrap();
        let payload = br#"{"title":"Motion at the door"}"#;
        let body = encrypt(&sub, payload).unwrap();

        let salt: [u8; 16] = body[..16].try_into().unwrap();
        assert_eq!(u32::from_be_bytes(body[16..20].try_into().unwrap()), 4096);
        assert_eq!(body[20], 65);
        let as_public = &body[21..86];
        let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, as_public);
        let ikm = agreement::agree_ephemeral(ua, &theirs, |secret| {
            input_keying_material(secret, &auth, &ua_public, as_public).unwrap()
        })
        .unwrap();
        let (cek, nonce) = content_keys(&ikm, &salt).unwrap();
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap());
        let mut record = body[86..].to_vec();
        let plain = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::empty(),
                &mut record,
            )
            .unwrap();
        let (delimiter, text) = plain.split_last().unwrap();
        assert_eq!(*delimiter, 2);
        assert_eq!(text, payload);
    }

    #[test]
    fn encrypt_checks_the_size_before_anything() {
        let v = serde_json::json!({
            "endpoint": "https://push.example.net/x",
            "keys": {"p256dh": rfc::UA_PUBLIC, "auth": rfc::AUTH},
        });
        let sub = super::super::parse_subscription(&v, false).unwrap();
        assert!(matches!(
            encrypt(&sub, &[0; MAX_PAYLOAD + 1]),
            Err(PushError::PayloadTooLarge { .. })
        ));
        let a = encrypt(&sub, b"hello").unwrap();
        let b = encrypt(&sub, b"hello").unwrap();
        assert_eq!(a.len(), 86 + 5 + 1 + 16);
        assert_eq!(&a[16..21], &[0, 0, 0x10, 0, 65]);
        // A fresh salt and sender key each time.
        assert_ne!(a[..16], b[..16]);
        assert_ne!(a[21..86], b[21..86]);
    }
}

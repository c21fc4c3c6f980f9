//! ntfy (ntfy.sh or self-hosted): one `PUT` to the topic URL per incident,
//! the picture as the body, the words in headers. It needs no certificate
//! on the phone's side, which makes it the easy first channel.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::message::Message;

/// The ntfy channel's target id.
pub const NTFY: &str = "ntfy";

/// The headers of `message`'s request: `Title`, `Message`, `Tags`,
/// `Priority` (high for a person), `Click` when the link is absolute, and
/// `Filename` when a picture is the body. Words outside ASCII are sent as
/// RFC 2047 encoded words, which ntfy decodes.
pub fn headers(message: &Message, with_picture: bool, token: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(&encoded_word(value)) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("title", &message.title);
    put("message", &message.body);
    let tags = match message.kind.as_str() {
        "person" => "bust_in_silhouette",
        "motion" => "eyes",
        _ => "white_check_mark",
    };
    put("tags", tags);
    put(
        "priority",
        if message.urgent() { "high" } else { "default" },
    );
    if message.url.starts_with("https://") || message.url.starts_with("http://") {
        put("click", &message.url);
    }
    if with_picture {
        let name = match message.incident {
            Some(id) => format!("{}-{id}.jpg", message.camera),
            None => format!("{}.jpg", message.camera),
        };
        put("filename", &name);
    }
    if let Some(token) = token {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            h.insert(reqwest::header::AUTHORIZATION, v);
        }
    }
    h
}

/// `text` as is when it is printable ASCII, else as one RFC 2047 encoded
/// word (`=?UTF-8?B?...?=`).
fn encoded_word(text: &str) -> String {
    use base64::Engine;
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_string();
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("=?UTF-8?B?{b64}?=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str, url: &str) -> Message {
        Message {
            title: "Person at yard".into(),
            body: "14:03 \u{b7} gate".into(),
            tag: "lookout-yard-1".into(),
            image: None,
            url: url.into(),
            camera: "yard".into(),
            kind: kind.into(),
            incident: Some(1),
            ts: 0.0,
            update: false,
        }
    }

    #[test]
    fn a_person_is_high_priority_with_its_picture_and_link() {
        let h = headers(
            &message("person", "https://cam.example.org/?camera=yard"),
            true,
            Some("tk"),
        );
        assert_eq!(h["title"], "Person at yard");
        assert_eq!(h["priority"], "high");
        assert_eq!(h["tags"], "bust_in_silhouette");
        assert_eq!(h["click"], "https://cam.example.org/?camera=yard");
        assert_eq!(h["filename"], "yard-1.jpg");
        assert_eq!(h["authorization"], "Bearer tk");
        // "14:03 · gate" is not ASCII: an encoded word that decodes back.
        let m = h["message"].to_str().unwrap();
        let inner = m
            .strip_prefix("=?UTF-8?B?")
            .unwrap()
            .strip_suffix("?=")
            .unwrap();
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), "14:03 \u{b7} gate");
    }

    #[test]
    fn a_relative_link_is_no_click_and_motion_is_default_priority() {
        let h = headers(&message("motion", "/?camera=yard"), false, None);
        assert!(!h.contains_key("click") && !h.contains_key("filename"));
        assert!(!h.contains_key("authorization"));
        assert_eq!(h["priority"], "default");
    }
}

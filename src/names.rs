//! The one rule for names lookout uses as they are (cameras, API tokens).

/// Whether `name` is a name lookout uses as it is: 1-32 of a-z, 0-9, `_` and
/// `-`. Camera names go into URLs, file names and MQTT topics; token names
/// are printed to a terminal (no escape sequences, no forged lines).
pub fn is_plain_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

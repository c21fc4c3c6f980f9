//! How lookout introduces itself to the broker: the client id, the
//! CONNECT options (MQTT 5, with a Maximum Packet Size), TLS, and the
//! connection errors as a person can act on them.
//!
//! # Why MQTT 5
//! A packet larger than a client takes cannot be skipped in MQTT 3.1.1: the
//! client must read it or close the connection, and a retained one comes
//! back at every reconnect. In MQTT 5 the client declares its Maximum
//! Packet Size in CONNECT and the broker must not send it anything larger
//! (spec 3.1.2.11.4); it discards such a message for this client instead.
//! So one oversized retained message on `PREFIX/NAME/cmd` or on Home
//! Assistant's status topic no longer keeps the link down. A broker that
//! speaks only 3.1.1 is refused with an error that says so (no fallback:
//! it would bring the problem back).
//!
//! # Why a random client id
//! A broker closes the older of two sessions with one client id. The node
//! name shows in every discovery topic, so `lookout-NODE` was an id any
//! broker user could take, over and over. The id now ends in 64 random
//! bits, drawn once and kept in the store (in the data directory), so it
//! stays the same across restarts.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, DisconnectReasonCode, LastWill};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{ConnectionError, MqttOptions, StateError};
use rumqttc::{TlsConfiguration, Transport};

use super::config::MqttConfig;
use super::topics::Topics;
use crate::hub::Hub;

/// Largest packet taken from the broker, declared in CONNECT: the broker
/// discards larger messages for lookout instead of sending them. Commands
/// have their own, smaller cap (counted as ignored when over it).
pub(super) const MAX_INCOMING: u32 = 1 << 20;
/// Largest packet sent (a snapshot), unless the broker declares a smaller
/// Maximum Packet Size: then what is over it is dropped (and counted) by
/// the link's publisher, as sending it would end the connection. It sits
/// here, beside [`MAX_INCOMING`], so the feed that sizes snapshots and the
/// link that sends them both read it from below.
pub(super) const MAX_OUTGOING: usize = 16 << 20;
/// Publishes sent but not yet acknowledged; what a dropped connection loses
/// (and counts).
const INFLIGHT: u16 = 32;
/// Store key of the client id's random part.
const KEY_CLIENT_SUFFIX: &str = "mqtt_client_suffix";
/// Random bytes in the client id (16 hex digits).
const SUFFIX_BYTES: usize = 8;

/// `lookout-NODE-XXXXXXXXXXXXXXXX`: the node for the broker's log, then the
/// random part kept in the store. When the store cannot be read the part is
/// drawn for this run only (logged).
pub(super) async fn client_id(hub: &Hub, node: &str) -> String {
    let store = hub.events().store();
    let kept = match store.get(KEY_CLIENT_SUFFIX).await {
        Ok(Some(s)) if valid_suffix(&s) => Some(s),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("mqtt: cannot read the client id: {e}; using a new one for this run");
            return format!("lookout-{node}-{}", random_suffix());
        }
    };
    let suffix = match kept {
        Some(s) => s,
        None => {
            let s = random_suffix();
            if let Err(e) = store.set(KEY_CLIENT_SUFFIX, s.clone()).await {
                tracing::warn!("mqtt: cannot save the client id: {e}; it changes at restart");
            }
            s
        }
    };
    format!("lookout-{node}-{suffix}")
}

fn valid_suffix(s: &str) -> bool {
    s.len() == SUFFIX_BYTES * 2 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn random_suffix() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; SUFFIX_BYTES];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // The system's generator failing is not expected on Linux; the time
        // is a weaker but still unlisted suffix.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client's options: MQTT 5 with a Maximum Packet Size, a clean start,
/// and a last will that says `offline`, retained.
pub(super) fn options(
    c: &MqttConfig,
    topics: &Topics,
    client_id: String,
) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(client_id, c.host.clone(), c.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_outgoing_inflight_upper_limit(INFLIGHT)
        .set_max_packet_size(Some(MAX_INCOMING))
        .set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
            None,
        ));
    sign_in(&mut o, c)?;
    Ok(o)
}

/// The credentials, and TLS for `mqtts://`.
fn sign_in(o: &mut MqttOptions, c: &MqttConfig) -> Result<(), String> {
    if let Some(user) = &c.user {
        o.set_credentials(user.clone(), c.password.clone().unwrap_or_default());
    }
    if c.tls {
        let tls = client_tls(c)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(())
}

/// Connects once and hangs up, for `lookout doctor`: `Ok` when the broker
/// accepts the connection (its CONNACK) within `within`, else why not, as
/// `describe` says it. With a client id of its own (`lookout-doctor-`
/// and random hex: a running lookout's session is not taken over) and no
/// last will (a probe cut off must not mark a running lookout offline).
pub async fn probe(c: &MqttConfig, within: Duration) -> Result<(), String> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event};
    let id = format!("lookout-doctor-{}", random_suffix());
    let mut o = MqttOptions::new(id, c.host.clone(), c.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_max_packet_size(Some(MAX_INCOMING))
        .set_connection_timeout(within.as_secs().max(1));
    sign_in(&mut o, c)?;
    let (client, mut events) = AsyncClient::new(o, 4);
    let accepted = tokio::time::timeout(within, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(describe(&e, c, true)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "no answer from the broker within {} s",
            within.as_secs()
        ))
    });
    if accepted.is_ok() {
        // A clean DISCONNECT, so the broker logs no error for the probe.
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(event) = events.poll().await {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    accepted
}

/// rustls with the public roots, or only the CA(s) of `--mqtt-ca-file`.
fn client_tls(c: &MqttConfig) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match &c.ca_file {
        Some(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read --mqtt-ca-file {shown}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("--mqtt-ca-file {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("--mqtt-ca-file {shown}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("--mqtt-ca-file {shown} holds no certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A connection error as a person can act on it. `before_connack`: the
/// broker had not accepted the connection yet.
pub(super) fn describe(e: &ConnectionError, c: &MqttConfig, before_connack: bool) -> String {
    use rumqttc::v5::mqttbytes::Error as Wire;
    let refused = |code: &ConnectReturnCode| match code {
        // Brokers differ in which of the two a wrong password gets
        // (mosquitto 2 answers "not authorized").
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => format!(
            "the broker refused user {:?}: wrong user name or password, or not allowed \
             (the password comes from LOOKOUT_MQTT_PASSWORD or [mqtt] password)",
            c.user.as_deref().unwrap_or("")
        ),
        ConnectReturnCode::UnsupportedProtocolVersion
        | ConnectReturnCode::RefusedProtocolVersion => only_311(),
        code => format!("the broker refused: {code:?}"),
    };
    match e {
        ConnectionError::ConnectionRefused(code)
        | ConnectionError::MqttState(StateError::ConnFail { reason: code }) => refused(code),
        // A 3.1.1 broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK
        // (return code 1, "unacceptable protocol version"), which reads as
        // a cut-off MQTT 5 one, or with nothing; then it hangs up.
        ConnectionError::MqttState(StateError::Deserialization(
            Wire::InvalidConnectReturnCode(1),
        ))
        | ConnectionError::NotConnAck(_) => only_311(),
        ConnectionError::MqttState(StateError::ConnectionAborted) if before_connack => format!(
            "the broker closed the connection without accepting it; {}",
            maybe_311()
        ),
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        }) => "the broker closed the connection: another client connected with lookout's \
               client id"
            .into(),
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => format!(
            "the broker closed the connection: {reason_code:?}{}",
            reason_string
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        ConnectionError::Timeout(_) => "no answer from the broker (timed out)".into(),
        other => other.to_string(),
    }
}

fn only_311() -> String {
    format!("the broker does not speak MQTT 5 ({NEEDS_5})")
}

fn maybe_311() -> String {
    format!("it may not speak MQTT 5 ({NEEDS_5})")
}

const NEEDS_5: &str = "lookout needs it: Mosquitto 1.6 or later, EMQX, HiveMQ, VerneMQ, \
                       NanoMQ and Home Assistant's Mosquitto add-on do";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_random_hex_and_checked() {
        let (a, b) = (random_suffix(), random_suffix());
        assert!(valid_suffix(&a) && valid_suffix(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!valid_suffix("testnode") && !valid_suffix(""));
    }
}

//! The connection: connects (and reconnects, with backoff), publishes the
//! outbox while connected, and takes commands in.
//!
//! Three tasks beside the event loop, so none waits for another: the feed
//! fills the outbox, the publisher empties it into the client while the link
//! is up, and the command worker runs commands one at a time, in order, on
//! the same executor as `/control`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Outgoing, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::feed::Feed;
use super::outbox::{Message, Outbox};
use super::{discovery, Incoming, Mqtt, MqttConfig, Topics};
use crate::hub::Hub;

/// Largest packet taken from the broker (commands, other devices'
/// discovery configs). A larger one ends the connection (rumqttc's rule), so
/// it is generous; commands have their own, smaller cap.
const MAX_INCOMING: usize = 1 << 20;
/// Largest packet sent (a snapshot).
const MAX_OUTGOING: usize = 16 << 20;
/// Largest command message, as on the WebSocket.
const MAX_COMMAND: usize = crate::web::ws::MAX_MESSAGE;
/// Commands waiting to run; more are dropped (and logged).
const COMMAND_QUEUE: usize = 64;
/// Requests between the publisher and the event loop.
const CLIENT_QUEUE: usize = 16;
/// First wait after a failed connection; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The same connection error is logged again after this long.
const RELOG_EVERY: Duration = Duration::from_secs(300);
/// How long a clean stop may take to say `offline` (within the 1.5 s the
/// binary gives the server to stop).
const STOP_WITHIN: Duration = Duration::from_secs(1);

/// One command taken from the broker.
struct Taken {
    cam: String,
    threshold: bool,
    payload: Bytes,
}

/// Runs the link until `shutdown` fires, then says `offline` and
/// disconnects.
pub async fn run(mqtt: Mqtt, hub: Arc<Hub>, dashboard: String, shutdown: CancellationToken) {
    let Mqtt { config, status } = mqtt;
    let topics = Topics::new(&config);
    let options = match options(&config, &topics) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("MQTT {}: {e}; MQTT is off", config.broker());
            status.set_error(e);
            return;
        }
    };
    let (client, mut events) = AsyncClient::new(options, CLIENT_QUEUE);
    let (connected_tx, connected_rx) = watch::channel(false);
    let republish = Arc::new(Notify::new());
    let outbox = status.outbox.clone();
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let helpers = [
        tokio::spawn(publisher(client.clone(), outbox.clone(), connected_rx)),
        tokio::spawn(
            Feed {
                hub: hub.clone(),
                topics: topics.clone(),
                outbox: outbox.clone(),
                republish: republish.clone(),
                dashboard,
                commands: config.commands,
            }
            .run(),
        ),
        tokio::spawn(commands(
            hub.clone(),
            topics.clone(),
            outbox.clone(),
            command_rx,
        )),
    ];
    let mut backoff = BACKOFF_MIN;
    let mut logged: Option<(String, Instant)> = None;
    loop {
        let polled = tokio::select! {
            p = events.poll() => p,
            _ = shutdown.cancelled() => break,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("MQTT connected to {}", config.broker());
                backoff = BACKOFF_MIN;
                logged = None;
                subscribe(&client, &topics, &hub, config.commands);
                outbox.push(Message::state(topics.availability(), "online"));
                republish.notify_one();
                status.connected.store(true, Ordering::Relaxed);
                let _ = connected_tx.send(true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                on_message(
                    &p.topic,
                    p.payload,
                    &topics,
                    &hub,
                    &outbox,
                    &republish,
                    &command_tx,
                );
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                status.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                status.connected.store(false, Ordering::Relaxed);
                let _ = connected_tx.send(false);
                let text = describe(&e, &config);
                let again = logged
                    .as_ref()
                    .is_none_or(|(last, at)| *last != text || at.elapsed() >= RELOG_EVERY);
                if again {
                    tracing::warn!(
                        "MQTT {}: {text}; retrying with backoff (up to {} s)",
                        config.broker(),
                        BACKOFF_MAX.as_secs()
                    );
                    logged = Some((text.clone(), Instant::now()));
                } else {
                    tracing::debug!("MQTT {}: {text}", config.broker());
                }
                status.set_error(text);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    for task in &helpers {
        task.abort();
    }
    if status.connected() {
        say_offline(&client, &mut events, &topics).await;
        status.connected.store(false, Ordering::Relaxed);
    }
}

/// The client's options: the last will says `offline`, retained.
fn options(c: &MqttConfig, topics: &Topics) -> Result<MqttOptions, String> {
    let mut o = MqttOptions::new(format!("lookout-{}", c.node), c.host.clone(), c.port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &c.user {
        o.set_credentials(user.clone(), c.password.clone().unwrap_or_default());
    }
    if c.tls {
        let tls = client_tls(c)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(o)
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

/// A connection error as a person can act on it.
fn describe(e: &ConnectionError, c: &MqttConfig) -> String {
    match e {
        // Brokers differ in which of the two a wrong password gets
        // (mosquitto 2 answers "not authorized").
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => format!(
            "the broker refused user {:?}: wrong user name or password, or not allowed \
             (the password comes from LOOKOUT_MQTT_PASSWORD or [mqtt] password)",
            c.user.as_deref().unwrap_or("")
        ),
        ConnectionError::ConnectionRefused(code) => format!("the broker refused: {code:?}"),
        ConnectionError::NetworkTimeout => "no answer from the broker (timed out)".into(),
        other => other.to_string(),
    }
}

/// Subscriptions are per session (clean sessions): made on every connect.
fn subscribe(client: &AsyncClient, topics: &Topics, hub: &Hub, commands: bool) {
    let mut filters = vec![
        rumqttc::SubscribeFilter::new(topics.ha_status(), QoS::AtLeastOnce),
        rumqttc::SubscribeFilter::new(topics.all_device_configs(), QoS::AtLeastOnce),
    ];
    if commands {
        for cam in hub.cams() {
            for leaf in ["cmd", "threshold/set"] {
                filters.push(rumqttc::SubscribeFilter::new(
                    topics.cam(&cam.name, leaf),
                    QoS::AtLeastOnce,
                ));
            }
        }
    }
    // The request queue was emptied by the reconnect; it has room.
    if let Err(e) = client.try_subscribe_many(filters) {
        tracing::warn!("MQTT: cannot subscribe: {e}");
    }
}

/// Dispatches one incoming message; never waits (the event loop runs this).
#[allow(clippy::too_many_arguments)]
fn on_message(
    topic: &str,
    payload: Bytes,
    topics: &Topics,
    hub: &Hub,
    outbox: &Outbox,
    republish: &Notify,
    commands: &mpsc::Sender<Taken>,
) {
    let (cam, threshold) = match topics.incoming(topic) {
        Incoming::HaStatus => {
            if &payload[..] == b"online" {
                tracing::info!("Home Assistant is online: publishing discovery again");
                republish.notify_one();
            }
            return;
        }
        Incoming::DeviceConfig(id) => {
            if !payload.is_empty()
                && discovery::is_stale(topics, id, &payload, |c| hub.cam(c).is_some())
            {
                tracing::info!(
                    "MQTT: removing {id}, a camera no longer configured, from discovery"
                );
                outbox.push(Message::state(topic.to_string(), Bytes::new()));
            }
            return;
        }
        Incoming::Command(cam) => (cam, false),
        Incoming::Threshold(cam) => (cam, true),
        Incoming::Other => return,
    };
    if payload.len() > MAX_COMMAND {
        tracing::warn!(
            "MQTT: ignoring a {} byte command on {topic} (at most {MAX_COMMAND})",
            payload.len()
        );
        return;
    }
    let taken = Taken {
        cam: cam.to_string(),
        threshold,
        payload,
    };
    if commands.try_send(taken).is_err() {
        tracing::warn!("MQTT: too many commands waiting; dropped one on {topic}");
    }
}

/// Runs commands in order; each reply goes to `PREFIX/NAME/reply`.
async fn commands(
    hub: Arc<Hub>,
    topics: Topics,
    outbox: Arc<Outbox>,
    mut rx: mpsc::Receiver<Taken>,
) {
    while let Some(t) = rx.recv().await {
        let Some(cam) = hub.cam(&t.cam).cloned() else {
            continue;
        };
        let message = if t.threshold {
            threshold_command(&t.payload)
        } else {
            t.payload.to_vec()
        };
        let reply = crate::control::handle(&hub, &cam, &message).await;
        outbox.push(Message::event(
            topics.cam(&cam.name, "reply"),
            reply.to_string(),
        ));
    }
}

/// `threshold/set`'s payload as a `set` command, so it is validated (and
/// answered) as `POST /config` and `/control` would. Home Assistant may send
/// `42.0` for 42.
fn threshold_command(payload: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(payload);
    let value = match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (0.0..=255.0).contains(&f) => json!(f as u64),
            _ => Value::Number(n),
        },
        Ok(other) => other,
        Err(_) => Value::String(text.trim().to_string()),
    };
    json!({"cmd": "set", "threshold": value})
        .to_string()
        .into_bytes()
}

/// Moves the outbox into the client while the link is up.
async fn publisher(client: AsyncClient, outbox: Arc<Outbox>, mut up: watch::Receiver<bool>) {
    loop {
        if up.wait_for(|c| *c).await.is_err() {
            return;
        }
        let m = outbox.next().await;
        if let Err(e) = client
            .publish_bytes(m.topic, QoS::AtLeastOnce, m.retain, m.payload)
            .await
        {
            tracing::debug!("MQTT: cannot publish: {e}");
        }
    }
}

/// A clean stop: `offline` (retained), then DISCONNECT, so the broker does
/// not send the last will (which says the same).
async fn say_offline(client: &AsyncClient, events: &mut EventLoop, topics: &Topics) {
    let client = client.clone();
    let topic = topics.availability();
    let bye = tokio::spawn(async move {
        let _ = client
            .publish(topic, QoS::AtLeastOnce, true, "offline")
            .await;
        let _ = client.disconnect().await;
    });
    let drained = tokio::time::timeout(STOP_WITHIN, async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("MQTT: the broker did not take `offline` in time; its last will says it");
    }
    bye.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(payload: &str) -> Value {
        serde_json::from_slice(&threshold_command(payload.as_bytes())).unwrap()
    }

    #[test]
    fn threshold_payloads_become_set_commands() {
        assert_eq!(parsed("42"), json!({"cmd": "set", "threshold": 42}));
        assert_eq!(parsed(" 42.0\n"), json!({"cmd": "set", "threshold": 42}));
        assert_eq!(parsed("4.5"), json!({"cmd": "set", "threshold": 4.5}));
        assert_eq!(parsed("-3"), json!({"cmd": "set", "threshold": -3}));
        assert_eq!(parsed("high"), json!({"cmd": "set", "threshold": "high"}));
    }
}

//! The connection: connects (and reconnects, with backoff), publishes the
//! outbox while connected, and takes commands in.
//!
//! Three tasks beside the event loop, so none waits for another: the feed
//! fills the outbox, the publisher empties it into the client while the link
//! is up, and the command worker runs commands one at a time, in order, on
//! the same executor as `/control`. What the broker is told at CONNECT (MQTT
//! 5, the Maximum Packet Size, the client id) is in `connect.rs`.
//!
//! Every subscription asks the broker not to send what is retained on it
//! (MQTT 5 Retain Handling 2): a retained command would run again at every
//! reconnect, and a retained Home Assistant birth adds nothing to what a
//! connect republishes anyway. The `retain` check stays for brokers that
//! send them all the same.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, RetainForwardRule, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use rumqttc::Outgoing;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::connect::{self, MAX_INCOMING};
use super::feed::{Feed, Republish};
use super::outbox::{Kind, Message, Outbox};
use super::status::{Mqtt, MqttStatus};
use super::topics::{Route, Topics};
use crate::auth::Scope;
use crate::control;
use crate::hub::Hub;

/// A connection that lasted this long resets the backoff; a shorter one
/// (a broker that takes us and drops us at once) keeps doubling it.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Messages a broker client can cause (a command dropped, a Home Assistant
/// birth) are logged at most this often.
const QUIET_LOG: Duration = Duration::from_secs(60);
/// Largest command message, as on the WebSocket. Smaller than the packets
/// taken, so a larger command arrives and is counted as ignored.
const MAX_COMMAND: usize = crate::web::ws::MAX_MESSAGE;
const _: () = assert!(MAX_COMMAND < MAX_INCOMING as usize);
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
/// A PUBLISH's bytes beyond its topic and payload, at most: fixed header
/// (5), topic length (2), packet id (2), properties length (1).
const PUBLISH_OVERHEAD: usize = 10;

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
    let client_id = connect::client_id(&hub, &config.node).await;
    let options = match connect::options(&config, &topics, client_id) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("MQTT {}: {e}; MQTT is off", config.broker());
            status.set_error(e);
            return;
        }
    };
    let (client, mut events) = AsyncClient::new(options, CLIENT_QUEUE);
    let (connected_tx, connected_rx) = watch::channel(false);
    let republish = Arc::new(Republish::default());
    let outbox = status.outbox.clone();
    // The broker's Maximum Packet Size (0: none declared).
    let broker_max = Arc::new(AtomicU32::new(0));
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let helpers = [
        tokio::spawn(publisher(
            client.clone(),
            outbox.clone(),
            connected_rx,
            broker_max.clone(),
        )),
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
    let mut retry = Retry {
        backoff: BACKOFF_MIN,
        logged: None,
        up_since: None,
    };
    let quiet = Quiet::default();
    loop {
        let polled = tokio::select! {
            p = events.poll() => p,
            _ = shutdown.cancelled() => break,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!("MQTT connected to {}", config.broker());
                retry.up_since = Some(Instant::now());
                retry.logged = None;
                let max = ack.properties.as_ref().and_then(|p| p.max_packet_size);
                broker_max.store(max.unwrap_or(0), Ordering::Relaxed);
                subscribe(&client, &topics, &hub, config.commands);
                outbox.push_first(Message::new(Kind::Keep, topics.availability(), "online"));
                republish.now();
                status.connected.store(true, Ordering::Relaxed);
                let _ = connected_tx.send(true);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Ok(topic) = std::str::from_utf8(&p.topic) else {
                    continue;
                };
                let received = Received {
                    topic,
                    payload: p.payload.clone(),
                    retained: p.retain,
                };
                on_message(received, &topics, &republish, &command_tx, &quiet, &status);
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                status.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                warn_refused(&ack.return_codes, config.user.as_deref());
            }
            Ok(_) => {}
            Err(e) => {
                let wait = retry.failed(&e, &mut events, &config, &status, &connected_tx);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
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

/// Warns when the broker refused subscriptions (its ACLs): commands or Home
/// Assistant's restarts would go unheard.
fn warn_refused(codes: &[SubscribeReasonCode], user: Option<&str>) {
    let refused = codes
        .iter()
        .filter(|c| !matches!(c, SubscribeReasonCode::Success(_)))
        .count();
    if refused > 0 {
        tracing::warn!(
            "MQTT: the broker refused {refused} subscription(s): commands or \
             Home Assistant's restarts go unheard (check the broker's ACLs \
             for user {:?})",
            user.unwrap_or("")
        );
    }
}

/// The reconnect backoff, and what was last logged about a failure.
struct Retry {
    backoff: Duration,
    logged: Option<(String, Instant)>,
    up_since: Option<Instant>,
}

impl Retry {
    /// The connection failed: counts what it lost, records and logs why
    /// (the same reason at most every [`RELOG_EVERY`]), and returns how long
    /// to wait before the next try (doubling up to [`BACKOFF_MAX`]; back to
    /// the start after a connection that held).
    fn failed(
        &mut self,
        e: &rumqttc::v5::ConnectionError,
        events: &mut EventLoop,
        config: &super::config::MqttConfig,
        status: &MqttStatus,
        connected_tx: &watch::Sender<bool>,
    ) -> Duration {
        let was_up = status.connected.swap(false, Ordering::Relaxed);
        let _ = connected_tx.send(false);
        // A clean start resumes nothing: what was sent but not
        // acknowledged, or still queued in the client, is lost.
        let lost = events
            .pending
            .drain(..)
            .filter(|r| matches!(r, rumqttc::v5::Request::Publish(_)))
            .count();
        status.outbox.count_lost(lost as u64);
        if self
            .up_since
            .take()
            .is_some_and(|at| at.elapsed() >= STABLE_AFTER)
        {
            self.backoff = BACKOFF_MIN;
        }
        let text = connect::describe(e, config, !was_up);
        status.set_error(text.clone());
        let again = self
            .logged
            .as_ref()
            .is_none_or(|(last, at)| *last != text || at.elapsed() >= RELOG_EVERY);
        if again {
            tracing::warn!(
                "MQTT {}: {text}; retrying with backoff (up to {} s)",
                config.broker(),
                BACKOFF_MAX.as_secs()
            );
            self.logged = Some((text, Instant::now()));
        } else {
            tracing::debug!("MQTT {}: {text}", config.broker());
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        wait
    }
}

/// Subscriptions are per session (clean start): made on every connect.
/// None asks for what is retained (see the module docs).
fn subscribe(client: &AsyncClient, topics: &Topics, hub: &Hub, commands: bool) {
    let filter = |topic: String| Filter {
        retain_forward_rule: RetainForwardRule::Never,
        ..Filter::new(topic, QoS::AtLeastOnce)
    };
    let mut filters = vec![filter(topics.ha_status())];
    if commands {
        for cam in hub.cams() {
            for leaf in ["cmd", "threshold/set"] {
                filters.push(filter(topics.cam(&cam.name, leaf)));
            }
        }
    }
    // The reconnect emptied the request queue (the publisher waits for the
    // link to be up), so it has room.
    if let Err(e) = client.try_subscribe_many(filters) {
        tracing::warn!("MQTT: cannot subscribe: {e}");
    }
}

/// One message from the broker.
struct Received<'a> {
    topic: &'a str,
    payload: Bytes,
    retained: bool,
}

/// Dispatches one incoming message; never waits (the event loop runs this).
fn on_message(
    m: Received<'_>,
    topics: &Topics,
    republish: &Republish,
    commands: &mpsc::Sender<Taken>,
    quiet: &Quiet,
    status: &MqttStatus,
) {
    let topic = m.topic;
    let (cam, threshold) = match topics.route(topic) {
        Route::HaStatus => {
            if &m.payload[..] == b"online" {
                quiet.info("Home Assistant is online: publishing discovery again");
                // Paced: a flood of births republishes once now and at most
                // once more later.
                republish.asked();
            }
            return;
        }
        Route::Command(cam) => (cam, false),
        Route::Threshold(cam) => (cam, true),
        Route::Other => return,
    };
    if m.retained {
        // A retained command would run again at every reconnect.
        status.ignored.fetch_add(1, Ordering::Relaxed);
        quiet.warn(&format!(
            "MQTT: ignoring a retained command on {topic} (publish commands without retain)"
        ));
        return;
    }
    if m.payload.len() > MAX_COMMAND {
        status.ignored.fetch_add(1, Ordering::Relaxed);
        quiet.warn(&format!(
            "MQTT: ignoring a {} byte command on {topic} (at most {MAX_COMMAND})",
            m.payload.len()
        ));
        return;
    }
    let taken = Taken {
        cam: cam.to_string(),
        threshold,
        payload: m.payload,
    };
    if commands.try_send(taken).is_err() {
        status.ignored.fetch_add(1, Ordering::Relaxed);
        quiet.warn(&format!(
            "MQTT: too many commands waiting; dropped one on {topic}"
        ));
    }
}

/// Logs at most once per [`QUIET_LOG`], for what a broker client can repeat
/// at will.
#[derive(Default)]
struct Quiet {
    last: std::sync::Mutex<Option<Instant>>,
}

impl Quiet {
    fn due(&self) -> bool {
        let mut last = crate::sync::lock(&self.last);
        if last.is_some_and(|at| at.elapsed() < QUIET_LOG) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn info(&self, text: &str) {
        if self.due() {
            tracing::info!("{text}");
        }
    }

    fn warn(&self, text: &str) {
        if self.due() {
            tracing::warn!("{text}");
        }
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
        // The topic names the camera: a `"camera"` naming another one would
        // step around ACLs written per camera topic.
        let addressed = control::parse_addressed(&message);
        let handled = match addressed.camera.as_deref() {
            Some(other) if other != cam.name => control::Handled {
                id: addressed.id,
                result: Err(control::CommandError::UnknownCamera),
            },
            _ => control::run_addressed(&hub, &cam, addressed, Scope::Control).await,
        };
        let reply = handled.to_json();
        outbox.push(Message::new(
            Kind::Event,
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

/// Moves the outbox into the client while the link is up. A message over
/// the broker's Maximum Packet Size is dropped and counted: handed to the
/// client, it would end the connection (and come back at the reconnect).
async fn publisher(
    client: AsyncClient,
    outbox: Arc<Outbox>,
    mut up: watch::Receiver<bool>,
    broker_max: Arc<AtomicU32>,
) {
    loop {
        if up.wait_for(|c| *c).await.is_err() {
            return;
        }
        let m = outbox.next().await;
        let max = broker_max.load(Ordering::Relaxed) as usize;
        let size = m.topic.len() + m.payload.len() + PUBLISH_OVERHEAD;
        if max > 0 && size > max {
            tracing::warn!(
                "MQTT: not publishing {} bytes on {}: the broker takes at most {max}",
                m.payload.len(),
                m.topic
            );
            outbox.count_lost(1);
            continue;
        }
        let retain = m.retain();
        if let Err(e) = client
            .publish_bytes(m.topic, QoS::AtLeastOnce, retain, m.payload)
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
    // On until the broker hangs up: closing first, with its acknowledgement
    // of `offline` unread, would reset the connection, and the broker might
    // never read DISCONNECT (then it sends the last will, `offline` again).
    let mut said_bye = false;
    let _ = tokio::time::timeout(STOP_WITHIN, async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) => said_bye = true,
                Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    if !said_bye {
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

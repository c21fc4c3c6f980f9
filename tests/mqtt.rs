//! MQTT against a real broker (Debian's mosquitto, on a free loopback port
//! with a password file): Home Assistant discovery, motion and state,
//! commands and their replies, availability on a clean stop and on
//! `kill -9`, a broker restart, and a wrong password; and what a broker user
//! could do to the link: oversized retained messages, taking over the
//! client id, a flood of Home Assistant births.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::broker::{Broker, NODE, PASSWORD, USER};
use common::{wait_until, Binary, MjpegClient, TestServer, STILL};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// The periodic scene: 4 s of movement (an episode) every 24 s.
const MOVING: &str = "synthetic:?size=320x180&fps=10";
const WAIT: Duration = Duration::from_secs(30);

/// One message as a subscriber got it.
#[derive(Debug, Clone)]
struct Got {
    topic: String,
    payload: Bytes,
    retain: bool,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e})", self.topic))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap_or("<binary>")
    }
}

/// A test client: subscribes to `filters` and keeps everything that
/// arrives, so waiting for one topic never loses another's messages.
struct Watcher {
    client: AsyncClient,
    got: Arc<(Mutex<Vec<Got>>, Notify)>,
    /// Per topic, where the next search starts (after the last match).
    cursor: HashMap<String, usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    async fn connect(broker: &Broker, filters: &[&str]) -> Watcher {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut opts = MqttOptions::new(
            format!("test-{}-{n}", std::process::id()),
            "127.0.0.1",
            broker.port,
        );
        opts.set_credentials(USER, PASSWORD)
            .set_max_packet_size(16 << 20, 16 << 20);
        if let Some(ca) = &broker.ca {
            opts.set_transport(rumqttc::Transport::tls(
                std::fs::read(ca).unwrap(),
                None,
                None,
            ));
        }
        let (client, mut events) = AsyncClient::new(opts, 64);
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        }
        let got = Arc::new((Mutex::new(Vec::new()), Notify::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        let mut acks = 0;
        let want = filters.len();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == want {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        sink.0.lock().unwrap().push(Got {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                            retain: p.retain,
                        });
                        sink.1.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("subscribed in time")
            .expect("subscribed");
        Watcher {
            client,
            got,
            cursor: HashMap::new(),
            task,
        }
    }

    /// The first message on `topic` that `pick` accepts, after the last one
    /// this returned for `topic` (waiting for it).
    async fn next(&mut self, topic: &str, pick: impl Fn(&Got) -> bool) -> Got {
        let from = self.cursor.get(topic).copied().unwrap_or(0);
        let got = self.got.clone();
        let seen = tokio::time::timeout(WAIT, async {
            loop {
                let notified = got.1.notified();
                {
                    let list = got.0.lock().unwrap();
                    if let Some(i) =
                        (from..list.len()).find(|&i| list[i].topic == topic && pick(&list[i]))
                    {
                        return (i, list[i].clone());
                    }
                }
                notified.await;
            }
        })
        .await;
        let (i, found) = seen.unwrap_or_else(|_| {
            let list = self.got.0.lock().unwrap();
            let on_topic: Vec<String> = list
                .iter()
                .filter(|g| g.topic == topic)
                .map(|g| g.text().chars().take(200).collect())
                .collect();
            panic!("no match on {topic} within {WAIT:?}; got {on_topic:?}")
        });
        self.cursor.insert(topic.to_string(), i + 1);
        found
    }

    async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_string())
            .await
            .unwrap();
    }

    /// Sends a command and returns the reply that echoes `id`.
    async fn command(&mut self, cam: &str, body: Value) -> Value {
        let id = body["id"].clone();
        self.publish(&format!("lookout/{cam}/cmd"), &body.to_string())
            .await;
        self.next(&format!("lookout/{cam}/reply"), |g| g.json()["id"] == id)
            .await
            .json()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server_with(broker: &Broker, source: &str, cooldown_s: u32) -> TestServer {
    let mqtt = broker.config();
    TestServer::start_with(source, tempfile::tempdir().unwrap(), move |c| {
        c.cameras[0].settings.cooldown_s = cooldown_s;
        c.mqtt = Some(mqtt);
    })
    .await
}

async fn server_with_dir(broker: &Broker, source: &str, dir: tempfile::TempDir) -> TestServer {
    let mqtt = broker.config();
    TestServer::start_with(source, dir, move |c| {
        c.cameras[0].settings.cooldown_s = 5;
        c.mqtt = Some(mqtt);
    })
    .await
}

/// A server with cameras `names` (still scenes) on `broker`, in `dir`.
async fn cameras_on(
    broker: &Broker,
    names: &[&str],
    dir: tempfile::TempDir,
    commands: bool,
) -> TestServer {
    let mut mqtt = broker.config();
    mqtt.commands = commands;
    let cameras: Vec<_> = names
        .iter()
        .map(|n| lookout::config::CameraConfig::new(n, STILL).unwrap())
        .collect();
    TestServer::start_with(STILL, dir, move |c| {
        c.cameras = cameras;
        c.mqtt = Some(mqtt);
    })
    .await
}

fn device_topic(cam: &str) -> String {
    format!("homeassistant/device/lookout_{NODE}_{cam}/config")
}

#[tokio::test]
async fn discovery_motion_state_snapshot_and_events_reach_the_broker() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["homeassistant/#", "lookout/#"]).await;
    let server = server_with(&broker, MOVING, 1).await;

    let config = w.next(&device_topic("cam"), |_| true).await.json();
    assert_eq!(
        config["dev"]["identifiers"],
        json!([format!("lookout_{NODE}_cam")])
    );
    assert_eq!(config["dev"]["manufacturer"], "lookout");
    assert_eq!(config["o"]["name"], "lookout");
    assert_eq!(config["availability_topic"], "lookout/availability");
    let cmps = config["cmps"].as_object().expect("components");
    for (key, platform) in [
        ("motion", "binary_sensor"),
        ("snapshot", "image"),
        ("trigger_count", "sensor"),
        ("motion_score", "sensor"),
        ("threshold", "number"),
        ("snapshot_now", "button"),
        ("reset", "button"),
    ] {
        assert_eq!(cmps[key]["p"], platform, "{key}");
        assert!(
            cmps[key]["unique_id"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{key}"
        );
    }
    assert_eq!(cmps["motion"]["device_class"], "motion");
    assert_eq!(cmps["trigger_count"]["state_class"], "total_increasing");
    assert_eq!(
        (
            cmps["threshold"]["min"].clone(),
            cmps["threshold"]["max"].clone()
        ),
        (json!(0), json!(100))
    );

    // An episode: ON, a motion event with its id and kind, the snapshot
    // saved at its start, then OFF.
    w.next("lookout/cam/motion", |g| g.payload == "ON").await;
    let event = w
        .next("lookout/cam/events", |g| g.json()["kind"] == "motion")
        .await
        .json();
    assert!(event["id"].as_i64().is_some_and(|id| id > 0), "{event}");
    assert_eq!(event["camera"], "cam");
    let snap = w.next("lookout/cam/snapshot", |_| true).await;
    assert!(snap.payload.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let state = w
        .next("lookout/cam/state", |g| {
            g.json()["trigger_count"].as_u64() >= Some(1)
        })
        .await
        .json();
    assert_eq!(state["threshold"], 12);
    assert_eq!(state["source"], "running");
    w.next("lookout/cam/motion", |g| g.payload == "OFF").await;
    w.next("lookout/cam/events", |g| g.json()["kind"] == "motion_end")
        .await;

    // What a client connecting now gets is retained.
    let mut late = Watcher::connect(&broker, &["homeassistant/#", "lookout/#"]).await;
    assert!(late.next(&device_topic("cam"), |_| true).await.retain);
    let online = late.next("lookout/availability", |_| true).await;
    assert_eq!((online.text(), online.retain), ("online", true));
    assert!(late.next("lookout/cam/snapshot", |_| true).await.retain);
    assert!(late.next("lookout/cam/motion", |_| true).await.retain);

    let status = server.status().await;
    assert_eq!(status["mqtt"]["connected"], true, "{status}");
    assert!(status["mqtt"]["sent"].as_u64().unwrap() > 5, "{status}");
    assert_eq!(status["mqtt"]["dropped"], 0, "{status}");
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "lookout_mqtt_connected 1"),
        "{metrics}"
    );

    // The counter sensor follows a reset.
    w.publish("lookout/cam/cmd", r#"{"cmd": "reset"}"#).await;
    w.next("lookout/cam/state", |g| g.json()["trigger_count"] == 0)
        .await;

    // A clean stop says offline (retained), and the broker keeps it.
    server.stop().await.expect("clean stop");
    says_offline(&broker, &mut w).await;
}

#[tokio::test]
async fn commands_and_threshold_run_like_control_with_the_same_replies() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["lookout/#"]).await;
    let server = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    server.wait_for_frame().await;

    let pong = w.command("cam", json!({"cmd": "ping", "id": 7})).await;
    assert_eq!(pong["ok"], true);
    assert!(pong["pong"].as_f64().is_some());
    let unknown = w.command("cam", json!({"cmd": "dance", "id": "x"})).await;
    assert_eq!(unknown, json!({"error": "unknown command", "id": "x"}));
    // The topic names the camera; the message cannot name another one.
    let other = w
        .command("cam", json!({"cmd": "reset", "camera": "shed", "id": 9}))
        .await;
    assert_eq!(other, json!({"error": "unknown camera", "id": 9}));
    let saved = w
        .command("cam", json!({"cmd": "snapshot_now", "id": 1}))
        .await;
    assert_eq!(saved["ok"], true, "{saved}");
    let url = saved["url"].as_str().unwrap();
    assert_eq!(reqwest::get(server.url(url)).await.unwrap().status(), 200);
    let bad = w
        .command("cam", json!({"cmd": "set", "threshold": 101, "id": 2}))
        .await;
    assert_eq!(bad["ok"], false, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("threshold"),
        "{bad}"
    );

    // Not JSON: the WebSocket's reply (no id to echo).
    w.publish("lookout/cam/cmd", "not json").await;
    let reply = w
        .next("lookout/cam/reply", |g| g.json().get("id").is_none())
        .await;
    assert_eq!(reply.json(), json!({"error": "bad json"}));

    // threshold/set: validated like POST /config; bad values change nothing.
    w.publish("lookout/cam/threshold/set", "40").await;
    w.next("lookout/cam/state", |g| g.json()["threshold"] == 40)
        .await;
    assert_eq!(server.get_json("/config").await["threshold"], 40);
    for bad in ["400", "-1", "abc", "4.5", ""] {
        w.publish("lookout/cam/threshold/set", bad).await;
        let reply = w
            .next("lookout/cam/reply", |g| g.json()["ok"] == false)
            .await
            .json();
        assert!(
            reply["error"].as_str().unwrap().contains("threshold"),
            "{bad}: {reply}"
        );
    }
    assert_eq!(server.get_json("/config").await["threshold"], 40);
    // Home Assistant's slider may send a float for a whole number.
    w.publish("lookout/cam/threshold/set", "25.0").await;
    w.next("lookout/cam/state", |g| g.json()["threshold"] == 25)
        .await;

    let reset = w.command("cam", json!({"cmd": "reset", "id": 3})).await;
    assert_eq!(reset, json!({"ok": true, "counters": "reset", "id": 3}));

    // Home Assistant restarting (its birth message) gets discovery again.
    let mut ha = Watcher::connect(&broker, &["homeassistant/device/+/config"]).await;
    ha.next(&device_topic("cam"), |g| g.retain).await;
    w.publish("homeassistant/status", "online").await;
    let again = ha.next(&device_topic("cam"), |g| !g.retain).await;
    assert_eq!(again.json()["dev"]["name"], "cam");
}

#[tokio::test]
async fn a_retained_command_runs_once_not_at_every_reconnect() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["lookout/#"]).await;
    let first = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    let retained = json!({"cmd": "ping", "id": "retained"}).to_string();
    w.client
        .publish("lookout/cam/cmd", QoS::AtLeastOnce, true, retained)
        .await
        .unwrap();
    // Live, it is a command like any other.
    w.next("lookout/cam/reply", |g| g.json()["id"] == "retained")
        .await;
    first.stop().await.expect("clean stop");
    w.next("lookout/availability", |g| g.payload == "offline")
        .await;
    // The next start gets it again from the broker, as retained, and
    // passes over it. The broker keeps the order of one client's messages,
    // so the reply to the command after it comes after it was passed over.
    let _second = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    w.command("cam", json!({"cmd": "ping", "id": "after"}))
        .await;
    let got = w.got.0.lock().unwrap().clone();
    let ran = got
        .iter()
        .filter(|g| g.topic == "lookout/cam/reply" && g.json()["id"] == "retained")
        .count();
    assert_eq!(ran, 1, "a retained command ran again at a reconnect");
}

#[tokio::test]
async fn mqtts_with_the_brokers_own_ca() {
    let broker = Broker::start_tls();
    let mut w = Watcher::connect(&broker, &["lookout/#"]).await;
    let _server = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    let pong = w.command("cam", json!({"cmd": "ping", "id": "tls"})).await;
    assert_eq!(pong["ok"], true);
}

#[tokio::test]
async fn a_camera_removed_from_the_config_is_removed_from_home_assistant() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["homeassistant/device/+/config", "lookout/#"]).await;
    let before = cameras_on(
        &broker,
        &["yard", "shed"],
        tempfile::tempdir().unwrap(),
        true,
    )
    .await;
    w.next(&device_topic("yard"), |g| !g.payload.is_empty())
        .await;
    w.next(&device_topic("shed"), |g| !g.payload.is_empty())
        .await;
    w.next("lookout/shed/state", |g| !g.payload.is_empty())
        .await;
    let dir = before.stop_keep_dir().await.dir;
    // Restarted without `shed`, and with commands off.
    let _after = cameras_on(&broker, &["yard"], dir, false).await;
    w.next(&device_topic("shed"), |g| g.payload.is_empty())
        .await;
    w.next("lookout/shed/state", |g| g.payload.is_empty()).await;
    let yard = w
        .next(&device_topic("yard"), |g| !g.payload.is_empty())
        .await
        .json();
    // Without commands there is nothing to press or slide: those components
    // go with only their platform, which removes them in Home Assistant.
    let cmps = yard["cmps"].as_object().unwrap();
    assert!(cmps.contains_key("motion") && cmps.contains_key("snapshot"));
    assert!(
        cmps.values().all(|c| c.get("command_topic").is_none()),
        "{yard}"
    );
    assert_eq!(cmps["threshold"], json!({"p": "number"}));
    // The broker keeps nothing for `shed` (an empty retained message deletes
    // it), and keeps `yard`. Subscribed in this order, a retained `shed`
    // would arrive before `yard`.
    let (shed, yard) = (device_topic("shed"), device_topic("yard"));
    let mut late = Watcher::connect(&broker, &[&shed, "lookout/shed/#", &yard]).await;
    late.next(&yard, |g| g.retain).await;
    let list = late.got.0.lock().unwrap().clone();
    assert!(
        list.iter()
            .all(|g| g.topic != shed && !g.topic.starts_with("lookout/shed/")),
        "{list:?}"
    );
}

#[tokio::test]
async fn the_broker_going_away_never_stops_streaming_and_state_comes_back() {
    let mut broker = Broker::start();
    let server = server_with(&broker, MOVING, 1).await;
    {
        let mut w = Watcher::connect(&broker, &["lookout/availability"]).await;
        w.next("lookout/availability", |g| g.payload == "online")
            .await;
    }
    server.wait_for_frame().await;
    let mut stream = MjpegClient::connect(&server.url("/stream.jpg")).await;
    stream.next_part().await.expect("a frame");

    broker.stop();
    wait_until(WAIT, || async {
        server.status().await["mqtt"]["connected"] == false
    })
    .await;
    // Streaming and commands go on without the broker.
    for _ in 0..5 {
        stream
            .next_part()
            .await
            .expect("frames while the broker is down");
    }
    assert_eq!(server.command(r#"{"cmd": "ping"}"#).await["ok"], true);
    let status = server.status().await;
    assert!(status["mqtt"]["last_error"].as_str().is_some(), "{status}");

    // Back, with nothing retained: lookout publishes its state again.
    broker.restart();
    let mut w = Watcher::connect(&broker, &["homeassistant/#", "lookout/#"]).await;
    let online = w.next("lookout/availability", |_| true).await;
    assert_eq!(online.text(), "online");
    w.next(&device_topic("cam"), |_| true).await;
    let state = w.next("lookout/cam/state", |_| true).await.json();
    assert_eq!(state["source"], "running", "{state}");
    w.next("lookout/cam/motion", |_| true).await;
    stream
        .next_part()
        .await
        .expect("frames after the broker is back");
    assert_eq!(server.status().await["mqtt"]["connected"], true);
}

/// `w` sees `offline`, and so does a client connecting later (retained).
async fn says_offline(broker: &Broker, w: &mut Watcher) {
    w.next("lookout/availability", |g| g.payload == "offline")
        .await;
    let mut after = Watcher::connect(broker, &["lookout/availability"]).await;
    let last = after.next("lookout/availability", |_| true).await;
    assert_eq!((last.text(), last.retain), ("offline", true));
}

/// A config file with the broker and `password` (lookout takes it from the
/// file or the environment, never from the command line).
fn config_file(dir: &Path, broker: &Broker, password: &str) -> PathBuf {
    let path = dir.join("lookout.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nsource = \"{STILL}\"\n\n[mqtt]\nurl = \"{}\"\npassword = \"{password}\"\nnode = \"{NODE}\"\n",
        broker.url()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn kill_9_leaves_the_broker_saying_offline() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), &broker, PASSWORD);
    let data = dir.path().join("data");
    let mut w = Watcher::connect(&broker, &["lookout/availability"]).await;
    let mut lookout = Binary::spawn(&["--config", file.to_str().unwrap()], &data);
    lookout
        .wait_for("the MQTT connection", |l| {
            l.contains("MQTT connected").then_some(())
        })
        .await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    let mut child = lookout.drain();
    child.start_kill().expect("kill -9");
    child.wait().await.expect("reaped");
    // The broker's last will, retained.
    says_offline(&broker, &mut w).await;
}

#[tokio::test]
async fn a_wrong_password_is_logged_and_reported_and_the_server_runs_on() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), &broker, "not the password");
    let mut lookout = Binary::spawn(
        &["--config", file.to_str().unwrap()],
        &dir.path().join("data"),
    );
    let url = lookout.wait_for_url("http").await;
    let line = lookout
        .wait_for("the refusal", |l| {
            l.contains("wrong user name or password")
                .then(|| l.to_string())
        })
        .await;
    assert!(line.contains(&format!("refused user \"{USER}\"")), "{line}");
    assert!(
        !line.contains("not the password"),
        "the password is never logged: {line}"
    );
    let _child = lookout.drain();
    let status: Value = reqwest::get(format!("{url}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["mqtt"]["connected"], false, "{status}");
    assert!(
        status["mqtt"]["last_error"]
            .as_str()
            .unwrap()
            .contains("wrong user name or password"),
        "{status}"
    );
    assert_eq!(status["mqtt"]["broker"], broker.url());
    // The camera goes on: its first frame is served.
    wait_until(WAIT, || async {
        let r = reqwest::get(format!("{url}/snapshot.jpg")).await.unwrap();
        r.status() == 200
    })
    .await;
}

/// Everything `w` got on `topic` so far.
fn got_on(w: &Watcher, topic: &str) -> Vec<Got> {
    let list = w.got.0.lock().unwrap();
    list.iter().filter(|g| g.topic == topic).cloned().collect()
}

#[tokio::test]
async fn oversized_retained_messages_on_subscribed_topics_leave_the_link_up() {
    let broker = Broker::start();
    // What a broker user (Home Assistant's, per the README's ACL) may leave
    // behind: a 2 MB retained command and a 1.1 MB retained birth.
    let mut w = Watcher::connect(
        &broker,
        &[
            "lookout/availability",
            "lookout/cam/reply",
            "lookout/cam/state",
        ],
    )
    .await;
    for (topic, size) in [
        ("lookout/cam/cmd", 2_000_000),
        ("homeassistant/status", 1_100_000),
    ] {
        w.client
            .publish(topic, QoS::AtLeastOnce, true, vec![b'x'; size])
            .await
            .unwrap();
    }
    {
        let mut kept =
            Watcher::connect(&broker, &["lookout/cam/cmd", "homeassistant/status"]).await;
        kept.next("lookout/cam/cmd", |g| {
            g.retain && g.payload.len() == 2_000_000
        })
        .await;
        kept.next("homeassistant/status", |g| {
            g.retain && g.payload.len() == 1_100_000
        })
        .await;
    }

    let server = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    server.wait_for_frame().await;
    // Commands work, and state goes out.
    let pong = w.command("cam", json!({"cmd": "ping", "id": "big"})).await;
    assert_eq!(pong["ok"], true);
    w.publish("lookout/cam/threshold/set", "33").await;
    w.next("lookout/cam/state", |g| g.json()["threshold"] == 33)
        .await;
    // A command too big to run (but under the packet size) is passed over
    // and counted.
    w.publish("lookout/cam/cmd", &"y".repeat(100_000)).await;
    wait_until(WAIT, || async {
        server.status().await["mqtt"]["ignored"].as_u64() >= Some(1)
    })
    .await;
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "lookout_mqtt_ignored_total 1"),
        "{metrics}"
    );
    // Live ones too: the broker discards them for lookout (over its
    // declared Maximum Packet Size).
    for (topic, size) in [
        ("lookout/cam/cmd", 2_000_000),
        ("homeassistant/status", 1_100_000),
    ] {
        w.client
            .publish(topic, QoS::AtLeastOnce, false, vec![b'x'; size])
            .await
            .unwrap();
    }
    let pong = w
        .command("cam", json!({"cmd": "ping", "id": "after"}))
        .await;
    assert_eq!(pong["ok"], true);

    // One connection all along: never offline, no error.
    let status = server.status().await;
    assert_eq!(status["mqtt"]["connected"], true, "{status}");
    assert_eq!(status["mqtt"]["last_error"], Value::Null, "{status}");
    let availability: Vec<String> = got_on(&w, "lookout/availability")
        .iter()
        .map(|g| g.text().to_string())
        .collect();
    assert_eq!(availability, ["online"], "availability flapped");
    assert_eq!(broker.lookout_ids().len(), 1, "{}", broker.log());
}

#[tokio::test]
async fn the_client_id_is_random_stable_and_cannot_be_taken_over() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["lookout/availability", "lookout/cam/reply"]).await;
    let first = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    let ids = broker.lookout_ids();
    assert_eq!(ids.len(), 1, "{}", broker.log());
    let id = ids[0].clone();
    // Not what the node name (in every discovery topic) gives away.
    assert_ne!(id, format!("lookout-{NODE}"));
    let suffix = id
        .strip_prefix(&format!("lookout-{NODE}-"))
        .unwrap_or_else(|| panic!("{id}"));
    assert!(
        suffix.len() >= 16 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // The same data directory keeps it across a restart.
    let dir = first.stop_keep_dir().await.dir;
    w.next("lookout/availability", |g| g.payload == "offline")
        .await;
    let server = server_with_dir(&broker, STILL, dir).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    assert_eq!(broker.lookout_ids(), [id.clone(), id.clone()]);

    // Another broker user connecting as `lookout-NODE` (the id anyone
    // could derive) no longer takes lookout's session.
    let mut opts = MqttOptions::new(format!("lookout-{NODE}"), "127.0.0.1", broker.port);
    opts.set_credentials(USER, PASSWORD);
    let (_intruder, mut events) = AsyncClient::new(opts, 8);
    loop {
        match tokio::time::timeout(WAIT, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("the second client could not connect: {other:?}"),
        }
    }
    let intruder = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let pong = w
        .command("cam", json!({"cmd": "ping", "id": "still"}))
        .await;
    assert_eq!(pong["ok"], true);
    let status = server.status().await;
    assert_eq!(status["mqtt"]["connected"], true, "{status}");
    assert_eq!(status["mqtt"]["last_error"], Value::Null, "{status}");
    let said: Vec<String> = got_on(&w, "lookout/availability")
        .iter()
        .map(|g| g.text().to_string())
        .collect();
    // No reconnect (it would say `online` once more), nor a will since.
    // (Around the restart the broker may add its will's `offline` to the
    // clean stop's.)
    assert_eq!(
        said.iter().filter(|s| *s == "online").count(),
        2,
        "{said:?}"
    );
    assert_eq!(said.last().map(String::as_str), Some("online"), "{said:?}");
    assert_eq!(broker.lookout_ids().iter().filter(|i| **i == id).count(), 2);
    intruder.abort();
}

#[tokio::test]
async fn a_flood_of_home_assistant_births_republishes_a_bounded_number_of_times() {
    const BIRTHS: usize = 1000;
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["homeassistant/device/+/config", "lookout/#"]).await;
    let server = server_with(&broker, STILL, 5).await;
    w.next("lookout/availability", |g| g.payload == "online")
        .await;
    w.next(&device_topic("cam"), |_| true).await;
    server.wait_for_frame().await;
    let before = got_on(&w, &device_topic("cam")).len();
    let bytes_before: usize = w
        .got
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.payload.len())
        .sum();

    for _ in 0..BIRTHS {
        w.client
            .publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
            .await
            .unwrap();
    }
    // lookout takes messages in order: once this is answered, every birth
    // was seen.
    let pong = w
        .command("cam", json!({"cmd": "ping", "id": "flood"}))
        .await;
    assert_eq!(pong["ok"], true);
    // Home Assistant still gets discovery again (at once or after the
    // interval)...
    wait_until(WAIT, || {
        let n = got_on(&w, &device_topic("cam")).len();
        async move { n > before }
    })
    .await;
    // ...but not once per birth: one now, at most one more later.
    let pong = w
        .command("cam", json!({"cmd": "ping", "id": "count"}))
        .await;
    assert_eq!(pong["ok"], true);
    let republished = got_on(&w, &device_topic("cam")).len() - before;
    let bytes: usize = w
        .got
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.payload.len())
        .sum::<usize>()
        - bytes_before;
    println!("{BIRTHS} births: {republished} discovery republishes, {bytes} bytes published");
    assert!(
        (1..=2).contains(&republished),
        "{republished} discovery republishes for {BIRTHS} births"
    );
}

#[tokio::test]
async fn a_broker_that_speaks_only_mqtt_3_1_1_is_named_in_the_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // What a 3.1.1 broker answers an MQTT 5 CONNECT: a 3.1.1 CONNACK with
    // return code 1 (unacceptable protocol version), then it hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
        }
    });
    let mqtt = lookout::mqtt::MqttConfig::new(
        &format!("mqtt://127.0.0.1:{port}"),
        None,
        None,
        None,
        None,
        Some(NODE.into()),
        true,
    )
    .unwrap();
    let server = TestServer::start_with(STILL, tempfile::tempdir().unwrap(), move |c| {
        c.mqtt = Some(mqtt);
    })
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = server.status().await;
        let error = status["mqtt"]["last_error"].as_str().unwrap_or("");
        if error.contains("speak MQTT 5") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.status().await["mqtt"]["connected"], false);
    broker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_notify_topic_and_a_snooze_over_mqtt_holds_them() {
    let broker = Broker::start();
    let mut w = Watcher::connect(&broker, &["lookout/#"]).await;
    let dir = tempfile::tempdir().unwrap();
    let scene = dir.path().join("scene");
    std::fs::create_dir(&scene).unwrap();
    common::motion_scene(&scene);
    let mqtt = broker.config();
    let source = format!("file:{}?fps=10", scene.display());
    let server = TestServer::start_with(&source, dir, move |c| {
        c.mqtt = Some(mqtt);
        let s = &mut c.cameras[0].settings;
        s.threshold = 5;
        s.cooldown_s = 0;
        s.notify_on = lookout::settings::NotifyOn::Motion;
        s.notify_cooldown_s = 0;
    })
    .await;
    let sent = w.next("lookout/cam/notify", |_| true).await.json();
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["title"], "Motion at cam", "{sent}");
    assert!(
        sent["image"]
            .as_str()
            .unwrap()
            .starts_with("/api/incidents/"),
        "{sent}"
    );
    let reply = w
        .command("cam", json!({"cmd": "snooze", "minutes": 30, "id": 4}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let until = reply["snoozed_until"].as_f64().expect("snoozed_until");
    assert_eq!(
        server.status().await["notify"]["snoozed_until"].as_f64(),
        Some(until)
    );
    // Snoozed incidents are decided (the `notify` event says so) but never
    // published on the topic.
    let mut sse = common::sse::SseClient::subscribe(&server.url("/events")).await;
    let snoozed = sse.next_of("notify", Duration::from_secs(30)).await.json();
    assert_eq!(snoozed["status"], "snoozed", "{snoozed}");
    assert!(got_on(&w, "lookout/cam/notify")
        .iter()
        .all(|g| g.json()["incident"] != snoozed["incident"]));
}

//! Notifications through a running server: Web Push to a real push service
//! (web-push-testing, which checks VAPID and decrypts each push) and ntfy to
//! a real HTTP receiver, both on loopback. One notification per person
//! incident (Web Push: one tag, a first push and one update), nothing for
//! motion that is not a person, the cooldown, the snooze, a gone
//! subscription, bad subscriptions refused, and retries that deliver
//! exactly once across a restart.

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::receiver::{answer, Hit, Receiver};
use common::sse::SseClient;
use common::webpush::PushService;
use common::{decode_jpeg, motion_scene, post, wait_until, TestServer};
use serde_json::{json, Value};

/// The synthetic motion loop (an episode every 2 s) notified on motion,
/// with ntfy at `rx`.
async fn motion_server(dir: tempfile::TempDir, rx: &Receiver, cooldown_s: u32) -> TestServer {
    motion_server_with(dir, rx, cooldown_s, Duration::from_millis(50)).await
}

/// [`motion_server`] with retries starting at `retry`.
async fn motion_server_with(
    dir: tempfile::TempDir,
    rx: &Receiver,
    cooldown_s: u32,
    retry: Duration,
) -> TestServer {
    let scene = dir.path().join("scene");
    std::fs::create_dir_all(&scene).unwrap();
    motion_scene(&scene);
    let source = format!("file:{}?fps=10", scene.display());
    let ntfy = rx.url("/yard-topic");
    TestServer::start_with(&source, dir, move |c| {
        c.push.ntfy_url = Some(ntfy);
        c.push.allow_loopback_http = true;
        c.push = c.push.clone().with_backoff(retry, retry * 2);
        let s = &mut c.cameras[0].settings;
        s.threshold = 5;
        s.cooldown_s = 0;
        s.clip_pre_s = 0;
        s.clip_post_s = 0;
        s.notify_on = lookout::settings::NotifyOn::Motion;
        s.notify_cooldown_s = cooldown_s;
    })
    .await
}

fn puts(rx: &Receiver) -> Vec<Hit> {
    rx.hits("/yard-topic")
        .into_iter()
        .filter(|h| h.status == 200)
        .collect()
}

/// The `notify` events seen so far on `sse`, until `n` of them.
async fn notices(sse: &mut SseClient, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    sse.until(Duration::from_secs(60), |m| {
        if m.event == "notify" {
            seen.push(m.json());
        }
        seen.len() >= n
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_motion_incident_is_one_put_with_its_picture_and_ntfy_headers() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 0).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 2).await;
    for n in &seen {
        assert_eq!(n["status"], "sent", "{n}");
        assert_eq!(n["title"], "Motion at cam", "{n}");
    }
    wait_until(Duration::from_secs(30), || async { puts(&rx).len() >= 2 }).await;
    let hit = &puts(&rx)[0];
    assert_eq!(hit.method, "PUT");
    assert_eq!(hit.header("title"), Some("Motion at cam"));
    assert_eq!(hit.header("priority"), Some("default"));
    assert_eq!(hit.header("tags"), Some("eyes"));
    assert!(
        hit.header("filename").is_some_and(|f| f.ends_with(".jpg")),
        "{:?}",
        hit.headers
    );
    // No public URL: no link a phone could open.
    assert_eq!(hit.header("click"), None);
    let (w, h) = decode_jpeg(&hit.body);
    assert!(w > 0 && h > 0);
    // Each incident once: as many PUTs as `sent` notices, never more.
    let sent = {
        let mut more = notices(&mut sse, 3).await;
        more.retain(|n| n["status"] == "sent");
        more.len() + seen.len()
    };
    wait_until(Duration::from_secs(30), || async {
        puts(&rx).len() >= sent
    })
    .await;
    let status = server.status().await;
    assert!(
        status["notifications"]["sent"].as_u64().unwrap() >= 2,
        "{status}"
    );
    assert_eq!(status["notifications"]["ntfy"], true, "{status}");
    let incidents = server.get_json("/api/incidents?camera=cam").await;
    let first = &incidents["incidents"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let picture = reqwest::get(server.url(first["picture"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(picture.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_within_the_cooldown_are_one_notification() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 3600).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 3).await;
    let statuses: Vec<&str> = seen.iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["sent", "merged", "merged"]);
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    // The merged ones were decided before this: nothing more is coming.
    assert_eq!(puts(&rx).len(), 1);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_camera_buzzes_no_one_until_the_snooze_is_lifted() {
    let rx = Receiver::start().await;
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 0).await;
    let reply = server.command(r#"{"cmd": "snooze", "minutes": 60}"#).await;
    let until = reply["snoozed_until"].as_f64().expect("snoozed_until");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((until - now - 3600.0).abs() < 60.0, "{reply}");
    let status = server.status().await;
    assert_eq!(
        status["notify"]["snoozed_until"].as_f64(),
        Some(until),
        "{status}"
    );
    let cams = server.get_json("/cams").await;
    assert_eq!(
        cams["cameras"][0]["notify"]["snoozed_until"].as_f64(),
        Some(until)
    );
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let seen = notices(&mut sse, 2).await;
    assert!(seen.iter().all(|n| n["status"] == "snoozed"), "{seen:?}");
    assert!(puts(&rx).is_empty());
    // Bad minutes: the spec's error reply, and the snooze stays.
    let bad = server.command(r#"{"cmd": "snooze", "minutes": -5}"#).await;
    assert_eq!(bad["ok"], false, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("minutes"), "{bad}");
    let lifted = server.command(r#"{"cmd": "snooze", "minutes": 0}"#).await;
    assert_eq!(lifted["snoozed_until"], Value::Null, "{lifted}");
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_three_times_gets_the_notification_once_across_a_restart() {
    // 503 three times, then 200: the first try and two retries fail before
    // the restart or after it, and exactly one PUT is accepted.
    let rx = Receiver::start_with(answer(|_, n| {
        if n < 3 {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    // One notification for the whole run: the cooldown merges the rest.
    // Retries a second apart: the first failure is seen and the server
    // stopped long before the service recovers.
    let retry = Duration::from_millis(1000);
    let server = motion_server_with(dir, &rx, 3600, retry).await;
    wait_until(Duration::from_secs(30), || async {
        !rx.hits("/yard-topic").is_empty()
    })
    .await;
    let stopped = server.stop_keep_dir().await;
    let restarted = std::time::Instant::now();
    let server = motion_server_with(stopped.dir, &rx, 3600, retry).await;
    wait_until(Duration::from_secs(30), || async { !puts(&rx).is_empty() }).await;
    wait_until(Duration::from_secs(30), || async {
        server.status().await["notifications"]["queued"] == 0
    })
    .await;
    let hits = rx.hits("/yard-topic");
    assert_eq!(
        puts(&rx).len(),
        1,
        "{:?}",
        hits.iter().map(|h| h.status).collect::<Vec<_>>()
    );
    assert!(hits.len() >= 4, "three failures, then the delivery");
    assert!(
        puts(&rx)[0].at > restarted,
        "delivered by the restarted server"
    );
    server.stop().await.unwrap();
}

/// Builds regression scene `name` (real footage, see scripts/scenes) into
/// `dir` and returns its file.
#[cfg(feature = "person")]
fn scene(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(root.join("scripts/scenes"))
        .arg(dir)
        .arg(name)
        .status()
        .expect("run scripts/scenes (needs ffmpeg)");
    assert!(status.success(), "scripts/scenes failed");
    dir.join(format!("{name}.mjpeg"))
}

/// A camera on regression scene `name` at the default notification
/// settings (people, when the check runs) but no cooldown, with ntfy at `rx`.
#[cfg(feature = "person")]
async fn scene_server(name: &str, rx: &Receiver) -> (tempfile::TempDir, TestServer) {
    let scenes = tempfile::tempdir().unwrap();
    let file = scene(scenes.path(), name);
    let ntfy = rx.url("/yard-topic");
    let server = TestServer::start_with(
        &format!("file:{}?fps=10", file.display()),
        tempfile::tempdir().unwrap(),
        move |c| {
            c.push.ntfy_url = Some(ntfy);
            c.push.allow_loopback_http = true;
            c.push.public_url = Some("https://cam.example.org".into());
            c.cameras[0].settings.notify_cooldown_s = 0;
        },
    )
    .await;
    (scenes, server)
}

#[cfg(feature = "person")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_walk_of_real_people_is_one_notification_on_each_channel_with_the_person_frame() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    let rx = Receiver::start().await;
    let (_scenes, server) = scene_server("walkers", &rx).await;
    let hash = register(&server, &service, json!({"name": "phone", "on": "motion"})).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let mut ends = 0;
    let mut seen = Vec::new();
    sse.until(Duration::from_secs(240), |m| {
        match m.event.as_str() {
            "motion_end" => ends += 1,
            "notify" => seen.push(m.json()),
            _ => {}
        }
        ends >= 2
    })
    .await;
    assert_eq!(seen.len(), 2, "one notice per walk: {seen:?}");
    wait_until(Duration::from_secs(30), || async { puts(&rx).len() >= 2 }).await;
    let hits = puts(&rx);
    assert_eq!(hits.len(), 2, "one PUT per incident, no update");
    for (hit, notice) in hits.iter().zip(&seen) {
        assert_eq!(notice["status"], "sent");
        assert_eq!(notice["kind"], "person");
        assert_eq!(hit.header("title"), Some("Person at cam"));
        assert_eq!(hit.header("priority"), Some("high"));
        assert_eq!(hit.header("tags"), Some("bust_in_silhouette"));
        assert_eq!(
            hit.header("click"),
            Some("https://cam.example.org/?camera=cam")
        );
        decode_jpeg(&hit.body);
    }
    let incidents = server.get_json("/api/incidents").await;
    let list = incidents["incidents"].as_array().unwrap();
    assert!(
        list.iter()
            .take(2)
            .all(|i| i["kind"] == "person" && i["notified"] == "sent"),
        "{incidents}"
    );
    // Web Push: per incident one tag, the first push and its update once
    // the clip is saved (the same tag, so the phone replaces it).
    let messages = service.wait_for_messages(&hash, 4).await;
    let pushes: Vec<Value> = messages
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    for (notice, pair) in seen.iter().zip(pushes.chunks(2)) {
        let (first, update) = (&pair[0], &pair[1]);
        assert_eq!(first["tag"], notice["tag"], "{pushes:?}");
        assert_eq!(update["tag"], notice["tag"], "{pushes:?}");
        assert_eq!(
            (&first["update"], &update["update"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(first["title"], "Person at cam");
        assert_eq!(first["kind"], "person");
        assert_eq!(first["camera"], "cam");
        assert_eq!(first["url"], "https://cam.example.org/?camera=cam");
        assert!(
            update["url"].as_str().unwrap().contains("&clip=motion-"),
            "{update}"
        );
        assert!(update["body"].as_str().unwrap().contains(" s"), "{update}");
        // The picture the service worker fetches is the person's frame.
        let image = first["image"].as_str().unwrap();
        let resp = reqwest::get(server.url(image)).await.unwrap();
        assert_eq!(resp.status(), 200, "{image}");
        decode_jpeg(&resp.bytes().await.unwrap());
    }
    assert_eq!(
        pushes.len(),
        4,
        "one first push and one update per incident: {pushes:?}"
    );
    server.stop().await.unwrap();
}

#[cfg(feature = "person")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_crossing_notifies_no_one() {
    let rx = Receiver::start().await;
    let (_scenes, server) = scene_server("car", &rx).await;
    let mut sse = SseClient::subscribe(&server.url("/events")).await;
    let mut seen = Vec::new();
    let mut ended = None;
    sse.until(Duration::from_secs(120), |m| {
        match m.event.as_str() {
            "notify" => seen.push(m.json()),
            "motion_end" => ended = Some(m.json()),
            _ => {}
        }
        ended.is_some()
    })
    .await;
    let ended = ended.unwrap();
    assert_eq!(
        ended["person"], false,
        "the check saw a person in the car: {ended}"
    );
    // A person-only incident is decided at its first person; with none, its
    // end is the last moment a notification could have been queued.
    assert!(seen.is_empty(), "{seen:?}");
    assert_eq!(server.status().await["notifications"]["queued"], 0);
    assert!(rx.hits("/yard-topic").is_empty());
    let incidents = server.get_json("/api/incidents").await;
    let first = &incidents["incidents"][0];
    assert_eq!(first["kind"], "motion", "{incidents}");
    assert_eq!(first["notified"], Value::Null, "{incidents}");
    server.stop().await.unwrap();
}

/// Subscribes at `service` with the server's key, like a browser, and
/// registers it with `fields` (name, cameras, on); returns its client hash.
async fn register(server: &TestServer, service: &PushService, fields: Value) -> String {
    let key = server.get_json("/api/push/key").await;
    let key = key["public_key"].as_str().expect("public_key");
    let (subscription, hash) = service.subscribe(key).await;
    let mut body = fields;
    body["subscription"] = subscription;
    let (status, reply) = post(server, "/api/push/subscriptions", &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ok"], true, "{reply}");
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_push_decrypts_and_a_gone_subscription_is_removed() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    let rx = Receiver::start().await;
    // Notified on motion, a cooldown longer than the test: one incident.
    let server = motion_server(tempfile::tempdir().unwrap(), &rx, 3600).await;
    let hash = register(
        &server,
        &service,
        json!({"name": "tablet", "cameras": ["cam"]}),
    )
    .await;
    let list = server.get_json("/api/push/subscriptions").await;
    let subs = list["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{list}");
    assert_eq!(subs[0]["name"], "tablet");
    assert_eq!(subs[0]["on"], "person");
    let id = subs[0]["id"].as_str().unwrap().to_string();
    // The tablet wants people, and the synthetic square is none: only the
    // test reaches it.
    let (status, reply) = post(&server, "/api/push/test", &json!({"id": id}).to_string()).await;
    assert_eq!(
        (status, reply["queued"].as_u64()),
        (200, Some(1)),
        "{reply}"
    );
    let got = service.wait_for_messages(&hash, 1).await;
    let test: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(test["kind"], "test", "{test}");
    assert_eq!(test["tag"], "lookout-test");
    // Unsubscribed in the browser: the service answers 410 and the phone
    // is removed, with what waited for it.
    service.expire(&hash).await;
    post(&server, "/api/push/test", &json!({"id": id}).to_string()).await;
    wait_until(Duration::from_secs(30), || async {
        server.get_json("/api/push/subscriptions").await["subscriptions"] == json!([])
    })
    .await;
    let status = server.status().await;
    assert_eq!(status["notifications"]["gone"], 1, "{status}");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("lookout_notifications_total{channel=\"webpush\",result=\"sent\"} 1"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_get_a_clear_400_and_nothing_is_stored() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    // Loopback http allowed, as for the push service under test: each case
    // below is wrong in one field only.
    let server = TestServer::start_with("synthetic", tempfile::tempdir().unwrap(), |c| {
        c.push.allow_loopback_http = true;
    })
    .await;
    let key = server.get_json("/api/push/key").await["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (good, _) = service.subscribe(&key).await;
    let with = |field: &str, key: Option<&str>, value: Value| {
        let mut s = good.clone();
        match key {
            Some(k) => s[field][k] = value,
            None => s[field] = value,
        }
        json!({"subscription": s, "name": "x"})
    };
    // A point that is not on P-256: the good key with one coordinate byte
    // changed (the odds that this lands on the curve are negligible).
    let p256dh = good["keys"]["p256dh"].as_str().unwrap();
    let mut chars: Vec<char> = p256dh.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let off_curve: String = chars.into_iter().collect();
    let cases = [
        (
            with("endpoint", None, json!("ftp://push.example/x")),
            "https",
        ),
        (
            with("endpoint", None, json!("http://push.example/x")),
            "https",
        ),
        (with("keys", Some("p256dh"), json!("not base64!")), "p256dh"),
        (with("keys", Some("auth"), json!("AAAA")), "auth"),
        (with("keys", Some("p256dh"), json!(off_curve)), "p256dh"),
        (json!({"name": "x"}), "subscription"),
        (
            json!({"subscription": good, "cameras": ["nowhere"]}),
            "camera",
        ),
        (json!({"subscription": good, "on": "cats"}), "on"),
    ];
    for (body, word) in cases {
        let (status, reply) = post(&server, "/api/push/subscriptions", &body.to_string()).await;
        assert_eq!(status, 400, "{body} -> {reply}");
        assert_eq!(reply["ok"], false, "{reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.contains(word),
            "{body}: {error:?} does not say {word:?}"
        );
    }
    let (status, _) = post(&server, "/api/push/subscriptions", "{not json").await;
    assert_eq!(status, 400);
    let huge = json!({"subscription": good, "name": "x".repeat(200 * 1024)});
    let (status, _) = post(&server, "/api/push/subscriptions", &huge.to_string()).await;
    assert!(status == 400 || status == 413, "{status}");
    assert_eq!(
        server.get_json("/api/push/subscriptions").await["subscriptions"],
        json!([])
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_service_that_fails_three_times_gets_the_push_once_across_a_restart() {
    let Some(service) = PushService::start_or_skip() else {
        return;
    };
    // In front of the push service: 503 three times, then the service's
    // own answer.
    let port = service.port;
    let forward = reqwest::Client::new();
    let proxy = Receiver::start_with(std::sync::Arc::new(
        move |req: common::receiver::Request| {
            let forward = forward.clone();
            Box::pin(async move {
                if req.n < 3 {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                let mut to = forward.post(format!("http://127.0.0.1:{port}{}", req.path));
                for (name, value) in &req.headers {
                    if name != "host" && name != "content-length" {
                        to = to.header(name, value);
                    }
                }
                match to.body(req.body).send().await {
                    Ok(r) => StatusCode::from_u16(r.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY)
                        .into_response(),
                    Err(_) => StatusCode::BAD_GATEWAY.into_response(),
                }
            }) as futures_util::future::BoxFuture<'static, axum::response::Response>
        },
    ))
    .await;
    let start = |dir: tempfile::TempDir| {
        TestServer::start_with("synthetic", dir, |c| {
            c.push.allow_loopback_http = true;
            let retry = Duration::from_millis(1000);
            c.push = c.push.clone().with_backoff(retry, retry * 2);
        })
    };
    let server = start(tempfile::tempdir().unwrap()).await;
    let key = server.get_json("/api/push/key").await["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut subscription, hash) = service.subscribe(&key).await;
    // The phone's endpoint, through the proxy.
    let endpoint = subscription["endpoint"].as_str().unwrap().to_string();
    let path = &endpoint[endpoint.find("/notify").expect("a /notify path")..];
    subscription["endpoint"] = json!(proxy.url(path));
    let body = json!({"subscription": subscription, "name": "phone"});
    let (status, reply) = post(&server, "/api/push/subscriptions", &body.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    let (status, _) = post(&server, "/api/push/test", "{}").await;
    assert_eq!(status, 200);
    wait_until(Duration::from_secs(30), || async {
        !proxy.hits(path).is_empty()
    })
    .await;
    let stopped = server.stop_keep_dir().await;
    let server = start(stopped.dir).await;
    let got = service.wait_for_messages(&hash, 1).await;
    wait_until(Duration::from_secs(30), || async {
        server.status().await["notifications"]["queued"] == 0
    })
    .await;
    assert_eq!(service.messages(&hash).await.len(), 1, "{got:?}");
    let statuses: Vec<u16> = proxy.hits(path).iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [503, 503, 503, 201],
        "three failures, then one delivery"
    );
    server.stop().await.unwrap();
}

//! The incident list's pictures for the dashboard's cards: each listed
//! incident names a 320 px thumbnail of its picture, served like the
//! picture (same cache policy), and 404 where there is no incident.

use crate::common;

use std::time::Duration;

use common::{decode_jpeg, TestServer};
use serde_json::Value;

/// A 640x360 camera that moves all the time: an incident every few seconds.
async fn moving_server() -> TestServer {
    TestServer::start_with(
        "synthetic:?size=640x360&fps=10&motion=always",
        tempfile::tempdir().unwrap(),
        |c| {
            let s = &mut c.cameras[0].settings;
            s.threshold = 1;
            s.cooldown_s = 1;
            s.clip_pre_s = 0;
            s.clip_post_s = 0;
        },
    )
    .await
}

/// The newest incident of `cam` that has a picture (bounded wait).
async fn incident_with_picture(server: &TestServer) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = server.get_json("/api/incidents?camera=cam").await;
        if let Some(i) = list["incidents"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["picture"].is_string()))
        {
            return i.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no incident with a picture within 30 s: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_incident_has_a_320_px_thumbnail_of_its_picture() {
    let server = moving_server().await;
    let incident = incident_with_picture(&server).await;
    let id = incident["id"].as_i64().expect("an id");
    assert_eq!(
        incident["thumb"],
        format!("/api/incidents/{id}/thumb.jpg"),
        "{incident}"
    );

    let picture = reqwest::get(server.url(incident["picture"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(picture.status(), 200);
    let picture_cache = picture.headers()["cache-control"].clone();
    let picture = picture.bytes().await.unwrap();

    let thumb = reqwest::get(server.url(incident["thumb"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(thumb.headers()["cache-control"], picture_cache);
    let thumb = thumb.bytes().await.unwrap();

    assert_eq!(decode_jpeg(&picture), (640, 360));
    assert_eq!(decode_jpeg(&thumb), (320, 180));
    assert!(
        thumb.len() < picture.len(),
        "thumbnail {} B, picture {} B",
        thumb.len(),
        picture.len()
    );
    // The dashboard asks for it under a query naming the incident's kind
    // (the picture changes once, to the person's frame): the same picture.
    let versioned = reqwest::get(server.url(&format!("/api/incidents/{id}/thumb.jpg?v=person")))
        .await
        .unwrap();
    assert_eq!(versioned.status(), 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_incident_no_thumbnail() {
    let server = TestServer::start("synthetic:?size=320x180&fps=5&motion=never").await;
    server.wait_for_frame().await;
    let list = server.get_json("/api/incidents").await;
    assert_eq!(list["incidents"], serde_json::json!([]), "{list}");
    for path in [
        "/api/incidents/1/thumb.jpg",
        "/api/incidents/999999/thumb.jpg",
        "/api/incidents/not-a-number/thumb.jpg",
        "/api/incidents/-1/thumb.jpg",
    ] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body.to_string().contains("thumb.jpg"),
            "{path}: the 404 names the route: {body}"
        );
    }
    server.stop().await.unwrap();
}

//! Home Assistant MQTT discovery: one device per camera, published retained
//! at `DISCOVERY/device/lookout_NODE_NAME/config`, so a camera shows up as a
//! motion sensor, a picture, two sensors, a threshold slider and two buttons
//! with no YAML. (Device discovery, one message per device, is what Home
//! Assistant 2024.11 and later read.)

use serde_json::{json, Map, Value};

use super::topics::Topics;

/// The `origin` name.
const ORIGIN: &str = "lookout";

/// The discovery payload of camera `cam`. `dashboard` is the dashboard's URL
/// (the device's "visit" link); `commands` adds the slider and buttons;
/// `person` the person sensor and count (when the build has the check).
pub(super) fn device(
    topics: &Topics,
    cam: &str,
    dashboard: &str,
    commands: bool,
    person: bool,
) -> Value {
    let id = topics.device_id(cam);
    let state = topics.cam(cam, "state");
    let uid = |what: &str| format!("{id}_{what}");
    let mut cmps = Map::new();
    cmps.insert(
        "motion".into(),
        json!({
            "p": "binary_sensor",
            "name": "Motion",
            "device_class": "motion",
            "state_topic": topics.cam(cam, "motion"),
            "payload_on": "ON",
            "payload_off": "OFF",
            "unique_id": uid("motion"),
        }),
    );
    cmps.insert(
        "snapshot".into(),
        json!({
            "p": "image",
            "name": "Snapshot",
            "image_topic": topics.cam(cam, "snapshot"),
            "content_type": "image/jpeg",
            "unique_id": uid("snapshot"),
        }),
    );
    cmps.insert(
        "trigger_count".into(),
        json!({
            "p": "sensor",
            "name": "Motion triggers",
            "state_topic": state,
            "value_template": "{{ value_json.trigger_count }}",
            "state_class": "total_increasing",
            "icon": "mdi:counter",
            "unique_id": uid("trigger_count"),
        }),
    );
    cmps.insert(
        "motion_score".into(),
        json!({
            "p": "sensor",
            "name": "Motion score",
            "state_topic": state,
            "value_template": "{{ value_json.change }}",
            "state_class": "measurement",
            "icon": "mdi:motion-sensor",
            "unique_id": uid("motion_score"),
        }),
    );
    cmps.insert(
        "source".into(),
        json!({
            "p": "binary_sensor",
            "name": "Camera",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.source == 'running' else 'OFF' }}",
            "unique_id": uid("source"),
        }),
    );
    person_components(&mut cmps, topics, cam, person);
    command_components(&mut cmps, topics, cam, commands);
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "dev": {
            "identifiers": [id],
            "name": cam,
            "manufacturer": "lookout",
            "model": "camera",
            "sw_version": version,
            "configuration_url": dashboard,
        },
        "o": {
            "name": ORIGIN,
            "sw_version": version,
        },
        "availability_topic": topics.availability(),
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "cmps": cmps,
    })
}

/// The person sensor and count, or their removal when the build has no
/// person check (if an earlier build had them).
fn person_components(cmps: &mut Map<String, Value>, topics: &Topics, cam: &str, person: bool) {
    let id = topics.device_id(cam);
    let state = topics.cam(cam, "state");
    let uid = |what: &str| format!("{id}_{what}");
    if person {
        cmps.insert(
            "person".into(),
            json!({
                "p": "binary_sensor",
                "name": "Person",
                "device_class": "occupancy",
                "state_topic": topics.cam(cam, "person"),
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:walk",
                "unique_id": uid("person"),
            }),
        );
        cmps.insert(
            "person_count".into(),
            json!({
                "p": "sensor",
                "name": "Person episodes",
                "state_topic": state,
                "value_template": "{{ value_json.person_count }}",
                "state_class": "total_increasing",
                "icon": "mdi:account-multiple",
                "unique_id": uid("person_count"),
            }),
        );
    } else {
        // Removed, as below, if an earlier build had them.
        cmps.insert("person".into(), json!({ "p": "binary_sensor" }));
        cmps.insert("person_count".into(), json!({ "p": "sensor" }));
    }
}

/// The threshold slider and the two buttons, or their removal when commands
/// are off.
fn command_components(cmps: &mut Map<String, Value>, topics: &Topics, cam: &str, commands: bool) {
    let id = topics.device_id(cam);
    let state = topics.cam(cam, "state");
    let uid = |what: &str| format!("{id}_{what}");
    if !commands {
        // A component left out of the payload would stay in Home Assistant,
        // dead; one with only its platform is removed.
        for (key, platform) in [
            ("threshold", "number"),
            ("snapshot_now", "button"),
            ("reset", "button"),
        ] {
            cmps.insert(key.into(), json!({ "p": platform }));
        }
    } else {
        let cmd = topics.cam(cam, "cmd");
        cmps.insert(
            "threshold".into(),
            json!({
                "p": "number",
                "name": "Motion threshold",
                "state_topic": state,
                "value_template": "{{ value_json.threshold }}",
                "command_topic": topics.cam(cam, "threshold/set"),
                "min": 0,
                "max": 100,
                "step": 1,
                "mode": "slider",
                "entity_category": "config",
                "unique_id": uid("threshold"),
            }),
        );
        cmps.insert(
            "snapshot_now".into(),
            json!({
                "p": "button",
                "name": "Save snapshot",
                "command_topic": cmd,
                "payload_press": r#"{"cmd":"snapshot_now"}"#,
                "icon": "mdi:camera",
                "unique_id": uid("snapshot_now"),
            }),
        );
        cmps.insert(
            "reset".into(),
            json!({
                "p": "button",
                "name": "Reset trigger counter",
                "command_topic": cmd,
                "payload_press": r#"{"cmd":"reset"}"#,
                "icon": "mdi:counter",
                "unique_id": uid("reset"),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        Topics {
            prefix: "lookout".into(),
            discovery: "homeassistant".into(),
            node: "pi".into(),
        }
    }

    #[test]
    fn every_component_has_a_unique_id_and_our_topics() {
        let d = device(&topics(), "yard", "http://pi:8080/#cam/yard", true, true);
        assert_eq!(d["dev"]["identifiers"][0], "lookout_pi_yard");
        assert_eq!(d["dev"]["manufacturer"], "lookout");
        assert_eq!(d["dev"]["configuration_url"], "http://pi:8080/#cam/yard");
        assert_eq!(d["availability_topic"], "lookout/availability");
        let cmps = d["cmps"].as_object().unwrap();
        let mut platforms: Vec<&str> = cmps.values().map(|c| c["p"].as_str().unwrap()).collect();
        platforms.sort_unstable();
        assert_eq!(
            platforms,
            [
                "binary_sensor",
                "binary_sensor",
                "binary_sensor",
                "button",
                "button",
                "image",
                "number",
                "sensor",
                "sensor",
                "sensor"
            ]
        );
        let mut ids: Vec<&str> = cmps
            .values()
            .map(|c| c["unique_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cmps.len());
        assert_eq!(cmps["motion"]["device_class"], "motion");
        assert_eq!(cmps["person"]["device_class"], "occupancy");
        assert_eq!(cmps["person"]["state_topic"], "lookout/yard/person");
        assert_eq!(cmps["trigger_count"]["state_class"], "total_increasing");
        assert_eq!(
            cmps["threshold"]["command_topic"],
            "lookout/yard/threshold/set"
        );
        assert_eq!(cmps["threshold"]["mode"], "slider");
        let press: Value =
            serde_json::from_str(cmps["reset"]["payload_press"].as_str().unwrap()).unwrap();
        assert_eq!(press, json!({"cmd": "reset"}));
    }

    #[test]
    fn without_commands_there_is_nothing_to_press() {
        let d = device(&topics(), "yard", "http://pi/", false, false);
        let cmps = d["cmps"].as_object().unwrap();
        assert!(cmps.values().all(|c| c.get("command_topic").is_none()));
        assert_eq!(cmps["person"], json!({"p": "binary_sensor"}));
        // Removed from Home Assistant: only their platform.
        assert_eq!(cmps["threshold"], json!({"p": "number"}));
        assert_eq!(cmps["reset"], json!({"p": "button"}));
    }
}

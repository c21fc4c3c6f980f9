//! MQTT: how a household's hub (Home Assistant, or any MQTT consumer) sees
//! the cameras and drives them, through one broker.
//!
//! # Topics (`PREFIX` is `lookout` unless set; `NAME` is a camera)
//! | topic | retained | what |
//! |---|---|---|
//! | `PREFIX/availability` | yes | `online`, or `offline` (clean stop, or the broker's last will) |
//! | `PREFIX/NAME/motion` | yes | `ON` / `OFF`, following motion episodes |
//! | `PREFIX/NAME/state` | yes | `{"trigger_count", "threshold", "change", "motion", "source"}`, on change; the score at most once a second |
//! | `PREFIX/NAME/events` | no | every stored event of the camera, as on `/events`, plus `id` and `kind` |
//! | `PREFIX/events` | no | the server-wide stored events (`upload`) |
//! | `PREFIX/NAME/snapshot` | yes | the JPEG saved when motion started |
//! | `PREFIX/NAME/cmd` | in | the `/control` commands; the reply goes to `PREFIX/NAME/reply` |
//! | `PREFIX/NAME/threshold/set` | in | an integer, as `{"cmd": "set", "threshold": N}` |
//! | `DISCOVERY/device/lookout_NODE_NAME/config` | yes | Home Assistant device discovery |
//! | `DISCOVERY/status` | in | Home Assistant's birth: discovery and state again (paced) |
//!
//! # Never in the way
//! Nothing on the streaming, detection or command paths waits for the
//! broker. What is to be published goes into a bounded [`Outbox`]: state is
//! kept once per topic (the newest wins) and the oldest events go first when
//! it is full, each drop counted. The publisher hands messages to the client
//! only while the link is up; what a dropped connection had not got
//! acknowledged is counted as dropped too. Every (re)connect publishes the
//! whole state again, so a broker that was down, slow or restarted without
//! persistence ends up current; so does Home Assistant's birth, at most
//! once per few seconds however many births arrive. Retained state of
//! cameras since removed is emptied (the topics published are remembered in
//! the store).
//!
//! # Trust
//! Commands over MQTT are trusted as far as the broker's ACLs: whoever may
//! publish to `PREFIX/NAME/cmd` may run them, on that camera only (a
//! `"camera"` naming another is refused). Retained commands are ignored (they
//! would run again at every reconnect). `--mqtt-commands off` stops listening
//! (Home Assistant then gets no buttons or slider). What any broker user can
//! publish on a subscribed topic cannot end the link: messages over 1 MiB
//! are discarded by the broker (MQTT 5 Maximum Packet Size), larger-than-64
//! KiB commands by lookout (counted in `ignored`), and the client id is not
//! guessable, so no one can take over the session.
//!
//! # Layout
//! This file: the configuration and the status. `outbox.rs`: the bounded
//! queue. `feed.rs`: events and state into messages. `discovery.rs`: Home
//! Assistant's payloads. `connect.rs`: the client id, CONNECT's options,
//! errors, and the one-shot [`probe`] of `lookout doctor`. `link.rs`: the connection, commands in.

pub mod config;
mod connect;
mod discovery;
mod feed;
mod link;
mod outbox;
pub mod status;
mod topics;

pub use config::{
    host_name, MqttConfig, MqttConfigError, DEFAULT_DISCOVERY_PREFIX, DEFAULT_PREFIX,
};
pub use connect::probe;
pub use link::run;
pub use status::{Mqtt, MqttReport, MqttStatus};

#[cfg(test)]
mod tests {
    use super::config::{host_node, valid_node};
    use super::topics::{Route, Topics};
    use super::*;

    fn config(url: &str) -> Result<MqttConfig, MqttConfigError> {
        MqttConfig::new(url, None, None, None, None, Some("node".into()), true)
    }

    #[test]
    fn urls_are_parsed_with_their_defaults() {
        let c = config("mqtt://broker").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls, c.user),
            ("broker", 1883, false, None)
        );
        let c = config("mqtts://ha%40home@broker.lan:9000/").unwrap();
        assert_eq!((c.port, c.tls), (9000, true));
        assert_eq!(c.user.as_deref(), Some("ha@home"));
        assert_eq!(c.broker(), "mqtts://ha@home@broker.lan:9000");
        assert_eq!(
            config("mqtts://[::1]").unwrap().broker(),
            "mqtts://[::1]:8883"
        );
        assert_eq!(c.prefix, "lookout");
        assert_eq!(c.discovery_prefix, "homeassistant");
    }

    #[test]
    fn bad_urls_and_passwords_in_urls_are_refused() {
        for url in [
            "http://broker",
            "broker:1883",
            "mqtt://",
            "mqtt://b/topic",
            "mqtt://b?x=1",
        ] {
            assert!(matches!(config(url), Err(MqttConfigError::Url(_))), "{url}");
        }
        let e = config("mqtt://u:secret@broker").unwrap_err();
        assert_eq!(e, MqttConfigError::PasswordInUrl);
        assert!(!e.to_string().contains("secret"));
        // Not URLs lookout takes, and the password stays out of the error.
        for url in ["u:secret@b:1883", "mqtts//u:secret@b", "mqtt:u:secret@b"] {
            let e = config(url).unwrap_err();
            assert!(matches!(e, MqttConfigError::Url(_)), "{url}");
            assert!(!e.to_string().contains("secret"), "{e}");
            assert!(!format!("{e:?}").contains("secret"), "{e:?}");
        }
        let e = MqttConfig::new("mqtt://b", Some("pw".into()), None, None, None, None, true);
        assert_eq!(e.unwrap_err(), MqttConfigError::PasswordWithoutUser);
        let c = MqttConfig::new(
            "mqtt://u@b",
            Some("pw-42".into()),
            None,
            None,
            None,
            None,
            true,
        );
        assert!(!format!("{:?}", c.unwrap()).contains("pw-42"));
    }

    #[test]
    fn prefixes_and_nodes_are_checked() {
        let p = |p: &str| MqttConfig::new("mqtt://b", None, None, Some(p.into()), None, None, true);
        assert_eq!(p("home/cams").unwrap().prefix, "home/cams");
        for bad in ["", "a/", "/a", "a//b", "a/+", "a/#", "a b"] {
            assert!(
                matches!(p(bad), Err(MqttConfigError::Prefix(..))),
                "{bad:?}"
            );
        }
        let n = |n: &str| MqttConfig::new("mqtt://b", None, None, None, None, Some(n.into()), true);
        assert!(n("pi-4_b").is_ok());
        assert!(matches!(n("Pi"), Err(MqttConfigError::Node(_))));
        assert!(valid_node(&host_node()), "{:?}", host_node());
    }

    #[test]
    fn route_topics_are_told_apart() {
        let t = Topics::new(&config("mqtt://b").unwrap());
        assert_eq!(t.route("lookout/yard/cmd"), Route::Command("yard"));
        assert_eq!(
            t.route("lookout/yard/threshold/set"),
            Route::Threshold("yard")
        );
        assert_eq!(t.route("homeassistant/status"), Route::HaStatus);
        assert_eq!(t.route("lookout/yard/motion"), Route::Other);
        assert_eq!(t.route("lookoutx/yard/cmd"), Route::Other);
        assert_eq!(
            t.device_config("yard"),
            "homeassistant/device/lookout_node_yard/config"
        );
    }
}

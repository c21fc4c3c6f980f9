//! Commands in: the seed's JSON commands and their exact replies, and the one
//! executor that every transport uses (WebSocket `/control`, `POST /control`,
//! later MQTT), so a command means the same thing wherever it comes from.
//!
//! | in | out |
//! |---|---|
//! | not JSON | `{"error": "bad json"}` |
//! | `{"cmd": "snapshot_now"}` | `{"ok": true, "saved": "snaps/<name>", "url": "/snaps/<name>"}` or `{"ok": false, "reason": "..."}` |
//! | `{"cmd": "reset"}` | `{"ok": true, "counters": "reset"}` |
//! | `{"cmd": "set", ...settings}` | `{"ok": true, ...whole config}` or `{"ok": false, "error": "..."}` |
//! | `{"cmd": "status"}` | `{"ok": true, "status": {...}}` |
//! | `{"cmd": "ping"}` | `{"ok": true, "pong": <unix seconds>}` |
//! | `{"cmd": "flush_uploads"}` | `{"ok": true, "uploads": {...}}` (retry the upload queue now) |
//! | any other JSON | `{"error": "unknown command"}` |
//!
//! An `"id"` in a command object is echoed in its reply.

use serde_json::{json, Map, Value};

use crate::cam::{ApplyError, Cam, SnapshotError};
use crate::frame::unix_secs;
use crate::snaps::Trigger;

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Save the latest frame now.
    SnapshotNow,
    /// Set the trigger count to 0.
    Reset,
    /// Change settings (the command object minus `cmd` and `id`).
    Set(Map<String, Value>),
    /// The `/status` body.
    Status,
    /// Liveness check.
    Ping,
    /// Retry queued uploads now.
    FlushUploads,
}

/// A message that is not a command, answered without running anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON at all.
    BadJson,
    /// JSON, but not a known command.
    Unknown,
}

/// Parses one message into a command and the `id` to echo.
pub fn parse(message: &[u8]) -> (Result<Command, Refusal>, Option<Value>) {
    let value: Value = match serde_json::from_slice(message) {
        Ok(v) => v,
        Err(_) => return (Err(Refusal::BadJson), None),
    };
    let Value::Object(mut obj) = value else {
        return (Err(Refusal::Unknown), None);
    };
    let id = obj.remove("id");
    let command = match obj.remove("cmd") {
        Some(Value::String(cmd)) => match cmd.as_str() {
            "snapshot_now" => Ok(Command::SnapshotNow),
            "reset" => Ok(Command::Reset),
            "set" => Ok(Command::Set(obj)),
            "status" => Ok(Command::Status),
            "ping" => Ok(Command::Ping),
            "flush_uploads" => Ok(Command::FlushUploads),
            _ => Err(Refusal::Unknown),
        },
        _ => Err(Refusal::Unknown),
    };
    (command, id)
}

/// Runs one message and returns the reply (exact seed shapes; `id` echoed).
pub async fn handle(cam: &Cam, message: &[u8]) -> Value {
    let (command, id) = parse(message);
    let mut reply = match command {
        Ok(cmd) => execute(cam, cmd).await,
        Err(Refusal::BadJson) => json!({"error": "bad json"}),
        Err(Refusal::Unknown) => json!({"error": "unknown command"}),
    };
    if let (Some(id), Value::Object(obj)) = (id, &mut reply) {
        obj.insert("id".into(), id);
    }
    reply
}

/// Executes a command.
pub async fn execute(cam: &Cam, cmd: Command) -> Value {
    match cmd {
        Command::SnapshotNow => match cam.save_snapshot(Trigger::Manual).await {
            Ok(info) => json!({
                "ok": true,
                "saved": format!("snaps/{}", info.name),
                "url": info.url,
            }),
            Err(SnapshotError::NoFrame) => json!({"ok": false, "reason": "no frame yet"}),
            Err(e) => {
                tracing::warn!("snapshot failed: {e}");
                json!({"ok": false, "reason": e.to_string()})
            }
        },
        Command::Reset => match cam.reset_triggers().await {
            Ok(()) => json!({"ok": true, "counters": "reset"}),
            Err(e) => {
                tracing::error!("reset failed: {e}");
                json!({"ok": false, "reason": "cannot save the counter; see the server log"})
            }
        },
        Command::Set(patch) => match cam.apply_settings(&Value::Object(patch)).await {
            Ok(_) => {
                let mut reply = Map::new();
                reply.insert("ok".into(), Value::Bool(true));
                reply.extend(cam.config_json());
                Value::Object(reply)
            }
            Err(ApplyError::Invalid(e)) => json!({"ok": false, "error": e.0}),
            Err(e) => {
                tracing::error!("{e}");
                json!({"ok": false, "error": "cannot save settings; see the server log"})
            }
        },
        Command::Status => json!({"ok": true, "status": cam.status_json()}),
        Command::Ping => json!({"ok": true, "pong": unix_secs(std::time::SystemTime::now())}),
        Command::FlushUploads => match &cam.uploads {
            Some(up) => {
                up.flush();
                json!({"ok": true, "uploads": up.status()})
            }
            None => {
                json!({"ok": false, "reason": "uploads are not configured (--upload-url or --webhook-url)"})
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(text: &str) -> Result<Command, Refusal> {
        parse(text.as_bytes()).0
    }

    #[test]
    fn parses_the_seed_commands() {
        assert_eq!(cmd(r#"{"cmd": "snapshot_now"}"#), Ok(Command::SnapshotNow));
        assert_eq!(cmd(r#"{"cmd": "reset"}"#), Ok(Command::Reset));
        assert_eq!(cmd(r#"{"cmd": "ping", "id": 3}"#), Ok(Command::Ping));
        let set = cmd(r#"{"cmd": "set", "threshold": 40, "id": "a"}"#).unwrap();
        assert_eq!(
            set,
            Command::Set(json!({"threshold": 40}).as_object().unwrap().clone())
        );
    }

    #[test]
    fn refuses_what_is_not_a_command() {
        assert_eq!(cmd("not json"), Err(Refusal::BadJson));
        assert_eq!(cmd(""), Err(Refusal::BadJson));
        for text in [
            "[1]",
            "3",
            "null",
            "\"reset\"",
            "{}",
            r#"{"cmd": 1}"#,
            r#"{"cmd": "dance"}"#,
            r#"{"cmd": null}"#,
        ] {
            assert_eq!(cmd(text), Err(Refusal::Unknown), "{text}");
        }
    }

    #[test]
    fn id_is_returned_for_echo() {
        assert_eq!(
            parse(br#"{"cmd": "x", "id": [1, 2]}"#).1,
            Some(json!([1, 2]))
        );
        assert_eq!(parse(br#"{"cmd": "reset"}"#).1, None);
    }
}

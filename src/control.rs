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
//! | `{"cmd": "snooze", "minutes": N}` | `{"ok": true, "snoozed_until": <unix seconds> \| null}` (no notifications from this camera for N minutes; 0 lifts it) |
//! | any other JSON | `{"error": "unknown command"}` |
//!
//! An `"id"` in a command object is echoed in its reply.
//!
//! A credential of the `read` scope may send `status` and `ping` only; any
//! other command gets `{"error": "...", "scope": "read"}` (403 over HTTP) and
//! runs nothing. MQTT has its own broker sign-in and full control.

use serde_json::{json, Map, Value};

use crate::auth::Scope;
use crate::cam::{ApplyError, SnapshotError};
use crate::camera::Camera;
use crate::frame::unix_secs;
use crate::hub::Hub;
use crate::snaps::Trigger;
use crate::uploads::UploadStatus;

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
    /// No notifications from the camera for this many minutes (0: lift).
    Snooze(Value),
}

impl Command {
    /// The command's name, as sent in `cmd`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::SnapshotNow => "snapshot_now",
            Command::Reset => "reset",
            Command::Set(_) => "set",
            Command::Status => "status",
            Command::Ping => "ping",
            Command::FlushUploads => "flush_uploads",
            Command::Snooze(_) => "snooze",
        }
    }

    /// The scope it takes: reading commands change nothing (not even a file
    /// on disk, as `snapshot_now` would).
    pub fn needs(&self) -> Scope {
        match self {
            Command::Status | Command::Ping => Scope::Read,
            Command::SnapshotNow
            | Command::Reset
            | Command::Set(_)
            | Command::FlushUploads
            | Command::Snooze(_) => Scope::Control,
        }
    }
}

/// A message that is not a command, answered without running anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON at all.
    BadJson,
    /// JSON, but not a known command.
    Unknown,
}

/// One message taken apart: the command, the `id` to echo and the camera
/// it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Addressed {
    /// The command, or why the message is none.
    pub command: Result<Command, Refusal>,
    /// The `id` to echo, whatever its type.
    pub id: Option<Value>,
    /// The camera named by `"camera"`: a string as it is, any other value
    /// as its JSON text (which names no camera that exists).
    pub camera: Option<String>,
}

/// Parses one message into a command, the `id` to echo and the camera it
/// names. The message is parsed once and its object taken apart; `"camera"`
/// is not a setting, so it never reaches a `set`.
pub fn parse_addressed(message: &[u8]) -> Addressed {
    let Ok(mut value) = serde_json::from_slice::<Value>(message) else {
        return Addressed {
            command: Err(Refusal::BadJson),
            id: None,
            camera: None,
        };
    };
    let camera = match &mut value {
        Value::Object(obj) => obj.remove("camera").map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        }),
        _ => None,
    };
    let (command, id) = command_of(value);
    Addressed {
        command,
        id,
        camera,
    }
}

/// Parses one message into a command and the `id` to echo.
pub fn parse(message: &[u8]) -> (Result<Command, Refusal>, Option<Value>) {
    match serde_json::from_slice(message) {
        Ok(value) => command_of(value),
        Err(_) => (Err(Refusal::BadJson), None),
    }
}

/// The command in a parsed message and the `id` to echo: `cmd` and `id`
/// are taken out, and what is left is a `set`'s settings.
fn command_of(value: Value) -> (Result<Command, Refusal>, Option<Value>) {
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
            "snooze" => Ok(Command::Snooze(
                obj.remove("minutes").unwrap_or(Value::Null),
            )),
            _ => Err(Refusal::Unknown),
        },
        _ => Err(Refusal::Unknown),
    };
    (command, id)
}

/// What a command did, as its reply says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `snapshot_now`: the file saved.
    Saved {
        /// Its path in the data directory (`snaps/CAMERA/<name>`).
        path: String,
        /// Where it is served.
        url: String,
    },
    /// `reset`.
    Reset,
    /// `set`: the whole new config.
    Config(Map<String, Value>),
    /// `status`: the `/status` body.
    Status(Value),
    /// `ping`: the server's clock, Unix seconds.
    Pong(f64),
    /// `flush_uploads`: the queue's state.
    Uploads(UploadStatus),
    /// `snooze`: until when (`None`: not snoozed).
    Snoozed(Option<f64>),
}

/// Why a message got no success reply. Each has its exact reply text; the
/// HTTP status of `POST /control` comes from the variant (`web::api`), never
/// from the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not JSON at all.
    #[error("bad json")]
    BadJson,
    /// JSON, but not a known command.
    #[error("unknown command")]
    Unknown,
    /// `snapshot_now` before the camera delivered a frame.
    #[error("no frame yet")]
    NoFrame,
    /// `snapshot_now` failed on disk.
    #[error("{0}")]
    Snapshot(String),
    /// `reset` could not persist the counter.
    #[error("cannot save the counter; see the server log")]
    ResetFailed,
    /// `set` with a bad value (the settings' own message).
    #[error("{0}")]
    Invalid(String),
    /// `set` could not persist the settings.
    #[error("cannot save settings; see the server log")]
    SaveFailed,
    /// `flush_uploads` with no upload configured.
    #[error("uploads are not configured (--upload-url or --webhook-url)")]
    UploadsOff,
    /// `"camera"` names no camera of this server.
    #[error("unknown camera")]
    UnknownCamera,
    /// The credential's scope does not cover the command.
    #[error("{command} needs a control token; this one has the {scope} scope")]
    Forbidden {
        /// The command's name.
        command: &'static str,
        /// The credential's scope.
        scope: Scope,
    },
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadJson => CommandError::BadJson,
            Refusal::Unknown => CommandError::Unknown,
        }
    }
}

/// One message's outcome and the `id` to echo.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The command's `id`, if it had one.
    pub id: Option<Value>,
    /// What happened.
    pub result: Result<Reply, CommandError>,
}

impl Handled {
    /// The reply in the seed's exact shapes, `id` echoed.
    pub fn to_json(&self) -> Value {
        let mut reply = match &self.result {
            Ok(Reply::Saved { path, url }) => json!({
                "ok": true,
                "saved": path,
                "url": url,
            }),
            Ok(Reply::Reset) => json!({"ok": true, "counters": "reset"}),
            Ok(Reply::Config(config)) => {
                let mut reply = Map::new();
                reply.insert("ok".into(), Value::Bool(true));
                reply.extend(config.clone());
                Value::Object(reply)
            }
            Ok(Reply::Status(status)) => json!({"ok": true, "status": status}),
            Ok(Reply::Pong(ts)) => json!({"ok": true, "pong": ts}),
            Ok(Reply::Uploads(uploads)) => json!({"ok": true, "uploads": uploads}),
            Ok(Reply::Snoozed(until)) => json!({"ok": true, "snoozed_until": until}),
            Err(
                e @ (CommandError::BadJson | CommandError::Unknown | CommandError::UnknownCamera),
            ) => json!({"error": e.to_string()}),
            Err(e @ (CommandError::Invalid(_) | CommandError::SaveFailed)) => {
                json!({"ok": false, "error": e.to_string()})
            }
            Err(e @ CommandError::Forbidden { scope, .. }) => {
                json!({"error": e.to_string(), "scope": scope.as_str()})
            }
            Err(
                e @ (CommandError::NoFrame
                | CommandError::Snapshot(_)
                | CommandError::ResetFailed
                | CommandError::UploadsOff),
            ) => json!({"ok": false, "reason": e.to_string()}),
        };
        if let (Some(id), Value::Object(obj)) = (&self.id, &mut reply) {
            obj.insert("id".into(), id.clone());
        }
        reply
    }
}

/// Runs one message with full control, on the camera it names
/// (`"camera"`) or else on `cam` (the route's camera: the first one at the
/// root).
pub async fn run(hub: &Hub, cam: &Camera, message: &[u8]) -> Handled {
    run_as(hub, cam, message, Scope::Control).await
}

/// Runs one message for a credential of `scope`: a command it does not
/// cover is refused before anything runs.
pub async fn run_as(hub: &Hub, cam: &Camera, message: &[u8], scope: Scope) -> Handled {
    run_addressed(hub, cam, parse_addressed(message), scope).await
}

/// [`run_as`] for a message already taken apart (a transport that looked at
/// its `"camera"` first need not parse it again).
pub async fn run_addressed(hub: &Hub, cam: &Camera, message: Addressed, scope: Scope) -> Handled {
    let Addressed {
        command,
        id,
        camera,
    } = message;
    let target = match camera.as_deref() {
        None => Some(cam),
        Some(name) => hub.cam(name).map(|c| c.as_ref()),
    };
    let result = match (command, target) {
        (Err(refusal), _) => Err(refusal.into()),
        (Ok(cmd), _) if !scope.allows(cmd.needs()) => Err(CommandError::Forbidden {
            command: cmd.name(),
            scope,
        }),
        (Ok(_), None) => Err(CommandError::UnknownCamera),
        (Ok(cmd), Some(target)) => execute(hub, target, cmd).await,
    };
    Handled { id, result }
}

/// Runs one message with full control and returns the reply (exact seed
/// shapes; `id` echoed).
pub async fn handle(hub: &Hub, cam: &Camera, message: &[u8]) -> Value {
    run(hub, cam, message).await.to_json()
}

/// [`handle`] for a credential of `scope` (see [`run_as`]).
pub async fn handle_as(hub: &Hub, cam: &Camera, message: &[u8], scope: Scope) -> Value {
    run_as(hub, cam, message, scope).await.to_json()
}

/// Executes a command on `camera`.
pub async fn execute(hub: &Hub, camera: &Camera, cmd: Command) -> Result<Reply, CommandError> {
    let cam = &camera.cam;
    match cmd {
        Command::SnapshotNow => match cam.save_snapshot(Trigger::Manual).await {
            Ok(info) => Ok(Reply::Saved {
                path: format!("snaps/{}/{}", camera.name, info.name),
                url: info.url,
            }),
            Err(SnapshotError::NoFrame) => Err(CommandError::NoFrame),
            Err(e) => {
                tracing::warn!("snapshot failed: {e}");
                Err(CommandError::Snapshot(e.to_string()))
            }
        },
        Command::Reset => match cam.reset_triggers().await {
            Ok(()) => Ok(Reply::Reset),
            Err(e) => {
                tracing::error!("reset failed: {e}");
                Err(CommandError::ResetFailed)
            }
        },
        Command::Set(patch) => match hub.server().apply(cam, &Value::Object(patch)).await {
            Ok(applied) => Ok(Reply::Config(applied.to_json())),
            Err(ApplyError::Invalid(e)) => Err(CommandError::Invalid(e.0)),
            Err(e) => {
                tracing::error!("{e}");
                Err(CommandError::SaveFailed)
            }
        },
        Command::Status => Ok(Reply::Status(
            serde_json::to_value(crate::report::status(hub, camera)).unwrap_or(Value::Null),
        )),
        Command::Ping => Ok(Reply::Pong(unix_secs(std::time::SystemTime::now()))),
        Command::FlushUploads => match hub.uploads() {
            Some(up) => {
                up.flush();
                Ok(Reply::Uploads(up.report()))
            }
            None => Err(CommandError::UploadsOff),
        },
        Command::Snooze(minutes) => {
            let max = crate::push::MAX_SNOOZE_MINUTES;
            let Some(minutes) = minutes.as_u64().filter(|m| *m <= max) else {
                return Err(CommandError::Invalid(format!(
                    "minutes must be a whole number from 0 (lift the snooze) to {max} (a week)"
                )));
            };
            match hub.push().snooze(&camera.name, minutes).await {
                Ok(until) => Ok(Reply::Snoozed(until)),
                Err(crate::push::PushError::Invalid(e)) => Err(CommandError::Invalid(e)),
                Err(e) => {
                    tracing::error!("snooze failed: {e}");
                    Err(CommandError::SaveFailed)
                }
            }
        }
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
    fn only_status_and_ping_are_reading_commands() {
        for text in [r#"{"cmd": "status"}"#, r#"{"cmd": "ping"}"#] {
            assert_eq!(cmd(text).unwrap().needs(), Scope::Read, "{text}");
        }
        for text in [
            r#"{"cmd": "snapshot_now"}"#,
            r#"{"cmd": "reset"}"#,
            r#"{"cmd": "set", "threshold": 1}"#,
            r#"{"cmd": "flush_uploads"}"#,
        ] {
            let c = cmd(text).unwrap();
            assert_eq!(c.needs(), Scope::Control, "{text}");
            assert!(text.contains(c.name()));
        }
    }

    #[test]
    fn a_refused_command_names_the_scope_and_echoes_the_id() {
        let handled = Handled {
            id: Some(json!(4)),
            result: Err(CommandError::Forbidden {
                command: "reset",
                scope: Scope::Read,
            }),
        };
        assert_eq!(
            handled.to_json(),
            json!({
                "error": "reset needs a control token; this one has the read scope",
                "scope": "read",
                "id": 4,
            })
        );
    }

    #[test]
    fn the_camera_is_taken_out_of_the_command() {
        let a = parse_addressed(br#"{"cmd": "set", "camera": "door", "threshold": 5, "id": null}"#);
        assert_eq!(a.camera.as_deref(), Some("door"));
        assert_eq!(a.id, Some(Value::Null));
        assert_eq!(
            a.command,
            Ok(Command::Set(
                json!({"threshold": 5}).as_object().unwrap().clone()
            ))
        );
        // Any other value names a camera by its JSON text (none has that name).
        assert_eq!(
            parse_addressed(br#"{"cmd": "ping", "camera": 7}"#)
                .camera
                .as_deref(),
            Some("7")
        );
        let none = parse_addressed(br#"{"cmd": "reset", "id": "x"}"#);
        assert_eq!(
            (none.command, none.id, none.camera),
            (Ok(Command::Reset), Some(json!("x")), None)
        );
        let bad = parse_addressed(b"{not json");
        assert_eq!(
            (bad.command, bad.id, bad.camera),
            (Err(Refusal::BadJson), None, None)
        );
        let list = parse_addressed(br#"[{"camera": "door"}]"#);
        assert_eq!((list.command, list.camera), (Err(Refusal::Unknown), None));
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

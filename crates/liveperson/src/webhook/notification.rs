//! Notification bodies, decoded leniently: every field may be absent (the vendor's own examples
//! differ in which they send), scalars follow the [`crate::lenient`] rules, and a change that
//! cannot be read is returned as an error on its own so that its neighbours are kept.
//!
//! The envelope is `{"kind":"notification","body":{"changes":[…]},"type":T}` with `T` one of
//! [`MESSAGING_TYPE`] and [`CONVERSATION_TYPE`]; keys may come in any order.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::lenient::{Int, RawJson, Text};

/// `ms.MessagingEventNotification`: content, rich content, accept status and chat state.
pub const MESSAGING_TYPE: &str = "ms.MessagingEventNotification";
/// `cqm.ExConversationChangeNotification`: the whole state of a conversation, on each change.
pub const CONVERSATION_TYPE: &str = "cqm.ExConversationChangeNotification";

/// Which of the two documented notifications a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationType {
    Messaging,
    ConversationChange,
}

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Messaging => MESSAGING_TYPE,
            NotificationType::ConversationChange => CONVERSATION_TYPE,
        }
    }
}

/// A notification whose envelope was read; each change decoded on its own.
#[derive(Debug)]
pub struct Notification<'a> {
    pub notification_type: NotificationType,
    /// Each change: decoded, or why not, with its exact JSON text as received.
    pub changes: Vec<(Result<Change, String>, &'a RawValue)>,
}

/// One change of a notification. Short-lived (one notification's changes at a time), so the
/// variants' sizes do not matter.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Messaging(MessagingChange),
    Conversation(ConversationChange),
}

/// A change of `ms.MessagingEventNotification`.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagingChange {
    /// `conversationId`, or the `dialogId` when only that is sent (they are equal for the
    /// conversation's main dialog; older payloads carry only `dialogId`).
    pub conversation_id: String,
    pub dialog_id: String,
    /// The conversation's event counter; absent on chat-state events.
    pub sequence: Option<i64>,
    pub originator_id: Option<String>,
    /// `originatorMetadata.role`: `CONSUMER`, `ASSIGNED_AGENT`, `CONTROLLER`…
    pub originator_role: Option<String>,
    /// Epoch ms; absent on chat-state events.
    pub server_timestamp: Option<i64>,
    pub audience: Option<String>,
    pub event: MessagingEvent,
}

/// The `event` of a messaging change.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagingEvent {
    Content {
        /// `contentType`, e.g. `text/plain` or `hosted/file`.
        content_type: Option<String>,
        /// The text of a string `message`.
        text: Option<String>,
        /// A hosted file's fields, when `message` is an object.
        file: Option<HostedFile>,
    },
    RichContent {
        /// The structured content as JSON text (sent as an object, or as a JSON string).
        content_json: Option<String>,
    },
    AcceptStatus {
        /// `ACCEPT` or `READ`.
        status: Option<String>,
        /// The sequences of the messages concerned.
        sequence_list: Vec<i64>,
    },
    ChatState {
        chat_state: Option<String>,
    },
}

impl MessagingEvent {
    /// The event's `type` as LivePerson names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            MessagingEvent::Content { .. } => "ContentEvent",
            MessagingEvent::RichContent { .. } => "RichContentEvent",
            MessagingEvent::AcceptStatus { .. } => "AcceptStatusEvent",
            MessagingEvent::ChatState { .. } => "ChatStateEvent",
        }
    }
}

/// A `hosted/file` content event's `message`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostedFile {
    pub caption: Text,
    pub relative_path: Text,
    pub file_type: Text,
}

/// A change of `cqm.ExConversationChangeNotification`: the conversation's complete state.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationChange {
    pub conversation_id: String,
    /// `UPSERT` (the only documented type).
    pub change_type: Option<String>,
    /// `metaDataLastUpdateTs`: with the id, what identifies this state of the conversation.
    pub last_update_ms: i64,
    pub state: Option<String>,
    pub stage: Option<String>,
    /// `skillId`, `None` for LivePerson's `"-1"` (no skill).
    pub skill_id: Option<String>,
    pub brand_id: Option<String>,
    pub close_reason: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub effective_ttr_ms: Option<i64>,
    /// Participants with an agent role (`ASSIGNED_AGENT`, `CONTROLLER`, `MANAGER`…), in order.
    pub agent_ids: Vec<String>,
    /// Participants with the `CONSUMER` role.
    pub consumer_ids: Vec<String>,
    /// `participants` and `dialogs` as JSON text.
    pub participants_json: Option<String>,
    pub dialogs_json: Option<String>,
}

impl ConversationChange {
    /// True when the conversation is closed (state `CLOSE`).
    pub fn is_closed(&self) -> bool {
        self.state.as_deref() == Some("CLOSE")
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    kind: Option<String>,
    #[serde(rename = "type")]
    notification_type: Option<String>,
    #[serde(borrow)]
    body: Option<Body<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    changes: Option<Vec<&'a RawValue>>,
}

/// Reads the envelope of a notification body. `Err` says why the body is not a notification
/// LivePerson documents (it is then kept in quarantine, whole).
pub fn decode(body: &[u8]) -> Result<Notification<'_>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| format!("the body is not a JSON object: {e}"))?;
    match envelope.kind.as_deref() {
        Some("notification") => {}
        other => return Err(format!("kind is {other:?}, not \"notification\"")),
    }
    let notification_type = match envelope.notification_type.as_deref() {
        Some(MESSAGING_TYPE) => NotificationType::Messaging,
        Some(CONVERSATION_TYPE) => NotificationType::ConversationChange,
        other => return Err(format!("type {other:?} is not a documented notification")),
    };
    let changes = envelope
        .body
        .and_then(|b| b.changes)
        .ok_or("the body has no changes list")?;
    let changes = changes
        .into_iter()
        .map(|raw| {
            let change = match notification_type {
                NotificationType::Messaging => messaging_change(raw).map(Change::Messaging),
                NotificationType::ConversationChange => {
                    conversation_change(raw).map(Change::Conversation)
                }
            };
            (change, raw)
        })
        .collect();
    Ok(Notification {
        notification_type,
        changes,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawMessagingChange {
    sequence: Int,
    originator_id: Text,
    originator_metadata: Option<RawOriginator>,
    server_timestamp: Int,
    conversation_id: Text,
    dialog_id: Text,
    message_audience: Text,
    event: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOriginator {
    id: Text,
    role: Text,
}

fn messaging_change(raw: &RawValue) -> Result<MessagingChange, String> {
    let c: RawMessagingChange = serde_json::from_str(raw.get())
        .map_err(|e| format!("messaging change is not readable: {e}"))?;
    let dialog_id = c.dialog_id.0;
    let conversation_id = c
        .conversation_id
        .0
        .or_else(|| dialog_id.clone())
        .ok_or("messaging change has neither conversationId nor dialogId")?;
    let dialog_id = dialog_id.unwrap_or_else(|| conversation_id.clone());
    let event = c.event.ok_or("messaging change has no event")?;
    let event = messaging_event(event)?;
    let (originator_id, originator_role) = match c.originator_metadata {
        Some(m) => (c.originator_id.0.or(m.id.0), m.role.0),
        None => (c.originator_id.0, None),
    };
    if !matches!(event, MessagingEvent::ChatState { .. }) && c.sequence.0.is_none() {
        return Err(format!("{} has no sequence", event.type_name()));
    }
    // A status row is identified by who accepted or read, and which status it is.
    if let MessagingEvent::AcceptStatus { status, .. } = &event {
        if originator_id.is_none() {
            return Err("AcceptStatusEvent has no originatorId".into());
        }
        if status.is_none() {
            return Err("AcceptStatusEvent has no status".into());
        }
    }
    Ok(MessagingChange {
        conversation_id,
        dialog_id,
        sequence: c.sequence.0,
        originator_id,
        originator_role,
        server_timestamp: c.server_timestamp.0,
        audience: c.message_audience.0,
        event,
    })
}

fn field_text(event: &serde_json::Value, key: &str) -> Option<String> {
    match event.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn messaging_event(event: serde_json::Value) -> Result<MessagingEvent, String> {
    let kind = event.get("type").and_then(|t| t.as_str()).unwrap_or("");
    Ok(match kind {
        "ContentEvent" => {
            let (text, file) = match event.get("message") {
                Some(serde_json::Value::String(s)) => (Some(s.clone()), None),
                Some(object @ serde_json::Value::Object(_)) => {
                    let file = HostedFile::deserialize(object)
                        .map_err(|e| format!("ContentEvent message is not readable: {e}"))?;
                    (None, Some(file))
                }
                Some(serde_json::Value::Null) | None => (None, None),
                Some(other) => (Some(other.to_string()), None),
            };
            MessagingEvent::Content {
                content_type: field_text(&event, "contentType"),
                text,
                file,
            }
        }
        "RichContentEvent" => MessagingEvent::RichContent {
            // The history APIs send the card as a JSON string, webhooks as an object.
            content_json: field_text(&event, "content"),
        },
        "AcceptStatusEvent" => {
            let sequence_list = match event.get("sequenceList") {
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        Int::deserialize(i)
                            .ok()
                            .and_then(|i| i.0)
                            .ok_or_else(|| format!("sequenceList holds {i}, not a sequence"))
                    })
                    .collect::<Result<_, _>>()?,
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(other) => return Err(format!("sequenceList is {other}, not a list")),
            };
            MessagingEvent::AcceptStatus {
                status: field_text(&event, "status"),
                sequence_list,
            }
        }
        "ChatStateEvent" => MessagingEvent::ChatState {
            chat_state: field_text(&event, "chatState"),
        },
        other => return Err(format!("event type {other:?} is not documented")),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawConversationChange {
    #[serde(rename = "type")]
    change_type: Text,
    result: Option<RawResult>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawResult {
    conv_id: Text,
    #[serde(rename = "effectiveTTR")]
    effective_ttr: Int,
    conversation_details: Option<RawDetails>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawDetails {
    skill_id: Text,
    participants: Option<Vec<RawParticipant>>,
    dialogs: RawJson,
    brand_id: Text,
    state: Text,
    stage: Text,
    close_reason: Text,
    start_ts: Int,
    end_ts: Int,
    meta_data_last_update_ts: Int,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawParticipant {
    id: Text,
    role: Text,
}

fn conversation_change(raw: &RawValue) -> Result<ConversationChange, String> {
    let c: RawConversationChange = serde_json::from_str(raw.get())
        .map_err(|e| format!("conversation change is not readable: {e}"))?;
    let result = c.result.ok_or("conversation change has no result")?;
    let conversation_id = result
        .conv_id
        .0
        .ok_or("conversation change has no convId")?;
    let d = result.conversation_details.unwrap_or_default();
    let last_update_ms = d
        .meta_data_last_update_ts
        .0
        .ok_or("conversation change has no metaDataLastUpdateTs")?;
    let participants = d.participants.unwrap_or_default();
    let with_role = |consumer: bool| -> Vec<String> {
        participants
            .iter()
            .filter(|p| (p.role.0.as_deref() == Some("CONSUMER")) == consumer)
            .filter_map(|p| p.id.0.clone())
            .collect()
    };
    let participants_json = (!participants.is_empty()).then(|| {
        let list: Vec<serde_json::Value> = participants
            .iter()
            .map(|p| serde_json::json!({"id": p.id.0, "role": p.role.0}))
            .collect();
        serde_json::Value::Array(list).to_string()
    });
    Ok(ConversationChange {
        agent_ids: with_role(false),
        consumer_ids: with_role(true),
        conversation_id,
        change_type: c.change_type.0,
        last_update_ms,
        state: d.state.0,
        stage: d.stage.0,
        skill_id: d.skill_id.0.filter(|s| s != "-1"),
        brand_id: d.brand_id.0,
        close_reason: d.close_reason.0,
        start_ms: d.start_ts.0,
        end_ms: d.end_ts.0,
        effective_ttr_ms: result.effective_ttr.0.filter(|t| *t >= 0),
        participants_json,
        dialogs_json: d.dialogs.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_conversation_id_uses_the_dialog_id() {
        let body = br#"{"kind":"notification","body":{"changes":[{"sequence":0,"originatorId":"c","originatorMetadata":{"id":"c","role":"CONSUMER"},"serverTimestamp":5,"event":{"type":"ContentEvent","message":"hi","contentType":"text/plain"},"dialogId":"d1"}]},"type":"ms.MessagingEventNotification"}"#;
        let n = decode(body).unwrap();
        let Change::Messaging(m) = n.changes[0].0.clone().unwrap() else {
            panic!("a messaging change")
        };
        assert_eq!(
            (m.conversation_id.as_str(), m.dialog_id.as_str()),
            ("d1", "d1")
        );
        assert_eq!(m.sequence, Some(0));
        assert_eq!(m.originator_role.as_deref(), Some("CONSUMER"));
    }

    #[test]
    fn undocumented_bodies_say_why() {
        for (body, why) in [
            (&b"\xff"[..], "UTF-8"),
            (b"[1]", "JSON object"),
            (
                br#"{"kind":"x","type":"ms.MessagingEventNotification"}"#,
                "kind",
            ),
            (
                br#"{"kind":"notification","type":"ms.Other","body":{"changes":[]}}"#,
                "documented",
            ),
            (
                br#"{"kind":"notification","type":"ms.MessagingEventNotification"}"#,
                "changes",
            ),
        ] {
            let err = decode(body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_bad_change_does_not_spoil_its_neighbours() {
        let body = br#"{"type":"ms.MessagingEventNotification","kind":"notification","body":{"changes":[
            {"event":{"type":"ContentEvent","message":"no sequence"},"dialogId":"d"},
            {"sequence":"7","originatorId":"a","event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[1,"2"]},"dialogId":"d","conversationId":"c"}]}}"#;
        let n = decode(body).unwrap();
        assert!(n.changes[0].0.as_ref().unwrap_err().contains("no sequence"));
        let Change::Messaging(m) = n.changes[1].0.clone().unwrap() else {
            panic!("a messaging change")
        };
        assert_eq!(
            m.event,
            MessagingEvent::AcceptStatus {
                status: Some("READ".into()),
                sequence_list: vec![1, 2]
            }
        );
        assert_eq!(m.conversation_id, "c");
    }
}

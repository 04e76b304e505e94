//! Connector API webhook notifications → the `webhook_*` tables of `lpdrop listen`.
//!
//! Rows are events, not snapshots: each distinct event is one row, in one drop, ever. What
//! makes an event distinct is its [`RowKey`] (the table's grain); the listener asks its
//! de-duplication store about each key before a row is written, because LivePerson delivers at
//! least once and may redeliver days later. Messages and statuses use the columns of
//! `messages` and `message_statuses` where they mean the same thing, so that the two join.

use lpdrop_liveperson::webhook::notification::{
    Change, ConversationChange, MessagingChange, MessagingEvent, Notification,
};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::buffer::{TableBuffer, buffer_of};
use crate::macros::s;
use crate::richtext::plain_text;
use crate::schema::TableDef;

/// What a webhook row is, for one row of a drop and across drops: 16 bytes of SHA-256 over the
/// table's name and its grain's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey(pub [u8; 16]);

impl RowKey {
    fn of(table: &str, parts: &[&[u8]]) -> Self {
        let mut hash = Sha256::new();
        hash.update(table.as_bytes());
        for part in parts {
            // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        RowKey(key)
    }
}

impl RowKey {
    /// The key of a body kept in quarantine (not a documented notification): by its bytes.
    pub fn quarantined(body_sha256: &str) -> Self {
        RowKey::of("quarantine", &[body_sha256.as_bytes()])
    }
}

/// How a notification arrived: when, and the SHA-256 (hex) of its exact bytes.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub at_ms: i64,
    pub body_sha256: &'a str,
}

/// `originatorMetadata.role` as Messaging Interactions' `sentBy` / `participantType`.
fn sent_by(role: Option<&str>) -> Option<&'static str> {
    match role? {
        "CONSUMER" => Some("Consumer"),
        "SYSTEM" => Some("System"),
        _ => Some("Agent"),
    }
}

/// A webhook `contentType` (or event type) as Messaging Interactions' message `type`.
fn content_type(event: &MessagingEvent) -> Option<String> {
    match event {
        MessagingEvent::RichContent { .. } => Some("RICH_CONTENT".into()),
        MessagingEvent::Content { content_type, .. } => content_type.as_deref().map(|t| match t {
            "text/plain" => "TEXT_PLAIN".to_string(),
            "text/html" => "TEXT_HTML".to_string(),
            "hosted/file" => "HOSTED_FILE".to_string(),
            other => other.to_ascii_uppercase().replace(['/', '-'], "_"),
        }),
        _ => None,
    }
}

table! {
    WEBHOOK_MESSAGES, fn fill_message(w, r: &Received<'_>, m: &MessagingChange, seq: i64),
    name: "webhook_messages",
    entity: Webhooks("webhook_messages", "conversation_id"),
    grain: ["conversation_id", "dialog_id", "seq"],
    description: "One row per distinct message received by webhook (ContentEvent and RichContentEvent), once across all drops; joins messages on conversation_id, dialog_id and seq.",
    columns: {
        "conversation_id": utf8 [required] = Some(m.conversation_id.as_str()) => "conversationId", "Conversation (the dialogId when the notification carries only that).";
        "dialog_id": utf8 [required] = Some(m.dialog_id.as_str()) => "dialogId", "Dialog id (the main dialog's id equals the conversation id).";
        "seq": int64 [required] = Some(seq) => "sequence", "Sequence in the conversation, as messages.seq.";
        "participant_id": utf8 = m.originator_id.as_deref() => "originatorId", "Consumer participant id or agent id.";
        "participant_role": utf8 = m.originator_role.as_deref() => "originatorMetadata.role", "CONSUMER, ASSIGNED_AGENT, CONTROLLER, ...";
        "sent_by": utf8 = sent_by(m.originator_role.as_deref()) => "derived", "Consumer, Agent or System (from the role), as messages.sent_by.";
        "content_type": utf8 = content_type(&m.event).as_deref() => "event.contentType", "TEXT_PLAIN, HOSTED_FILE, RICH_CONTENT, ... as messages.content_type.";
        "sent_time": timestamp_ms = m.server_timestamp => "serverTimestamp", "When LivePerson created the event (UTC).";
        "audience": utf8 = m.audience.as_deref() => "messageAudience", "ALL, or AGENTS_AND_MANAGERS for private messages.";
        "text": utf8 = message_text(m) => "event.message", "Plain text of a text message.";
        "rich_content_json": utf8 = rich_json(m) => "event.content", "Structured content card as JSON.";
        "rich_content_text": utf8 = rich_json(m).and_then(plain_text).as_deref() => "derived", "Text portion of the structured content.";
        "file_relative_path": utf8 = file(m).and_then(|f| s(&f.relative_path)) => "event.message.relativePath", "Hosted file path.";
        "file_type": utf8 = file(m).and_then(|f| s(&f.file_type)) => "event.message.fileType", "JPG, JPEG, PNG or GIF.";
        "file_caption": utf8 = file(m).and_then(|f| s(&f.caption)) => "event.message.caption", "File caption.";
        "received_at": timestamp_ms [required] = Some(r.at_ms) => "derived", "When lpdrop received (and acknowledged) the notification (UTC).";
        "notification_sha256": utf8 [required] = Some(r.body_sha256) => "derived", "SHA-256 of the notification's exact bytes: its row in webhook_events.";
    }
}

fn message_text(m: &MessagingChange) -> Option<&str> {
    match &m.event {
        MessagingEvent::Content { text, .. } => text.as_deref(),
        _ => None,
    }
}

fn rich_json(m: &MessagingChange) -> Option<&str> {
    match &m.event {
        MessagingEvent::RichContent { content_json } => content_json.as_deref(),
        _ => None,
    }
}

fn file(m: &MessagingChange) -> Option<&lpdrop_liveperson::webhook::notification::HostedFile> {
    match &m.event {
        MessagingEvent::Content { file, .. } => file.as_ref(),
        _ => None,
    }
}

table! {
    WEBHOOK_MESSAGE_STATUSES, fn fill_status(w, r: &Received<'_>, m: &MessagingChange, status: Option<&str>, seq: i64),
    name: "webhook_message_statuses",
    entity: Webhooks("webhook_message_statuses", "conversation_id"),
    grain: ["conversation_id", "dialog_id", "seq", "participant_id", "message_delivery_status"],
    description: "One row per distinct accept or read receipt received by webhook (each sequenceList entry of an AcceptStatusEvent), once across all drops; as message_statuses.",
    columns: {
        "conversation_id": utf8 [required] = Some(m.conversation_id.as_str()) => "conversationId", "Conversation.";
        "dialog_id": utf8 [required] = Some(m.dialog_id.as_str()) => "dialogId", "Dialog id.";
        "seq": int64 [required] = Some(seq) => "event.sequenceList[]", "Sequence of the message the status is about, as message_statuses.seq.";
        "participant_id": utf8 [required] = m.originator_id.as_deref() => "originatorId", "Who accepted or read the message.";
        "participant_type": utf8 = sent_by(m.originator_role.as_deref()) => "originatorMetadata.role", "Agent or Consumer, as message_statuses.participant_type.";
        "message_delivery_status": utf8 [required] = status => "event.status", "ACCEPT or READ.";
        "status_time": timestamp_ms = m.server_timestamp => "serverTimestamp", "When the status was set (UTC).";
        "event_seq": int64 = m.sequence => "sequence", "The status event's own sequence (the messages' counter).";
        "received_at": timestamp_ms [required] = Some(r.at_ms) => "derived", "When lpdrop received the notification (UTC).";
        "notification_sha256": utf8 [required] = Some(r.body_sha256) => "derived", "SHA-256 of the notification's exact bytes.";
    }
}

table! {
    WEBHOOK_CONVERSATIONS, fn fill_conversation(w, r: &Received<'_>, c: &ConversationChange),
    name: "webhook_conversations",
    entity: Webhooks("webhook_conversations", "conversation_id"),
    grain: ["conversation_id", "last_update_time"],
    description: "One row per distinct conversation change (cqm.ExConversationChangeNotification): the conversation's whole state at metaDataLastUpdateTs.",
    columns: {
        "conversation_id": utf8 [required] = Some(c.conversation_id.as_str()) => "result.convId", "Conversation.";
        "last_update_time": timestamp_ms [required] = Some(c.last_update_ms) => "conversationDetails.metaDataLastUpdateTs", "When this state was reached (UTC); with the id, the row's identity.";
        "change_type": utf8 = c.change_type.as_deref() => "type", "UPSERT.";
        "status": utf8 = c.state.as_deref() => "conversationDetails.state", "OPEN or CLOSE, as conversations.status.";
        "stage": utf8 = c.stage.as_deref() => "conversationDetails.stage", "Conversation stage.";
        "skill_id": utf8 = c.skill_id.as_deref() => "conversationDetails.skillId", "Skill the conversation is routed to; NULL for none (-1).";
        "brand_id": utf8 = c.brand_id.as_deref() => "conversationDetails.brandId", "Account id as LivePerson reports it.";
        "agent_ids_json": utf8 = ids_json(&c.agent_ids).as_deref() => "conversationDetails.participants", "Ids of the participants with an agent role, as a JSON array.";
        "consumer_id": utf8 = c.consumer_ids.first().map(String::as_str) => "conversationDetails.participants", "The consumer participant's id.";
        "participants_json": utf8 = c.participants_json.as_deref() => "conversationDetails.participants", "Every participant with its role, as JSON.";
        "start_time": timestamp_ms = c.start_ms => "conversationDetails.startTs", "Conversation start (UTC).";
        "end_time": timestamp_ms = c.end_ms.filter(|t| *t > 0) => "conversationDetails.endTs", "Conversation end (UTC); NULL while open.";
        "close_reason": utf8 = c.close_reason.as_deref() => "conversationDetails.closeReason", "Who closed it (AGENT, CONSUMER, SYSTEM...).";
        "effective_ttr_time": timestamp_ms = c.effective_ttr_ms => "result.effectiveTTR", "When the response is due (UTC); NULL once closed (-1).";
        "dialogs_json": utf8 = c.dialogs_json.as_deref() => "conversationDetails.dialogs", "The conversation's dialogs as JSON.";
        "received_at": timestamp_ms [required] = Some(r.at_ms) => "derived", "When lpdrop received the notification (UTC).";
        "notification_sha256": utf8 [required] = Some(r.body_sha256) => "derived", "SHA-256 of the notification's exact bytes.";
    }
}

fn ids_json(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| serde_json::to_string(ids).expect("strings serialize"))
}

/// What the audit table says about one change.
pub(crate) struct EventFacts<'a> {
    index: i64,
    event_type: Option<&'a str>,
    conversation_id: Option<&'a str>,
    dialog_id: Option<&'a str>,
    sequence: Option<i64>,
    originator_id: Option<&'a str>,
    server_time: Option<i64>,
    chat_state: Option<&'a str>,
    json: &'a str,
}

table! {
    WEBHOOK_EVENTS, fn fill_event(w, r: &Received<'_>, notification_type: &str, e: &EventFacts<'_>),
    name: "webhook_events",
    entity: Webhooks("webhook_events", "notification_sha256"),
    grain: ["notification_sha256", "change_index"],
    description: "Every distinct notification accepted, one row per change as received (chat-state events included), for audit; a byte-identical redelivery is not a second row.",
    columns: {
        "notification_sha256": utf8 [required] = Some(r.body_sha256) => "derived", "SHA-256 of the notification's exact bytes.";
        "change_index": int64 [required] = Some(e.index) => "body.changes[]", "Position of the change in the notification (0-based).";
        "received_at": timestamp_ms [required] = Some(r.at_ms) => "derived", "When lpdrop received (and acknowledged) the notification (UTC).";
        "notification_type": utf8 [required] = Some(notification_type) => "type", "ms.MessagingEventNotification or cqm.ExConversationChangeNotification.";
        "event_type": utf8 = e.event_type => "event.type", "ContentEvent, RichContentEvent, AcceptStatusEvent, ChatStateEvent, or the change type (UPSERT); NULL when the change could not be read (it is also in quarantine).";
        "conversation_id": utf8 = e.conversation_id => "conversationId", "Conversation.";
        "dialog_id": utf8 = e.dialog_id => "dialogId", "Dialog.";
        "sequence": int64 = e.sequence => "sequence", "The conversation's event counter; NULL for chat states and conversation changes.";
        "originator_id": utf8 = e.originator_id => "originatorId", "Participant who caused the event.";
        "server_time": timestamp_ms = e.server_time => "serverTimestamp", "When LivePerson created the event (UTC), or the conversation's metaDataLastUpdateTs.";
        "chat_state": utf8 = e.chat_state => "event.chatState", "COMPOSING, ACTIVE, PAUSE, INACTIVE or GONE, for chat-state events.";
        "change_json": utf8 [required] = Some(e.json) => "body.changes[]", "The change exactly as received.";
    }
}

/// Every webhook table, in drop and manifest order.
pub static WEBHOOK_TABLES: [&TableDef; 4] = [
    &WEBHOOK_MESSAGES,
    &WEBHOOK_MESSAGE_STATUSES,
    &WEBHOOK_CONVERSATIONS,
    &WEBHOOK_EVENTS,
];

/// Rows written by [`WebhookTables::append`], and rows left out as already seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Conversations whose change to `CLOSE` was appended: their record is final, to re-read
    /// from the batch API.
    pub closed: Vec<String>,
    pub messages: u64,
    pub statuses: u64,
    pub conversations: u64,
    pub events: u64,
    /// Rows whose key was seen before (a redelivery).
    pub repeated: u64,
}

impl Appended {
    pub fn rows(&self) -> u64 {
        self.messages + self.statuses + self.conversations + self.events
    }
}

/// Row buffers for the webhook tables.
pub struct WebhookTables {
    buffers: Vec<TableBuffer>,
}

impl Default for WebhookTables {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookTables {
    pub fn new() -> Self {
        WebhookTables {
            buffers: WEBHOOK_TABLES.iter().map(|d| TableBuffer::new(d)).collect(),
        }
    }

    pub fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        &mut self.buffers
    }

    fn at(&mut self, def: &'static TableDef) -> &mut TableBuffer {
        buffer_of(&WEBHOOK_TABLES, &mut self.buffers, def)
    }

    /// Appends the rows of one notification whose key `is_new` accepts (it is asked once per
    /// row, and should remember what it accepted). Unreadable changes still get their audit
    /// row; the caller quarantines them.
    pub fn append(
        &mut self,
        received: &Received<'_>,
        notification: &Notification<'_>,
        is_new: &mut dyn FnMut(RowKey) -> bool,
    ) -> Appended {
        let mut out = Appended::default();
        let sha = received.body_sha256.as_bytes();
        let kind = notification.notification_type.as_str();
        for (index, (change, raw)) in notification.changes.iter().enumerate() {
            let index = index as i64;
            let facts = facts(index, change.as_ref().ok(), raw);
            if is_new(RowKey::of("webhook_events", &[sha, &index.to_le_bytes()])) {
                fill_event(&mut self.at(&WEBHOOK_EVENTS).row(), received, kind, &facts);
                out.events += 1;
            } else {
                out.repeated += 1;
            }
            match change {
                Ok(Change::Messaging(m)) => self.messaging(received, m, is_new, &mut out),
                Ok(Change::Conversation(c)) => {
                    let key = RowKey::of(
                        "webhook_conversations",
                        &[
                            c.conversation_id.as_bytes(),
                            &c.last_update_ms.to_le_bytes(),
                        ],
                    );
                    if is_new(key) {
                        fill_conversation(&mut self.at(&WEBHOOK_CONVERSATIONS).row(), received, c);
                        out.conversations += 1;
                        if c.is_closed() {
                            out.closed.push(c.conversation_id.clone());
                        }
                    } else {
                        out.repeated += 1;
                    }
                }
                Err(_) => {}
            }
        }
        out
    }

    fn messaging(
        &mut self,
        received: &Received<'_>,
        m: &MessagingChange,
        is_new: &mut dyn FnMut(RowKey) -> bool,
        out: &mut Appended,
    ) {
        let (conversation, dialog) = (m.conversation_id.as_bytes(), m.dialog_id.as_bytes());
        match &m.event {
            MessagingEvent::Content { .. } | MessagingEvent::RichContent { .. } => {
                let seq = m.sequence.expect("checked by the decoder");
                let key = RowKey::of(
                    "webhook_messages",
                    &[conversation, dialog, &seq.to_le_bytes()],
                );
                if is_new(key) {
                    fill_message(&mut self.at(&WEBHOOK_MESSAGES).row(), received, m, seq);
                    out.messages += 1;
                } else {
                    out.repeated += 1;
                }
            }
            MessagingEvent::AcceptStatus {
                status,
                sequence_list,
            } => {
                for seq in sequence_list {
                    let key = RowKey::of(
                        "webhook_message_statuses",
                        &[
                            conversation,
                            dialog,
                            &seq.to_le_bytes(),
                            m.originator_id.as_deref().unwrap_or_default().as_bytes(),
                            status.as_deref().unwrap_or_default().as_bytes(),
                        ],
                    );
                    if is_new(key) {
                        let b = self.at(&WEBHOOK_MESSAGE_STATUSES);
                        fill_status(&mut b.row(), received, m, status.as_deref(), *seq);
                        out.statuses += 1;
                    } else {
                        out.repeated += 1;
                    }
                }
            }
            // Counted in the audit table only: a chat state has no sequence, so a redelivery
            // cannot be told from a new event except by its exact bytes.
            MessagingEvent::ChatState { .. } => {}
        }
    }
}

fn facts<'a>(index: i64, change: Option<&'a Change>, raw: &'a RawValue) -> EventFacts<'a> {
    let mut facts = EventFacts {
        index,
        event_type: None,
        conversation_id: None,
        dialog_id: None,
        sequence: None,
        originator_id: None,
        server_time: None,
        chat_state: None,
        json: raw.get(),
    };
    match change {
        Some(Change::Messaging(m)) => {
            facts.event_type = Some(m.event.type_name());
            facts.conversation_id = Some(&m.conversation_id);
            facts.dialog_id = Some(&m.dialog_id);
            facts.sequence = m.sequence;
            facts.originator_id = m.originator_id.as_deref();
            facts.server_time = m.server_timestamp;
            if let MessagingEvent::ChatState { chat_state } = &m.event {
                facts.chat_state = chat_state.as_deref();
            }
        }
        Some(Change::Conversation(c)) => {
            facts.event_type = Some(c.change_type.as_deref().unwrap_or("UPSERT"));
            facts.conversation_id = Some(&c.conversation_id);
            facts.server_time = Some(c.last_update_ms);
        }
        None => {}
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpdrop_liveperson::webhook::notification::decode;
    use std::collections::HashSet;

    const READ: &[u8] = br#"{"kind":"notification","body":{"changes":[{"sequence":1,"originatorId":"a","originatorMetadata":{"id":"a","role":"ASSIGNED_AGENT"},"serverTimestamp":9,"event":{"type":"AcceptStatusEvent","status":"READ","sequenceList":[0,0]},"dialogId":"d"}]},"type":"ms.MessagingEventNotification"}"#;

    #[test]
    fn a_redelivery_adds_no_row() {
        let mut tables = WebhookTables::new();
        let mut seen = HashSet::new();
        let received = Received {
            at_ms: 1,
            body_sha256: "ab",
        };
        let n = decode(READ).unwrap();
        let first = tables.append(&received, &n, &mut |k| seen.insert(k));
        // The list repeats sequence 0: one status row, the repeat left out.
        assert_eq!((first.statuses, first.events, first.repeated), (1, 1, 1));
        let again = tables.append(&received, &n, &mut |k| seen.insert(k));
        assert_eq!((again.rows(), again.repeated), (0, 3));
        let statuses = &mut tables.buffers_mut()[1];
        assert_eq!(statuses.def().name, "webhook_message_statuses");
        assert_eq!(statuses.rows(), 1);
    }
}

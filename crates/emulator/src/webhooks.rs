//! The webhook sender: LivePerson Connector API notifications for the synthetic conversations,
//! POSTed and signed as LivePerson does it (`shared/docs/webhooks.md`).
//!
//! # What is sent
//!
//! [`notifications`] turns conversation `index` of a [`Dataset`] into the notifications
//! LivePerson would have sent while it happened, derived from the same Messaging Interactions
//! record the batch API serves, so that the two agree on conversation and dialog ids,
//! participants, texts and sequence numbers:
//!
//! - `cqm.ExConversationChangeNotification`: an `UPSERT` when the conversation opens, one at
//!   each agent assignment (the first one and every transfer), and a `CLOSE` once it ended
//!   (after the post-conversation survey, if there was one). `metaDataLastUpdateTs` strictly
//!   increases from one to the next.
//! - `ms.MessagingEventNotification`:
//!   - `ContentEvent` for every message record (`sequence` = `messageRecords[].seq`):
//!     `text/plain` with the text, `hosted/file` with `{caption, relativePath, fileType,
//!     preview}`. Two rare record types have no documented webhook form (UNVERIFIED): a link
//!     goes out as `text/plain` with its URL, a secure form as `forms/secure-invitation` or
//!     `forms/secure-submission` with the record's `secureForm` object.
//!   - `RichContentEvent` with `content` as a JSON object (the record holds it as a string).
//!   - `AcceptStatusEvent` for every `messageStatuses` entry (`ACCEPT` or `READ`); entries of
//!     the same reader and status close in time share one `sequenceList`.
//!   - `ChatStateEvent` (`COMPOSING` before some messages, `ACTIVE` after some agent
//!     messages), without `sequence` or `serverTimestamp`, as LivePerson sends them.
//!
//! The synthetic records number their messages 0, 1, 2… without gaps, so an accept-status
//! event cannot take a number of its own between two messages as LivePerson's do: it carries
//! the sequence of the latest message before it. Sequences therefore never decrease within a
//! conversation, and message sequences match `messageRecords[].seq` exactly.
//!
//! A tenth of the messaging changes leave out `conversationId` and `messageAudience` (only
//! `dialogId`, like the older documented examples), and about a tenth of the notifications
//! carry two changes. These choices are drawn from `(dataset seed, index)`: the same
//! conversation always gives the same bytes.
//!
//! # How it is delivered
//!
//! [`WebhookSender`] delivers like LivePerson's time-to-live retry policy: only 200 and 201
//! are successes; anything else (another status, a connect error, a timeout, a reset) is
//! retried after 2 s, 4 s, 8 s… (capped at [`WebhookConfig::max_backoff`]) until
//! [`WebhookConfig::retention`] has passed, and the notification is then dropped. A
//! conversation's next notification waits for the previous one, so order holds within a
//! conversation; [`WebhookConfig::concurrency`] conversations run at once, interleaved.
//! [`WebhookFaults`] adds redeliveries, delays, shuffling and aborted connections.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lpdrop_liveperson::webhook::signature::{self, Algorithm, Encoding};
use lpdrop_liveperson::webhook::{ACCOUNT_HEADER, CLIENT_HEADER};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::Dataset;
use crate::rng::{Rng, key, mix};

/// `type` of a messaging notification.
pub const MESSAGING_TYPE: &str = "ms.MessagingEventNotification";
/// `type` of a conversation change notification.
pub const CONVERSATION_TYPE: &str = "cqm.ExConversationChangeNotification";

/// The hash stream of the webhook-only choices (chat states, omitted ids, grouping), apart
/// from the record's streams so that adding webhooks changed no record.
const STREAM_WEBHOOK: u64 = 0x3EB0;

/// Per mille of the messaging changes without `conversationId`.
const NO_CONVERSATION_ID_PER_MILLE: u64 = 100;
/// Per mille of the notifications that take the next change of the same type along.
const TWO_CHANGES_PER_MILLE: u64 = 100;
/// Per mille of the messages announced by a `COMPOSING` chat state.
const COMPOSING_PER_MILLE: u64 = 250;
/// Per mille of the agent messages followed by an `ACTIVE` chat state.
const ACTIVE_PER_MILLE: u64 = 150;
/// Accept-status entries of one reader closer than this share one event.
const STATUS_MERGE_MS: i64 = 3_000;
/// The time to respond LivePerson shows in the examples.
const TTR_SECONDS: i64 = 600;
/// A tiny JPEG thumbnail: hosted files carry a `data:` preview, and the record keeps none.
const PREVIEW: &str = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////2wBDAf//////////////////////////////////////////////////////////////////////////////////////wAARCAABAAEDASIAAhEBAxEB/8QAFAABAAAAAAAAAAAAAAAAAAAACP/EABQQAQAAAAAAAAAAAAAAAAAAAAD/xAAUAQEAAAAAAAAAAAAAAAAAAAAA/8QAFBEBAAAAAAAAAAAAAAAAAAAAAP/aAAwDAQACEQMRAD8AKp//2Q==";

// -------------------------------------------------------------------------------------------
// Configuration
// -------------------------------------------------------------------------------------------

/// Where and how to send. `Debug` does not show the secret.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The listener's endpoint (`http://` or `https://`, any path and query).
    pub url: String,
    /// The app installation's client secret: the HMAC key of `X-LivePerson-Signature`.
    pub secret: String,
    /// `X-LivePerson-Client-Id`.
    pub client_id: String,
    /// `X-LivePerson-Account-Id`, and `brandId` in conversation changes.
    pub account_id: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// The first conversation index sent.
    pub first_index: u64,
    /// How many conversations; `None` streams forever.
    pub conversations: Option<u64>,
    /// Changes per second over all conversations; `None`: as fast as the listener answers.
    pub rate: Option<f64>,
    /// Conversations in flight at once.
    pub concurrency: usize,
    pub faults: WebhookFaults,
    /// The first wait after a failure (LivePerson: 2 s); it doubles at each retry.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts (LivePerson: 5 minutes).
    pub max_backoff: Duration,
    /// How long a notification is retried before it is dropped (LivePerson: at most 3 days).
    pub retention: Duration,
    /// A JSON-lines file of what was acknowledged (see [`LedgerLine`]).
    pub ledger: Option<PathBuf>,
    /// Connect timeout and read timeout, each (LivePerson: 5 s).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// LivePerson's defaults: sha1/base64, 16 conversations at once, no rate limit, no faults,
    /// 2 s first backoff up to 5 minutes, 3 days of retention, 5 s timeouts, streaming forever
    /// from conversation 0.
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<String>,
        client_id: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        WebhookConfig {
            url: url.into(),
            secret: secret.into(),
            client_id: client_id.into(),
            account_id: account_id.into(),
            algorithm: Algorithm::Sha1,
            encoding: Encoding::Base64,
            first_index: 0,
            conversations: None,
            rate: None,
            concurrency: 16,
            faults: WebhookFaults::default(),
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            retention: Duration::from_secs(259_200),
            ledger: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redacted_url(&self.url))
            .field("secret", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("account_id", &self.account_id)
            .field("algorithm", &self.algorithm)
            .field("encoding", &self.encoding)
            .field("first_index", &self.first_index)
            .field("conversations", &self.conversations)
            .field("rate", &self.rate)
            .field("concurrency", &self.concurrency)
            .field("faults", &self.faults)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("retention", &self.retention)
            .field("ledger", &self.ledger)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL with any password replaced, for messages.
fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("redacted"));
            }
            u.to_string()
        }
        Err(_) => "<not a URL>".to_string(),
    }
}

/// Faults of the sender, parsed from a spec such as
/// `duplicate=0.05,delay=0.02:300ms,reorder=0.1,drop=0.01,seed=7`:
///
/// | key | what happens | value |
/// |---|---|---|
/// | `duplicate` | after a success, the same bytes are sent once more (a redelivery) | probability |
/// | `delay` | the attempt waits first | `P:DURATION` (or `P`, 1 s) |
/// | `reorder` | a conversation lets others go first (a short random wait before a notification), and two conversations start in swapped order | probability |
/// | `drop` | the connection is closed after the request was written, before the answer: a failure, retried | probability |
/// | `seed` | seed of the draws (default 0) | integer |
///
/// Probabilities are `0.05` or `5%`; keys may use `-` or `_`; `none` or an empty spec
/// injects nothing. Each draw depends on `(seed, conversation, notification, attempt)` only.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookFaults {
    pub seed: u64,
    pub duplicate: f64,
    pub delay: f64,
    pub delay_for: Duration,
    pub reorder: f64,
    pub drop: f64,
}

impl Default for WebhookFaults {
    fn default() -> Self {
        WebhookFaults {
            seed: 0,
            duplicate: 0.0,
            delay: 0.0,
            delay_for: Duration::from_secs(1),
            reorder: 0.0,
            drop: 0.0,
        }
    }
}

impl WebhookFaults {
    /// True when nothing is injected.
    pub fn is_none(&self) -> bool {
        self.duplicate <= 0.0 && self.delay <= 0.0 && self.reorder <= 0.0 && self.drop <= 0.0
    }

    /// Whether a fault of probability `p` fires for this draw.
    fn fires(&self, p: f64, fault: u64, index: u64, notification: usize, attempt: u32) -> bool {
        if p <= 0.0 {
            return false;
        }
        let point = ((notification as u64) << 20) ^ u64::from(attempt);
        unit(key(self.seed ^ mix(fault), index, point)) < p
    }
}

/// A uniform draw in `[0, 1)` from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn parse_probability(v: &str) -> Result<f64, String> {
    let (number, scale) = match v.strip_suffix('%') {
        Some(p) => (p, 0.01),
        None => (v, 1.0),
    };
    let p = number
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("{v:?} is not a probability (use 0.05 or 5%)"))?
        * scale;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{v:?} is not between 0 and 1"));
    }
    Ok(p)
}

impl FromStr for WebhookFaults {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut f = WebhookFaults::default();
        for (k, v) in crate::faults::spec_items(spec)? {
            match k.as_str() {
                "duplicate" => f.duplicate = parse_probability(v)?,
                "delay" => {
                    let (p, d) = match v.split_once(':') {
                        Some((p, d)) => (p, Some(d)),
                        None => (v, None),
                    };
                    f.delay = parse_probability(p)?;
                    if let Some(d) = d {
                        f.delay_for = lpdrop_settings::parse_duration(d.trim())
                            .map_err(|e| format!("delay={v:?}: {e}"))?;
                    }
                }
                "reorder" => f.reorder = parse_probability(v)?,
                "drop" => f.drop = parse_probability(v)?,
                "seed" => {
                    f.seed = v
                        .parse()
                        .map_err(|_| format!("seed={v:?}: expected a whole number"))?
                }
                other => {
                    return Err(format!(
                        "unknown webhook fault {other:?}; known: duplicate, delay, reorder, drop, seed"
                    ));
                }
            }
        }
        Ok(f)
    }
}

impl fmt::Display for WebhookFaults {
    /// The spec that parses back to these faults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        if self.duplicate > 0.0 {
            items.push(format!("duplicate={}", self.duplicate));
        }
        if self.delay > 0.0 {
            items.push(format!(
                "delay={}:{}",
                self.delay,
                lpdrop_settings::Duration(self.delay_for)
            ));
        }
        if self.reorder > 0.0 {
            items.push(format!("reorder={}", self.reorder));
        }
        if self.drop > 0.0 {
            items.push(format!("drop={}", self.drop));
        }
        if self.seed != 0 {
            items.push(format!("seed={}", self.seed));
        }
        if items.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", items.join(","))
        }
    }
}

// -------------------------------------------------------------------------------------------
// Payloads
// -------------------------------------------------------------------------------------------

/// One notification, ready to send: the exact bytes that are signed and POSTed.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The conversation it belongs to (also when the body leaves `conversationId` out).
    pub conversation_id: String,
    /// [`MESSAGING_TYPE`] or [`CONVERSATION_TYPE`].
    pub notification_type: &'static str,
    /// `{"kind":"notification","body":{"changes":[…]},"type":…}`, serialized once.
    pub body: Vec<u8>,
    /// How many changes `body.changes` holds.
    pub changes: usize,
    /// The ground truth this notification carries, written to the ledger once acknowledged.
    pub ledger: Vec<LedgerLine>,
}

/// One line of the ledger: what a listener must have kept once the sender was answered 200.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "table")]
pub enum LedgerLine {
    /// A message (content or rich content event).
    #[serde(rename = "webhook_messages")]
    Message {
        conversation_id: String,
        dialog_id: String,
        seq: i64,
    },
    /// One sequence of an accept-status event.
    #[serde(rename = "webhook_message_statuses")]
    Status {
        conversation_id: String,
        dialog_id: String,
        seq: i64,
        participant_id: String,
        status: String,
    },
    /// A conversation change.
    #[serde(rename = "webhook_conversations")]
    Conversation {
        conversation_id: String,
        meta_data_last_update_ts: i64,
    },
}

/// A change on the conversation's timeline, before the notifications are cut.
struct Timed {
    time: i64,
    /// Breaks ties of `time`: chat state, conversation change, message, status, chat state,
    /// close.
    rank: u8,
    kind: TimedKind,
}

enum TimedKind {
    Conversation(Value, LedgerLine),
    Message {
        seq: i64,
        originator: String,
        role: &'static str,
        dialog: String,
        audience: String,
        event: Value,
    },
    Status {
        seqs: Vec<i64>,
        originator: String,
        role: &'static str,
        dialog: String,
        status: String,
    },
    ChatState {
        originator: String,
        role: &'static str,
        dialog: String,
        state: &'static str,
    },
}

fn i64_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A skill id as conversation changes carry it: a string, `"-1"` for none.
fn skill_string(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "-1".to_string(),
    }
}

/// The notifications of conversation `index`, in the order they must be delivered.
pub fn notifications(dataset: &Dataset, index: u64) -> Vec<Notification> {
    let record = dataset.conversation(index);
    let mut r = Rng::new(key(dataset.seed, index, STREAM_WEBHOOK));
    let id = str_at(&record, "/info/conversationId").to_string();
    let mut timeline = conversation_changes(&record, &id);
    timeline.extend(messaging_changes(&record, &mut r));
    timeline.sort_by_key(|t| (t.time, t.rank));
    let timeline = merge_statuses(timeline);
    cut(timeline, &id, &mut r)
}

/// The conversation changes: open, each assignment, close.
fn conversation_changes(record: &Value, id: &str) -> Vec<Timed> {
    let brand = str_at(record, "/info/brandId").to_string();
    let start = i64_at(record, "/info/startTimeL").unwrap_or(0);
    let conv_end = i64_at(record, "/info/conversationEndTimeL").filter(|t| *t > 0);
    let end = i64_at(record, "/info/endTimeL").filter(|t| *t > 0);
    let consumer = str_at(record, "/consumerParticipants/0/participantId").to_string();
    let empty = Vec::new();
    let agents = record["agentParticipants"].as_array().unwrap_or(&empty);
    let transfers = record["transfers"].as_array().unwrap_or(&empty);
    // Segment k's skill: the target of the transfer into it, or for the first segment the
    // source of the first transfer (the latest skill when nobody was transferred).
    let skill = |k: usize| -> String {
        if k == 0 {
            transfers.first().map_or_else(
                || skill_string(&record["info"]["latestSkillId"]),
                |t| skill_string(&t["sourceSkillId"]),
            )
        } else {
            transfers
                .get(k - 1)
                .map_or_else(|| "-1".to_string(), |t| skill_string(&t["targetSkillId"]))
        }
    };
    let close_reason = str_at(record, "/info/closeReason").to_string();
    let survey = record["dialogs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["dialogType"] == "POST_SURVEY"))
        .cloned();

    let mut out = Vec::new();
    let mut last_update = i64::MIN;
    let mut change =
        |time: i64, skill_id: String, agent: Option<&str>, closed: bool, out: &mut Vec<Timed>| {
            let updated = time.max(last_update.saturating_add(1));
            last_update = updated;
            let mut participants = vec![json!({"id": consumer, "role": "CONSUMER"})];
            if let Some(a) = agent {
                participants.insert(0, json!({"id": a, "role": "ASSIGNED_AGENT"}));
            }
            let state = if closed { "CLOSE" } else { "OPEN" };
            let mut main = json!({
                "dialogId": id,
                "participantsDetails": participants,
                "dialogType": "MAIN",
                "channelType": "MESSAGING",
                "state": state,
                "creationTs": start,
                "metaDataLastUpdateTs": updated,
            });
            let mut dialogs = vec![];
            let mut details = json!({
                "skillId": skill_id,
                "participants": participants,
                "dialogs": [],
                "brandId": brand,
                "state": state,
                "stage": state,
                "startTs": start,
                "metaDataLastUpdateTs": updated,
                "ttr": {"ttrType": "NORMAL", "value": TTR_SECONDS},
            });
            if closed {
                let ended = conv_end.unwrap_or(updated);
                main["endTs"] = ended.into();
                main["closedBy"] = close_reason.clone().into();
                details["closeReason"] = close_reason.clone().into();
                details["endTs"] = ended.into();
            }
            dialogs.push(main);
            if closed && let Some(s) = &survey {
                dialogs.push(json!({
                    "dialogId": s["dialogId"],
                    "participantsDetails": [{"id": consumer, "role": "CONSUMER"}],
                    "dialogType": "POST_SURVEY",
                    "channelType": "MESSAGING",
                    "state": "CLOSE",
                    "creationTs": s["startTimeL"],
                    "endTs": s["endTimeL"],
                    "metaDataLastUpdateTs": updated,
                    "closedBy": "SYSTEM",
                }));
            }
            details["dialogs"] = Value::Array(dialogs);
            let ttr = if closed {
                -1
            } else {
                start + TTR_SECONDS * 1000
            };
            let body = json!({
                "type": "UPSERT",
                "result": {"convId": id, "effectiveTTR": ttr, "conversationDetails": details},
            });
            out.push(Timed {
                time,
                // A close comes after whatever else happened in its millisecond.
                rank: if closed { 5 } else { 1 },
                kind: TimedKind::Conversation(
                    body,
                    LedgerLine::Conversation {
                        conversation_id: id.to_string(),
                        meta_data_last_update_ts: updated,
                    },
                ),
            });
        };
    change(start, skill(0), None, false, &mut out);
    for (k, agent) in agents.iter().enumerate() {
        let at = agent["timeL"].as_i64().unwrap_or(start);
        change(at, skill(k), agent["agentId"].as_str(), false, &mut out);
    }
    if let Some(closed_at) = end.or(conv_end) {
        let latest = agents.last().and_then(|a| a["agentId"].as_str());
        let latest_skill = skill_string(&record["info"]["latestSkillId"]);
        change(closed_at, latest_skill, latest, true, &mut out);
    }
    out
}

/// Messages, statuses and chat states, from `messageRecords` and `messageStatuses`.
fn messaging_changes(record: &Value, r: &mut Rng) -> Vec<Timed> {
    let empty = Vec::new();
    let mut out = Vec::new();
    let mut previous = i64_at(record, "/info/startTimeL").unwrap_or(0);
    for m in record["messageRecords"].as_array().unwrap_or(&empty) {
        let time = m["timeL"].as_i64().unwrap_or(previous);
        let consumer = m["sentBy"] == "Consumer";
        let role = if consumer {
            "CONSUMER"
        } else {
            "ASSIGNED_AGENT"
        };
        let originator = str_at(m, "/participantId").to_string();
        let dialog = str_at(m, "/dialogId").to_string();
        if r.chance(COMPOSING_PER_MILLE) && time - previous > 2 {
            let before = r.range(1, (time - previous - 1).min(4_000));
            out.push(Timed {
                time: time - before,
                rank: 0,
                kind: TimedKind::ChatState {
                    originator: originator.clone(),
                    role,
                    dialog: dialog.clone(),
                    state: "COMPOSING",
                },
            });
        }
        if !consumer && r.chance(ACTIVE_PER_MILLE) {
            out.push(Timed {
                time,
                rank: 4,
                kind: TimedKind::ChatState {
                    originator: originator.clone(),
                    role,
                    dialog: dialog.clone(),
                    state: "ACTIVE",
                },
            });
        }
        out.push(Timed {
            time,
            rank: 2,
            kind: TimedKind::Message {
                seq: m["seq"].as_i64().unwrap_or(0),
                originator,
                role,
                dialog,
                audience: m["audience"].as_str().unwrap_or("ALL").to_string(),
                event: content_event(m),
            },
        });
        previous = time;
    }
    for s in record["messageStatuses"].as_array().unwrap_or(&empty) {
        let consumer = s["participantType"] == "Consumer";
        out.push(Timed {
            time: s["timeL"].as_i64().unwrap_or(previous),
            rank: 3,
            kind: TimedKind::Status {
                seqs: vec![s["seq"].as_i64().unwrap_or(0)],
                originator: str_at(s, "/participantId").to_string(),
                role: if consumer {
                    "CONSUMER"
                } else {
                    "ASSIGNED_AGENT"
                },
                dialog: str_at(s, "/dialogId").to_string(),
                status: str_at(s, "/messageDeliveryStatus").to_string(),
            },
        });
    }
    out
}

/// The `event` of a message record.
fn content_event(m: &Value) -> Value {
    let data = &m["messageData"];
    match m["type"].as_str().unwrap_or("") {
        "RICH_CONTENT" => {
            let raw = &data["richContent"]["content"];
            // The record keeps the card as a JSON string; webhooks carry the object.
            let content = raw
                .as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .unwrap_or_else(|| raw.clone());
            json!({"type": "RichContentEvent", "content": content})
        }
        "HOSTED_FILE" => {
            let f = &data["file"];
            json!({"type": "ContentEvent", "contentType": "hosted/file", "message": {
                "caption": f["caption"], "relativePath": f["relativePath"],
                "fileType": f["fileType"], "preview": PREVIEW,
            }})
        }
        "LINK" => json!({"type": "ContentEvent", "contentType": "text/plain",
                         "message": data["link"]["externalFileLink"]}),
        "SECURE_FORM_INVITATION" => json!({"type": "ContentEvent",
            "contentType": "forms/secure-invitation", "message": data["secureForm"]}),
        "SECURE_FORM_SUBMIT" => json!({"type": "ContentEvent",
            "contentType": "forms/secure-submission", "message": data["secureForm"]}),
        _ => json!({"type": "ContentEvent", "contentType": "text/plain",
                    "message": data["msg"]["text"]}),
    }
}

/// Joins a status into the previous one when the same reader gave the same status shortly
/// before and nothing else came between.
fn merge_statuses(timeline: Vec<Timed>) -> Vec<Timed> {
    let mut out: Vec<Timed> = Vec::with_capacity(timeline.len());
    for t in timeline {
        if let (
            Some(Timed {
                time: prev_time,
                kind:
                    TimedKind::Status {
                        seqs,
                        originator: prev_by,
                        status: prev_status,
                        dialog: prev_dialog,
                        ..
                    },
                ..
            }),
            TimedKind::Status {
                seqs: new,
                originator,
                status,
                dialog,
                ..
            },
        ) = (out.last_mut(), &t.kind)
            && prev_by == originator
            && prev_status == status
            && prev_dialog == dialog
            && t.time - *prev_time < STATUS_MERGE_MS
        {
            seqs.extend(new);
            *prev_time = t.time;
            continue;
        }
        out.push(t);
    }
    out
}

/// Renders the changes and cuts them into notifications.
fn cut(timeline: Vec<Timed>, id: &str, r: &mut Rng) -> Vec<Notification> {
    // (type, change, ledger lines)
    let mut changes: Vec<(&'static str, Value, Vec<LedgerLine>)> = Vec::new();
    let mut latest_seq: i64 = 0;
    for t in timeline {
        let messaging = |originator: &str, role: &str, dialog: &str, r: &mut Rng| {
            let mut c = Map::new();
            c.insert("originatorId".into(), originator.into());
            c.insert(
                "originatorMetadata".into(),
                json!({"id": originator, "role": role}),
            );
            let short = r.chance(NO_CONVERSATION_ID_PER_MILLE);
            (c, short, dialog.to_string())
        };
        let finish = |mut c: Map<String, Value>, short: bool, dialog: String, audience: &str| {
            if !short {
                c.insert("conversationId".into(), id.into());
            }
            c.insert("dialogId".into(), dialog.into());
            if !short {
                c.insert("messageAudience".into(), audience.into());
            }
            Value::Object(c)
        };
        match t.kind {
            TimedKind::Conversation(body, line) => {
                changes.push((CONVERSATION_TYPE, body, vec![line]));
            }
            TimedKind::Message {
                seq,
                originator,
                role,
                dialog,
                audience,
                event,
            } => {
                latest_seq = latest_seq.max(seq);
                let (mut c, short, dialog) = messaging(&originator, role, &dialog, r);
                c.insert("sequence".into(), seq.into());
                c.insert("serverTimestamp".into(), t.time.into());
                c.insert("event".into(), event);
                let line = LedgerLine::Message {
                    conversation_id: id.to_string(),
                    dialog_id: dialog.clone(),
                    seq,
                };
                changes.push((
                    MESSAGING_TYPE,
                    finish(c, short, dialog, &audience),
                    vec![line],
                ));
            }
            TimedKind::Status {
                seqs,
                originator,
                role,
                dialog,
                status,
            } => {
                let (mut c, short, dialog) = messaging(&originator, role, &dialog, r);
                c.insert("sequence".into(), latest_seq.into());
                c.insert("serverTimestamp".into(), t.time.into());
                c.insert(
                    "event".into(),
                    json!({"type": "AcceptStatusEvent", "status": status, "sequenceList": seqs}),
                );
                let lines = seqs
                    .iter()
                    .map(|&seq| LedgerLine::Status {
                        conversation_id: id.to_string(),
                        dialog_id: dialog.clone(),
                        seq,
                        participant_id: originator.clone(),
                        status: status.clone(),
                    })
                    .collect();
                changes.push((MESSAGING_TYPE, finish(c, short, dialog, "ALL"), lines));
            }
            TimedKind::ChatState {
                originator,
                role,
                dialog,
                state,
            } => {
                let (mut c, short, dialog) = messaging(&originator, role, &dialog, r);
                c.insert(
                    "event".into(),
                    json!({"type": "ChatStateEvent", "chatState": state}),
                );
                changes.push((MESSAGING_TYPE, finish(c, short, dialog, "ALL"), vec![]));
            }
        }
    }

    let mut out = Vec::new();
    let mut it = changes.into_iter().peekable();
    while let Some((kind, change, mut ledger)) = it.next() {
        let mut list = vec![change];
        if r.chance(TWO_CHANGES_PER_MILLE)
            && it.peek().is_some_and(|next| next.0 == kind)
            && let Some((_, next, lines)) = it.next()
        {
            list.push(next);
            ledger.extend(lines);
        }
        let changes = list.len();
        let envelope = json!({"kind": "notification", "body": {"changes": list}, "type": kind});
        out.push(Notification {
            conversation_id: id.to_string(),
            notification_type: kind,
            body: serde_json::to_vec(&envelope).expect("JSON values serialize"),
            changes,
            ledger,
        });
    }
    out
}

// -------------------------------------------------------------------------------------------
// Delivery
// -------------------------------------------------------------------------------------------

/// What a sender did, so far or in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebhookReport {
    /// Notifications answered 200 or 201 (redeliveries not counted).
    pub notifications_acked: u64,
    /// Changes in those notifications.
    pub events_sent: u64,
    /// POSTs made, retries and redeliveries included.
    pub deliveries_attempted: u64,
    /// Attempts after a failed one.
    pub retries: u64,
    /// Redeliveries of acknowledged notifications (the `duplicate` fault).
    pub duplicates_sent: u64,
    /// Connections closed before the answer (the `drop` fault).
    pub dropped_connections: u64,
    /// Notifications given up once the retention ran out.
    pub expired: u64,
    /// Conversations whose notifications were all acknowledged or given up.
    pub conversations: u64,
}

/// Why the sender could not start or go on. Never shows the secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL {0}: {1}")]
    Url(String, String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("webhook ledger {0}: {1}")]
    Ledger(PathBuf, std::io::Error),
}

#[derive(Default)]
struct Counters {
    notifications_acked: AtomicU64,
    events_sent: AtomicU64,
    deliveries_attempted: AtomicU64,
    retries: AtomicU64,
    duplicates_sent: AtomicU64,
    dropped_connections: AtomicU64,
    expired: AtomicU64,
    conversations: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WebhookReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookReport {
            notifications_acked: get(&self.notifications_acked),
            events_sent: get(&self.events_sent),
            deliveries_attempted: get(&self.deliveries_attempted),
            retries: get(&self.retries),
            duplicates_sent: get(&self.duplicates_sent),
            dropped_connections: get(&self.dropped_connections),
            expired: get(&self.expired),
            conversations: get(&self.conversations),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

struct Ledger {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl Ledger {
    fn create(path: &Path) -> Result<Ledger, WebhookError> {
        let file = File::create(path).map_err(|e| WebhookError::Ledger(path.to_path_buf(), e))?;
        Ok(Ledger {
            path: path.to_path_buf(),
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Appends the lines and flushes, so that the file is true even if the process is killed.
    fn write(&self, lines: &[LedgerLine]) -> Result<(), WebhookError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let written = lines
            .iter()
            .try_for_each(|l| {
                serde_json::to_writer(&mut *out, l).map_err(std::io::Error::other)?;
                out.write_all(b"\n")
            })
            .and_then(|()| out.flush());
        written.map_err(|e| WebhookError::Ledger(self.path.clone(), e))
    }
}

/// Spaces the sends out to a global rate of changes per second.
struct Pacer {
    per_change: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self, changes: usize) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let at = (*next).max(Instant::now());
            *next = at + self.per_change * changes as u32;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

struct Shared {
    dataset: Dataset,
    config: WebhookConfig,
    url: reqwest::Url,
    client: reqwest::Client,
    counters: Arc<Counters>,
    ledger: Option<Ledger>,
    pacer: Option<Pacer>,
}

/// A running sender: its conversations are delivered in a background tokio task.
pub struct WebhookSender {
    counters: Arc<Counters>,
    task: JoinHandle<Result<(), WebhookError>>,
    /// Set once `task` was awaited to its end (a join handle cannot be awaited twice).
    joined: bool,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("report", &self.counters.snapshot())
            .finish()
    }
}

impl WebhookSender {
    /// Checks the configuration, creates the ledger and starts sending (inside a tokio
    /// runtime).
    pub fn start(dataset: Dataset, config: WebhookConfig) -> Result<WebhookSender, WebhookError> {
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| WebhookError::Url(redacted_url(&config.url), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::Url(
                redacted_url(&config.url),
                "the scheme must be http or https".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        let ledger = config.ledger.as_deref().map(Ledger::create).transpose()?;
        let pacer = config
            .rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Pacer {
                per_change: Duration::from_secs_f64(1.0 / r),
                next: Mutex::new(Instant::now()),
            });
        let counters = Arc::new(Counters::default());
        let shared = Arc::new(Shared {
            dataset,
            config,
            url,
            client,
            counters: Arc::clone(&counters),
            ledger,
            pacer,
        });
        let task = tokio::spawn(run(shared));
        Ok(WebhookSender {
            counters,
            task,
            joined: false,
        })
    }

    /// What was done so far.
    pub fn report(&self) -> WebhookReport {
        self.counters.snapshot()
    }

    /// True once every conversation is done (never when streaming, unless the ledger failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until every conversation is done (forever when streaming, unless the ledger
    /// fails). Cancel-safe: it can be a branch of `tokio::select!` beside Ctrl-C.
    pub async fn wait(&mut self) -> Result<WebhookReport, WebhookError> {
        if !self.joined {
            let joined = (&mut self.task).await;
            self.joined = true;
            match joined {
                Ok(done) => done?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        Ok(self.counters.snapshot())
    }

    /// Stops at once: notifications in flight are abandoned (a listener may or may not have
    /// got them). The ledger holds what was acknowledged.
    pub async fn stop(mut self) -> WebhookReport {
        if !self.joined {
            self.task.abort();
            self.joined = true;
            if let Err(e) = (&mut self.task).await
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        self.counters.snapshot()
    }
}

/// Starts a sender and waits for it: the whole of a bounded run.
pub async fn send(dataset: Dataset, config: WebhookConfig) -> Result<WebhookReport, WebhookError> {
    WebhookSender::start(dataset, config)?.wait().await
}

/// Keeps `concurrency` conversations in flight until all are done.
async fn run(shared: Arc<Shared>) -> Result<(), WebhookError> {
    let config = &shared.config;
    let end = config
        .conversations
        .map(|n| config.first_index.saturating_add(n));
    let mut next = config.first_index;
    let mut upcoming: VecDeque<u64> = VecDeque::new();
    let mut running = JoinSet::new();
    loop {
        while running.len() < config.concurrency.max(1) {
            if upcoming.is_empty() && end.is_none_or(|e| next < e) {
                let pair_fits = end.is_none_or(|e| next + 1 < e);
                // Starting the later conversation first shuffles deliveries further than
                // the interleaving alone does.
                if pair_fits && config.faults.fires(config.faults.reorder, 0x5A, next, 0, 0) {
                    upcoming.extend([next + 1, next]);
                    next += 2;
                } else {
                    upcoming.push_back(next);
                    next += 1;
                }
            }
            let Some(index) = upcoming.pop_front() else {
                break;
            };
            running.spawn(deliver_conversation(Arc::clone(&shared), index));
        }
        match running.join_next().await {
            None => return Ok(()),
            Some(Ok(done)) => done?,
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Some(Err(_)) => {}
        }
    }
}

/// Sends one conversation's notifications in order, each after the previous one succeeded
/// or expired.
async fn deliver_conversation(shared: Arc<Shared>, index: u64) -> Result<(), WebhookError> {
    let faults = &shared.config.faults;
    for (k, n) in notifications(&shared.dataset, index).iter().enumerate() {
        if faults.fires(faults.reorder, 0x5B, index, k, 0) {
            let pause = 1 + key(faults.seed, index, k as u64) % 20;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        if deliver(&shared, index, k, n).await
            && let Some(ledger) = &shared.ledger
        {
            ledger.write(&n.ledger)?;
        }
    }
    bump(&shared.counters.conversations, 1);
    Ok(())
}

/// Delivers one notification; false when it expired.
async fn deliver(shared: &Shared, index: u64, k: usize, n: &Notification) -> bool {
    let config = &shared.config;
    let faults = &config.faults;
    let counters = &shared.counters;
    let signature = signature::sign(&config.secret, &n.body, config.algorithm, config.encoding);
    let deadline = Instant::now() + config.retention;
    let mut backoff = config.initial_backoff;
    let mut attempt: u32 = 0;
    loop {
        if faults.fires(faults.delay, 0xDE, index, k, attempt) {
            tokio::time::sleep(faults.delay_for).await;
        }
        if let Some(pacer) = &shared.pacer {
            pacer.wait(n.changes).await;
        }
        bump(&counters.deliveries_attempted, 1);
        if attempt > 0 {
            bump(&counters.retries, 1);
        }
        let acked = if faults.fires(faults.drop, 0xD0, index, k, attempt) {
            bump(&counters.dropped_connections, 1);
            post_and_hang_up(shared, &signature, &n.body).await;
            false
        } else {
            post(shared, &signature, &n.body).await
        };
        if acked {
            bump(&counters.notifications_acked, 1);
            bump(&counters.events_sent, n.changes as u64);
            if faults.fires(faults.duplicate, 0xD1, index, k, 0) {
                bump(&counters.duplicates_sent, 1);
                bump(&counters.deliveries_attempted, 1);
                // A redelivery's answer changes nothing: the notification was acknowledged.
                post(shared, &signature, &n.body).await;
            }
            return true;
        }
        if Instant::now() + backoff > deadline {
            bump(&counters.expired, 1);
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
        attempt += 1;
    }
}

/// One POST; true on 200 or 201.
async fn post(shared: &Shared, signature: &str, body: &[u8]) -> bool {
    let config = &shared.config;
    let sent = shared
        .client
        .post(shared.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::HEADER, signature)
        .header(ACCOUNT_HEADER, &config.account_id)
        .header(CLIENT_HEADER, &config.client_id)
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = answer.status().as_u16();
            // Read the answer to the end so that the connection can be used again.
            let complete = answer.bytes().await.is_ok();
            complete && (status == 200 || status == 201)
        }
        Err(_) => false,
    }
}

/// Writes the whole request and closes the connection without reading the answer: the
/// listener may have taken the notification, the sender cannot know (to it, a failure). Over https (no raw
/// TLS here) the request is made and its answer ignored, which the sender sees the same way.
async fn post_and_hang_up(shared: &Shared, signature: &str, body: &[u8]) {
    let url = &shared.url;
    if url.scheme() != "http" {
        post(shared, signature, body).await;
        return;
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return;
    };
    let config = &shared.config;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let head = format!(
        "POST {target} HTTP/1.1\r\nhost: {host_header}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{}: {signature}\r\n{ACCOUNT_HEADER}: {}\r\n{CLIENT_HEADER}: {}\r\n\
         connection: close\r\n\r\n",
        body.len(),
        signature::HEADER,
        config.account_id,
        config.client_id,
    );
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let written = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        // Hanging up as soon as the answer starts to arrive, unread, makes the close a reset
        // and lets the listener handle the request before the retry: hanging up at once
        // would let a stale copy overtake the conversation's next notifications.
        stream.peek(&mut [0u8; 1]).await.map(drop)
    };
    let _ = tokio::time::timeout(config.timeout, written).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmulatorConfig;

    fn dataset() -> Dataset {
        Dataset::new(&EmulatorConfig::default())
    }

    #[test]
    fn faults_parse_and_print_back() {
        let f: WebhookFaults = "duplicate=0.05,delay=0.02:300ms,reorder=10%,drop=0.01,seed=7"
            .parse()
            .unwrap();
        assert_eq!(f.duplicate, 0.05);
        assert_eq!(f.delay, 0.02);
        assert_eq!(f.delay_for, Duration::from_millis(300));
        assert!((f.reorder - 0.1).abs() < 1e-12);
        assert_eq!(f.drop, 0.01);
        assert_eq!(f.seed, 7);
        assert_eq!(f.to_string().parse::<WebhookFaults>().unwrap(), f);
        assert!("none".parse::<WebhookFaults>().unwrap().is_none());
        assert!("".parse::<WebhookFaults>().unwrap().is_none());
        assert!("teleport=0.1".parse::<WebhookFaults>().is_err());
        assert!("drop=2".parse::<WebhookFaults>().is_err());
        assert!("delay=0.1:soon".parse::<WebhookFaults>().is_err());
    }

    #[test]
    fn notifications_are_deterministic_and_agree_with_the_record() {
        let d = dataset();
        for index in 0..200 {
            let a = notifications(&d, index);
            let b = notifications(&d, index);
            assert_eq!(
                a.iter().map(|n| &n.body).collect::<Vec<_>>(),
                b.iter().map(|n| &n.body).collect::<Vec<_>>()
            );
            let record = d.conversation(index);
            let id = d.conversation_id(index);
            let mut seqs = Vec::new();
            let mut statuses = 0;
            let mut last_update = i64::MIN;
            let mut last_sequence = i64::MIN;
            for n in &a {
                let v: Value = serde_json::from_slice(&n.body).unwrap();
                assert_eq!(v["kind"], "notification");
                assert_eq!(v["type"], n.notification_type);
                let changes = v["body"]["changes"].as_array().unwrap();
                assert_eq!(changes.len(), n.changes);
                assert!((1..=2).contains(&changes.len()));
                for c in changes {
                    if n.notification_type == CONVERSATION_TYPE {
                        assert_eq!(c["result"]["convId"], id.as_str());
                        let details = &c["result"]["conversationDetails"];
                        assert!(details["skillId"].is_string());
                        let ts = details["metaDataLastUpdateTs"].as_i64().unwrap();
                        assert!(ts > last_update);
                        last_update = ts;
                        continue;
                    }
                    assert_eq!(c["dialogId"], id.as_str());
                    if let Some(cid) = c.get("conversationId") {
                        assert_eq!(cid, id.as_str());
                    }
                    let event = &c["event"];
                    if event["type"] == "ChatStateEvent" {
                        assert!(c.get("sequence").is_none());
                        assert!(c.get("serverTimestamp").is_none());
                        continue;
                    }
                    let sequence = c["sequence"].as_i64().unwrap();
                    assert!(sequence >= last_sequence);
                    last_sequence = sequence;
                    match event["type"].as_str().unwrap() {
                        "AcceptStatusEvent" => {
                            statuses += event["sequenceList"].as_array().unwrap().len()
                        }
                        _ => seqs.push(sequence),
                    }
                }
            }
            let expected: Vec<i64> = record["messageRecords"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            assert_eq!(seqs, expected, "conversation {index}");
            assert_eq!(
                statuses,
                record["messageStatuses"].as_array().unwrap().len()
            );
            let closed = record["info"]["status"] == "CLOSE";
            let last_conversation = a
                .iter()
                .rev()
                .find(|n| n.notification_type == CONVERSATION_TYPE)
                .unwrap();
            let v: Value = serde_json::from_slice(&last_conversation.body).unwrap();
            let state = v["body"]["changes"][0]["result"]["conversationDetails"]["state"].clone();
            assert_eq!(state, if closed { "CLOSE" } else { "OPEN" });
        }
    }

    #[test]
    fn the_rarer_shapes_appear() {
        let d = dataset();
        let (mut short, mut pairs, mut files, mut rich, mut lists, mut total) = (0, 0, 0, 0, 0, 0);
        for index in 0..300 {
            for n in notifications(&d, index) {
                total += 1;
                if n.changes == 2 {
                    pairs += 1;
                }
                let v: Value = serde_json::from_slice(&n.body).unwrap();
                for c in v["body"]["changes"].as_array().unwrap() {
                    if v["type"] == MESSAGING_TYPE && c.get("conversationId").is_none() {
                        short += 1;
                    }
                    if c["event"]["contentType"] == "hosted/file" {
                        files += 1;
                        assert!(c["event"]["message"]["relativePath"].is_string());
                    }
                    if c["event"]["type"] == "RichContentEvent" {
                        rich += 1;
                        assert!(c["event"]["content"].is_object());
                    }
                    if c["event"]["sequenceList"]
                        .as_array()
                        .is_some_and(|l| l.len() > 1)
                    {
                        lists += 1;
                    }
                }
            }
        }
        assert!(short > 0 && pairs > 0 && files > 0 && rich > 0 && lists > 0);
        assert!(pairs * 4 < total, "{pairs} of {total}");
    }

    #[test]
    fn the_secret_stays_out_of_debug() {
        let config = WebhookConfig::new("http://u:pw@127.0.0.1:1/hook", "s3cr3t", "client", "1");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("pw@"),
            "{shown}"
        );
    }
}

//! Typed, lenient Messaging Interactions records (`conversationHistoryRecords[]`, API doc §3.7).
//!
//! Every scalar is one of the [`crate::lenient`] types, every list accepts `null` or absence,
//! and unknown keys are ignored, so that LivePerson's type drift never fails a record. Nodes
//! whose shape is undocumented or free-form are kept as raw JSON text; nodes that are both
//! exported as JSON columns and split into tables are [`Kept`]: raw text and typed value.

use std::ops::Deref;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::lenient::{Bool, EpochMs, Float, Id, Int, RawJson, Text, kept_text, list};
use crate::sde::SdeEvents;

/// One conversation as the search and get-by-id calls return it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Conversation {
    pub info: Info,
    pub campaign: Option<Campaign>,
    pub monitoring: Option<Monitoring>,
    #[serde(deserialize_with = "list")]
    pub message_records: Vec<Message>,
    #[serde(deserialize_with = "list")]
    pub agent_participants: Vec<AgentParticipant>,
    #[serde(deserialize_with = "list")]
    pub agent_participants_active: Vec<AgentParticipant>,
    #[serde(deserialize_with = "list")]
    pub agent_participants_leave: Vec<AgentParticipant>,
    /// The vendor's SDE example spells it `consumerParticipant`.
    #[serde(deserialize_with = "list", alias = "consumerParticipant")]
    pub consumer_participants: Vec<ConsumerParticipant>,
    #[serde(deserialize_with = "list")]
    pub transfers: Vec<Transfer>,
    #[serde(deserialize_with = "list")]
    pub interactions: Vec<Interaction>,
    #[serde(deserialize_with = "list")]
    pub dialogs: Vec<Dialog>,
    /// The vendor's SDE example spells it `messageScore`.
    #[serde(deserialize_with = "list", alias = "messageScore")]
    pub message_scores: Vec<MessageScore>,
    #[serde(deserialize_with = "list")]
    pub message_statuses: Vec<MessageStatus>,
    #[serde(deserialize_with = "list")]
    pub conversation_surveys: Vec<ConversationSurvey>,
    pub summary: Option<Summary>,
    pub response_time: Option<ResponseTime>,
    pub co_browse_sessions: Kept<CoBrowseSessions>,
    /// Authenticated engagement attributes.
    pub sdes: Kept<SdeEvents>,
    /// Unauthenticated engagement attributes (only with `v=2`).
    pub un_auth_sdes: Kept<SdeEvents>,
    pub intents: Kept<List<Intent>>,
    pub unique_intents: Kept<List<UniqueIntent>>,
    /// Shape undocumented by LivePerson: each element is kept as JSON text.
    pub skill_changes: Kept<List<RawJson>>,
    pub latest_agent_survey: Kept<Option<AgentSurvey>>,
    pub previously_submitted_agent_surveys: Kept<List<AgentSurvey>>,
}

/// `info`: the conversation's own facts (always present).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Info {
    pub conversation_id: Text,
    pub brand_id: Text,
    pub status: Text,
    pub full_dialog_status: Text,
    pub start_time_l: EpochMs,
    pub end_time_l: EpochMs,
    pub conversation_end_time_l: EpochMs,
    pub full_dialog_end_time_l: EpochMs,
    pub duration: Int,
    pub close_reason: Text,
    pub close_reason_description: Text,
    pub first_conversation: Bool,
    pub csat: Int,
    pub csat_rate: Float,
    pub mcs: Int,
    #[serde(rename = "alertedMCS")]
    pub alerted_mcs: Int,
    pub source: Text,
    pub device: Text,
    pub device_model: Text,
    pub browser: Text,
    pub browser_version: Text,
    pub operating_system: Text,
    pub operating_system_version: Text,
    pub latest_skill_id: Id,
    pub latest_skill_name: Text,
    pub latest_agent_id: Text,
    pub latest_agent_login_name: Text,
    pub latest_agent_nickname: Text,
    pub latest_agent_full_name: Text,
    pub agent_deleted: Bool,
    pub latest_agent_group_id: Id,
    pub latest_agent_group_name: Text,
    pub latest_queue_state: Text,
    pub is_partial: Bool,
    pub session_id: Text,
    pub interaction_context_id: Text,
    pub time_zone: Text,
    #[serde(deserialize_with = "list")]
    pub features: Vec<Text>,
    pub language: Text,
    pub integration: Text,
    pub integration_version: Text,
    pub app_id: Text,
    pub app_version: Text,
    pub ip_address: Text,
    pub was_step_up: Bool,
    pub pending_agent_survey: Bool,
    pub first_intent_name: Text,
    pub first_intent_label: Text,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Campaign {
    pub campaign_engagement_id: Text,
    pub campaign_engagement_name: Text,
    pub campaign_id: Text,
    pub campaign_name: Text,
    pub goal_id: Text,
    pub goal_name: Text,
    pub engagement_agent_note: Text,
    pub engagement_source: Text,
    pub visitor_behavior_id: Text,
    pub visitor_behavior_name: Text,
    pub engagement_application_id: Text,
    pub engagement_application_name: Text,
    pub engagement_application_type_id: Text,
    pub engagement_application_type_name: Text,
    pub visitor_profile_id: Text,
    pub visitor_profile_name: Text,
    pub lob_id: Id,
    pub lob_name: Text,
    /// The reference table capitalises it (`LocationId`); the example does not.
    #[serde(alias = "LocationId")]
    pub location_id: Text,
    #[serde(alias = "LocationName")]
    pub location_name: Text,
    pub behavior_system_default: Bool,
    pub profile_system_default: Bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Monitoring {
    pub country: Text,
    pub country_code: Text,
    pub state: Text,
    pub city: Text,
    pub isp: Text,
    pub org: Text,
    pub device: Text,
    pub ip_address: Text,
    pub browser: Text,
    pub operating_system: Text,
    pub conversation_start_page: Text,
    pub conversation_start_page_title: Text,
}

/// `messageRecords[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Message {
    pub message_id: Text,
    pub seq: Int,
    pub dialog_id: Text,
    pub participant_id: Text,
    pub sent_by: Text,
    #[serde(rename = "type")]
    pub content_type: Text,
    pub time_l: EpochMs,
    pub audience: Text,
    pub source: Text,
    pub device: Text,
    pub message_data: MessageData,
    pub context_data: Kept<ContextData>,
}

/// `messageData`: one or more content variants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageData {
    pub msg: Option<MsgText>,
    pub rich_content: Option<JsonContent>,
    pub quick_replies: Option<JsonContent>,
    pub file: Option<MessageFile>,
    /// Link and secure-form variants have undocumented key names: kept raw.
    pub link: RawJson,
    pub secure_form: RawJson,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MsgText {
    pub text: Text,
}

/// `{content: "<JSON document as a string>"}` (structured content, quick replies).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JsonContent {
    #[serde(deserialize_with = "json_text")]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageFile {
    pub relative_path: Text,
    pub file_type: Text,
    pub caption: Text,
}

/// Structured content normally arrives as a JSON string; accept an inline object too.
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    if raw.get().starts_with('"') {
        return serde_json::from_str(raw.get()).map_err(de::Error::custom);
    }
    Ok(kept_text(raw))
}

/// `agentParticipants[]` (and the `Active` / `Leave` variants, assumed to share the shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentParticipant {
    pub agent_id: Text,
    pub agent_pid: Text,
    pub agent_login_name: Text,
    pub agent_nickname: Text,
    pub agent_full_name: Text,
    pub agent_deleted: Bool,
    pub time_l: EpochMs,
    pub role: Text,
    pub permission: Text,
    pub user_type: Text,
    pub user_type_name: Text,
    pub agent_group_id: Id,
    pub agent_group_name: Text,
    pub dialog_id: Text,
    pub context_data: RawJson,
}

/// `consumerParticipants[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerParticipant {
    pub participant_id: Text,
    pub time_l: EpochMs,
    pub join_time_l: EpochMs,
    pub first_name: Text,
    pub last_name: Text,
    pub consumer_name: Text,
    pub phone: Text,
    pub email: Text,
    pub token: Text,
    #[serde(rename = "avatarURL")]
    pub avatar_url: Text,
    pub dialog_id: Text,
}

/// `transfers[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Transfer {
    pub time_l: EpochMs,
    pub assigned_agent_id: Text,
    pub assigned_agent_login_name: Text,
    pub assigned_agent_nickname: Text,
    pub assigned_agent_full_name: Text,
    pub target_skill_id: Id,
    pub target_skill_name: Text,
    pub source_skill_id: Id,
    pub source_skill_name: Text,
    pub source_agent_id: Text,
    pub source_agent_login_name: Text,
    pub source_agent_nickname: Text,
    pub source_agent_full_name: Text,
    pub reason: Text,
    pub by: Text,
    pub dialog_id: Text,
    pub context_data: RawJson,
}

/// `interactions[]`: agent assignment segments.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Interaction {
    pub assigned_agent_id: Text,
    pub assigned_agent_login_name: Text,
    pub assigned_agent_nickname: Text,
    pub assigned_agent_full_name: Text,
    pub interaction_time_l: EpochMs,
    pub interactive_sequence: Int,
    pub dialog_id: Text,
}

/// `dialogs[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Dialog {
    pub dialog_id: Text,
    pub status: Text,
    pub dialog_type: Text,
    pub dialog_channel_type: Text,
    pub start_time_l: EpochMs,
    pub end_time_l: EpochMs,
    pub close_reason: Text,
    pub close_reason_description: Text,
    pub skill_id: Id,
    pub skill_name: Text,
}

/// `messageScores[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageScore {
    pub message_id: Text,
    pub time_l: EpochMs,
    pub mcs: Int,
    pub message_raw_score: Int,
}

/// `messageStatuses[]`: delivery and read receipts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageStatus {
    pub message_id: Text,
    pub seq: Int,
    pub time_l: EpochMs,
    pub message_delivery_status: Text,
    pub participant_id: Text,
    pub participant_type: Text,
    pub dialog_id: Text,
}

/// `conversationSurveys[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConversationSurvey {
    pub survey_type: Text,
    pub survey_status: Text,
    pub dialog_id: Text,
    pub survey_id: Text,
    #[serde(deserialize_with = "list")]
    pub survey_data: Vec<SurveyAnswer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SurveyAnswer {
    pub question: Text,
    pub answer: Text,
    pub question_id: Text,
    pub answer_id: Text,
    pub question_type: Text,
    pub question_format: Text,
    pub answer_seq: Int,
    pub is_valid_answer: Bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    pub text: Text,
    pub last_updated_time: EpochMs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseTime {
    pub latest_effective_response_due_time: EpochMs,
    pub configured_response_time: Int,
}

/// A node kept twice: as its compact JSON text (for the `*_json` columns) and typed (for the
/// tables split from it). `null`, absence and LivePerson's placeholder strings give no text
/// and the default value; a value that cannot be read as `T` fails the record, and the error
/// names the path inside the node.
#[derive(Debug, Clone, Default)]
pub struct Kept<T> {
    pub raw: RawJson,
    pub value: T,
}

impl<'de, T: DeserializeOwned + Default> Deserialize<'de> for Kept<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get();
        let value = if text.starts_with('"') {
            // A string where a node belongs: a placeholder has nothing to split, but its text
            // is kept as the JSON column always kept it; any other string is read as `T`.
            let s: String = serde_json::from_str(text).map_err(de::Error::custom)?;
            if is_placeholder(&s) {
                T::default()
            } else {
                typed_from_str::<T>(text).map_err(de::Error::custom)?
            }
        } else if text == "null" {
            T::default()
        } else {
            typed_from_str::<T>(text).map_err(de::Error::custom)?
        };
        Ok(Kept {
            raw: RawJson(kept_text(raw)),
            value,
        })
    }
}

fn is_placeholder(s: &str) -> bool {
    matches!(s.trim(), "" | "undefined" | "null" | "NULL" | "Undefined")
}

/// Reads `T` from the JSON text of one node; on failure the message names the path inside it.
pub(crate) fn typed_from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    decode_tracking_path(text).map_err(|(path, e)| match path {
        Some(path) if path != "." => format!("{path}: {}", without_position(&e)),
        _ => without_position(&e),
    })
}

/// Decodes `T` from `text`. On failure it decodes again with path tracking (slower, and
/// failures are rare) and returns the path inside `text` where it failed, with the error;
/// `None` for the path if the second decode did not fail.
pub(crate) fn decode_tracking_path<T: DeserializeOwned>(
    text: &str,
) -> Result<T, (Option<String>, serde_json::Error)> {
    serde_json::from_str(text).map_err(|plain| {
        let tracked = &mut serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(tracked) {
            Err(e) => (Some(e.path().to_string()), e.into_inner()),
            Ok(_) => (None, plain),
        }
    })
}

/// An error's message without serde_json's "at line L column C": the position is inside one
/// node's text, and the record's own decode adds the position in the record.
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if e.line() == 0 {
        return message;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_string(),
        None => message,
    }
}

/// A lenient list as a type: absent, `null` or a placeholder string is empty, and a single
/// object stands for a list of one (see [`crate::lenient::list`]).
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<T> Deref for List<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        list(d).map(List)
    }
}

/// `contextData` of a message: bot and escalation metadata. `rawMetadata` (the same content as
/// a JSON string) stays in the raw text only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContextData {
    pub structured_metadata: List<Kept<StructuredMetadata>>,
}

/// One `contextData.structuredMetadata[]` item: a bot response or an action reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StructuredMetadata {
    pub bot_response: Option<BotResponse>,
    pub action_reason: Option<ActionReason>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BotResponse {
    pub external_conversation_id: Text,
    pub business_cases: List<Text>,
    pub intents: List<BotIntent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BotIntent {
    pub id: Text,
    pub name: Text,
    /// LOW, MEDIUM or HIGH.
    pub confidence: Text,
    pub confidence_score: Float,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActionReason {
    pub reason: Text,
    pub reason_id: Text,
}

/// `coBrowseSessions`: an object holding the list (MI §3.7.13, EH §4.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CoBrowseSessions {
    pub co_browse_sessions_list: List<CoBrowseSession>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CoBrowseSession {
    pub session_id: Text,
    pub start_time_l: EpochMs,
    pub end_time_l: EpochMs,
    pub interactive_time_l: EpochMs,
    /// The reference table says `isInteractive`, the examples `interactive`: read both.
    pub is_interactive: Bool,
    pub interactive: Bool,
    /// AGENT, VISITOR, SERVER, TIMEOUT or UNKOWN (sic).
    pub end_reason: Text,
    /// Milliseconds.
    pub duration: Int,
    /// inApp or web.
    #[serde(rename = "type")]
    pub session_type: Text,
    pub capabilities: List<Text>,
    pub agent_id: Text,
}

impl CoBrowseSession {
    pub fn interactive(&self) -> Option<bool> {
        self.is_interactive.0.or(self.interactive.0)
    }
}

/// `intents[]`: the intent classification of one consumer message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Intent {
    pub selected_classification: Option<IntentClassification>,
    pub all_classifications: List<IntentClassification>,
    pub message_id: Text,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IntentClassification {
    /// The intent id (often a UUID).
    pub intent_name: Text,
    pub intent_label: Text,
    pub confidence_score: Float,
    /// `[{modelName, modelVersion}]`, kept as JSON.
    pub versions: RawJson,
}

impl IntentClassification {
    /// The same classification (name, label and score): marks the selected one in the list.
    pub fn same_as(&self, other: &IntentClassification) -> bool {
        self.intent_name == other.intent_name
            && self.intent_label == other.intent_label
            && self.confidence_score == other.confidence_score
    }
}

/// `uniqueIntents[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UniqueIntent {
    pub intent_name: Text,
    pub intent_label: Text,
}

/// `latestAgentSurvey` and `previouslySubmittedAgentSurveys[]` (same shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentSurvey {
    /// OPEN, SUBMITTED, DISMISSED or CLOSED.
    pub survey_status: Text,
    pub status_reason: Text,
    pub dialog_id: Text,
    pub survey_id: Text,
    pub ac_survey_id: Text,
    pub ac_survey_name: Text,
    pub ac_survey_revision: Int,
    pub survey_skill_id: Id,
    pub survey_skill_name: Text,
    pub assigned_agent_id: Text,
    pub assigned_agent_nick_name: Text,
    pub assigned_agent_name: Text,
    pub performed_by_agent_id: Text,
    pub performed_by_agent_nick_name: Text,
    pub performed_by_agent_name: Text,
    pub last_update_time: EpochMs,
    pub submitted_answers: List<AgentSurveyQuestion>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentSurveyQuestion {
    pub question_text: Text,
    pub question_id: Text,
    /// e.g. REGULAR_QUESTION.
    pub question_definition: Text,
    /// e.g. FREE_TEXT, NUMBER.
    pub question_category: Text,
    pub answers: List<AgentSurveyAnswer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentSurveyAnswer {
    pub answer: Text,
    pub answer_id: Text,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_nodes_keep_the_text_as_sent_and_split_the_value() {
        let sent = r#"{"info":{"conversationId":"c","startTimeL":1},
            "intents": [ {"z":1, "selectedClassification":{"intentName":"billing"}} ],
            "coBrowseSessions":"undefined",
            "latestAgentSurvey":null}"#;
        let c: Conversation = serde_json::from_str(sent).unwrap();
        assert_eq!(
            c.intents.raw.0.as_deref(),
            Some(r#"[{"z":1,"selectedClassification":{"intentName":"billing"}}]"#)
        );
        assert_eq!(c.intents.value.len(), 1);
        // A placeholder keeps its text and splits into nothing; null keeps neither.
        assert_eq!(
            c.co_browse_sessions.raw.0.as_deref(),
            Some(r#""undefined""#)
        );
        assert_eq!(c.latest_agent_survey.raw.0, None);
        assert!(c.latest_agent_survey.value.is_none());
        // Any other string where a node belongs fails the record, naming the node.
        let err = serde_json::from_str::<Conversation>(r#"{"intents":"billing"}"#).unwrap_err();
        assert!(err.to_string().contains("expected a list"), "{err}");
    }
}

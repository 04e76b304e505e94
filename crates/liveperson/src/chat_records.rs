//! Typed, lenient Engagement History (legacy chat) records (`interactionHistoryRecords[]`,
//! API notes §4.2), with the same rules as [`crate::records`].
//!
//! Where the vendor uses two names for one field (`agentName` / `agentNickName`,
//! `isInteractive` / `interactive`, `agentFullName` / `agentFullname`) both are read as
//! separate fields and coalesced by the accessors: a serde alias would refuse a record that
//! carries both, and LivePerson's own example does.

use serde::Deserialize;

use crate::lenient::{Bool, EpochMs, Id, Int, RawJson, Text};
use crate::records::{Campaign, CoBrowseSessions, Kept, List};
use crate::sde::SdeEvents;

/// One chat engagement.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatRecord {
    pub info: ChatInfo,
    pub transcript: Option<Transcript>,
    pub line_scores: List<LineScore>,
    pub campaign: Option<Campaign>,
    pub visitor_info: Option<VisitorInfo>,
    pub surveys: Option<ChatSurveys>,
    pub co_browse_sessions: Option<CoBrowseSessions>,
    pub sdes: Kept<SdeEvents>,
}

/// `info`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatInfo {
    /// Primary key: the account id followed by the real-time chat id.
    pub engagement_id: Text,
    pub shark_engagement_id: Text,
    pub account_id: Text,
    pub visitor_id: Text,
    pub visitor_name: Text,
    pub start_time_l: EpochMs,
    pub end_time_l: EpochMs,
    pub chat_requested_time_l: EpochMs,
    /// Seconds (Messaging Interactions uses milliseconds).
    pub duration: Int,
    pub is_interactive: Bool,
    pub interactive: Bool,
    pub ended: Bool,
    pub agent_id: Text,
    pub agent_name: Text,
    pub agent_nick_name: Text,
    pub agent_login_name: Text,
    pub agent_full_name: Text,
    /// The reference table's spelling.
    #[serde(rename = "agentFullname")]
    pub agent_fullname: Text,
    pub agent_deleted: Bool,
    pub agent_group_id: Id,
    pub agent_group_name: Text,
    pub skill_id: Id,
    pub skill_name: Text,
    pub is_agent_survey: Bool,
    pub is_post_chat_survey: Bool,
    pub is_pre_chat_survey: Bool,
    pub channel: Int,
    pub start_reason: Text,
    pub start_reason_desc: Text,
    pub end_reason: Text,
    pub end_reason_desc: Text,
    pub engagement_set: Int,
    pub engagement_sequence: Int,
    /// Deprecated -1/0/1 (use `alertedMCS`); here -1 is a value, not "unset".
    pub mcs: Int,
    #[serde(rename = "alertedMCS")]
    pub alerted_mcs: Int,
    #[serde(rename = "chatMCS")]
    pub chat_mcs: Int,
    pub chat_start_url: Text,
    pub chat_start_page: Text,
    pub is_partial: Bool,
    pub chat_data_enriched: Bool,
}

impl ChatInfo {
    pub fn interactive(&self) -> Option<bool> {
        self.is_interactive.0.or(self.interactive.0)
    }

    /// `agentNickName`, or `agentName` (the examples use either).
    pub fn agent_nickname(&self) -> Option<&str> {
        self.agent_nick_name
            .0
            .as_deref()
            .or(self.agent_name.0.as_deref())
    }

    pub fn agent_full_name(&self) -> Option<&str> {
        self.agent_full_name
            .0
            .as_deref()
            .or(self.agent_fullname.0.as_deref())
    }
}

/// `transcript`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Transcript {
    pub lines: List<ChatLine>,
}

/// `transcript.lines[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatLine {
    pub time_l: EpochMs,
    /// 0 regular text; 3, 4, 5 system lines (now chatting, welcome, closing).
    pub control_type: Int,
    pub text: Text,
    /// Rich content: a JSON object (not a string, unlike Messaging Interactions).
    pub json: RawJson,
    pub by: Text,
    /// visitor, agent or system.
    pub source: Text,
    /// REGULAR or ONLY_TO_REP.
    pub sub_type: Text,
    /// plain, html, url or rich-content.
    pub text_type: Text,
    pub canned_answer_type: Int,
    /// A number; 0 on lines not written by an agent.
    pub agent_id: Text,
    pub line_seq: Text,
}

/// `lineScores[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LineScore {
    pub line_seq: Text,
    pub line_raw_score: Int,
    pub mcs: Int,
}

/// `visitorInfo`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VisitorInfo {
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
    pub browser_type: Text,
}

/// `surveys`: pre-chat, post-chat (exit) and operator (agent) surveys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatSurveys {
    pub pre_chat: List<ChatSurveyItem>,
    pub post_chat: List<ChatSurveyItem>,
    pub operator: List<ChatSurveyItem>,
}

impl ChatSurveys {
    /// Each survey list with the name of its kind: `pre_chat`, `post_chat`, `operator`.
    pub fn kinds(&self) -> [(&'static str, &[ChatSurveyItem]); 3] {
        [
            ("pre_chat", &self.pre_chat),
            ("post_chat", &self.post_chat),
            ("operator", &self.operator),
        ]
    }
}

/// One question and its answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatSurveyItem {
    pub scope: Text,
    pub source: Text,
    /// The question.
    pub display_name: Text,
    /// The answer.
    pub value: Text,
    pub values: List<Text>,
    /// 0 none selected, -1 free text (non-index) answer, -2 invalid.
    pub answers_id: List<Int>,
    /// The survey's name.
    pub name: Text,
    pub time_l: EpochMs,
    /// `questionID` in the examples, `questionId` in the reference table.
    #[serde(rename = "questionID", alias = "questionId")]
    pub question_id: Text,
    #[serde(rename = "surveyID", alias = "surveyId")]
    pub survey_id: Text,
}

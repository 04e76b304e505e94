//! Engagement History (legacy chat) records → relational tables.
//!
//! The same rules as [`crate::messaging`]: one table per natural grain, children keyed by
//! `engagement_id` and a stable `ordinal`. `info`, `campaign` and `visitorInfo` are 1:1 with
//! the chat and make up the `chats` table.

use lpdrop_liveperson::chat_records::{
    ChatLine, ChatRecord, ChatSurveyItem, LineScore, VisitorInfo,
};
use lpdrop_liveperson::lenient::{Int, Text};
use lpdrop_liveperson::records::{Campaign, CoBrowseSession};
use lpdrop_liveperson::sde::SdeEvent;

use crate::buffer::{TableBuffer, buffer_of};
use crate::macros::{raw, s, text_list_json};
use crate::richtext::plain_text;
use crate::schema::TableDef;

/// Every chat row has an id: records without one are quarantined before this point.
fn engagement_id(c: &ChatRecord) -> Option<&str> {
    s(&c.info.engagement_id)
}

fn campaign(c: &ChatRecord) -> Option<&Campaign> {
    c.campaign.as_ref()
}

fn visitor(c: &ChatRecord) -> Option<&VisitorInfo> {
    c.visitor_info.as_ref()
}

fn line_count(c: &ChatRecord) -> i64 {
    c.transcript.as_ref().map_or(0, |t| t.lines.len() as i64)
}

table! {
    /// One row per chat: `info`, `campaign` and `visitorInfo` (all 1:1).
    CHATS, fn fill_chat(w, c: &ChatRecord),
    name: "chats",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id"],
    description: "One row per chat engagement (Engagement History info, campaign, visitor info).",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Engagement id: the account id followed by the chat id. Primary key.";
        "brand_id": utf8 = s(&c.info.account_id) => "info.accountId", "Account id as LivePerson reports it.";
        "shark_engagement_id": utf8 = s(&c.info.shark_engagement_id) => "info.sharkEngagementId", "Internal engagement id.";
        "visitor_id": utf8 = s(&c.info.visitor_id) => "info.visitorId", "Visitor id.";
        "visitor_name": utf8 = s(&c.info.visitor_name) => "info.visitorName", "Visitor name.";
        "start_time": timestamp_ms = c.info.start_time_l.0 => "info.startTimeL", "Chat start (UTC). The sync window is on this time.";
        "end_time": timestamp_ms = c.info.end_time_l.0 => "info.endTimeL", "Chat end (UTC).";
        "chat_requested_time": timestamp_ms = c.info.chat_requested_time_l.0 => "info.chatRequestedTimeL", "When the visitor asked to chat (entered the queue), UTC.";
        "duration_seconds": int64 = c.info.duration.0 => "info.duration", "Duration in seconds (Engagement History counts seconds, not milliseconds).";
        "is_interactive": boolean = c.info.interactive() => "info.isInteractive|interactive", "The visitor wrote at least one line.";
        "ended": boolean = c.info.ended.0 => "info.ended", "The chat has ended (always true in results).";
        "agent_id": utf8 = s(&c.info.agent_id) => "info.agentId", "Agent.";
        "agent_nickname": utf8 = c.info.agent_nickname() => "info.agentNickName|agentName", "Agent nickname (the examples use either name).";
        "agent_login_name": utf8 = s(&c.info.agent_login_name) => "info.agentLoginName", "Agent login name.";
        "agent_full_name": utf8 = c.info.agent_full_name() => "info.agentFullName|agentFullname", "Agent full name.";
        "agent_deleted": boolean = c.info.agent_deleted.0 => "info.agentDeleted", "The agent has been deleted.";
        "agent_group_id": int64 = c.info.agent_group_id.0 => "info.agentGroupId", "Agent group; NULL when unassigned (-1).";
        "agent_group_name": utf8 = s(&c.info.agent_group_name) => "info.agentGroupName", "Agent group name.";
        "skill_id": int64 = c.info.skill_id.0 => "info.skillId", "Skill; NULL when none (-1).";
        "skill_name": utf8 = s(&c.info.skill_name) => "info.skillName", "Skill name.";
        "is_agent_survey": boolean = c.info.is_agent_survey.0 => "info.isAgentSurvey", "An agent (operator) survey was filled in.";
        "is_post_chat_survey": boolean = c.info.is_post_chat_survey.0 => "info.isPostChatSurvey", "A post-chat survey was filled in.";
        "is_pre_chat_survey": boolean = c.info.is_pre_chat_survey.0 => "info.isPreChatSurvey", "A pre-chat survey was filled in.";
        "channel": int64 = c.info.channel.0 => "info.channel", "-1 unknown, 1 web, 2 voice (only chat, 1, is supported).";
        "start_reason": utf8 = s(&c.info.start_reason) => "info.startReason", "Start reason code: 0 visitor request, 1 transfer, ... 8 A2A reassign.";
        "start_reason_desc": utf8 = s(&c.info.start_reason_desc) => "info.startReasonDesc", "Start reason.";
        "end_reason": utf8 = s(&c.info.end_reason) => "info.endReason", "End reason code (e.g. 201 rep stopped chat, 210 visitor closed chat).";
        "end_reason_desc": utf8 = s(&c.info.end_reason_desc) => "info.endReasonDesc", "End reason.";
        "engagement_set": int64 = c.info.engagement_set.0 => "info.engagementSet", "Counter of split engagements within a visit.";
        "engagement_sequence": int64 = c.info.engagement_sequence.0 => "info.engagementSequence", "Counter of transferred engagements within a visit.";
        "mcs": int64 = c.info.mcs.0 => "info.mcs", "Deprecated by LivePerson: -1, 0 or 1 (use alerted_mcs).";
        "alerted_mcs": int64 = c.info.alerted_mcs.0 => "info.alertedMCS", "-1 negative, 0 neutral, 1 positive.";
        "chat_mcs": int64 = c.info.chat_mcs.0 => "info.chatMCS", "Meaningful Connection Score of the chat, 0-100.";
        "chat_start_url": utf8 = s(&c.info.chat_start_url) => "info.chatStartUrl", "URL where the chat started.";
        "chat_start_page": utf8 = s(&c.info.chat_start_page) => "info.chatStartPage", "Title of that page.";
        "is_partial": boolean = c.info.is_partial.0 => "info.isPartial", "LivePerson truncated the record.";
        "chat_data_enriched": boolean = c.info.chat_data_enriched.0 => "info.chatDataEnriched", "LivePerson's final enrichment (SDEs included) ran.";
        "campaign_engagement_id": utf8 = campaign(c).and_then(|x| s(&x.campaign_engagement_id)) => "campaign.campaignEngagementId", "Engagement id.";
        "campaign_engagement_name": utf8 = campaign(c).and_then(|x| s(&x.campaign_engagement_name)) => "campaign.campaignEngagementName", "Engagement name.";
        "campaign_id": utf8 = campaign(c).and_then(|x| s(&x.campaign_id)) => "campaign.campaignId", "Campaign id.";
        "campaign_name": utf8 = campaign(c).and_then(|x| s(&x.campaign_name)) => "campaign.campaignName", "Campaign name.";
        "goal_id": utf8 = campaign(c).and_then(|x| s(&x.goal_id)) => "campaign.goalId", "Goal id.";
        "goal_name": utf8 = campaign(c).and_then(|x| s(&x.goal_name)) => "campaign.goalName", "Goal name.";
        "engagement_agent_note": utf8 = campaign(c).and_then(|x| s(&x.engagement_agent_note)) => "campaign.engagementAgentNote", "Agent note of the engagement.";
        "visitor_behavior_id": utf8 = campaign(c).and_then(|x| s(&x.visitor_behavior_id)) => "campaign.visitorBehaviorId", "Visitor behavior id.";
        "visitor_behavior_name": utf8 = campaign(c).and_then(|x| s(&x.visitor_behavior_name)) => "campaign.visitorBehaviorName", "Visitor behavior name.";
        "visitor_profile_id": utf8 = campaign(c).and_then(|x| s(&x.visitor_profile_id)) => "campaign.visitorProfileId", "Visitor profile id.";
        "visitor_profile_name": utf8 = campaign(c).and_then(|x| s(&x.visitor_profile_name)) => "campaign.visitorProfileName", "Visitor profile name.";
        "lob_id": int64 = campaign(c).and_then(|x| x.lob_id.0) => "campaign.lobId", "Line of business; NULL when none (-1, sent as a number or a string).";
        "lob_name": utf8 = campaign(c).and_then(|x| s(&x.lob_name)) => "campaign.lobName", "Line of business name.";
        "visitor_country": utf8 = visitor(c).and_then(|x| s(&x.country)) => "visitorInfo.country", "Visitor country.";
        "visitor_country_code": utf8 = visitor(c).and_then(|x| s(&x.country_code)) => "visitorInfo.countryCode", "Visitor country code.";
        "visitor_state": utf8 = visitor(c).and_then(|x| s(&x.state)) => "visitorInfo.state", "Visitor state or region.";
        "visitor_city": utf8 = visitor(c).and_then(|x| s(&x.city)) => "visitorInfo.city", "Visitor city.";
        "visitor_isp": utf8 = visitor(c).and_then(|x| s(&x.isp)) => "visitorInfo.isp", "Visitor ISP.";
        "visitor_org": utf8 = visitor(c).and_then(|x| s(&x.org)) => "visitorInfo.org", "Visitor organisation.";
        "visitor_device": utf8 = visitor(c).and_then(|x| s(&x.device)) => "visitorInfo.device", "DESKTOP, TABLET, MOBILE or NA.";
        "visitor_ip_address": utf8 = visitor(c).and_then(|x| s(&x.ip_address)) => "visitorInfo.ipAddress", "Visitor IP address.";
        "visitor_browser": utf8 = visitor(c).and_then(|x| s(&x.browser)) => "visitorInfo.browser", "Browser and version.";
        "visitor_operating_system": utf8 = visitor(c).and_then(|x| s(&x.operating_system)) => "visitorInfo.operatingSystem", "NA, WINDOWS, MAC_OSX, LINUX, IOS or ANDROID.";
        "visitor_browser_type": utf8 = visitor(c).and_then(|x| s(&x.browser_type)) => "visitorInfo.browserType", "Browser type (e.g. CHROME).";
        "line_count": int64 = Some(line_count(c)) => "derived", "Number of rows in chat_lines.";
        "sdes_json": utf8 = raw(&c.sdes.raw) => "sdes", "Engagement attributes (SDEs) as JSON; one row per event in chat_sde_events.";
    }
}

/// Agent ids are numbers on lines, 0 on lines no agent wrote.
fn line_agent(l: &ChatLine) -> Option<&str> {
    s(&l.agent_id).filter(|id| *id != "0")
}

fn line_rich_text(l: &ChatLine) -> Option<String> {
    l.json.0.as_deref().and_then(plain_text)
}

table! {
    CHAT_LINES, fn fill_chat_line(w, c: &ChatRecord, l: &ChatLine, ordinal: i64),
    name: "chat_lines",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "ordinal"],
    description: "One row per transcript line (transcript.lines). Rich content is kept as JSON with its text extracted.",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position of the line in the transcript (0-based).";
        "line_seq": utf8 = s(&l.line_seq) => "transcript.lines.lineSeq", "Line sequence (chat_line_scores.line_seq); absent in some records.";
        "line_time": timestamp_ms = l.time_l.0 => "transcript.lines.timeL", "When the line was written (UTC).";
        "control_type": int64 = l.control_type.0 => "transcript.lines.controlType", "0 regular text; 3, 4, 5 system lines (now chatting, welcome, closing).";
        "sent_by": utf8 = s(&l.source) => "transcript.lines.source", "visitor, agent or system.";
        "sender_name": utf8 = s(&l.by) => "transcript.lines.by", "Visitor name, agent nickname, or info for system lines.";
        "agent_id": utf8 = line_agent(l) => "transcript.lines.agentId", "Agent who wrote the line; NULL on other lines (LivePerson sends 0).";
        "sub_type": utf8 = s(&l.sub_type) => "transcript.lines.subType", "REGULAR or ONLY_TO_REP.";
        "text_type": utf8 = s(&l.text_type) => "transcript.lines.textType", "plain, html, url or rich-content.";
        "text": utf8 = s(&l.text) => "transcript.lines.text", "Text (HTML when text_type is html).";
        "rich_content_json": utf8 = raw(&l.json) => "transcript.lines.json", "Structured content card as JSON.";
        "rich_content_text": utf8 = line_rich_text(l).as_deref() => "derived", "Text portion of the structured content, for search and review.";
        "canned_answer_type": int64 = l.canned_answer_type.0 => "transcript.lines.cannedAnswerType", "0 not canned; >0 canned answer id; <0 modified canned answer id.";
    }
}

table! {
    CHAT_LINE_SCORES, fn fill_chat_line_score(w, c: &ChatRecord, x: &LineScore, ordinal: i64),
    name: "chat_line_scores",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "ordinal"],
    description: "One row per line score (lineScores): the MCS after a line.",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "line_seq": utf8 = s(&x.line_seq) => "lineScores.lineSeq", "Scored line (chat_lines.line_seq).";
        "line_raw_score": int64 = x.line_raw_score.0 => "lineScores.lineRawScore", "Raw score of the line.";
        "mcs": int64 = x.mcs.0 => "lineScores.mcs", "Chat score up to this line, 0-100.";
    }
}

table! {
    CHAT_SURVEYS, fn fill_chat_survey(w, c: &ChatRecord, kind: &str, x: &ChatSurveyItem, ordinal: i64),
    name: "chat_surveys",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "survey_kind", "ordinal"],
    description: "One row per question answered in a pre-chat, post-chat (exit) or operator (agent) survey (surveys.preChat, postChat, operator); multiple-choice answers are in chat_survey_answers.",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "survey_kind": utf8 [required] = Some(kind) => "derived", "pre_chat, post_chat or operator: which list the row comes from.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in its list (0-based).";
        "survey_id": utf8 = s(&x.survey_id) => "surveys.*.surveyID", "Survey id.";
        "survey_name": utf8 = s(&x.name) => "surveys.*.name", "Survey name.";
        "question_id": utf8 = s(&x.question_id) => "surveys.*.questionID", "Question id.";
        "question": utf8 = s(&x.display_name) => "surveys.*.displayName", "Question as displayed.";
        "answer": utf8 = s(&x.value) => "surveys.*.value", "Answer.";
        "answer_count": int64 = Some(x.values.len().max(x.answers_id.len()) as i64) => "derived", "Number of rows in chat_survey_answers.";
        "scope": utf8 = s(&x.scope) => "surveys.*.scope", "e.g. Session.";
        "survey_source": utf8 = s(&x.source) => "surveys.*.source", "e.g. Pre-Chat, Exit, operator.";
        "answer_time": timestamp_ms = x.time_l.0 => "surveys.*.timeL", "When it was answered (UTC).";
        "values_json": utf8 = text_list_json(&x.values).as_deref() => "surveys.*.values", "Every selected value, as a JSON array of strings.";
    }
}

table! {
    CHAT_SURVEY_ANSWERS, fn fill_chat_survey_answer(w, c: &ChatRecord, kind: &str, question_ordinal: i64, x: &ChatSurveyItem, value: Option<&Text>, id: Option<&Int>, ordinal: i64),
    name: "chat_survey_answers",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "survey_kind", "question_ordinal", "ordinal"],
    description: "One row per selected value of a chat survey question (surveys.*.values with answersId).",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "survey_kind": utf8 [required] = Some(kind) => "derived", "pre_chat, post_chat or operator.";
        "question_ordinal": int64 [required] = Some(question_ordinal) => "derived", "chat_surveys.ordinal of the question.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in values (0-based).";
        "survey_id": utf8 = s(&x.survey_id) => "surveys.*.surveyID", "Survey id.";
        "question_id": utf8 = s(&x.question_id) => "surveys.*.questionID", "Question id.";
        "answer_value": utf8 = value.and_then(s) => "surveys.*.values[]", "Selected value.";
        "answer_id": int64 = id.and_then(|i| i.0) => "surveys.*.answersId[]", "Answer id: 0 none selected, -1 free-text answer, -2 invalid.";
    }
}

table! {
    CHAT_COBROWSE_SESSIONS, fn fill_chat_cobrowse_session(w, c: &ChatRecord, x: &CoBrowseSession, ordinal: i64),
    name: "chat_cobrowse_sessions",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "ordinal"],
    description: "One row per co-browse session of a chat (coBrowseSessions.coBrowseSessionsList).",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "session_id": utf8 = s(&x.session_id) => "coBrowseSessions.coBrowseSessionsList.sessionId", "Co-browse session id.";
        "start_time": timestamp_ms = x.start_time_l.0 => "coBrowseSessions.coBrowseSessionsList.startTimeL", "Session start (UTC).";
        "end_time": timestamp_ms = x.end_time_l.0 => "coBrowseSessions.coBrowseSessionsList.endTimeL", "Session end (UTC).";
        "interactive_time": timestamp_ms = x.interactive_time_l.0 => "coBrowseSessions.coBrowseSessionsList.interactiveTimeL", "When the session became interactive (UTC).";
        "is_interactive": boolean = x.interactive() => "coBrowseSessions.coBrowseSessionsList.isInteractive|interactive", "The visitor let the agent interact.";
        "end_reason": utf8 = s(&x.end_reason) => "coBrowseSessions.coBrowseSessionsList.endReason", "AGENT, VISITOR, SERVER, TIMEOUT or UNKOWN (sic).";
        "duration_ms": int64 = x.duration.0 => "coBrowseSessions.coBrowseSessionsList.duration", "Session length in milliseconds.";
    }
}

table! {
    CHAT_SDE_EVENTS, fn fill_chat_sde_event(w, c: &ChatRecord, e: &SdeEvent, ordinal: i64),
    name: "chat_sde_events",
    entity: Chat("chats", "engagement_id"),
    grain: ["engagement_id", "ordinal"],
    description: "One row per engagement attribute (SDE) event of a chat (sdes.events), kept whole as JSON.",
    columns: {
        "engagement_id": utf8 [required] = engagement_id(c) => "info.engagementId", "Chat.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the events list (0-based).";
        "sde_type": utf8 = e.sde_type.as_deref() => "sdes.events.sdeType", "CUSTOMER_INFO, PURCHASE, ...; derived from the payload key (legacy viewProduct, formFillingError included) when not sent.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.<sdeKey>.originalTimeStamp", "When the event was created (UTC).";
        "is_authenticated": boolean = e.is_authenticated => "sdes.events.isAuthenticated", "isAuthenticated as the event states it, when it does.";
        "event_json": utf8 = Some(e.raw.as_str()) => "sdes.events[]", "The whole event as JSON.";
    }
}

/// Every chat table, in the order they appear in drops and manifests.
pub static CHAT_TABLES: [&TableDef; 7] = [
    &CHATS,
    &CHAT_LINES,
    &CHAT_LINE_SCORES,
    &CHAT_SURVEYS,
    &CHAT_SURVEY_ANSWERS,
    &CHAT_COBROWSE_SESSIONS,
    &CHAT_SDE_EVENTS,
];

/// Row buffers for every chat table; chat records go in, rows come out per table.
pub struct ChatTables {
    buffers: Vec<TableBuffer>,
}

impl Default for ChatTables {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatTables {
    pub fn new() -> Self {
        ChatTables {
            buffers: CHAT_TABLES.iter().map(|d| TableBuffer::new(d)).collect(),
        }
    }

    fn at(&mut self, def: &'static TableDef) -> &mut TableBuffer {
        buffer_of(&CHAT_TABLES, &mut self.buffers, def)
    }

    /// Splits one chat into rows of every table.
    pub fn append(&mut self, c: &ChatRecord) {
        fill_chat(&mut self.at(&CHATS).row(), c);
        if let Some(t) = &c.transcript {
            let b = self.at(&CHAT_LINES);
            for (i, l) in t.lines.iter().enumerate() {
                fill_chat_line(&mut b.row(), c, l, i as i64);
            }
        }
        let b = self.at(&CHAT_LINE_SCORES);
        for (i, x) in c.line_scores.iter().enumerate() {
            fill_chat_line_score(&mut b.row(), c, x, i as i64);
        }
        if let Some(surveys) = &c.surveys {
            for (kind, items) in surveys.kinds() {
                for (i, x) in items.iter().enumerate() {
                    fill_chat_survey(&mut self.at(&CHAT_SURVEYS).row(), c, kind, x, i as i64);
                    let b = self.at(&CHAT_SURVEY_ANSWERS);
                    for j in 0..x.values.len().max(x.answers_id.len()) {
                        fill_chat_survey_answer(
                            &mut b.row(),
                            c,
                            kind,
                            i as i64,
                            x,
                            x.values.get(j),
                            x.answers_id.get(j),
                            j as i64,
                        );
                    }
                }
            }
        }
        if let Some(sessions) = &c.co_browse_sessions {
            let b = self.at(&CHAT_COBROWSE_SESSIONS);
            for (i, x) in sessions.co_browse_sessions_list.iter().enumerate() {
                fill_chat_cobrowse_session(&mut b.row(), c, x, i as i64);
            }
        }
        let b = self.at(&CHAT_SDE_EVENTS);
        for (i, e) in c.sdes.value.events.iter().enumerate() {
            fill_chat_sde_event(&mut b.row(), c, e, i as i64);
        }
    }

    pub fn buffers(&self) -> &[TableBuffer] {
        &self.buffers
    }

    pub fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        &mut self.buffers
    }
}

//! Messaging Interactions records → relational tables.
//!
//! Each table is declared with `table!` (see [`crate::macros`]): a column's name, type,
//! source and description sit next to the expression that fills it, so definitions and row
//! code cannot drift apart. Children carry `conversation_id` and a stable `ordinal` (their
//! position in the record). Column names avoid SQL reserved words (`time`, `end`, `by`), so
//! Athena DDL needs no quoting. The typed engagement-attribute tables are in [`crate::sde`].

use lpdrop_liveperson::lenient::RawJson;
use lpdrop_liveperson::records::{
    AgentParticipant, AgentSurvey, AgentSurveyAnswer, AgentSurveyQuestion, CoBrowseSession,
    ConsumerParticipant, Conversation, ConversationSurvey, Dialog, Intent, IntentClassification,
    Interaction, Kept, Message, MessageScore, MessageStatus, StructuredMetadata, SurveyAnswer,
    Transfer, UniqueIntent,
};
use lpdrop_liveperson::sde::SdeEvent;

use crate::buffer::{TableBuffer, buffer_of};
use crate::macros::{raw, s, text_list_json};
use crate::richtext::plain_text;
use crate::schema::TableDef;
use crate::sde::{self as sde_tables};

/// Every conversation row has an id: records without one are quarantined before this point.
pub(crate) fn conversation_id(c: &Conversation) -> Option<&str> {
    s(&c.info.conversation_id)
}

fn features_json(c: &Conversation) -> Option<String> {
    if c.info.features.is_empty() {
        return None;
    }
    let list: Vec<&str> = c.info.features.iter().filter_map(s).collect();
    Some(serde_json::to_string(&list).expect("strings serialize"))
}

table! {
    /// One row per conversation: `info` with `campaign`, `monitoring`, `summary` and
    /// `responseTime` (all 1:1), plus the nodes not yet split into tables as JSON text.
    CONVERSATIONS, fn fill_conversation(w, c: &Conversation),
    name: "conversations",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id"],
    description: "One row per messaging conversation (Messaging Interactions info, campaign, monitoring, summary, response time).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation id (UUID). Primary key.";
        "brand_id": utf8 = s(&c.info.brand_id) => "info.brandId", "Account id as LivePerson reports it.";
        "status": utf8 = s(&c.info.status) => "info.status", "Latest status: OPEN or CLOSE. OPEN conversations are exported as they are and fetched again later.";
        "full_dialog_status": utf8 = s(&c.info.full_dialog_status) => "info.fullDialogStatus", "Status counting the post-conversation survey dialog.";
        "start_time": timestamp_ms = c.info.start_time_l.0 => "info.startTimeL", "Conversation start (UTC). The sync window is on this time.";
        "end_time": timestamp_ms = c.info.end_time_l.0 => "info.endTimeL", "End time, updated when the survey is submitted or times out; NULL while open.";
        "conversation_end_time": timestamp_ms = c.info.conversation_end_time_l.0 => "info.conversationEndTimeL", "End of the conversation regardless of survey state.";
        "full_dialog_end_time": timestamp_ms = c.info.full_dialog_end_time_l.0 => "info.fullDialogEndTimeL", "Close time including survey submission or timeout.";
        "duration_ms": int64 = c.info.duration.0 => "info.duration", "Milliseconds from start to end (to retrieval time when open).";
        "close_reason": utf8 = s(&c.info.close_reason) => "info.closeReason", "Who closed it (e.g. AGENT, CONSUMER, SYSTEM).";
        "close_reason_description": utf8 = s(&c.info.close_reason_description) => "info.closeReasonDescription", "e.g. MANUAL_CLOSE.";
        "first_conversation": boolean = c.info.first_conversation.0 => "info.firstConversation", "The consumer's first conversation.";
        "csat": int64 = c.info.csat.0 => "info.csat", "CSAT 1-5 when sent as csat.";
        "csat_rate": float64 = c.info.csat_rate.0 => "info.csatRate", "CSAT when sent as csatRate (the vendor examples use this name).";
        "mcs": int64 = c.info.mcs.0 => "info.mcs", "Meaningful Conversation Score, 0-100.";
        "alerted_mcs": int64 = c.info.alerted_mcs.0 => "info.alertedMCS", "-1 negative, 0 neutral, 1 positive.";
        "source": utf8 = s(&c.info.source) => "info.source", "Origin channel (APP, SHARK, SMS, ...).";
        "device": utf8 = s(&c.info.device) => "info.device", "DESKTOP, TABLET, MOBILE or NA.";
        "device_model": utf8 = s(&c.info.device_model) => "info.deviceModel", "Device model.";
        "browser": utf8 = s(&c.info.browser) => "info.browser", "Browser.";
        "browser_version": utf8 = s(&c.info.browser_version) => "info.browserVersion", "Browser version.";
        "operating_system": utf8 = s(&c.info.operating_system) => "info.operatingSystem", "Operating system.";
        "operating_system_version": utf8 = s(&c.info.operating_system_version) => "info.operatingSystemVersion", "Operating system version.";
        "latest_skill_id": int64 = c.info.latest_skill_id.0 => "info.latestSkillId", "Latest skill; NULL when unassigned (-1).";
        "latest_skill_name": utf8 = s(&c.info.latest_skill_name) => "info.latestSkillName", "Latest skill name.";
        "latest_agent_id": utf8 = s(&c.info.latest_agent_id) => "info.latestAgentId", "Latest agent id.";
        "latest_agent_login_name": utf8 = s(&c.info.latest_agent_login_name) => "info.latestAgentLoginName", "Latest agent login name.";
        "latest_agent_nickname": utf8 = s(&c.info.latest_agent_nickname) => "info.latestAgentNickname", "Latest agent nickname.";
        "latest_agent_full_name": utf8 = s(&c.info.latest_agent_full_name) => "info.latestAgentFullName", "Latest agent full name.";
        "agent_deleted": boolean = c.info.agent_deleted.0 => "info.agentDeleted", "The latest agent has been deleted.";
        "latest_agent_group_id": int64 = c.info.latest_agent_group_id.0 => "info.latestAgentGroupId", "Latest agent group; NULL when unassigned (-1).";
        "latest_agent_group_name": utf8 = s(&c.info.latest_agent_group_name) => "info.latestAgentGroupName", "Latest agent group name.";
        "latest_queue_state": utf8 = s(&c.info.latest_queue_state) => "info.latestQueueState", "IN_QUEUE or ACTIVE.";
        "is_partial": boolean = c.info.is_partial.0 => "info.isPartial", "LivePerson truncated the record.";
        "session_id": utf8 = s(&c.info.session_id) => "info.sessionId", "LivePerson session id.";
        "interaction_context_id": utf8 = s(&c.info.interaction_context_id) => "info.interactionContextId", "Interaction context id.";
        "time_zone": utf8 = s(&c.info.time_zone) => "info.timeZone", "Visitor time zone.";
        "features_json": utf8 = features_json(c).as_deref() => "info.features", "Conversation features as a JSON array of strings.";
        "language": utf8 = s(&c.info.language) => "info.language", "Language.";
        "integration": utf8 = s(&c.info.integration) => "info.integration", "mobile-sdk, web-sdk or brand-sdk.";
        "integration_version": utf8 = s(&c.info.integration_version) => "info.integrationVersion", "Integration version.";
        "app_id": utf8 = s(&c.info.app_id) => "info.appId", "Application id.";
        "app_version": utf8 = s(&c.info.app_version) => "info.appVersion", "Application version.";
        "ip_address": utf8 = s(&c.info.ip_address) => "info.ipAddress", "Consumer IP address.";
        "was_step_up": boolean = c.info.was_step_up.0 => "info.wasStepUp", "An authentication step-up happened.";
        "pending_agent_survey": boolean = c.info.pending_agent_survey.0 => "info.pendingAgentSurvey", "An agent survey is pending.";
        "first_intent_name": utf8 = s(&c.info.first_intent_name) => "info.firstIntentName", "First detected intent id.";
        "first_intent_label": utf8 = s(&c.info.first_intent_label) => "info.firstIntentLabel", "First detected intent label.";
        "campaign_engagement_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.campaign_engagement_id)) => "campaign.campaignEngagementId", "Engagement id.";
        "campaign_engagement_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.campaign_engagement_name)) => "campaign.campaignEngagementName", "Engagement name.";
        "campaign_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.campaign_id)) => "campaign.campaignId", "Campaign id.";
        "campaign_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.campaign_name)) => "campaign.campaignName", "Campaign name.";
        "goal_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.goal_id)) => "campaign.goalId", "Goal id.";
        "goal_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.goal_name)) => "campaign.goalName", "Goal name.";
        "engagement_agent_note": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_agent_note)) => "campaign.engagementAgentNote", "Agent note of the engagement.";
        "engagement_source": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_source)) => "campaign.engagementSource", "e.g. WEB_SITE, SOCIAL_MEDIA.";
        "visitor_behavior_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.visitor_behavior_id)) => "campaign.visitorBehaviorId", "Visitor behavior id.";
        "visitor_behavior_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.visitor_behavior_name)) => "campaign.visitorBehaviorName", "Visitor behavior name.";
        "engagement_application_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_application_id)) => "campaign.engagementApplicationId", "Engagement application id.";
        "engagement_application_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_application_name)) => "campaign.engagementApplicationName", "Engagement application name.";
        "engagement_application_type_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_application_type_id)) => "campaign.engagementApplicationTypeId", "Engagement application type id.";
        "engagement_application_type_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.engagement_application_type_name)) => "campaign.engagementApplicationTypeName", "e.g. Mobile App.";
        "visitor_profile_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.visitor_profile_id)) => "campaign.visitorProfileId", "Visitor profile id.";
        "visitor_profile_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.visitor_profile_name)) => "campaign.visitorProfileName", "Visitor profile name.";
        "lob_id": int64 = c.campaign.as_ref().and_then(|x| x.lob_id.0) => "campaign.lobId", "Line of business id.";
        "lob_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.lob_name)) => "campaign.lobName", "Line of business name.";
        "location_id": utf8 = c.campaign.as_ref().and_then(|x| s(&x.location_id)) => "campaign.locationId", "Location id.";
        "location_name": utf8 = c.campaign.as_ref().and_then(|x| s(&x.location_name)) => "campaign.locationName", "Location name.";
        "behavior_system_default": boolean = c.campaign.as_ref().and_then(|x| x.behavior_system_default.0) => "campaign.behaviorSystemDefault", "The behavior is the system default.";
        "profile_system_default": boolean = c.campaign.as_ref().and_then(|x| x.profile_system_default.0) => "campaign.profileSystemDefault", "The profile is the system default.";
        "monitoring_country": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.country)) => "monitoring.country", "Consumer country.";
        "monitoring_country_code": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.country_code)) => "monitoring.countryCode", "Consumer country code.";
        "monitoring_state": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.state)) => "monitoring.state", "Consumer state or region.";
        "monitoring_city": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.city)) => "monitoring.city", "Consumer city.";
        "monitoring_isp": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.isp)) => "monitoring.isp", "Consumer ISP.";
        "monitoring_org": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.org)) => "monitoring.org", "Consumer organisation.";
        "monitoring_device": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.device)) => "monitoring.device", "DESKTOP, TABLET, MOBILE or NA.";
        "monitoring_ip_address": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.ip_address)) => "monitoring.ipAddress", "Consumer IP address.";
        "monitoring_browser": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.browser)) => "monitoring.browser", "Browser and version.";
        "monitoring_operating_system": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.operating_system)) => "monitoring.operatingSystem", "Operating system.";
        "monitoring_start_page": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.conversation_start_page)) => "monitoring.conversationStartPage", "URL where the conversation started.";
        "monitoring_start_page_title": utf8 = c.monitoring.as_ref().and_then(|x| s(&x.conversation_start_page_title)) => "monitoring.conversationStartPageTitle", "Title of that page.";
        "summary_text": utf8 = c.summary.as_ref().and_then(|x| s(&x.text)) => "summary.text", "Agent-written summary.";
        "summary_last_updated_time": timestamp_ms = c.summary.as_ref().and_then(|x| x.last_updated_time.0) => "summary.lastUpdatedTime", "When the summary was last updated.";
        "response_due_time": timestamp_ms = c.response_time.as_ref().and_then(|x| x.latest_effective_response_due_time.0) => "responseTime.latestEffectiveResponseDueTime", "When the agent should answer by; NULL when waiting for the consumer.";
        "configured_response_time_ms": int64 = c.response_time.as_ref().and_then(|x| x.configured_response_time.0) => "responseTime.configuredResponseTime", "Configured response time.";
        "cobrowse_sessions_json": utf8 = raw(&c.co_browse_sessions.raw) => "coBrowseSessions", "Co-browse sessions as JSON.";
        "sdes_json": utf8 = raw(&c.sdes.raw) => "sdes", "Authenticated engagement attributes (SDEs) as JSON.";
        "unauth_sdes_json": utf8 = raw(&c.un_auth_sdes.raw) => "unAuthSdes", "Unauthenticated engagement attributes (SDEs) as JSON.";
        "intents_json": utf8 = raw(&c.intents.raw) => "intents", "Intent classifications as JSON.";
        "unique_intents_json": utf8 = raw(&c.unique_intents.raw) => "uniqueIntents", "Unique intents as JSON.";
        "skill_changes_json": utf8 = raw(&c.skill_changes.raw) => "skillChanges", "Skill changes as JSON (shape undocumented by LivePerson).";
        "latest_agent_survey_json": utf8 = raw(&c.latest_agent_survey.raw) => "latestAgentSurvey", "Latest agent survey as JSON.";
        "previous_agent_surveys_json": utf8 = raw(&c.previously_submitted_agent_surveys.raw) => "previouslySubmittedAgentSurveys", "Previously submitted agent surveys as JSON.";
    }
}

fn rich_text(m: &Message) -> Option<String> {
    m.message_data
        .rich_content
        .as_ref()
        .and_then(|r| r.content.as_deref())
        .and_then(plain_text)
}

table! {
    MESSAGES, fn fill_message(w, c: &Conversation, m: &Message, ordinal: i64),
    name: "messages",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per message (messageRecords). Rich content is kept as JSON with its text extracted.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation the message belongs to.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position of the message in the record (0-based).";
        "message_id": utf8 = s(&m.message_id) => "messageRecords.messageId", "Message id.";
        "seq": int64 = m.seq.0 => "messageRecords.seq", "Sequence in the conversation (not contiguous).";
        "dialog_id": utf8 = s(&m.dialog_id) => "messageRecords.dialogId", "Dialog id (the main dialog's id equals the conversation id).";
        "participant_id": utf8 = s(&m.participant_id) => "messageRecords.participantId", "Consumer participant id or agent id.";
        "sent_by": utf8 = s(&m.sent_by) => "messageRecords.sentBy", "Consumer, Agent or System.";
        "content_type": utf8 = s(&m.content_type) => "messageRecords.type", "TEXT_PLAIN, TEXT_HTML, LINK, HOSTED_FILE, IMG, SECURE_FORM_INVITATION, SECURE_FORM_SUBMIT or RICH_CONTENT.";
        "sent_time": timestamp_ms = m.time_l.0 => "messageRecords.timeL", "When the message was sent (UTC).";
        "audience": utf8 = s(&m.audience) => "messageRecords.audience", "ALL, or AGENTS_AND_MANAGERS for private messages.";
        "source": utf8 = s(&m.source) => "messageRecords.source", "Channel (deprecated by LivePerson).";
        "device": utf8 = s(&m.device) => "messageRecords.device", "Device (deprecated by LivePerson).";
        "text": utf8 = m.message_data.msg.as_ref().and_then(|x| s(&x.text)) => "messageRecords.messageData.msg.text", "Plain or HTML text.";
        "rich_content_json": utf8 = m.message_data.rich_content.as_ref().and_then(|x| x.content.as_deref()) => "messageRecords.messageData.richContent.content", "Structured content card as JSON.";
        "rich_content_text": utf8 = rich_text(m).as_deref() => "derived", "Text portion of the structured content, for search and review.";
        "quick_replies_json": utf8 = m.message_data.quick_replies.as_ref().and_then(|x| x.content.as_deref()) => "messageRecords.messageData.quickReplies.content", "Quick replies as JSON.";
        "file_relative_path": utf8 = m.message_data.file.as_ref().and_then(|x| s(&x.relative_path)) => "messageRecords.messageData.file.relativePath", "Hosted file path.";
        "file_type": utf8 = m.message_data.file.as_ref().and_then(|x| s(&x.file_type)) => "messageRecords.messageData.file.fileType", "JPG, PNG, GIF, TXT or PDF.";
        "file_caption": utf8 = m.message_data.file.as_ref().and_then(|x| s(&x.caption)) => "messageRecords.messageData.file.caption", "File caption.";
        "link_json": utf8 = raw(&m.message_data.link) => "messageRecords.messageData.link", "Link content as JSON.";
        "secure_form_json": utf8 = raw(&m.message_data.secure_form) => "messageRecords.messageData.secureForm", "Secure form content as JSON.";
        "context_data_json": utf8 = raw(&m.context_data.raw) => "messageRecords.contextData", "Bot and escalation metadata as JSON.";
    }
}

table! {
    AGENT_PARTICIPANTS, fn fill_agent_participant(w, c: &Conversation, kind: &str, p: &AgentParticipant, ordinal: i64),
    name: "agent_participants",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "kind", "ordinal"],
    description: "One row per agent participation (agentParticipants, agentParticipantsActive, agentParticipantsLeave).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "kind": utf8 [required] = Some(kind) => "derived", "all, active or leave: which list the row comes from.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in its list (0-based).";
        "agent_id": utf8 = s(&p.agent_id) => "agentParticipants.agentId", "Agent id.";
        "agent_pid": utf8 = s(&p.agent_pid) => "agentParticipants.agentPid", "Agent user process id.";
        "agent_login_name": utf8 = s(&p.agent_login_name) => "agentParticipants.agentLoginName", "Login name.";
        "agent_nickname": utf8 = s(&p.agent_nickname) => "agentParticipants.agentNickname", "Nickname.";
        "agent_full_name": utf8 = s(&p.agent_full_name) => "agentParticipants.agentFullName", "Full name.";
        "agent_deleted": boolean = p.agent_deleted.0 => "agentParticipants.agentDeleted", "The agent has been deleted.";
        "added_time": timestamp_ms = p.time_l.0 => "agentParticipants.timeL", "When the agent was added (UTC).";
        "role": utf8 = s(&p.role) => "agentParticipants.role", "Role in the conversation.";
        "permission": utf8 = s(&p.permission) => "agentParticipants.permission", "e.g. ASSIGNED_AGENT, READER.";
        "user_type": utf8 = s(&p.user_type) => "agentParticipants.userType", "0, 1 or 2.";
        "user_type_name": utf8 = s(&p.user_type_name) => "agentParticipants.userTypeName", "System, Human or Bot.";
        "agent_group_id": int64 = p.agent_group_id.0 => "agentParticipants.agentGroupId", "Agent group; NULL when unassigned (-1).";
        "agent_group_name": utf8 = s(&p.agent_group_name) => "agentParticipants.agentGroupName", "Agent group name.";
        "dialog_id": utf8 = s(&p.dialog_id) => "agentParticipants.dialogId", "Dialog id.";
        "context_data_json": utf8 = raw(&p.context_data) => "agentParticipants.contextData", "Bot metadata as JSON.";
    }
}

table! {
    CONSUMER_PARTICIPANTS, fn fill_consumer_participant(w, c: &Conversation, p: &ConsumerParticipant, ordinal: i64),
    name: "consumer_participants",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per consumer participant (consumerParticipants).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "participant_id": utf8 = s(&p.participant_id) => "consumerParticipants.participantId", "LivePerson consumer id.";
        "updated_time": timestamp_ms = p.time_l.0 => "consumerParticipants.timeL", "Last update (UTC).";
        "join_time": timestamp_ms = p.join_time_l.0 => "consumerParticipants.joinTimeL", "When the consumer joined (UTC).";
        "first_name": utf8 = s(&p.first_name) => "consumerParticipants.firstName", "First name.";
        "last_name": utf8 = s(&p.last_name) => "consumerParticipants.lastName", "Last name.";
        "consumer_name": utf8 = s(&p.consumer_name) => "consumerParticipants.consumerName", "Display name.";
        "phone": utf8 = s(&p.phone) => "consumerParticipants.phone", "Phone.";
        "email": utf8 = s(&p.email) => "consumerParticipants.email", "Email.";
        "token": utf8 = s(&p.token) => "consumerParticipants.token", "Private id.";
        "avatar_url": utf8 = s(&p.avatar_url) => "consumerParticipants.avatarURL", "Avatar URL.";
        "dialog_id": utf8 = s(&p.dialog_id) => "consumerParticipants.dialogId", "Dialog id.";
    }
}

table! {
    TRANSFERS, fn fill_transfer(w, c: &Conversation, t: &Transfer, ordinal: i64),
    name: "transfers",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per transfer (transfers).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "transfer_time": timestamp_ms = t.time_l.0 => "transfers.timeL", "When the transfer happened (UTC).";
        "assigned_agent_id": utf8 = s(&t.assigned_agent_id) => "transfers.assignedAgentId", "Target agent; NULL when none (LivePerson sends \"null\").";
        "assigned_agent_login_name": utf8 = s(&t.assigned_agent_login_name) => "transfers.assignedAgentLoginName", "Target agent login name.";
        "assigned_agent_nickname": utf8 = s(&t.assigned_agent_nickname) => "transfers.assignedAgentNickname", "Target agent nickname.";
        "assigned_agent_full_name": utf8 = s(&t.assigned_agent_full_name) => "transfers.assignedAgentFullName", "Target agent full name.";
        "target_skill_id": int64 = t.target_skill_id.0 => "transfers.targetSkillId", "Target skill.";
        "target_skill_name": utf8 = s(&t.target_skill_name) => "transfers.targetSkillName", "Target skill name.";
        "source_skill_id": int64 = t.source_skill_id.0 => "transfers.sourceSkillId", "Source skill; NULL when unassigned (-1).";
        "source_skill_name": utf8 = s(&t.source_skill_name) => "transfers.sourceSkillName", "Source skill name.";
        "source_agent_id": utf8 = s(&t.source_agent_id) => "transfers.sourceAgentId", "Source agent.";
        "source_agent_login_name": utf8 = s(&t.source_agent_login_name) => "transfers.sourceAgentLoginName", "Source agent login name.";
        "source_agent_nickname": utf8 = s(&t.source_agent_nickname) => "transfers.sourceAgentNickname", "Source agent nickname.";
        "source_agent_full_name": utf8 = s(&t.source_agent_full_name) => "transfers.sourceAgentFullName", "Source agent full name.";
        "reason": utf8 = s(&t.reason) => "transfers.reason", "back2Q, Agent, SuggestedAgentTimeout, Skill or TakeOver.";
        "transferred_by": utf8 = s(&t.by) => "transfers.by", "Agent who performed the transfer.";
        "dialog_id": utf8 = s(&t.dialog_id) => "transfers.dialogId", "Dialog id.";
        "context_data_json": utf8 = raw(&t.context_data) => "transfers.contextData", "Bot metadata as JSON.";
    }
}

table! {
    INTERACTIONS, fn fill_interaction(w, c: &Conversation, i: &Interaction, ordinal: i64),
    name: "interactions",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per agent assignment segment (interactions).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "assigned_agent_id": utf8 = s(&i.assigned_agent_id) => "interactions.assignedAgentId", "Assigned agent.";
        "assigned_agent_login_name": utf8 = s(&i.assigned_agent_login_name) => "interactions.assignedAgentLoginName", "Login name.";
        "assigned_agent_nickname": utf8 = s(&i.assigned_agent_nickname) => "interactions.assignedAgentNickname", "Nickname.";
        "assigned_agent_full_name": utf8 = s(&i.assigned_agent_full_name) => "interactions.assignedAgentFullName", "Full name.";
        "interaction_time": timestamp_ms = i.interaction_time_l.0 => "interactions.interactionTimeL", "Start of the interaction (UTC).";
        "interactive_sequence": int64 = i.interactive_sequence.0 => "interactions.interactiveSequence", "Sequence of the interaction.";
        "dialog_id": utf8 = s(&i.dialog_id) => "interactions.dialogId", "Dialog id.";
    }
}

table! {
    DIALOGS, fn fill_dialog(w, c: &Conversation, d: &Dialog, ordinal: i64),
    name: "dialogs",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per dialog (dialogs): the main dialog and post-conversation survey dialogs.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "dialog_id": utf8 = s(&d.dialog_id) => "dialogs.dialogId", "Dialog id.";
        "status": utf8 = s(&d.status) => "dialogs.status", "OPEN or CLOSE.";
        "dialog_type": utf8 = s(&d.dialog_type) => "dialogs.dialogType", "MAIN or POST_SURVEY.";
        "dialog_channel_type": utf8 = s(&d.dialog_channel_type) => "dialogs.dialogChannelType", "e.g. MESSAGING.";
        "start_time": timestamp_ms = d.start_time_l.0 => "dialogs.startTimeL", "Dialog start (UTC).";
        "end_time": timestamp_ms = d.end_time_l.0 => "dialogs.endTimeL", "Dialog end (UTC); NULL while open.";
        "close_reason": utf8 = s(&d.close_reason) => "dialogs.closeReason", "Who closed it.";
        "close_reason_description": utf8 = s(&d.close_reason_description) => "dialogs.closeReasonDescription", "Close reason detail.";
        "skill_id": int64 = d.skill_id.0 => "dialogs.skillId", "Skill; NULL when unassigned (-1).";
        "skill_name": utf8 = s(&d.skill_name) => "dialogs.skillName", "Skill name.";
    }
}

table! {
    MESSAGE_SCORES, fn fill_message_score(w, c: &Conversation, m: &MessageScore, ordinal: i64),
    name: "message_scores",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per message score (messageScores): the MCS after each consumer message.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "message_id": utf8 = s(&m.message_id) => "messageScores.messageId", "Scored message.";
        "score_time": timestamp_ms = m.time_l.0 => "messageScores.timeL", "When the score was computed (UTC).";
        "mcs": int64 = m.mcs.0 => "messageScores.mcs", "Conversation score up to this message, 0-100.";
        "message_raw_score": int64 = m.message_raw_score.0 => "messageScores.messageRawScore", "Raw score of the message.";
    }
}

table! {
    MESSAGE_STATUSES, fn fill_message_status(w, c: &Conversation, m: &MessageStatus, ordinal: i64),
    name: "message_statuses",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per delivery or read receipt (messageStatuses).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "message_id": utf8 = s(&m.message_id) => "messageStatuses.messageId", "Message.";
        "seq": int64 = m.seq.0 => "messageStatuses.seq", "Message sequence.";
        "status_time": timestamp_ms = m.time_l.0 => "messageStatuses.timeL", "When the status was set (UTC).";
        "message_delivery_status": utf8 = s(&m.message_delivery_status) => "messageStatuses.messageDeliveryStatus", "SENT, ACCEPT or READ.";
        "participant_id": utf8 = s(&m.participant_id) => "messageStatuses.participantId", "Who the status is for.";
        "participant_type": utf8 = s(&m.participant_type) => "messageStatuses.participantType", "Agent or Consumer.";
        "dialog_id": utf8 = s(&m.dialog_id) => "messageStatuses.dialogId", "Dialog id.";
    }
}

table! {
    CONVERSATION_SURVEYS, fn fill_conversation_survey(w, c: &Conversation, v: &ConversationSurvey, ordinal: i64),
    name: "conversation_surveys",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per post-conversation survey (conversationSurveys); answers are in conversation_survey_answers.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "survey_id": utf8 = s(&v.survey_id) => "conversationSurveys.surveyId", "Survey id.";
        "survey_type": utf8 = s(&v.survey_type) => "conversationSurveys.surveyType", "e.g. Satisfaction, CSAT, PostSurvey.";
        "survey_status": utf8 = s(&v.survey_status) => "conversationSurveys.surveyStatus", "e.g. FILLED.";
        "dialog_id": utf8 = s(&v.dialog_id) => "conversationSurveys.dialogId", "Survey dialog id.";
        "answer_count": int64 = Some(v.survey_data.len() as i64) => "derived", "Number of answers in conversation_survey_answers.";
    }
}

table! {
    CONVERSATION_SURVEY_ANSWERS, fn fill_survey_answer(w, c: &Conversation, v: &ConversationSurvey, survey_ordinal: i64, a: &SurveyAnswer, ordinal: i64),
    name: "conversation_survey_answers",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "survey_ordinal", "ordinal"],
    description: "One row per answer of a post-conversation survey (conversationSurveys.surveyData).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "survey_ordinal": int64 [required] = Some(survey_ordinal) => "derived", "conversation_surveys.ordinal of the survey.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position of the answer in the survey (0-based).";
        "survey_id": utf8 = s(&v.survey_id) => "conversationSurveys.surveyId", "Survey id.";
        "question_id": utf8 = s(&a.question_id) => "conversationSurveys.surveyData.questionId", "Question id.";
        "question": utf8 = s(&a.question) => "conversationSurveys.surveyData.question", "Question text.";
        "answer_id": utf8 = s(&a.answer_id) => "conversationSurveys.surveyData.answerId", "Answer id (InvalidAnswer when invalid).";
        "answer": utf8 = s(&a.answer) => "conversationSurveys.surveyData.answer", "Answer text.";
        "question_type": utf8 = s(&a.question_type) => "conversationSurveys.surveyData.questionType", "e.g. csat, nps, custom.";
        "question_format": utf8 = s(&a.question_format) => "conversationSurveys.surveyData.questionFormat", "single or open.";
        "answer_seq": int64 = a.answer_seq.0 => "conversationSurveys.surveyData.answerSeq", "Answer sequence.";
        "is_valid_answer": boolean = a.is_valid_answer.0 => "conversationSurveys.surveyData.isValidAnswer", "The answer was valid.";
    }
}

table! {
    COBROWSE_SESSIONS, fn fill_cobrowse_session(w, c: &Conversation, x: &CoBrowseSession, ordinal: i64),
    name: "cobrowse_sessions",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per co-browse session (coBrowseSessions.coBrowseSessionsList).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "session_id": utf8 = s(&x.session_id) => "coBrowseSessions.coBrowseSessionsList.sessionId", "Co-browse session id.";
        "start_time": timestamp_ms = x.start_time_l.0 => "coBrowseSessions.coBrowseSessionsList.startTimeL", "Session start (UTC).";
        "end_time": timestamp_ms = x.end_time_l.0 => "coBrowseSessions.coBrowseSessionsList.endTimeL", "Session end (UTC).";
        "interactive_time": timestamp_ms = x.interactive_time_l.0 => "coBrowseSessions.coBrowseSessionsList.interactiveTimeL", "When the session became interactive (UTC).";
        "is_interactive": boolean = x.interactive() => "coBrowseSessions.coBrowseSessionsList.isInteractive|interactive", "The visitor let the agent interact (the reference says isInteractive, the examples interactive).";
        "end_reason": utf8 = s(&x.end_reason) => "coBrowseSessions.coBrowseSessionsList.endReason", "AGENT, VISITOR, SERVER, TIMEOUT or UNKOWN (sic).";
        "duration_ms": int64 = x.duration.0 => "coBrowseSessions.coBrowseSessionsList.duration", "Session length in milliseconds.";
        "session_type": utf8 = s(&x.session_type) => "coBrowseSessions.coBrowseSessionsList.type", "inApp or web.";
        "capabilities_json": utf8 = text_list_json(&x.capabilities).as_deref() => "coBrowseSessions.coBrowseSessionsList.capabilities", "Capabilities as a JSON array of strings (e.g. AGENT_APP_CONTROL); NULL when none.";
        "agent_id": utf8 = s(&x.agent_id) => "coBrowseSessions.coBrowseSessionsList.agentId", "Agent who ran the session.";
    }
}

fn selected(i: &Intent) -> Option<&IntentClassification> {
    i.selected_classification.as_ref()
}

table! {
    INTENTS, fn fill_intent(w, c: &Conversation, i: &Intent, ordinal: i64),
    name: "intents",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per classified consumer message (intents), with the selected intent; every candidate is in intent_classifications.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "message_id": utf8 = s(&i.message_id) => "intents.messageId", "Classified message (messages.message_id).";
        "intent_name": utf8 = selected(i).and_then(|x| s(&x.intent_name)) => "intents.selectedClassification.intentName", "Selected intent id (often a UUID).";
        "intent_label": utf8 = selected(i).and_then(|x| s(&x.intent_label)) => "intents.selectedClassification.intentLabel", "Selected intent label.";
        "confidence_score": float64 = selected(i).and_then(|x| x.confidence_score.0) => "intents.selectedClassification.confidenceScore", "Confidence of the selected intent, 0-1.";
        "versions_json": utf8 = selected(i).and_then(|x| raw(&x.versions)) => "intents.selectedClassification.versions", "Models that classified it, as JSON ([{modelName, modelVersion}]).";
        "classification_count": int64 = Some(i.all_classifications.len() as i64) => "derived", "Number of rows in intent_classifications.";
    }
}

table! {
    INTENT_CLASSIFICATIONS, fn fill_intent_classification(w, c: &Conversation, i: &Intent, intent_ordinal: i64, x: &IntentClassification, ordinal: i64),
    name: "intent_classifications",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "intent_ordinal", "ordinal"],
    description: "One row per candidate intent of a classified message (intents.allClassifications).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "intent_ordinal": int64 [required] = Some(intent_ordinal) => "derived", "intents.ordinal of the classified message.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in allClassifications (0-based).";
        "message_id": utf8 = s(&i.message_id) => "intents.messageId", "Classified message.";
        "is_selected": boolean = Some(selected(i).is_some_and(|sel| x.same_as(sel))) => "derived", "This candidate is the selected classification (same name, label and score).";
        "intent_name": utf8 = s(&x.intent_name) => "intents.allClassifications.intentName", "Intent id.";
        "intent_label": utf8 = s(&x.intent_label) => "intents.allClassifications.intentLabel", "Intent label.";
        "confidence_score": float64 = x.confidence_score.0 => "intents.allClassifications.confidenceScore", "Confidence, 0-1.";
        "versions_json": utf8 = raw(&x.versions) => "intents.allClassifications.versions", "Models, as JSON ([{modelName, modelVersion}]).";
    }
}

table! {
    UNIQUE_INTENTS, fn fill_unique_intent(w, c: &Conversation, x: &UniqueIntent, ordinal: i64),
    name: "unique_intents",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per distinct intent detected in the conversation (uniqueIntents).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "intent_name": utf8 = s(&x.intent_name) => "uniqueIntents.intentName", "Intent id.";
        "intent_label": utf8 = s(&x.intent_label) => "uniqueIntents.intentLabel", "Intent label.";
    }
}

table! {
    /// LivePerson documents neither the fields nor an example of `skillChanges`: each element
    /// is kept whole until real data shows its shape.
    SKILL_CHANGES, fn fill_skill_change(w, c: &Conversation, x: &RawJson, ordinal: i64),
    name: "skill_changes",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "ordinal"],
    description: "One row per skill change (skillChanges), kept as JSON: LivePerson does not document its shape.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in the list (0-based).";
        "skill_change_json": utf8 = raw(x) => "skillChanges[]", "The skill change as JSON.";
    }
}

table! {
    AGENT_SURVEYS, fn fill_agent_survey(w, c: &Conversation, is_latest: bool, v: &AgentSurvey, ordinal: i64),
    name: "agent_surveys",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_latest", "ordinal"],
    description: "One row per agent (wrap-up) survey: latestAgentSurvey (is_latest) and previouslySubmittedAgentSurveys; answers are in agent_survey_answers.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "is_latest": boolean [required] = Some(is_latest) => "derived", "true: latestAgentSurvey; false: an element of previouslySubmittedAgentSurveys.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in previouslySubmittedAgentSurveys (0-based); 0 for the latest survey.";
        "survey_status": utf8 = s(&v.survey_status) => "latestAgentSurvey.surveyStatus", "OPEN, SUBMITTED, DISMISSED or CLOSED.";
        "status_reason": utf8 = s(&v.status_reason) => "latestAgentSurvey.statusReason", "e.g. skillChanged, timeout, PARTIALLY_SUBMITTED.";
        "dialog_id": utf8 = s(&v.dialog_id) => "latestAgentSurvey.dialogId", "Dialog id.";
        "survey_id": utf8 = s(&v.survey_id) => "latestAgentSurvey.surveyId", "Runtime survey id.";
        "ac_survey_id": utf8 = s(&v.ac_survey_id) => "latestAgentSurvey.acSurveyId", "Survey definition id (account config).";
        "ac_survey_name": utf8 = s(&v.ac_survey_name) => "latestAgentSurvey.acSurveyName", "Survey definition name.";
        "ac_survey_revision": int64 = v.ac_survey_revision.0 => "latestAgentSurvey.acSurveyRevision", "Survey definition revision.";
        "survey_skill_id": int64 = v.survey_skill_id.0 => "latestAgentSurvey.surveySkillId", "Skill the survey belongs to; NULL when unassigned (-1).";
        "survey_skill_name": utf8 = s(&v.survey_skill_name) => "latestAgentSurvey.surveySkillName", "Skill name.";
        "assigned_agent_id": utf8 = s(&v.assigned_agent_id) => "latestAgentSurvey.assignedAgentId", "Agent the survey was assigned to.";
        "assigned_agent_nickname": utf8 = s(&v.assigned_agent_nick_name) => "latestAgentSurvey.assignedAgentNickName", "Nickname.";
        "assigned_agent_name": utf8 = s(&v.assigned_agent_name) => "latestAgentSurvey.assignedAgentName", "Name.";
        "performed_by_agent_id": utf8 = s(&v.performed_by_agent_id) => "latestAgentSurvey.performedByAgentId", "Agent who filled it in; NULL when nobody did.";
        "performed_by_agent_nickname": utf8 = s(&v.performed_by_agent_nick_name) => "latestAgentSurvey.performedByAgentNickName", "Nickname.";
        "performed_by_agent_name": utf8 = s(&v.performed_by_agent_name) => "latestAgentSurvey.performedByAgentName", "Name.";
        "last_update_time": timestamp_ms = v.last_update_time.0 => "latestAgentSurvey.lastUpdateTime", "Last update (UTC).";
        "question_count": int64 = Some(v.submitted_answers.len() as i64) => "derived", "Number of questions answered (submittedAnswers).";
    }
}

table! {
    AGENT_SURVEY_ANSWERS, fn fill_agent_survey_answer(w, c: &Conversation, is_latest: bool, survey_ordinal: i64, v: &AgentSurvey, question_ordinal: i64, q: &AgentSurveyQuestion, a: Option<&AgentSurveyAnswer>, ordinal: i64),
    name: "agent_survey_answers",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_latest", "survey_ordinal", "question_ordinal", "ordinal"],
    description: "One row per answer of an agent survey (submittedAnswers[].answers[]); a question without answers has one row with a NULL answer.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "is_latest": boolean [required] = Some(is_latest) => "derived", "agent_surveys.is_latest of the survey.";
        "survey_ordinal": int64 [required] = Some(survey_ordinal) => "derived", "agent_surveys.ordinal of the survey.";
        "question_ordinal": int64 [required] = Some(question_ordinal) => "derived", "Position of the question in submittedAnswers (0-based).";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position of the answer in the question's answers (0-based).";
        "survey_id": utf8 = s(&v.survey_id) => "latestAgentSurvey.surveyId", "Runtime survey id.";
        "question_id": utf8 = s(&q.question_id) => "latestAgentSurvey.submittedAnswers.questionId", "Question id.";
        "question_text": utf8 = s(&q.question_text) => "latestAgentSurvey.submittedAnswers.questionText", "Question.";
        "question_definition": utf8 = s(&q.question_definition) => "latestAgentSurvey.submittedAnswers.questionDefinition", "e.g. REGULAR_QUESTION.";
        "question_category": utf8 = s(&q.question_category) => "latestAgentSurvey.submittedAnswers.questionCategory", "e.g. FREE_TEXT, NUMBER.";
        "answer": utf8 = a.and_then(|a| s(&a.answer)) => "latestAgentSurvey.submittedAnswers.answers.answer", "Answer.";
        "answer_id": utf8 = a.and_then(|a| s(&a.answer_id)) => "latestAgentSurvey.submittedAnswers.answers.answerId", "Answer id.";
    }
}

fn bot_intent(m: &StructuredMetadata) -> Option<&lpdrop_liveperson::records::BotIntent> {
    m.bot_response.as_ref().and_then(|b| b.intents.first())
}

fn metadata_type(m: &StructuredMetadata) -> Option<&'static str> {
    match (&m.bot_response, &m.action_reason) {
        (Some(_), _) => Some("BotResponse"),
        (None, Some(_)) => Some("ActionReason"),
        (None, None) => None,
    }
}

table! {
    MESSAGE_CONTEXT_METADATA, fn fill_context_metadata(w, c: &Conversation, message_ordinal: i64, msg: &Message, x: &Kept<StructuredMetadata>, ordinal: i64),
    name: "message_context_metadata",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "message_ordinal", "ordinal"],
    description: "One row per bot response or action reason attached to a message (messageRecords.contextData.structuredMetadata).",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "message_ordinal": int64 [required] = Some(message_ordinal) => "derived", "messages.ordinal of the message.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in structuredMetadata (0-based).";
        "message_id": utf8 = s(&msg.message_id) => "messageRecords.messageId", "Message.";
        "metadata_type": utf8 = metadata_type(&x.value) => "derived", "BotResponse or ActionReason (which object the item holds).";
        "external_conversation_id": utf8 = x.value.bot_response.as_ref().and_then(|b| s(&b.external_conversation_id)) => "messageRecords.contextData.structuredMetadata.botResponse.externalConversationId", "The bot platform's conversation id.";
        "business_cases_json": utf8 = x.value.bot_response.as_ref().and_then(|b| text_list_json(&b.business_cases)).as_deref() => "messageRecords.contextData.structuredMetadata.botResponse.businessCases", "Business cases as a JSON array of strings.";
        "intent_count": int64 = x.value.bot_response.as_ref().map(|b| b.intents.len() as i64) => "derived", "Number of intents in the bot response (all are in metadata_json).";
        "intent_id": utf8 = bot_intent(&x.value).and_then(|i| s(&i.id)) => "messageRecords.contextData.structuredMetadata.botResponse.intents[0].id", "First intent of the bot response: id.";
        "intent_name": utf8 = bot_intent(&x.value).and_then(|i| s(&i.name)) => "messageRecords.contextData.structuredMetadata.botResponse.intents[0].name", "First intent: name.";
        "intent_confidence": utf8 = bot_intent(&x.value).and_then(|i| s(&i.confidence)) => "messageRecords.contextData.structuredMetadata.botResponse.intents[0].confidence", "First intent: LOW, MEDIUM or HIGH.";
        "intent_confidence_score": float64 = bot_intent(&x.value).and_then(|i| i.confidence_score.0) => "messageRecords.contextData.structuredMetadata.botResponse.intents[0].confidenceScore", "First intent: confidence score.";
        "action_reason": utf8 = x.value.action_reason.as_ref().and_then(|a| s(&a.reason)) => "messageRecords.contextData.structuredMetadata.actionReason.reason", "Why the bot acted (e.g. escalated).";
        "metadata_json": utf8 = raw(&x.raw) => "messageRecords.contextData.structuredMetadata[]", "The item as JSON.";
    }
}

table! {
    SDE_EVENTS, fn fill_sde_event(w, c: &Conversation, is_authenticated: bool, e: &SdeEvent, ordinal: i64),
    name: "sde_events",
    entity: Messaging("conversations", "conversation_id"),
    grain: ["conversation_id", "is_authenticated", "ordinal"],
    description: "One row per engagement attribute (SDE) event of sdes and unAuthSdes, kept whole as JSON; known types are also split into the sde_* tables.",
    columns: {
        "conversation_id": utf8 [required] = conversation_id(c) => "info.conversationId", "Conversation.";
        "is_authenticated": boolean [required] = Some(is_authenticated) => "derived", "true: from sdes (authenticated); false: from unAuthSdes.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in its events list (0-based); the sde_* tables' event_ordinal.";
        "sde_type": utf8 = e.sde_type.as_deref() => "sdes.events.sdeType", "CUSTOMER_INFO, PERSONAL_INFO, CART_STATUS, PURCHASE, VIEWED_PRODUCT, LEAD, SERVICE_ACTIVITY, VISITOR_ERROR, SEARCH_CONTENT, MARKETING_CAMPAIGN_INFO, ...; derived from the payload key when not sent.";
        "server_time": timestamp_ms = e.server_time => "sdes.events.serverTimeStamp", "When LivePerson processed the event (UTC).";
        "original_time": timestamp_ms = e.original_time => "sdes.events.<sdeKey>.originalTimeStamp", "When the event was created (UTC).";
        "event_is_authenticated": boolean = e.is_authenticated => "sdes.events.isAuthenticated", "isAuthenticated as the event states it, when it does.";
        "event_json": utf8 = Some(e.raw.as_str()) => "sdes.events[]", "The whole event as JSON (every field, including types this version does not split).";
    }
}

/// Every messaging table, in the order they appear in drops and manifests. New tables are
/// appended at the end.
pub static MESSAGING_TABLES: [&TableDef; 32] = [
    &CONVERSATIONS,
    &MESSAGES,
    &AGENT_PARTICIPANTS,
    &CONSUMER_PARTICIPANTS,
    &TRANSFERS,
    &INTERACTIONS,
    &DIALOGS,
    &MESSAGE_SCORES,
    &MESSAGE_STATUSES,
    &CONVERSATION_SURVEYS,
    &CONVERSATION_SURVEY_ANSWERS,
    &COBROWSE_SESSIONS,
    &INTENTS,
    &INTENT_CLASSIFICATIONS,
    &UNIQUE_INTENTS,
    &SKILL_CHANGES,
    &AGENT_SURVEYS,
    &AGENT_SURVEY_ANSWERS,
    &MESSAGE_CONTEXT_METADATA,
    &SDE_EVENTS,
    &sde_tables::SDE_CUSTOMER_INFO,
    &sde_tables::SDE_PERSONAL_INFO,
    &sde_tables::SDE_PERSONAL_CONTACTS,
    &sde_tables::SDE_CART_STATUS,
    &sde_tables::SDE_PURCHASE,
    &sde_tables::SDE_CART_PRODUCTS,
    &sde_tables::SDE_VIEWED_PRODUCTS,
    &sde_tables::SDE_MARKETING_CAMPAIGN,
    &sde_tables::SDE_LEAD,
    &sde_tables::SDE_SERVICE_ACTIVITY,
    &sde_tables::SDE_VISITOR_ERROR,
    &sde_tables::SDE_SEARCH_KEYWORDS,
];

/// Row buffers for every messaging table; conversations go in, rows come out per table.
pub struct MessagingTables {
    buffers: Vec<TableBuffer>,
}

impl Default for MessagingTables {
    fn default() -> Self {
        Self::new()
    }
}

impl MessagingTables {
    pub fn new() -> Self {
        MessagingTables {
            buffers: MESSAGING_TABLES
                .iter()
                .map(|d| TableBuffer::new(d))
                .collect(),
        }
    }

    fn at(&mut self, def: &'static TableDef) -> &mut TableBuffer {
        buffer_of(&MESSAGING_TABLES, &mut self.buffers, def)
    }

    /// Splits one conversation into rows of every table.
    pub fn append(&mut self, c: &Conversation) {
        fill_conversation(&mut self.at(&CONVERSATIONS).row(), c);
        let b = self.at(&MESSAGES);
        for (i, m) in c.message_records.iter().enumerate() {
            fill_message(&mut b.row(), c, m, i as i64);
        }
        let b = self.at(&AGENT_PARTICIPANTS);
        for (kind, list) in [
            ("all", &c.agent_participants),
            ("active", &c.agent_participants_active),
            ("leave", &c.agent_participants_leave),
        ] {
            for (i, p) in list.iter().enumerate() {
                fill_agent_participant(&mut b.row(), c, kind, p, i as i64);
            }
        }
        let b = self.at(&CONSUMER_PARTICIPANTS);
        for (i, p) in c.consumer_participants.iter().enumerate() {
            fill_consumer_participant(&mut b.row(), c, p, i as i64);
        }
        let b = self.at(&TRANSFERS);
        for (i, t) in c.transfers.iter().enumerate() {
            fill_transfer(&mut b.row(), c, t, i as i64);
        }
        let b = self.at(&INTERACTIONS);
        for (i, x) in c.interactions.iter().enumerate() {
            fill_interaction(&mut b.row(), c, x, i as i64);
        }
        let b = self.at(&DIALOGS);
        for (i, d) in c.dialogs.iter().enumerate() {
            fill_dialog(&mut b.row(), c, d, i as i64);
        }
        let b = self.at(&MESSAGE_SCORES);
        for (i, m) in c.message_scores.iter().enumerate() {
            fill_message_score(&mut b.row(), c, m, i as i64);
        }
        let b = self.at(&MESSAGE_STATUSES);
        for (i, m) in c.message_statuses.iter().enumerate() {
            fill_message_status(&mut b.row(), c, m, i as i64);
        }
        for (i, v) in c.conversation_surveys.iter().enumerate() {
            fill_conversation_survey(&mut self.at(&CONVERSATION_SURVEYS).row(), c, v, i as i64);
            let b = self.at(&CONVERSATION_SURVEY_ANSWERS);
            for (j, a) in v.survey_data.iter().enumerate() {
                fill_survey_answer(&mut b.row(), c, v, i as i64, a, j as i64);
            }
        }
        let b = self.at(&COBROWSE_SESSIONS);
        for (i, x) in c
            .co_browse_sessions
            .value
            .co_browse_sessions_list
            .iter()
            .enumerate()
        {
            fill_cobrowse_session(&mut b.row(), c, x, i as i64);
        }
        for (i, x) in c.intents.value.iter().enumerate() {
            fill_intent(&mut self.at(&INTENTS).row(), c, x, i as i64);
            let b = self.at(&INTENT_CLASSIFICATIONS);
            for (j, k) in x.all_classifications.iter().enumerate() {
                fill_intent_classification(&mut b.row(), c, x, i as i64, k, j as i64);
            }
        }
        let b = self.at(&UNIQUE_INTENTS);
        for (i, x) in c.unique_intents.value.iter().enumerate() {
            fill_unique_intent(&mut b.row(), c, x, i as i64);
        }
        let b = self.at(&SKILL_CHANGES);
        for (i, x) in c.skill_changes.value.iter().enumerate() {
            fill_skill_change(&mut b.row(), c, x, i as i64);
        }
        let latest = c.latest_agent_survey.value.iter().map(|v| (true, 0, v));
        let previous = c
            .previously_submitted_agent_surveys
            .value
            .iter()
            .enumerate()
            .map(|(i, v)| (false, i, v));
        for (is_latest, i, v) in latest.chain(previous) {
            fill_agent_survey(
                &mut self.at(&AGENT_SURVEYS).row(),
                c,
                is_latest,
                v,
                i as i64,
            );
            let b = self.at(&AGENT_SURVEY_ANSWERS);
            for (j, q) in v.submitted_answers.iter().enumerate() {
                let answers: Vec<Option<&AgentSurveyAnswer>> = if q.answers.is_empty() {
                    vec![None]
                } else {
                    q.answers.iter().map(Some).collect()
                };
                for (k, a) in answers.into_iter().enumerate() {
                    fill_agent_survey_answer(
                        &mut b.row(),
                        c,
                        is_latest,
                        i as i64,
                        v,
                        j as i64,
                        q,
                        a,
                        k as i64,
                    );
                }
            }
        }
        let b = self.at(&MESSAGE_CONTEXT_METADATA);
        for (i, m) in c.message_records.iter().enumerate() {
            for (j, x) in m.context_data.value.structured_metadata.iter().enumerate() {
                fill_context_metadata(&mut b.row(), c, i as i64, m, x, j as i64);
            }
        }
        for (is_authenticated, node) in [(true, &c.sdes), (false, &c.un_auth_sdes)] {
            for (i, e) in node.value.events.iter().enumerate() {
                fill_sde_event(
                    &mut self.at(&SDE_EVENTS).row(),
                    c,
                    is_authenticated,
                    e,
                    i as i64,
                );
                sde_tables::append_event(
                    &MESSAGING_TABLES,
                    &mut self.buffers,
                    conversation_id(c),
                    is_authenticated,
                    i as i64,
                    e,
                );
            }
        }
    }

    pub fn buffers(&self) -> &[TableBuffer] {
        &self.buffers
    }

    pub fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        &mut self.buffers
    }
}

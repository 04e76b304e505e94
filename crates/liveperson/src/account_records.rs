//! Typed, lenient account configuration entities (API notes §5): users (agents), skills and
//! agent groups, as `GET .../le-users/{users,skills,agentGroups}` return them (a JSON array of
//! entities). The vendor's examples send ids, counts and booleans as strings (`"id":
//! "1231234"`, `"isEnabled": "true"`), so every scalar is lenient.
//!
//! Write-only fields (`passwordSh`, `oldPassword`, `confirmPassword`) are not modelled, so they
//! can never reach an output file.

use serde::Deserialize;

use crate::lenient::{Bool, Float, Int, Text};
use crate::records::List;

/// A user (agent, bot or system user).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    /// A number, sent as a string in the examples; kept as text to match the agent ids of
    /// conversation records.
    pub id: Text,
    pub pid: Text,
    pub deleted: Bool,
    pub login_name: Text,
    /// Returned empty by LivePerson for privacy.
    pub full_name: Text,
    pub nickname: Text,
    pub is_enabled: Bool,
    pub max_chats: Int,
    pub max_async_chats: Int,
    pub email: Text,
    pub skill_ids: List<Int>,
    pub member_of: Option<GroupAssignment>,
    pub manager_of: List<GroupAssignment>,
    pub profile_ids: List<Int>,
    pub permission_groups: List<Int>,
    pub lob_ids: List<Int>,
    /// 0 system, 1 human, 2 bot.
    pub user_type_id: Int,
    pub is_api_user: Bool,
    pub allowed_app_keys: Text,
    pub date_updated: Text,
    pub last_pwd_change_date: Text,
    pub disabled_manually: Bool,
    pub change_pwd_next_login: Bool,
    pub description: Text,
    pub mobile_number: Text,
    pub picture_url: Text,
    pub backgnd_img_uri: Text,
    pub pn_cert_name: Text,
    pub employee_id: Text,
}

/// `memberOf` / `managerOf[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupAssignment {
    pub agent_group_id: Int,
    /// `yyyy-MM-dd HH:mm:ss`, time zone unspecified.
    pub assignment_date: Text,
}

/// A skill.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Skill {
    pub id: Int,
    pub deleted: Bool,
    pub name: Text,
    pub description: Text,
    pub skill_order: Int,
    pub max_wait_time: Int,
    pub default_post_chat_survey_id: Text,
    pub default_offline_survey_id: Text,
    pub default_agent_survey_id: Text,
    pub date_updated: Text,
    pub skill_routing_configuration: List<SkillRouting>,
    pub wrap_up_time: Int,
    pub sla_default_response_time: Int,
    pub sla_urgent_response_time: Int,
    pub sla_first_time_response_time: Int,
    pub lob_ids: List<Int>,
    pub can_transfer: Bool,
    pub skill_transfer_list: List<Int>,
    pub working_hours_id: Int,
    pub special_occasion_id: Int,
    pub post_conversation_survey_app_install_association_id: Text,
    pub auto_close_in_seconds: Int,
    pub transfer_to_agent_max_wait_in_seconds: Int,
    pub fallback_skill: Int,
    pub fallback_when_all_agents_are_away: Bool,
    pub agent_survey_for_msg_timeout_in_minutes: Int,
    pub agent_survey_for_msg_id: Int,
}

/// `skillRoutingConfiguration[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SkillRouting {
    pub agent_group_id: Int,
    pub priority: Int,
    pub split_percentage: Float,
}

/// An agent group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentGroup {
    pub id: Int,
    pub deleted: Bool,
    pub name: Text,
    pub description: Text,
    /// `None` only for the root group.
    pub parent_group_id: Int,
    pub is_enabled: Bool,
    pub date_updated: Text,
}

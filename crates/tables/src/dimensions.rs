//! Account configuration entities → dimension tables: agents, skills, agent groups, and the
//! two bridges that flatten their id lists (`agent_skills`, `skill_routing`).
//!
//! Keys match the conversation and chat tables they join: `agent_id` is text (like
//! `conversations.latest_agent_id`), `skill_id` and `agent_group_id` are int64 (like
//! `conversations.latest_skill_id` and `latest_agent_group_id`). The Agent Groups API is
//! expected to send the root group's real id; conversation records report it as -1 (NULL).

use lpdrop_liveperson::account_records::{AgentGroup, GroupAssignment, Skill, SkillRouting, User};
use lpdrop_liveperson::lenient::Int;

use crate::buffer::{TableBuffer, buffer_of};
use crate::macros::{int_list_json, s};
use crate::schema::TableDef;

fn manager_of_json(u: &User) -> Option<String> {
    (!u.manager_of.is_empty())
        .then(|| serde_json::to_string(&u.manager_of[..]).expect("group assignments serialize"))
}

fn member_of(u: &User) -> Option<&GroupAssignment> {
    u.member_of.as_ref()
}

fn routing_json(k: &Skill) -> Option<String> {
    (!k.skill_routing_configuration.is_empty()).then(|| {
        let list: Vec<serde_json::Value> = k
            .skill_routing_configuration
            .iter()
            .map(|r| {
                serde_json::json!({
                    "agentGroupId": r.agent_group_id.0,
                    "priority": r.priority.0,
                    "splitPercentage": r.split_percentage.0,
                })
            })
            .collect();
        serde_json::to_string(&list).expect("values serialize")
    })
}

table! {
    AGENTS, fn fill_agent(w, u: &User),
    name: "agents",
    entity: Dimensions("agents", "agent_id"),
    grain: ["agent_id"],
    description: "One row per user (human agent, bot or system user) of the account, deleted ones included (Users API).",
    columns: {
        "agent_id": utf8 [required] = s(&u.id) => "users.id", "User id; joins conversations.latest_agent_id, agent_participants.agent_id, chats.agent_id. Primary key.";
        "pid": utf8 = s(&u.pid) => "users.pid", "User process id (agent_participants.agent_pid).";
        "login_name": utf8 = s(&u.login_name) => "users.loginName", "Login name (unique).";
        "nickname": utf8 = s(&u.nickname) => "users.nickname", "Nickname shown to consumers.";
        "full_name": utf8 = s(&u.full_name) => "users.fullName", "Full name (LivePerson returns it empty for privacy).";
        "email": utf8 = s(&u.email) => "users.email", "Email.";
        "deleted": boolean = u.deleted.0 => "users.deleted", "The user has been deleted.";
        "is_enabled": boolean = u.is_enabled.0 => "users.isEnabled", "The user is enabled.";
        "user_type_id": int64 = u.user_type_id.0 => "users.userTypeId", "0 system, 1 human, 2 bot.";
        "is_api_user": boolean = u.is_api_user.0 => "users.isApiUser", "An API user.";
        "max_chats": int64 = u.max_chats.0 => "users.maxChats", "Maximum concurrent chats.";
        "max_async_chats": int64 = u.max_async_chats.0 => "users.maxAsyncChats", "Maximum concurrent messaging conversations; NULL means the account default.";
        "member_of_agent_group_id": int64 = member_of(u).and_then(|m| m.agent_group_id.0) => "users.memberOf.agentGroupId", "Agent group the user belongs to.";
        "member_of_assignment_date": utf8 = member_of(u).and_then(|m| s(&m.assignment_date)) => "users.memberOf.assignmentDate", "When the user joined it, as LivePerson sends it (yyyy-MM-dd HH:mm:ss, time zone unspecified).";
        "manager_of_json": utf8 = manager_of_json(u).as_deref() => "users.managerOf", "Groups the user manages, as JSON ([{agentGroupId, assignmentDate}]); NULL when none.";
        "skill_ids_json": utf8 = int_list_json(&u.skill_ids).as_deref() => "users.skillIds", "Skill ids as a JSON array (one row each in agent_skills); NULL when none.";
        "profile_ids_json": utf8 = int_list_json(&u.profile_ids).as_deref() => "users.profileIds", "Profile (role) ids as a JSON array; NULL when none.";
        "permission_groups_json": utf8 = int_list_json(&u.permission_groups).as_deref() => "users.permissionGroups", "Permission groups as a JSON array; NULL when none.";
        "lob_ids_json": utf8 = int_list_json(&u.lob_ids).as_deref() => "users.lobIds", "Line of business ids as a JSON array; NULL when none.";
        "allowed_app_keys": utf8 = s(&u.allowed_app_keys) => "users.allowedAppKeys", "App keys allowed for an API user.";
        "disabled_manually": boolean = u.disabled_manually.0 => "users.disabledManually", "Disabled by an administrator.";
        "change_pwd_next_login": boolean = u.change_pwd_next_login.0 => "users.changePwdNextLogin", "Must change the password at next login.";
        "description": utf8 = s(&u.description) => "users.description", "Description.";
        "mobile_number": utf8 = s(&u.mobile_number) => "users.mobileNumber", "Mobile number.";
        "employee_id": utf8 = s(&u.employee_id) => "users.employeeId", "Employee id (LivePerson returns it empty).";
        "picture_url": utf8 = s(&u.picture_url) => "users.pictureUrl", "Picture URL.";
        "background_image_uri": utf8 = s(&u.backgnd_img_uri) => "users.backgndImgUri", "Background image URI.";
        "pn_cert_name": utf8 = s(&u.pn_cert_name) => "users.pnCertName", "Push notification certificate name.";
        "date_updated": utf8 = s(&u.date_updated) => "users.dateUpdated", "Last update, as LivePerson sends it (yyyy-MM-dd HH:mm:ss, time zone unspecified).";
        "last_pwd_change_date": utf8 = s(&u.last_pwd_change_date) => "users.lastPwdChangeDate", "Last password change, as LivePerson sends it.";
    }
}

table! {
    AGENT_SKILLS, fn fill_agent_skill(w, u: &User, skill: &Int, ordinal: i64),
    name: "agent_skills",
    entity: Dimensions("agents", "agent_id"),
    grain: ["agent_id", "ordinal"],
    description: "One row per skill of a user (users.skillIds): the agent-to-skill bridge.",
    columns: {
        "agent_id": utf8 [required] = s(&u.id) => "users.id", "User.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in skillIds (0-based).";
        "skill_id": int64 = skill.0 => "users.skillIds[]", "Skill (skills.skill_id).";
    }
}

table! {
    SKILLS, fn fill_skill(w, k: &Skill),
    name: "skills",
    entity: Dimensions("skills", "skill_id"),
    grain: ["skill_id"],
    description: "One row per skill of the account, deleted ones included (Skills API).",
    columns: {
        "skill_id": int64 [required] = k.id.0 => "skills.id", "Skill id; joins conversations.latest_skill_id, dialogs.skill_id, chats.skill_id. Primary key.";
        "skill_name": utf8 = s(&k.name) => "skills.name", "Name (unique).";
        "description": utf8 = s(&k.description) => "skills.description", "Description.";
        "deleted": boolean = k.deleted.0 => "skills.deleted", "The skill has been deleted.";
        "skill_order": int64 = k.skill_order.0 => "skills.skillOrder", "Display order.";
        "max_wait_time": int64 = k.max_wait_time.0 => "skills.maxWaitTime", "Maximum wait time (default 120).";
        "wrap_up_time": int64 = k.wrap_up_time.0 => "skills.wrapUpTime", "Wrap-up time.";
        "sla_default_response_time": int64 = k.sla_default_response_time.0 => "skills.slaDefaultResponseTime", "Default response time SLA.";
        "sla_urgent_response_time": int64 = k.sla_urgent_response_time.0 => "skills.slaUrgentResponseTime", "Urgent response time SLA.";
        "sla_first_time_response_time": int64 = k.sla_first_time_response_time.0 => "skills.slaFirstTimeResponseTime", "First-time response SLA.";
        "can_transfer": boolean = k.can_transfer.0 => "skills.canTransfer", "Conversations can be transferred from this skill.";
        "skill_transfer_list_json": utf8 = int_list_json(&k.skill_transfer_list).as_deref() => "skills.skillTransferList", "Skills it can transfer to, as a JSON array; NULL when none.";
        "lob_ids_json": utf8 = int_list_json(&k.lob_ids).as_deref() => "skills.lobIds", "Line of business ids as a JSON array; NULL when none.";
        "skill_routing_json": utf8 = routing_json(k).as_deref() => "skills.skillRoutingConfiguration", "Routing to agent groups as JSON (one row each in skill_routing); NULL when none.";
        "default_post_chat_survey_id": utf8 = s(&k.default_post_chat_survey_id) => "skills.defaultPostChatSurveyId", "Default post-chat survey.";
        "default_offline_survey_id": utf8 = s(&k.default_offline_survey_id) => "skills.defaultOfflineSurveyId", "Default offline survey.";
        "default_agent_survey_id": utf8 = s(&k.default_agent_survey_id) => "skills.defaultAgentSurveyId", "Default agent survey.";
        "working_hours_id": int64 = k.working_hours_id.0 => "skills.workingHoursId", "Working hours definition.";
        "special_occasion_id": int64 = k.special_occasion_id.0 => "skills.specialOccasionId", "Special occasion definition.";
        "post_conversation_survey_app_install_association_id": utf8 = s(&k.post_conversation_survey_app_install_association_id) => "skills.postConversationSurveyAppInstallAssociationId", "Post-conversation survey app installation.";
        "auto_close_in_seconds": int64 = k.auto_close_in_seconds.0 => "skills.autoCloseInSeconds", "Auto-close after this many seconds.";
        "transfer_to_agent_max_wait_in_seconds": int64 = k.transfer_to_agent_max_wait_in_seconds.0 => "skills.transferToAgentMaxWaitInSeconds", "Maximum wait for a transfer to an agent.";
        "fallback_skill_id": int64 = k.fallback_skill.0 => "skills.fallbackSkill", "Fallback skill.";
        "fallback_when_all_agents_are_away": boolean = k.fallback_when_all_agents_are_away.0 => "skills.fallbackWhenAllAgentsAreAway", "Fall back when every agent is away.";
        "agent_survey_for_msg_timeout_in_minutes": int64 = k.agent_survey_for_msg_timeout_in_minutes.0 => "skills.agentSurveyForMsgTimeoutInMinutes", "Agent survey timeout for messaging.";
        "agent_survey_for_msg_id": int64 = k.agent_survey_for_msg_id.0 => "skills.agentSurveyForMsgId", "Agent survey for messaging.";
        "date_updated": utf8 = s(&k.date_updated) => "skills.dateUpdated", "Last update, as LivePerson sends it (yyyy-MM-dd HH:mm:ss, time zone unspecified).";
    }
}

table! {
    SKILL_ROUTING, fn fill_skill_routing(w, k: &Skill, r: &SkillRouting, ordinal: i64),
    name: "skill_routing",
    entity: Dimensions("skills", "skill_id"),
    grain: ["skill_id", "ordinal"],
    description: "One row per agent group a skill routes to (skills.skillRoutingConfiguration).",
    columns: {
        "skill_id": int64 [required] = k.id.0 => "skills.id", "Skill.";
        "ordinal": int64 [required] = Some(ordinal) => "derived", "Position in skillRoutingConfiguration (0-based).";
        "agent_group_id": int64 = r.agent_group_id.0 => "skills.skillRoutingConfiguration.agentGroupId", "Agent group (agent_groups.agent_group_id).";
        "priority": int64 = r.priority.0 => "skills.skillRoutingConfiguration.priority", "Routing priority.";
        "split_percentage": float64 = r.split_percentage.0 => "skills.skillRoutingConfiguration.splitPercentage", "Share of conversations routed to the group, in percent.";
    }
}

table! {
    AGENT_GROUPS, fn fill_agent_group(w, g: &AgentGroup),
    name: "agent_groups",
    entity: Dimensions("agent_groups", "agent_group_id"),
    grain: ["agent_group_id"],
    description: "One row per agent group of the account, deleted ones included (Agent Groups API).",
    columns: {
        "agent_group_id": int64 [required] = g.id.0 => "agentGroups.id", "Agent group id; joins conversations.latest_agent_group_id and agents.member_of_agent_group_id. Primary key.";
        "agent_group_name": utf8 = s(&g.name) => "agentGroups.name", "Name.";
        "description": utf8 = s(&g.description) => "agentGroups.description", "Description.";
        "parent_group_id": int64 = g.parent_group_id.0 => "agentGroups.parentGroupId", "Parent group; NULL for the root group.";
        "is_enabled": boolean = g.is_enabled.0 => "agentGroups.isEnabled", "The group is enabled.";
        "deleted": boolean = g.deleted.0 => "agentGroups.deleted", "The group has been deleted.";
        "date_updated": utf8 = s(&g.date_updated) => "agentGroups.dateUpdated", "Last update, as LivePerson sends it (yyyy-MM-dd HH:mm:ss, time zone unspecified).";
    }
}

/// Every dimension table, in the order they appear in drops and manifests.
pub static DIMENSION_TABLES: [&TableDef; 5] = [
    &AGENTS,
    &AGENT_SKILLS,
    &SKILLS,
    &SKILL_ROUTING,
    &AGENT_GROUPS,
];

/// Row buffers for every dimension table; users, skills and agent groups go in.
pub struct DimensionTables {
    buffers: Vec<TableBuffer>,
}

impl Default for DimensionTables {
    fn default() -> Self {
        Self::new()
    }
}

impl DimensionTables {
    pub fn new() -> Self {
        DimensionTables {
            buffers: DIMENSION_TABLES
                .iter()
                .map(|d| TableBuffer::new(d))
                .collect(),
        }
    }

    fn at(&mut self, def: &'static TableDef) -> &mut TableBuffer {
        buffer_of(&DIMENSION_TABLES, &mut self.buffers, def)
    }

    /// One user: a row of `agents` and one of `agent_skills` per skill.
    pub fn append_user(&mut self, u: &User) {
        fill_agent(&mut self.at(&AGENTS).row(), u);
        let b = self.at(&AGENT_SKILLS);
        for (i, k) in u.skill_ids.iter().enumerate() {
            fill_agent_skill(&mut b.row(), u, k, i as i64);
        }
    }

    /// One skill: a row of `skills` and one of `skill_routing` per routed group.
    pub fn append_skill(&mut self, k: &Skill) {
        fill_skill(&mut self.at(&SKILLS).row(), k);
        let b = self.at(&SKILL_ROUTING);
        for (i, r) in k.skill_routing_configuration.iter().enumerate() {
            fill_skill_routing(&mut b.row(), k, r, i as i64);
        }
    }

    /// One agent group: a row of `agent_groups`.
    pub fn append_agent_group(&mut self, g: &AgentGroup) {
        fill_agent_group(&mut self.at(&AGENT_GROUPS).row(), g);
    }

    pub fn buffers(&self) -> &[TableBuffer] {
        &self.buffers
    }

    pub fn buffers_mut(&mut self) -> &mut [TableBuffer] {
        &mut self.buffers
    }
}

//! Account configuration lists (§5): users, skills and agent groups, built from the catalog
//! that the conversations use, so that every agent, skill and group id of a record resolves.
//!
//! Shapes follow the vendor's entity examples, quirks included: user and group ids, `deleted`,
//! `isEnabled` and `maxChats` as strings, skill ids as numbers; `fullName` empty ("returned
//! empty for privacy"). Deleted entities (an agent, a skill and a group) appear only with
//! `include_deleted=true`.

use serde_json::{Map, Value, json};

use crate::catalog::{AGENTS, GROUPS, SKILLS, UserType};

/// The account-global revision (`ac-revision`); `If-Match` with it answers 304.
pub const ACCOUNT_REVISION: &str = "1742";

/// A skill that was deleted: no conversation of the data set uses it any more.
const DELETED_SKILL: (i64, &str) = (1_100_000_007, "Lounge access");
/// A group that was closed.
const DELETED_GROUP: (i64, &str) = (5_500_000_005, "Gatwick Hub");

const DATE_UPDATED: &str = "2024-02-19 08:30:12";

/// The entity lists the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Users,
    Skills,
    AgentGroups,
}

impl Entity {
    pub(crate) fn parse(path: &str) -> Option<Entity> {
        match path {
            "users" => Some(Entity::Users),
            "skills" => Some(Entity::Skills),
            "agentGroups" => Some(Entity::AgentGroups),
            _ => None,
        }
    }
}

pub(crate) fn list(entity: Entity, include_deleted: bool) -> Vec<Value> {
    let all = match entity {
        Entity::Users => users(),
        Entity::Skills => skills(),
        Entity::AgentGroups => groups(),
    };
    all.into_iter()
        .filter(|v| include_deleted || !is_deleted(v))
        .collect()
}

fn is_deleted(v: &Value) -> bool {
    match &v["deleted"] {
        Value::Bool(b) => *b,
        Value::String(s) => s == "true",
        _ => false,
    }
}

/// Keeps only the `select`ed top-level fields (a simple form of LivePerson's YOGA selection).
pub(crate) fn select(items: Vec<Value>, fields: &[&str]) -> Vec<Value> {
    items
        .into_iter()
        .map(|v| match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .collect::<Map<String, Value>>(),
            ),
            other => other,
        })
        .collect()
}

fn users() -> Vec<Value> {
    AGENTS
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let bot = a.user_type == UserType::Bot;
            let group = GROUPS[a.group].id;
            let skill_ids: Vec<i64> = a.skills.iter().map(|&k| SKILLS[k].id).collect();
            let mut u = json!({
                "id": a.id,
                "pid": a.pid(),
                "deleted": if a.deleted { "true" } else { "false" },
                "loginName": a.login,
                "fullName": "",
                "nickname": a.nickname,
                "isEnabled": if a.deleted { "false" } else { "true" },
                "maxChats": if bot { "0" } else { "4" },
                "email": format!("{}@thriveair.example", a.login),
                "disabledManually": a.deleted,
                "skillIds": skill_ids,
                "profileIds": [if bot { 3_300_000_902i64 } else { 3_300_000_901 }],
                "lobIds": [3_300_000_061i64],
                "changePwdNextLogin": false,
                "memberOf": {"agentGroupId": group.to_string(), "assignmentDate": "2023-06-22 19:20:03"},
                "permissionGroups": [if bot { "4" } else { "1" }],
                "description": if bot { "Virtual agent" } else { "" },
                "mobileNumber": "",
                "employeeId": "",
                "maxAsyncChats": if bot { "100" } else { "10" },
                "backgndImgUri": "",
                "pnCertName": "",
                "dateUpdated": DATE_UPDATED,
                "lastPwdChangeDate": "2023-12-01 10:00:00",
                "isApiUser": bot,
                "userTypeId": if bot { 2 } else { 1 },
            });
            // The first human of each hub manages it.
            if !bot
                && AGENTS[..i]
                    .iter()
                    .all(|b| b.group != a.group || b.user_type == UserType::Bot)
                && group > 0
            {
                u["managerOf"] =
                    json!([{"agentGroupId": group.to_string(), "assignmentDate": "2023-06-22 19:20:03"}]);
            }
            if bot {
                u["allowedAppKeys"] = "3b5d0a7e2f8c4e51".into();
                // Bots carry an avatar; people's pictures are not shared with the account list.
                u["pictureUrl"] = format!("https://cdn.thriveair.example/avatars/{}.png", a.login).into();
            }
            u
        })
        .collect()
}

fn skills() -> Vec<Value> {
    let mut out: Vec<Value> = SKILLS
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let routing: Vec<Value> = GROUPS
                .iter()
                .enumerate()
                .filter(|(g, _)| AGENTS.iter().any(|a| a.group == *g && a.skills.contains(&k)))
                .enumerate()
                .map(|(priority, (_, g))| {
                    json!({"agentGroupId": g.id, "priority": priority + 1, "splitPercentage": 0})
                })
                .collect();
            let others: Vec<i64> = SKILLS
                .iter()
                .filter(|o| o.id != s.id)
                .map(|o| o.id)
                .collect();
            json!({
                "id": s.id,
                "deleted": false,
                "name": s.name,
                "description": format!("{} enquiries", s.name),
                "skillOrder": k,
                "maxWaitTime": 120,
                "defaultPostChatSurveyId": "4400000001",
                "defaultOfflineSurveyId": "",
                "defaultAgentSurveyId": "5500000101",
                "dateUpdated": DATE_UPDATED,
                "skillRoutingConfiguration": routing,
                "wrapUpTime": 30,
                "slaDefaultResponseTime": s.response_ms / 1000,
                "slaUrgentResponseTime": s.response_ms / 2000,
                "slaFirstTimeResponseTime": s.response_ms / 1000,
                "lobIds": [3_300_000_061i64],
                "canTransfer": true,
                "skillTransferList": others,
                "workingHoursId": 2_859_745_012i64,
                "specialOccasionId": 2_861_462_812i64,
                "autoCloseInSeconds": 3600,
                "transferToAgentMaxWaitInSeconds": 120,
                "fallbackSkill": SKILLS[0].id,
                "fallbackWhenAllAgentsAreAway": k != 0,
                "agentSurveyForMsgTimeoutInMinutes": 10,
                "agentSurveyForMsgId": 5_500_000_101i64,
                "postConversationSurveyAppInstallAssociationId": "8f7e6d5c-0000-4000-8000-00000000000a",
            })
        })
        .collect();
    out.push(json!({
        "id": DELETED_SKILL.0, "deleted": true, "name": DELETED_SKILL.1,
        "description": "Closed in 2023", "skillOrder": SKILLS.len(), "maxWaitTime": 120,
        "dateUpdated": "2023-03-01 12:00:00", "skillRoutingConfiguration": [],
        "canTransfer": false, "skillTransferList": [], "lobIds": [],
    }));
    out
}

fn groups() -> Vec<Value> {
    let mut out: Vec<Value> = GROUPS
        .iter()
        .map(|g| {
            let mut v = json!({
                "id": g.id.to_string(),
                "deleted": "false",
                "name": g.name,
                "description": format!("{} agents", g.name),
                "isEnabled": "true",
                "dateUpdated": DATE_UPDATED,
            });
            if g.id != -1 {
                // -1 is the root ("main") group; the others hang under it.
                v["parentGroupId"] = "-1".into();
            }
            v
        })
        .collect();
    out.push(json!({
        "id": DELETED_GROUP.0.to_string(), "deleted": "true", "name": DELETED_GROUP.1,
        "description": "Closed in 2023", "parentGroupId": "-1", "isEnabled": "false",
        "dateUpdated": "2023-03-01 12:00:00",
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_entities_only_on_request() {
        for entity in [Entity::Users, Entity::Skills, Entity::AgentGroups] {
            let all = list(entity, true);
            let live = list(entity, false);
            assert_eq!(all.len(), live.len() + 1, "{entity:?}");
            assert!(all.iter().any(is_deleted) && !live.iter().any(is_deleted));
        }
    }

    #[test]
    fn select_keeps_the_named_fields() {
        let v = select(list(Entity::Skills, false), &["id", "name"]);
        assert_eq!(v[0].as_object().unwrap().len(), 2);
        assert_eq!(v[0]["name"], "Bookings");
    }
}

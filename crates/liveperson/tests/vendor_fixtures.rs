//! The vendor's own example payloads decode without quarantining anything, quirks included.

use std::path::PathBuf;

use lpdrop_liveperson::page::{
    decode_agent_group, decode_chat_record, decode_record, decode_skill, decode_user,
    parse_chat_page, parse_page,
};
use lpdrop_liveperson::sde::SdePayload;
use serde_json::value::RawValue;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/liveperson-docs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn main_example_decodes_every_node() {
    let body = fixture("msghist-search-example.json");
    let page = parse_page(&body).unwrap();
    assert_eq!(page.metadata.count, Some(1));
    assert_eq!(page.records.len(), 1);
    let c = decode_record(page.records[0]).unwrap();
    assert_eq!(
        c.info.conversation_id.0.as_deref(),
        Some("e5c58e49-e4a5-40a8-8a18-d6580d1d5630")
    );
    assert_eq!(c.info.start_time_l.0, Some(1472481024565));
    // latestSkillId -1 means unassigned; csatRate stands in for csat.
    assert_eq!(c.info.latest_skill_id.0, None);
    assert_eq!(c.info.csat_rate.0, Some(5.0));
    assert!(c.message_records.len() >= 4);
    let rich = c
        .message_records
        .iter()
        .find(|m| m.content_type.0.as_deref() == Some("RICH_CONTENT"))
        .expect("a rich content message");
    let content = rich
        .message_data
        .rich_content
        .as_ref()
        .unwrap()
        .content
        .as_deref()
        .unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(content).is_ok());
    assert!(!c.agent_participants.is_empty());
    assert!(!c.consumer_participants.is_empty());
    // The vendor's "null" string for an unassigned agent becomes a real NULL.
    assert!(c.transfers.iter().any(|t| t.assigned_agent_id.0.is_none()));
    assert!(!c.message_scores.is_empty());
    assert!(!c.conversation_surveys.is_empty());
    assert!(c.sdes.raw.0.is_some());
    // The nodes split into tables are typed as well as kept as JSON.
    assert_eq!(c.co_browse_sessions.value.co_browse_sessions_list.len(), 2);
    assert_eq!(
        c.co_browse_sessions.value.co_browse_sessions_list[1].interactive(),
        Some(true)
    );
    assert_eq!(c.intents.value.len(), 2);
    let second = &c.intents.value[1];
    let selected = second.selected_classification.as_ref().unwrap();
    assert_eq!(selected.confidence_score.0, Some(0.908));
    assert_eq!(
        second
            .all_classifications
            .iter()
            .filter(|x| x.same_as(selected))
            .count(),
        1,
        "the selected classification is found once in the list"
    );
    assert!(c.latest_agent_survey.value.is_some());
    let previous = &c.previously_submitted_agent_surveys.value;
    assert_eq!(previous.len(), 4);
    assert_eq!(previous[0].submitted_answers.len(), 2);
    assert_eq!(previous[0].ac_survey_revision.0, Some(24));
    assert_eq!(c.sdes.value.events.len(), 2);
    let with_context = c
        .message_records
        .iter()
        .find(|m| m.context_data.raw.0.is_some())
        .expect("a message with contextData");
    let items = &with_context.context_data.value.structured_metadata;
    assert_eq!(items.len(), 2);
    let bot = items[0].value.bot_response.as_ref().unwrap();
    assert_eq!(bot.intents[0].confidence_score.0, Some(0.753));
    assert!(items[1].value.action_reason.is_some());
}

#[test]
fn sde_example_decodes_with_its_singular_key_typos() {
    let body = fixture("msghist-search-example-sdes.json");
    let page = parse_page(&body).unwrap();
    assert!(!page.records.is_empty());
    for raw in &page.records {
        let c = decode_record(raw).unwrap_or_else(|e| panic!("quarantined: {e}"));
        // `consumerParticipant` / `messageScore` (singular) still land in their lists.
        assert!(!c.consumer_participants.is_empty());
        assert!(c.un_auth_sdes.raw.0.is_some());
        // One event of every documented SDE type, each read into its typed payload.
        let events = &c.un_auth_sdes.value.events;
        assert_eq!(events.len(), 10);
        for e in events.iter() {
            assert!(!matches!(e.payload, SdePayload::Unknown), "{}", e.raw);
            assert_eq!(e.is_authenticated, Some(false));
            assert!(
                e.server_time.is_some() && e.original_time.is_some(),
                "{}",
                e.raw
            );
        }
    }
}

#[test]
fn every_engagement_history_example_decodes() {
    for name in [
        "enghist-search-example.json",
        "enghist-search-example-richcontent.json",
        "enghist-search-example-paging-sdes.json",
    ] {
        let body = fixture(name);
        let page = parse_chat_page(&body).unwrap();
        assert!(!page.records.is_empty(), "{name}");
        for raw in &page.records {
            let chat = decode_chat_record(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(chat.info.engagement_id.0.is_some());
            assert!(
                !chat.transcript.as_ref().unwrap().lines.is_empty(),
                "{name}"
            );
            assert!(chat.visitor_info.is_some(), "{name}");
            assert!(chat.campaign.is_some(), "{name}");
        }
    }
    let body = fixture("enghist-search-example.json");
    let chat = decode_chat_record(parse_chat_page(&body).unwrap().records[0]).unwrap();
    let surveys = chat.surveys.as_ref().unwrap();
    assert_eq!(surveys.pre_chat.len(), 2);
    assert_eq!(surveys.post_chat[0].question_id.0.as_deref(), Some("9"));
    assert_eq!(surveys.pre_chat[0].answers_id[0].0, Some(-1));
    assert_eq!(chat.info.agent_nickname(), Some("liorr@liveperson.com"));
    assert_eq!(chat.info.skill_id.0, None, "-1 is no skill");

    let body = fixture("enghist-search-example-richcontent.json");
    let chat = decode_chat_record(parse_chat_page(&body).unwrap().records[0]).unwrap();
    let lines = &chat.transcript.as_ref().unwrap().lines;
    let rich = lines
        .iter()
        .find(|l| l.text_type.0.as_deref() == Some("rich-content"))
        .unwrap();
    assert!(rich.json.0.as_deref().unwrap().starts_with('{'));

    // Legacy SDE keys (viewProduct, formFillingError), no sdeType, flat personalInfo.
    let body = fixture("enghist-search-example-paging-sdes.json");
    let page = parse_chat_page(&body).unwrap();
    assert_eq!(page.metadata.count, Some(9870));
    let chat = decode_chat_record(page.records[0]).unwrap();
    assert_eq!(chat.info.agent_nickname(), Some("Greg"), "agentName");
    assert_eq!(chat.line_scores.len(), 3);
    let events = &chat.sdes.value.events;
    assert_eq!(events.len(), 9);
    for e in events.iter() {
        assert!(!matches!(e.payload, SdePayload::Unknown), "{}", e.raw);
        assert!(e.sde_type.is_some());
    }
    let Some(SdePayload::VisitorError(v)) = events.last().map(|e| &e.payload) else {
        panic!("visitor error last")
    };
    assert_eq!(v.message.0.as_deref(), Some("Expiration date missing"));
    let Some(SdePayload::PersonalInfo(p)) = events.get(4).map(|e| &e.payload) else {
        panic!("personal info fifth")
    };
    assert_eq!(p.surname.0.as_deref(), Some("leibovitz"));
}

#[test]
fn account_configuration_examples_decode() {
    let body = fixture("users-entity-example.json");
    let raw: &RawValue = serde_json::from_slice(&body).unwrap();
    let user = decode_user(raw).unwrap();
    assert_eq!(user.id.0.as_deref(), Some("987654321"));
    assert_eq!(user.deleted.0, Some(false), "\"false\" as a string");
    assert_eq!(user.max_async_chats.0, Some(10));
    assert_eq!(user.skill_ids.len(), 2);
    assert_eq!(user.member_of.as_ref().unwrap().agent_group_id.0, Some(1));
    assert_eq!(user.permission_groups[0].0, Some(1));

    let body = fixture("skills-entity-example.json");
    let raw: &RawValue = serde_json::from_slice(&body).unwrap();
    let skill = decode_skill(raw).unwrap();
    assert_eq!(skill.id.0, Some(326244912));
    assert_eq!(skill.skill_routing_configuration.len(), 2);
    assert_eq!(skill.skill_transfer_list.len(), 2);

    let body = fixture("agentgroups-entity-example.json");
    let raw: &RawValue = serde_json::from_slice(&body).unwrap();
    let group = decode_agent_group(raw).unwrap();
    assert_eq!(group.id.0, Some(1231234));
    assert_eq!(group.parent_group_id.0, Some(1));
    assert_eq!(group.is_enabled.0, Some(true));
}

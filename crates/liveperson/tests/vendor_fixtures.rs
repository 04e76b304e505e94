//! The vendor's own example payloads decode without quarantining anything, quirks included.

use std::path::PathBuf;

use lpdrop_liveperson::page::{decode_record, parse_page};

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
    assert!(c.sdes.0.is_some());
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
        assert!(c.un_auth_sdes.0.is_some());
    }
}

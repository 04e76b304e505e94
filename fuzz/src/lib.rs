//! The code every fuzz target runs: the pipeline's own path for one input, with the invariants
//! that must hold whatever the bytes are. Any panic here is a crash that libFuzzer reports.
//!
//! The path is the one `crates/cli/pipeline.rs` takes: parse the page through
//! `parse_repairing` (a page that does not parse is rejected whole; one that fails only for
//! invalid UTF-8 is parsed from its repaired text), decode each record on its own with
//! `decode_repaired` (a record that does not decode, or held invalid UTF-8, is quarantined
//! with its reason), split each kept record into table rows, and finish a batch of every table.

use std::cell::OnceCell;

use lpdrop_liveperson::page::{
    RepairedBody, decode_agent_group, decode_chat_record, decode_page_at_once, decode_record,
    decode_repaired, decode_skill, decode_user, parse_chat_page, parse_entity_list, parse_envelope,
    parse_page, parse_repairing,
};
use lpdrop_tables::{ChatTables, DimensionTables, Lineage, MessagingTables, TableBuffer};
use serde_json::value::RawValue;

/// What became of one input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The page (or list) itself could not be parsed.
    pub page_rejected: bool,
    pub kept: usize,
    pub quarantined: usize,
}

fn lineage() -> Lineage {
    Lineage {
        account_id: "fuzz".into(),
        drop_id: "fuzz".into(),
        extracted_at_ms: 0,
    }
}

/// Finishes a batch of every table (as the pipeline's final flush does) and returns the rows
/// of the first (root) table.
fn finish(buffers: &mut [TableBuffer]) -> usize {
    let lineage = lineage();
    let mut root_rows = None;
    for buffer in buffers {
        let rows = buffer.rows();
        let batch = buffer.finish_batch(&lineage);
        assert_eq!(batch.num_rows(), rows, "table {}", buffer.def().name);
        assert_eq!(buffer.rows(), 0, "finish_batch empties the buffer");
        root_rows.get_or_insert(rows);
    }
    root_rows.unwrap_or(0)
}

fn check_reason(reason: &str) {
    assert!(!reason.trim().is_empty(), "a quarantine reason is empty");
}

/// A Messaging Interactions search page: `parse_page` and `decode_record` (through the repair
/// path) on every record, the kept conversations into `MessagingTables`, then a batch of every
/// table.
pub fn messaging_page(data: &[u8]) -> Outcome {
    let envelope = parse_envelope(data);
    let repaired = OnceCell::new();
    let page = match parse_repairing(data, &repaired, parse_page) {
        Ok(page) => page,
        Err(reason) => {
            check_reason(&reason);
            assert!(
                decode_page_at_once(data).is_none(),
                "one pass read a page the other refused"
            );
            return Outcome {
                page_rejected: true,
                ..Outcome::default()
            };
        }
    };
    // The client checks pages with the envelope parser (and retries those it refuses): it
    // must accept every page the pipeline can read, and count the same records.
    let envelope = envelope.unwrap_or_else(|e| panic!("page parses but its envelope not: {e}"));
    assert_eq!(envelope.record_count(), page.records.len());
    let outcome = messaging_records(&page.records, &repaired);
    // The one-pass decode, where it answers, answers exactly what the record-by-record path
    // gives: every record kept, the same conversations.
    if let Some(at_once) = decode_page_at_once(data) {
        assert_eq!(
            outcome.quarantined, 0,
            "one pass kept a record the other refused"
        );
        assert_eq!(at_once.len(), page.records.len());
        for (fast, raw) in at_once.iter().zip(&page.records) {
            let slow = decode_record(raw).expect("kept by the record-by-record path");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
        }
    }
    outcome
}

/// Decodes and appends records as the pipeline does; every record is kept or quarantined.
/// `repaired` is the page's cell from `parse_repairing` (empty when it needed no repair).
pub fn messaging_records(records: &[&RawValue], repaired: &OnceCell<RepairedBody>) -> Outcome {
    let mut tables = MessagingTables::new();
    let mut outcome = Outcome::default();
    for raw in records {
        match decode_repaired(raw, repaired, decode_record).map_err(|r| r.reason) {
            Ok(conversation) => {
                // The pipeline `expect`s both once a record is decoded.
                assert!(
                    conversation
                        .info
                        .conversation_id
                        .0
                        .as_deref()
                        .is_some_and(|id| !id.is_empty())
                );
                assert!(conversation.info.start_time_l.0.is_some());
                tables.append(&conversation);
                outcome.kept += 1;
            }
            Err(reason) => {
                check_reason(&reason);
                outcome.quarantined += 1;
            }
        }
    }
    assert_eq!(outcome.kept + outcome.quarantined, records.len());
    let conversations = finish(tables.buffers_mut());
    assert_eq!(
        conversations, outcome.kept,
        "one conversations row per kept record"
    );
    outcome
}

/// Arbitrary bytes as one Messaging Interactions record (bytes that are not one JSON value
/// are not a record: nothing to do).
pub fn messaging_record(data: &[u8]) -> Outcome {
    match serde_json::from_slice::<&RawValue>(data) {
        Ok(raw) => messaging_records(&[raw], &OnceCell::new()),
        Err(_) => Outcome {
            page_rejected: true,
            ..Outcome::default()
        },
    }
}

/// An Engagement History (chat) search page: `parse_chat_page` and `decode_chat_record` (through
/// the repair path) on every record, the kept chats into `ChatTables`, then a batch of every
/// table.
pub fn chat_page(data: &[u8]) -> Outcome {
    let repaired = OnceCell::new();
    let page = match parse_repairing(data, &repaired, parse_chat_page) {
        Ok(page) => page,
        Err(reason) => {
            check_reason(&reason);
            return Outcome {
                page_rejected: true,
                ..Outcome::default()
            };
        }
    };
    let mut tables = ChatTables::new();
    let mut outcome = Outcome::default();
    for raw in &page.records {
        match decode_repaired(raw, &repaired, decode_chat_record).map_err(|r| r.reason) {
            Ok(chat) => {
                assert!(
                    chat.info
                        .engagement_id
                        .0
                        .as_deref()
                        .is_some_and(|id| !id.is_empty())
                );
                assert!(chat.info.start_time_l.0.is_some());
                tables.append(&chat);
                outcome.kept += 1;
            }
            Err(reason) => {
                check_reason(&reason);
                outcome.quarantined += 1;
            }
        }
    }
    assert_eq!(outcome.kept + outcome.quarantined, page.records.len());
    let chats = finish(tables.buffers_mut());
    assert_eq!(chats, outcome.kept, "one chats row per kept record");
    outcome
}

/// An account configuration list, read as users, as skills and as agent groups in turn (the
/// caller knows which it asked for; the bytes do not say), into `DimensionTables`.
pub fn entity_list(data: &[u8]) -> Outcome {
    let repaired = OnceCell::new();
    let list = match parse_repairing(data, &repaired, parse_entity_list) {
        Ok(list) => list,
        Err(reason) => {
            check_reason(&reason);
            return Outcome {
                page_rejected: true,
                ..Outcome::default()
            };
        }
    };
    let mut tables = DimensionTables::new();
    let mut outcome = Outcome::default();
    for raw in &list {
        let results = [
            decode_repaired(raw, &repaired, decode_user).map(|u| tables.append_user(&u)),
            decode_repaired(raw, &repaired, decode_skill).map(|k| tables.append_skill(&k)),
            decode_repaired(raw, &repaired, decode_agent_group)
                .map(|g| tables.append_agent_group(&g)),
        ];
        for result in results {
            match result {
                Ok(()) => outcome.kept += 1,
                Err(refused) => {
                    check_reason(&refused.reason);
                    outcome.quarantined += 1;
                }
            }
        }
    }
    assert_eq!(outcome.kept + outcome.quarantined, 3 * list.len());
    finish(tables.buffers_mut());
    outcome
}

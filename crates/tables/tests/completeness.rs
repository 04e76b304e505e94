//! Every column of every table (messaging, chat, dimensions) is filled by the emulator's data set: a column that is NULL in every
//! row of a few thousand conversations is either a bug in the mapping (a misspelt key, a
//! node read from the wrong place) or a field the emulator does not produce yet.
//!
//! The emulator is the only data the end-to-end tests, the demo and the reader checks see, so
//! a gap here is a column nobody has ever seen filled.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::Array;
use lpdrop_emulator::{Dataset, EmulatorConfig};
use lpdrop_liveperson::page::{
    decode_agent_group, decode_chat_record, decode_record, decode_skill, decode_user,
};
use lpdrop_tables::{
    CHAT_TABLES, ChatTables, DIMENSION_TABLES, DimensionTables, Lineage, MESSAGING_TABLES,
    MessagingTables, TableBuffer, TableDef,
};
use serde_json::value::RawValue;

/// Conversations converted: enough for the rarer branches of the data set (co-browse,
/// agent surveys, every SDE type, skill changes, link and secure-form messages, a message's
/// device) to appear many times over.
const CONVERSATIONS: u64 = 3_000;

/// Columns that stay NULL because LivePerson's documented data never fills them, each with
/// the reason. Nothing else may be NULL in every row. Empty: every node the mapping reads is
/// in the emulator's data set, the undocumented ones (`skillChanges`, the link and secure-form
/// message content) under the keys and shapes the mapping assumes.
const ALWAYS_NULL: &[(&str, &str, &str)] = &[];

/// Tables the emulator gives no rows, with the reason; their columns are not checked.
const NO_ROWS: &[(&str, &str)] = &[];

fn lineage() -> Lineage {
    Lineage {
        account_id: "12345678".into(),
        drop_id: "completeness".into(),
        extracted_at_ms: 1_763_700_000_000,
    }
}

/// Which columns hold a value somewhere, and how many rows each table got.
#[derive(Default)]
struct Seen {
    filled: BTreeSet<(&'static str, &'static str)>,
    rows: BTreeMap<&'static str, usize>,
}

impl Seen {
    /// Finishes every buffer into a batch and notes its non-NULL columns.
    fn take(&mut self, buffers: &mut [TableBuffer]) {
        for buffer in buffers {
            let def = buffer.def();
            let batch = buffer.finish_batch(&lineage());
            *self.rows.entry(def.name).or_default() += batch.num_rows();
            for (column, array) in def.all_columns().zip(batch.columns()) {
                if array.null_count() < array.len() {
                    self.filled.insert((def.name, column.name));
                }
            }
        }
    }

    /// Fails listing every column NULL in every row, except the excused ones and the tables
    /// excused from having rows at all (which must then be empty).
    fn assert_complete(
        &self,
        defs: &[&'static TableDef],
        always_null: &[(&str, &str, &str)],
        no_rows: &[(&str, &str)],
        what: &str,
    ) {
        let excused: BTreeSet<(&str, &str)> =
            always_null.iter().map(|(t, c, _)| (*t, *c)).collect();
        let no_rows: BTreeSet<&str> = no_rows.iter().map(|(t, _)| *t).collect();
        let mut empty = Vec::new();
        for t in defs.iter().filter(|t| !no_rows.contains(t.name)) {
            for c in t.all_columns() {
                let key = (t.name, c.name);
                if !self.filled.contains(&key) && !excused.contains(&key) {
                    empty.push(format!("{}.{}", t.name, c.name));
                }
                assert!(
                    !(self.filled.contains(&key) && excused.contains(&key)),
                    "{}.{} is filled now: drop it from the excused columns",
                    t.name,
                    c.name
                );
            }
        }
        assert!(
            empty.is_empty(),
            "columns NULL in every row of {what}:\n  {}",
            empty.join("\n  ")
        );
        for t in defs {
            let n = self.rows.get(t.name).copied().unwrap_or(0);
            assert_eq!(
                n == 0,
                no_rows.contains(t.name),
                "{} has {n} rows: the excused tables must be exactly the empty ones",
                t.name
            );
        }
    }
}

/// Converts the given conversations through the same decoding as the sync pipeline (JSON
/// text, one record at a time) and notes what they fill.
fn messaging_seen(dataset: &Dataset, indices: std::ops::Range<u64>) -> Seen {
    let mut tables = MessagingTables::new();
    let mut seen = Seen::default();
    for i in indices {
        let text = serde_json::to_string(&dataset.conversation(i)).unwrap();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        let conversation =
            decode_record(raw).unwrap_or_else(|e| panic!("conversation {i} quarantined: {e}"));
        tables.append(&conversation);
        if i % 500 == 499 {
            seen.take(tables.buffers_mut());
        }
    }
    seen.take(tables.buffers_mut());
    seen
}

#[test]
fn emulator_data_fills_every_messaging_column() {
    let dataset = Dataset::new(&EmulatorConfig::default());
    let seen = messaging_seen(&dataset, 0..CONVERSATIONS);
    seen.assert_complete(
        &MESSAGING_TABLES,
        ALWAYS_NULL,
        NO_ROWS,
        &format!("{CONVERSATIONS} emulator conversations"),
    );
}

/// `lpdrop demo` syncs one UTC day of the default data set (seed 42, 2000 conversations a
/// day): whichever day that is, the drop has rows in every table and a value in every column.
/// A few days spread over the data set stand for "whichever day".
#[test]
fn a_demo_day_fills_every_messaging_column() {
    const DAY_MS: i64 = 86_400_000;
    let config = EmulatorConfig::default();
    let dataset = Dataset::new(&config);
    // 2020-01-01 is the data set's origin; 2025-11-21 is around when this test was written.
    for day_start in [1_577_836_800_000, 1_700_006_400_000, 1_763_683_200_000] {
        let day = dataset.index_range(day_start, day_start + DAY_MS - 1);
        assert_eq!(day.end - day.start, u64::from(config.per_day));
        let seen = messaging_seen(&dataset, day);
        seen.assert_complete(
            &MESSAGING_TABLES,
            ALWAYS_NULL,
            NO_ROWS,
            &format!("the demo day starting at {day_start}"),
        );
    }
}

/// Chats converted: the rarer branches (co-browse, exit surveys) appear a few dozen times.
const CHATS: u64 = 2_000;

/// Chat columns that stay NULL, with the reason.
const CHAT_ALWAYS_NULL: &[(&str, &str, &str)] = &[];

#[test]
fn emulator_data_fills_every_chat_column() {
    let dataset = Dataset::new(&EmulatorConfig::default());
    let mut tables = ChatTables::new();
    let mut seen = Seen::default();
    for i in 0..CHATS {
        let text = serde_json::to_string(&dataset.chat(i)).unwrap();
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        let chat = decode_chat_record(raw).unwrap_or_else(|e| panic!("chat {i} quarantined: {e}"));
        tables.append(&chat);
    }
    seen.take(tables.buffers_mut());
    seen.assert_complete(
        &CHAT_TABLES,
        CHAT_ALWAYS_NULL,
        &[],
        &format!("{CHATS} emulator chats"),
    );
}

/// Dimension columns that stay NULL, with the reason.
const DIMENSION_ALWAYS_NULL: &[(&str, &str, &str)] = &[];

#[test]
fn emulator_account_config_fills_every_dimension_column() {
    let mut tables = DimensionTables::new();
    for entity in ["users", "skills", "agentGroups"] {
        let list = lpdrop_emulator::account_config_list(entity).unwrap();
        let text = serde_json::to_string(&list).unwrap();
        for raw in lpdrop_liveperson::page::parse_entity_list(text.as_bytes()).unwrap() {
            match entity {
                "users" => tables.append_user(&decode_user(raw).unwrap()),
                "skills" => tables.append_skill(&decode_skill(raw).unwrap()),
                _ => tables.append_agent_group(&decode_agent_group(raw).unwrap()),
            }
        }
    }
    let mut seen = Seen::default();
    seen.take(tables.buffers_mut());
    seen.assert_complete(
        &DIMENSION_TABLES,
        DIMENSION_ALWAYS_NULL,
        &[],
        "the emulator's account configuration",
    );
}

//! The relational model against its rules (ARCHITECTURE §4) and the vendor's example payloads.

use std::collections::HashSet;
use std::path::PathBuf;

use arrow::array::{Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::DataType;
use lpdrop_liveperson::page::{decode_record, parse_page};
use lpdrop_tables::{Lineage, MessagingTables, all_tables};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Words Athena's DDL or common SQL dialects reserve; columns must not need quoting.
const RESERVED: &[&str] = &[
    "time",
    "end",
    "start",
    "by",
    "user",
    "order",
    "group",
    "date",
    "timestamp",
    "table",
    "from",
    "to",
    "select",
    "where",
    "partition",
    "values",
    "range",
    "rows",
    "row",
];

#[test]
fn column_names_are_snake_case_unique_and_unreserved() {
    for t in all_tables() {
        assert!(
            t.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{}",
            t.name
        );
        let mut seen = HashSet::new();
        for c in t.all_columns() {
            assert!(
                c.name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{}.{} is not snake_case",
                t.name,
                c.name
            );
            assert!(
                seen.insert(c.name.to_ascii_lowercase()),
                "{}.{} twice",
                t.name,
                c.name
            );
            assert!(
                !RESERVED.contains(&c.name),
                "{}.{} is a reserved word",
                t.name,
                c.name
            );
        }
        for g in t.grain {
            assert!(
                seen.contains(*g),
                "{} grain names unknown column {g}",
                t.name
            );
        }
        if t.name != "conversations" {
            assert_eq!(t.columns[0].name, "conversation_id", "{} child key", t.name);
        }
    }
}

#[test]
fn arrow_types_are_the_safe_subset() {
    for t in all_tables() {
        for f in t.arrow_schema().fields() {
            let ok = match f.data_type() {
                DataType::Utf8 | DataType::Int64 | DataType::Float64 | DataType::Boolean => true,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some(tz)) => {
                    tz.as_ref() == "UTC"
                }
                _ => false,
            };
            assert!(ok, "{}.{} has type {}", t.name, f.name(), f.data_type());
        }
    }
}

fn lineage() -> Lineage {
    Lineage {
        account_id: "12345678".into(),
        drop_id: "drop-1".into(),
        extracted_at_ms: 1_763_700_000_000,
    }
}

#[test]
fn vendor_example_fills_every_table_it_has_data_for() {
    let body =
        std::fs::read(repo().join("tests/fixtures/liveperson-docs/msghist-search-example.json"))
            .unwrap();
    let page = parse_page(&body).unwrap();
    let conversation = decode_record(page.records[0]).unwrap();
    let mut tables = MessagingTables::new();
    tables.append(&conversation);
    let expected_rows = [
        ("conversations", 1),
        ("messages", conversation.message_records.len()),
        (
            "agent_participants",
            conversation.agent_participants.len()
                + conversation.agent_participants_active.len()
                + conversation.agent_participants_leave.len(),
        ),
        (
            "consumer_participants",
            conversation.consumer_participants.len(),
        ),
        ("transfers", conversation.transfers.len()),
        ("message_scores", conversation.message_scores.len()),
        (
            "conversation_surveys",
            conversation.conversation_surveys.len(),
        ),
    ];
    for buffer in tables.buffers_mut() {
        let name = buffer.def().name;
        let batch = buffer.finish_batch(&lineage());
        assert_eq!(batch.schema(), buffer.def().arrow_schema(), "{name}");
        if let Some((_, n)) = expected_rows.iter().find(|(t, _)| *t == name) {
            assert_eq!(batch.num_rows(), *n, "{name}");
            assert!(*n > 0, "the vendor example has {name}");
        }
        if batch.num_rows() > 0 {
            let ids = batch.column_by_name("conversation_id").unwrap();
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            assert!(
                ids.iter()
                    .all(|v| v == Some("e5c58e49-e4a5-40a8-8a18-d6580d1d5630")),
                "{name}"
            );
            let drop = batch.column_by_name("drop_id").unwrap();
            assert_eq!(drop.null_count(), 0);
        }
        if name == "conversations" {
            let start = batch.column_by_name("start_time").unwrap();
            let start = start
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap();
            assert_eq!(start.value(0), 1472481024565);
            // Placeholders become NULL: device is "undefined" in the example.
            assert!(batch.column_by_name("device").unwrap().is_null(0));
        }
        if name == "messages" {
            let rich = batch.column_by_name("rich_content_text").unwrap();
            assert!(
                rich.len() - rich.null_count() >= 1,
                "rich content text extracted"
            );
        }
    }
}

/// `schemas/*.json` are generated from the code; regenerate with LPDROP_UPDATE_SCHEMAS=1.
#[test]
fn schema_files_match_the_code() {
    let dir = repo().join("schemas");
    let update = std::env::var_os("LPDROP_UPDATE_SCHEMAS").is_some();
    let mut expected_files = HashSet::new();
    for t in all_tables() {
        let file = dir.join(format!("{}.json", t.name));
        expected_files.insert(file.file_name().unwrap().to_owned());
        let generated = serde_json::to_string_pretty(&t.to_json()).unwrap() + "\n";
        if update {
            std::fs::write(&file, &generated).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run LPDROP_UPDATE_SCHEMAS=1 cargo test -p lpdrop-tables",
                file.display()
            )
        });
        assert_eq!(
            on_disk,
            generated,
            "{} differs from the code: adding nullable columns is fine \
            (regenerate), renaming or retyping needs a new SCHEMA_VERSION",
            file.display()
        );
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name();
        let is_table_file = name.to_string_lossy().ends_with(".json");
        assert!(
            !is_table_file || expected_files.contains(&name),
            "stale schema file {name:?}"
        );
    }
}

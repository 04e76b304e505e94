//! The relational model against its rules (ARCHITECTURE §4) and the vendor's example payloads.

use std::collections::HashSet;
use std::path::PathBuf;

use arrow::array::{Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::DataType;
use lpdrop_liveperson::page::{
    decode_agent_group, decode_chat_record, decode_record, decode_skill, decode_user,
    parse_chat_page, parse_page,
};
use lpdrop_tables::schema::data_dictionary;
use lpdrop_tables::{
    CHAT_TABLES, ChatTables, DIMENSION_TABLES, DimensionTables, Lineage, MESSAGING_TABLES,
    MessagingTables, Source, WEBHOOK_TABLES, all_tables, tables_of,
};
use serde_json::value::RawValue;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Words Athena (Hive DDL and Trino DML), Spark (ANSI mode) or DuckDB reserve, and a few other
/// common ones; no table or column may need quoting in any of them.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "boolean",
    "both",
    "by",
    "cache",
    "case",
    "cast",
    "char",
    "check",
    "collate",
    "column",
    "commit",
    "conf",
    "constraint",
    "create",
    "cross",
    "cube",
    "current",
    "current_catalog",
    "current_date",
    "current_path",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "cursor",
    "database",
    "date",
    "dayofweek",
    "deallocate",
    "decimal",
    "default",
    "deferrable",
    "delete",
    "desc",
    "describe",
    "distinct",
    "div",
    "do",
    "double",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "exchange",
    "execute",
    "exists",
    "extended",
    "external",
    "extract",
    "false",
    "fetch",
    "filter",
    "first",
    "float",
    "floor",
    "following",
    "for",
    "foreign",
    "from",
    "full",
    "function",
    "grant",
    "group",
    "grouping",
    "having",
    "if",
    "import",
    "in",
    "initially",
    "inner",
    "insert",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "join",
    "json_array",
    "json_exists",
    "json_object",
    "json_query",
    "json_table",
    "json_value",
    "lambda",
    "last",
    "lateral",
    "leading",
    "left",
    "less",
    "like",
    "limit",
    "listagg",
    "local",
    "localtime",
    "localtimestamp",
    "macro",
    "map",
    "minus",
    "more",
    "natural",
    "none",
    "normalize",
    "not",
    "null",
    "numeric",
    "of",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "over",
    "overlaps",
    "partialscan",
    "partition",
    "percent",
    "pivot",
    "pivot_longer",
    "pivot_wider",
    "placing",
    "preceding",
    "precision",
    "prepare",
    "preserve",
    "primary",
    "procedure",
    "qualify",
    "range",
    "reads",
    "recursive",
    "reduce",
    "references",
    "regexp",
    "returning",
    "revoke",
    "right",
    "rlike",
    "rollback",
    "rollup",
    "row",
    "rows",
    "select",
    "session_user",
    "set",
    "show",
    "skip",
    "smallint",
    "some",
    "start",
    "summarize",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "transform",
    "trigger",
    "trim",
    "true",
    "truncate",
    "uescape",
    "unbounded",
    "union",
    "unique",
    "uniquejoin",
    "unknown",
    "unnest",
    "unpivot",
    "update",
    "user",
    "using",
    "utc_timestamp",
    "values",
    "varchar",
    "variadic",
    "views",
    "when",
    "where",
    "window",
    "with",
];

#[test]
fn column_names_are_snake_case_unique_and_unreserved() {
    for t in all_tables() {
        assert!(
            t.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{}",
            t.name
        );
        assert!(
            !RESERVED.contains(&t.name),
            "table {} is a reserved word",
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
            assert!(
                c.name != "drop_name",
                "{}: drop_name is the Athena partition column",
                t.name
            );
        }
        for g in t.grain {
            assert!(
                seen.contains(*g),
                "{} grain names unknown column {g}",
                t.name
            );
            let column = t.columns.iter().find(|c| c.name == *g).unwrap();
            assert!(
                !column.nullable,
                "{}.{g} is in the grain, so required",
                t.name
            );
        }
    }
}

/// Every row carries its entity's key first: `conversation_id` for messaging tables,
/// `engagement_id` for chat tables, the dimension's own id for dimension tables. Child rows
/// add an ordinal (their position in the list they come from) to the grain.
#[test]
fn rows_are_keyed_by_their_entity_and_an_ordinal() {
    let mut names = HashSet::new();
    for t in all_tables() {
        assert!(names.insert(t.name), "table {} twice", t.name);
        let expected_key = match t.source {
            Source::Messaging => "conversation_id",
            Source::Chat => "engagement_id",
            Source::Dimensions => t.entity_key,
            // Event tables: each row is its own entity (checked below).
            Source::Webhooks => t.entity_key,
        };
        assert_eq!(t.entity_key, expected_key, "{}", t.name);
        assert_eq!(t.columns[0].name, t.entity_key, "{} key first", t.name);
        assert!(!t.columns[0].nullable, "{} key is required", t.name);
        assert_eq!(
            t.grain[0], t.entity_key,
            "{} grain starts with the key",
            t.name
        );
        let root = all_tables().iter().find(|r| r.name == t.root).unwrap();
        assert_eq!(
            root.root, root.name,
            "{}: root {} is a root",
            t.name, root.name
        );
        assert_eq!(root.source, t.source, "{}", t.name);
        assert_eq!(
            root.columns[0].ty, t.columns[0].ty,
            "{}: key type as in {}",
            t.name, root.name
        );
        if t.source == Source::Webhooks {
            // Events, not snapshots: every table is its own root, its grain the event's
            // identity, and no drop supersedes another (no latest view).
            assert_eq!(t.root, t.name, "{}", t.name);
            assert!(!t.has_latest_view(), "{}", t.name);
        } else if t.name == t.root {
            assert_eq!(t.grain, &[t.entity_key], "{}: one row per entity", t.name);
        } else {
            assert!(
                t.grain
                    .iter()
                    .any(|g| *g == "ordinal" || g.ends_with("_ordinal")),
                "{}: child grain has an ordinal",
                t.name
            );
        }
    }
    // The lists per source partition all_tables(), in order.
    let concatenated: Vec<&str> = MESSAGING_TABLES
        .iter()
        .chain(CHAT_TABLES.iter())
        .chain(DIMENSION_TABLES.iter())
        .chain(WEBHOOK_TABLES.iter())
        .map(|t| t.name)
        .collect();
    let all: Vec<&str> = all_tables().iter().map(|t| t.name).collect();
    assert_eq!(all, concatenated);
    for source in Source::ALL {
        assert!(tables_of(source).iter().all(|t| t.source == source));
    }
    // Tables of the first version keep their place: drops and manifests list them first.
    let first: Vec<&str> = MESSAGING_TABLES[..11].iter().map(|t| t.name).collect();
    assert_eq!(
        first,
        [
            "conversations",
            "messages",
            "agent_participants",
            "consumer_participants",
            "transfers",
            "interactions",
            "dialogs",
            "message_scores",
            "message_statuses",
            "conversation_surveys",
            "conversation_survey_answers"
        ]
    );
}

/// Descriptions become Glue/Athena comments: at most 255 characters per column, 2048 per table.
#[test]
fn descriptions_fit_glue_comments() {
    for t in all_tables() {
        assert!(t.description.chars().count() <= 2048, "{}", t.name);
        for c in t.all_columns() {
            assert!(
                c.description.chars().count() <= 255,
                "{}.{}: {} characters",
                t.name,
                c.name,
                c.description.chars().count()
            );
            assert!(!c.description.is_empty(), "{}.{}", t.name, c.name);
        }
    }
}

/// JSON text goes in `*_json` string columns, and a column named `*_json` holds JSON.
#[test]
fn json_columns_are_strings_named_json() {
    for t in all_tables() {
        for c in t.columns {
            if c.name.ends_with("_json") {
                assert_eq!(
                    c.ty,
                    lpdrop_tables::ColumnType::Utf8,
                    "{}.{}",
                    t.name,
                    c.name
                );
            }
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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/liveperson-docs").join(name)).unwrap()
}

/// Rows per table name after finishing every buffer, checking schemas and lineage.
fn finish_all(
    buffers: &mut [lpdrop_tables::TableBuffer],
) -> Vec<(&'static str, arrow::record_batch::RecordBatch)> {
    buffers
        .iter_mut()
        .map(|b| {
            let batch = b.finish_batch(&lineage());
            assert_eq!(batch.schema(), b.def().arrow_schema(), "{}", b.def().name);
            assert_eq!(batch.column_by_name("drop_id").unwrap().null_count(), 0);
            (b.def().name, batch)
        })
        .collect()
}

fn rows(batches: &[(&'static str, arrow::record_batch::RecordBatch)], name: &str) -> usize {
    batches
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
        .num_rows()
}

#[test]
fn vendor_examples_fill_the_new_messaging_tables() {
    let mut tables = MessagingTables::new();
    for name in [
        "msghist-search-example.json",
        "msghist-search-example-sdes.json",
    ] {
        let body = fixture(name);
        for raw in parse_page(&body).unwrap().records {
            tables.append(&decode_record(raw).unwrap());
        }
    }
    let batches = finish_all(tables.buffers_mut());
    for (name, n) in [
        ("cobrowse_sessions", 4),
        ("intents", 2),
        ("intent_classifications", 5),
        ("agent_surveys", 5),
        ("agent_survey_answers", 3 * 2),
        ("message_context_metadata", 2 + 2),
        // Two authenticated events in each example, ten unauthenticated ones in the second.
        ("sde_events", 14),
        ("sde_customer_info", 3),
        ("sde_personal_info", 3),
        ("sde_personal_contacts", 3),
        ("sde_cart_status", 1),
        ("sde_purchase", 1),
        ("sde_cart_products", 1),
        ("sde_viewed_products", 1),
        ("sde_marketing_campaign", 1),
        ("sde_lead", 1),
        ("sde_service_activity", 1),
        ("sde_visitor_error", 1),
        ("sde_search_keywords", 1),
    ] {
        assert_eq!(rows(&batches, name), n, "{name}");
    }
}

#[test]
fn vendor_chat_examples_fill_every_chat_table() {
    let mut tables = ChatTables::new();
    let mut lines = 0;
    for name in [
        "enghist-search-example.json",
        "enghist-search-example-richcontent.json",
        "enghist-search-example-paging-sdes.json",
    ] {
        let body = fixture(name);
        for raw in parse_chat_page(&body).unwrap().records {
            let chat = decode_chat_record(raw).unwrap();
            lines += chat.transcript.as_ref().unwrap().lines.len();
            tables.append(&chat);
        }
    }
    let batches = finish_all(tables.buffers_mut());
    for (name, n) in [
        ("chats", 3),
        ("chat_lines", lines),
        ("chat_line_scores", 3),
        ("chat_surveys", 4),
        ("chat_survey_answers", 4),
        ("chat_cobrowse_sessions", 6),
        ("chat_sde_events", 2 + 2 + 9),
    ] {
        assert_eq!(rows(&batches, name), n, "{name}");
    }
    let (_, chat_lines) = batches.iter().find(|(n, _)| *n == "chat_lines").unwrap();
    let rich = chat_lines.column_by_name("rich_content_text").unwrap();
    assert_eq!(rich.len() - rich.null_count(), 1, "one rich-content line");
    let (_, chats) = batches.iter().find(|(n, _)| *n == "chats").unwrap();
    let nick = chats.column_by_name("agent_nickname").unwrap();
    assert_eq!(
        nick.null_count(),
        0,
        "agentNickName or agentName in every example"
    );
}

#[test]
fn vendor_entity_examples_fill_every_dimension_table() {
    let mut tables = DimensionTables::new();
    let raw = |name: &str| -> Box<RawValue> { serde_json::from_slice(&fixture(name)).unwrap() };
    tables.append_user(&decode_user(&raw("users-entity-example.json")).unwrap());
    tables.append_skill(&decode_skill(&raw("skills-entity-example.json")).unwrap());
    tables
        .append_agent_group(&decode_agent_group(&raw("agentgroups-entity-example.json")).unwrap());
    let batches = finish_all(tables.buffers_mut());
    for (name, n) in [
        ("agents", 1),
        ("agent_skills", 2),
        ("skills", 1),
        ("skill_routing", 2),
        ("agent_groups", 1),
    ] {
        assert_eq!(rows(&batches, name), n, "{name}");
    }
    let (_, agents) = batches.iter().find(|(n, _)| *n == "agents").unwrap();
    assert!(
        agents
            .schema()
            .fields()
            .iter()
            .all(|f| !f.name().contains("pass")),
        "write-only password fields never reach a table"
    );
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

/// `schemas/DATA-DICTIONARY.md` is generated from the code like the JSON files (and is what
/// `lpdrop schema --format markdown` prints); regenerate with LPDROP_UPDATE_SCHEMAS=1.
#[test]
fn data_dictionary_matches_the_code() {
    let file = repo().join("schemas/DATA-DICTIONARY.md");
    let generated = data_dictionary(all_tables());
    if std::env::var_os("LPDROP_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&file, &generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run LPDROP_UPDATE_SCHEMAS=1 cargo test -p lpdrop-tables",
            file.display()
        )
    });
    assert!(
        on_disk == generated,
        "{} differs from the code; run LPDROP_UPDATE_SCHEMAS=1 cargo test -p lpdrop-tables",
        file.display()
    );
    for t in all_tables() {
        assert!(
            generated.contains(&format!("\n### {}\n", t.name)),
            "{}",
            t.name
        );
    }
}

/// `skillChanges` has no documented shape: each element lands whole in `skill_changes`. A
/// placeholder string where an object node belongs splits into nothing and keeps its text.
#[test]
fn skill_changes_are_kept_whole_and_placeholder_nodes_split_into_nothing() {
    let record = r#"{"info":{"conversationId":"c1","startTimeL":1700000000000},
        "skillChanges":[{"previousSkillId":-1,"currentSkillId":"1100000001","reason":"TRANSFER"},
                        {"currentSkillId":1100000002}],
        "latestAgentSurvey":"undefined",
        "previouslySubmittedAgentSurveys":null,
        "intents":[]}"#;
    let body = format!(r#"{{"conversationHistoryRecords":[{record}]}}"#);
    let page = parse_page(body.as_bytes()).unwrap();
    let conversation = decode_record(page.records[0]).unwrap();
    let mut tables = MessagingTables::new();
    tables.append(&conversation);
    let batches = finish_all(tables.buffers_mut());
    assert_eq!(rows(&batches, "skill_changes"), 2);
    assert_eq!(rows(&batches, "agent_surveys"), 0);
    assert_eq!(rows(&batches, "intents"), 0);
    let (_, changes) = batches.iter().find(|(n, _)| *n == "skill_changes").unwrap();
    let json = changes.column_by_name("skill_change_json").unwrap();
    let json = json.as_any().downcast_ref::<StringArray>().unwrap();
    let first: serde_json::Value = serde_json::from_str(json.value(0)).unwrap();
    assert_eq!(first["reason"], "TRANSFER");
    let (_, conversations) = batches.iter().find(|(n, _)| *n == "conversations").unwrap();
    let survey = conversations
        .column_by_name("latest_agent_survey_json")
        .unwrap();
    let survey = survey.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(
        survey.value(0),
        "\"undefined\"",
        "the JSON column keeps what was sent"
    );
    let intents = conversations.column_by_name("intents_json").unwrap();
    let intents = intents.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(intents.value(0), "[]");
}

//! Table definitions: the contract with BI users.
//!
//! Each table's columns are declared once, in [`crate::messaging`], [`crate::sde`],
//! [`crate::chat`] or [`crate::dimensions`], together with the code that fills them; the Arrow
//! schemas, the files under `schemas/`, the data dictionary ([`data_dictionary`]) and the
//! Athena, Spark and DuckDB DDL all derive from these definitions, and tests fail when
//! `schemas/` and the code disagree.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Serialize;

/// Bumped when a column is renamed, retyped or removed (adding nullable columns is not a bump).
pub const SCHEMA_VERSION: u32 = 1;

/// The only column types lpdrop writes (ARCHITECTURE §4): no unsigned, nested or `Null` types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ColumnType {
    Utf8,
    Int64,
    Float64,
    Boolean,
    /// `Timestamp(Millisecond, "UTC")`: parquet INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true).
    TimestampMs,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::TimestampMs => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
            }
        }
    }

    /// The type name in schema files and the data dictionary.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "string",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Boolean => "boolean",
            ColumnType::TimestampMs => "timestamp_ms_utc",
        }
    }
}

/// One column: name, type, nullability, and where its value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    /// The API field path (or `lineage`, `derived`) the value comes from.
    pub source: &'static str,
    pub description: &'static str,
}

/// Which LivePerson API a table's rows come from (one type for flags, queue and tables).
pub use lpdrop_settings::Source;

/// One relational table.
#[derive(Debug, PartialEq, Eq)]
pub struct TableDef {
    pub name: &'static str,
    pub source: Source,
    /// The table holding one row per entity (`conversations`, `chats`, `agents`, `skills`,
    /// `agent_groups`); the table itself for those. An entity can appear in more than one
    /// drop (an open conversation, a re-synced dimension): its current rows, in every table,
    /// are those of the drop that holds the root row with the newest `extracted_at`.
    pub root: &'static str,
    /// The column that identifies the entity in every table of the root
    /// (`conversation_id`, `engagement_id`, `agent_id`, ...); always the first column.
    pub entity_key: &'static str,
    /// The columns that identify a row.
    pub grain: &'static [&'static str],
    pub description: &'static str,
    /// Data columns, in order; [`LINEAGE`] follows them in every file.
    pub columns: &'static [Column],
}

/// Columns every table ends with: where and when the row was extracted.
pub const LINEAGE: &[Column] = &[
    Column {
        name: "account_id",
        ty: ColumnType::Utf8,
        nullable: false,
        source: "lineage",
        description: "LivePerson account (site) id the row was extracted from.",
    },
    Column {
        name: "drop_id",
        ty: ColumnType::Utf8,
        nullable: false,
        source: "lineage",
        description: "Id of the drop that holds the row; the newest drop wins for a conversation.",
    },
    Column {
        name: "extracted_at",
        ty: ColumnType::TimestampMs,
        nullable: false,
        source: "lineage",
        description: "When the drop was created (UTC).",
    },
];

impl TableDef {
    /// True for tables of entity snapshots, where a later drop supersedes an earlier one and a
    /// `*_latest` view picks the newest. Webhook tables hold events, each in one drop only:
    /// every row is current, so they have no such view.
    pub fn has_latest_view(&self) -> bool {
        self.source != Source::Webhooks
    }

    /// Data columns followed by lineage columns: the order of every file's columns.
    pub fn all_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().chain(LINEAGE.iter())
    }

    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.all_columns()
                .map(|c| Field::new(c.name, c.ty.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The machine-readable definition written to `schemas/{table}.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "table": self.name,
            "source": self.source.as_str(),
            "description": self.description,
            "grain": self.grain,
            "root_table": self.root,
            "entity_key": self.entity_key,
            "columns": self.all_columns().map(|c| serde_json::json!({
                "name": c.name,
                "type": c.ty.name(),
                "nullable": c.nullable,
                "source": c.source,
                "description": c.description,
            })).collect::<Vec<_>>(),
        })
    }

    /// A stable fingerprint of names, types and nullability (descriptions excluded), for
    /// manifests: readers compare it to detect a schema change.
    pub fn schema_fingerprint(&self) -> String {
        self.all_columns()
            .map(|c| {
                format!(
                    "{}:{}:{}",
                    c.name,
                    c.ty.name(),
                    if c.nullable { "null" } else { "required" }
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The data dictionary for people, in Markdown: `lpdrop schema --format markdown` and
/// `schemas/DATA-DICTIONARY.md` (kept current by a test).
pub fn data_dictionary(tables: &[&TableDef]) -> String {
    let mut out = format!(
        "# lpdrop data dictionary (schema version {SCHEMA_VERSION})\n\n\
         Generated from the code (`lpdrop schema --format markdown`); do not edit by hand.\n\n\
         - Types: `string`, `int64`, `float64`, `boolean` and `timestamp_ms_utc`: a UTC instant \
         with millisecond precision (parquet INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true)). \
         There are no nested, unsigned or decimal columns.\n\
         - LivePerson's placeholders (`\"undefined\"`, `\"null\"`, `-1` for unset ids and \
         times) are NULL. Free-form JSON is a `*_json` string column, beside a plain-text \
         column where there is text. It holds the JSON as LivePerson sent it (keys in the \
         order sent, numbers and escapes as written) without the whitespace between \
         tokens.\n\
         - Every row ends with the lineage columns `account_id`, `drop_id` and `extracted_at`.\n\
         - Child rows carry their entity's key (`conversation_id`, `engagement_id`, ...) and \
         an `ordinal`: the position in the list they come from, 0-based.\n\
         - An entity can appear in more than one drop (a conversation still open at \
         extraction, a re-synced agent). Its current rows, in every table of its source, are \
         those of the drop whose root row (`root table` below) has the newest \
         `extracted_at`; the Athena, Spark and DuckDB DDL (`lpdrop schema --format \
         athena|spark|duckdb`) define `*_latest` views that apply this rule.\n"
    );
    for source in Source::ALL {
        let in_source: Vec<&&TableDef> = tables.iter().filter(|t| t.source == source).collect();
        if in_source.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n## Source `{}`\n\n| table | description | grain |\n|---|---|---|\n",
            source.as_str()
        ));
        for t in &in_source {
            out.push_str(&format!(
                "| [`{}`](#{}) | {} | {} |\n",
                t.name,
                t.name,
                t.description.replace('|', "\\|"),
                t.grain.join(", ")
            ));
        }
    }
    for t in tables {
        out.push_str(&format!(
            "\n### {}\n\n{}\n\nSource: `{}`. Grain: {}. Root table: `{}` (entity key `{}`).\n\n\
             | column | type | nullable | source | description |\n|---|---|---|---|---|\n",
            t.name,
            t.description,
            t.source.as_str(),
            t.grain.join(", "),
            t.root,
            t.entity_key,
        ));
        for c in t.all_columns() {
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} |\n",
                c.name,
                c.ty.name(),
                if c.nullable { "yes" } else { "no" },
                c.source,
                c.description.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_millisecond_utc() {
        assert_eq!(
            ColumnType::TimestampMs.arrow(),
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
    }
}

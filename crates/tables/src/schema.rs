//! Table definitions: the contract with BI users.
//!
//! Each table's columns are declared once, in [`crate::messaging`], together with the code that
//! fills them; the Arrow schemas, the files under `schemas/` and the data dictionary all derive
//! from these definitions, and a test fails when `schemas/` and the code disagree.

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

/// One relational table.
#[derive(Debug, PartialEq, Eq)]
pub struct TableDef {
    pub name: &'static str,
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
            "description": self.description,
            "grain": self.grain,
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

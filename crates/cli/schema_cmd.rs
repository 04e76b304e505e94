//! `lpdrop schema`: the data dictionary (markdown) and the table definitions (JSON).

use clap::ValueEnum;
use lpdrop_tables::{SCHEMA_VERSION, all_tables};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    /// A data dictionary for people.
    Markdown,
    /// The machine-readable definitions, as in `schemas/`.
    Json,
}

pub fn render(format: SchemaFormat) -> String {
    match format {
        SchemaFormat::Json => {
            let tables: Vec<_> = all_tables().iter().map(|t| t.to_json()).collect();
            serde_json::to_string_pretty(&tables).expect("definitions serialize") + "\n"
        }
        SchemaFormat::Markdown => {
            let mut out = format!(
                "# lpdrop data dictionary (schema version {SCHEMA_VERSION})\n\n\
                 Timestamps are UTC instants (parquet TIMESTAMP(MILLIS, isAdjustedToUTC=true)).\n"
            );
            for t in all_tables() {
                out.push_str(&format!(
                    "\n## {}\n\n{}\n\nGrain: {}.\n\n| column | type | nullable | source | description |\n|---|---|---|---|---|\n",
                    t.name,
                    t.description,
                    t.grain.join(", ")
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
    }
}

//! What a committed local drop holds, for comparing two drops of the same records: every row
//! of every table as text, lineage columns left out (they name the drop, not the data), rows
//! sorted (file and row order are not part of the contract).

use std::collections::BTreeMap;
use std::path::Path;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Columns every table ends with that differ between two drops of the same data.
pub const LINEAGE: [&str; 3] = ["account_id", "drop_id", "extracted_at"];

/// Table name -> its rows (columns joined by U+001F), sorted; files as listed in the drop's
/// `manifest.json`.
pub fn table_contents(drop: &Path) -> BTreeMap<String, Vec<String>> {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(drop.join("manifest.json"))
            .unwrap_or_else(|e| panic!("{}: no manifest.json: {e}", drop.display())),
    )
    .expect("manifest.json is JSON");
    let mut tables = BTreeMap::new();
    for table in manifest["tables"].as_array().expect("a tables list") {
        let mut lines = Vec::new();
        for file in table["files"].as_array().expect("a files list") {
            let path = drop.join(file["path"].as_str().expect("a file path"));
            let f =
                std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for batch in ParquetRecordBatchReaderBuilder::try_new(f)
                .expect("a parquet file")
                .build()
                .expect("a reader")
            {
                let batch = batch.expect("a record batch");
                let schema = batch.schema();
                // Timestamps compare as epoch milliseconds (a named zone needs chrono-tz).
                let arrays: Vec<_> = (0..batch.num_columns())
                    .filter(|&i| !LINEAGE.contains(&schema.field(i).name().as_str()))
                    .map(|i| match batch.column(i).data_type() {
                        DataType::Timestamp(..) => {
                            arrow::compute::cast(batch.column(i), &DataType::Int64)
                                .expect("timestamps cast to int64")
                        }
                        _ => batch.column(i).clone(),
                    })
                    .collect();
                let columns: Vec<_> = arrays
                    .iter()
                    .map(|a| {
                        ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
                            .expect("a formatter")
                    })
                    .collect();
                for row in 0..batch.num_rows() {
                    lines.push(
                        columns
                            .iter()
                            .map(|c| c.value(row).to_string())
                            .collect::<Vec<_>>()
                            .join("\u{1f}"),
                    );
                }
            }
        }
        lines.sort();
        tables.insert(
            table["name"].as_str().expect("a table name").to_string(),
            lines,
        );
    }
    tables
}

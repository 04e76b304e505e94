//! The data dictionary (markdown), the table definitions (JSON), and DDL for
//! Athena (Glue), Spark and DuckDB over the drop layout
//! `{prefix}/YYYY/MM/DD/HH/<YYYY-MM-DD-HH-mm-ss>-<uuid>/parquet/<table>/part-NNNNN.parquet`.
//!
//! The layout puts a per-drop folder below the hour and the table folder below that, so no
//! single prefix holds one table across drops (pitfall P13), and `manifest.json` and
//! `upload.complete` sit at the drop root, outside every table folder (P12). Hence:
//!
//! - **Athena**: one external table per lpdrop table, partitioned by drop (`drop_name`, the
//!   drop folder's name), each partition located at one drop's table folder. Partition
//!   projection cannot describe a path holding a UUID, so each committed drop is registered
//!   with `ALTER TABLE ... ADD PARTITION ... LOCATION` ([`athena_add_partitions`]). Only
//!   committed drops get registered, so Athena never reads a partial drop.
//! - **Spark** and **DuckDB** read every drop at once through a glob, and keep only the rows of
//!   committed drops: the `drop_id` of each `upload.complete` marker (JSON) found beside them.
//! - All three define `<table>_latest` views: per entity (conversation, chat, agent, ...) the
//!   rows of the drop whose root row has the newest `extracted_at` (ties: the greater
//!   `drop_id`). A child table's rows follow their root's drop, so a conversation's messages
//!   all come from the same drop as its `conversations` row.
//!
//! Types map exactly: string → `string`/`STRING`/`VARCHAR`, int64 → `bigint`, float64 →
//! `double`, boolean → `boolean`, timestamp_ms_utc → Athena `timestamp`, Spark `TIMESTAMP`
//! (set `spark.sql.session.timeZone=UTC`), DuckDB `TIMESTAMPTZ`.

use crate::schema::data_dictionary;
use crate::{ColumnMapping, ColumnType, SCHEMA_VERSION, Source, TableDef, all_tables, tables_of};

/// What `render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// A data dictionary for people.
    Markdown,
    /// The machine-readable definitions, as in `schemas/`.
    Json,
    /// Athena (Glue) external tables partitioned by drop, and `*_latest` views.
    Athena,
    /// Spark SQL tables over the drops (`CREATE TABLE ... USING parquet`), and `*_latest` views.
    Spark,
    /// DuckDB views over `read_parquet` globs, and `*_latest` views.
    Duckdb,
}

/// The definitions in `format`; with a column mapping, of the tables as it maps them.
pub fn render(format: SchemaFormat, mapping: Option<&ColumnMapping>) -> String {
    match format {
        SchemaFormat::Json => {
            let tables: Vec<_> = catalog(mapping).iter().map(|t| t.to_json()).collect();
            serde_json::to_string_pretty(&tables).expect("definitions serialize") + "\n"
        }
        SchemaFormat::Markdown => {
            let mut md = data_dictionary(&catalog(mapping));
            if let Some(m) = mapping {
                md = md.replacen(
                    "\n\n",
                    &format!(
                        "\n\nWith the column mapping `{}` (sha256): added {}; renamed {}; \
                         dropped {}.\n\n",
                        m.summary().sha256,
                        list_or_none(&m.summary().added),
                        list_or_none(&m.summary().renamed),
                        list_or_none(&m.summary().dropped),
                    ),
                    1,
                );
            }
            md
        }
        SchemaFormat::Athena => athena(mapping),
        SchemaFormat::Spark => spark(mapping),
        SchemaFormat::Duckdb => duckdb(mapping),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every table, as `mapping` maps them.
fn catalog(mapping: Option<&ColumnMapping>) -> Vec<&'static TableDef> {
    mapping.map_or_else(|| all_tables().to_vec(), |m| m.apply_to(all_tables()))
}

/// The tables of `source`, as `mapping` maps them.
fn mapped(mapping: Option<&ColumnMapping>, source: Source) -> Vec<&'static TableDef> {
    mapping.map_or_else(|| tables_of(source).to_vec(), |m| m.tables_of(source))
}

/// The database (schema) the Athena and Spark DDL create their tables in.
const DATABASE: &str = "lpdrop";
/// The drop prefix in the DDL: the folder above `YYYY/`, to be replaced by the user's own.
const ATHENA_ROOT: &str = "s3://YOUR-BUCKET/YOUR-PREFIX";
const SPARK_ROOT: &str = "s3a://YOUR-BUCKET/YOUR-PREFIX";
const DUCKDB_ROOT: &str = "s3://YOUR-BUCKET/YOUR-PREFIX";
/// The partition column of the Athena tables: the drop folder name, e.g.
/// `2026-11-21-11-18-22-b2b0985b-ee2f-4ef6-9490-57395b3d3310`.
pub const PARTITION_COLUMN: &str = "drop_name";
const PARTITION_COMMENT: &str = "Drop folder name: YYYY-MM-DD-HH-mm-ss-<uuid>.";
/// What `STORED AS PARQUET` means in the Glue catalog: the SerDe and formats Athena reads.
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
pub const PARQUET_INPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT_FORMAT: &str =
    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// One column of an Athena (Glue) table: name, Athena type and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaColumn {
    pub name: String,
    pub ty: &'static str,
    pub comment: String,
}

/// One Athena (Glue) external table as lpdrop defines it: what `lpdrop schema --format athena`
/// prints and what `--glue-database` registers, from this one definition, so that the two
/// never disagree. Stored as parquet ([`PARQUET_SERDE`]), located at the drop prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaTable {
    pub name: String,
    pub comment: String,
    pub columns: Vec<AthenaColumn>,
    /// `drop_name string`: one partition per drop.
    pub partition_keys: Vec<AthenaColumn>,
    /// TBLPROPERTIES.
    pub properties: Vec<(&'static str, String)>,
}

/// The Athena definition of `t` (as a column mapping made it, when it did).
pub fn athena_table(t: &TableDef) -> AthenaTable {
    AthenaTable {
        name: t.name.to_string(),
        comment: comment(t.description),
        columns: t
            .all_columns()
            .map(|c| AthenaColumn {
                name: c.name.to_string(),
                ty: athena_type(c.ty),
                comment: comment(c.description),
            })
            .collect(),
        partition_keys: vec![AthenaColumn {
            name: PARTITION_COLUMN.to_string(),
            ty: "string",
            comment: PARTITION_COMMENT.to_string(),
        }],
        properties: vec![
            ("classification", "parquet".to_string()),
            ("lpdrop.schema_version", SCHEMA_VERSION.to_string()),
        ],
    }
}

/// Where one drop's partition of `table` lies: `<drop root URI>/parquet/<table>/`.
pub fn partition_location(drop_root: &str, table: &str) -> String {
    format!("{}/parquet/{table}/", drop_root.trim_end_matches('/'))
}
/// Below the prefix: `YYYY/MM/DD/HH/<drop>/`.
const DROPS_GLOB: &str = "*/*/*/*/*";
/// A drop root used in the worked partition example.
const EXAMPLE_DROP: &str = "2026/11/21/11/2026-11-21-11-18-22-b2b0985b-ee2f-4ef6-9490-57395b3d3310";

/// The Athena (Glue) type of a column type: the one mapping the DDL and the catalog share.
pub fn athena_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Utf8 => "string",
        ColumnType::Int64 => "bigint",
        ColumnType::Float64 => "double",
        ColumnType::Boolean => "boolean",
        ColumnType::TimestampMs => "timestamp",
    }
}

fn spark_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Utf8 => "STRING",
        ColumnType::Int64 => "BIGINT",
        ColumnType::Float64 => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::TimestampMs => "TIMESTAMP",
    }
}

fn duckdb_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Utf8 => "VARCHAR",
        ColumnType::Int64 => "BIGINT",
        ColumnType::Float64 => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::TimestampMs => "TIMESTAMPTZ",
    }
}

/// A description as a single-quoted SQL literal body: straight quotes become typographic ones,
/// which every dialect accepts without an escape rule.
fn comment(text: &str) -> String {
    text.replace('\'', "\u{2019}")
}

const SOURCES: [Source; 4] = Source::ALL;

fn source_banner(out: &mut String, source: Source, note: &str) {
    out.push_str(&format!(
        "\n-- ==== Source {}: {} tables{note}.\n",
        source.as_str(),
        tables_of(source).len()
    ));
}

/// Spark and DuckDB resolve a glob when a table or view is created.
const NEEDS_A_DROP: &str = "; run this block once a drop of this source exists";

/// `SELECT` list of a table's columns (data and lineage), optionally qualified.
fn column_list(t: &TableDef, qualifier: &str) -> String {
    t.all_columns()
        .map(|c| format!("{qualifier}{}", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `*_latest` view of `t` over relations named by `name(table)`: the newest root row per
/// entity, and the child rows of that root row's drop. Standard SQL, for all three engines.
fn latest_view(t: &TableDef, create: &str, name: &dyn Fn(&str) -> String) -> String {
    let key = t.entity_key;
    if t.name == t.root {
        format!(
            "{create} {latest} AS\nSELECT {columns}\nFROM (\n  SELECT t.*, row_number() OVER (PARTITION BY {key} ORDER BY extracted_at DESC, drop_id DESC) AS lpdrop_rank\n  FROM {table} t\n) ranked\nWHERE lpdrop_rank = 1;\n",
            latest = name(&format!("{}_latest", t.name)),
            columns = column_list(t, ""),
            table = name(t.name),
        )
    } else {
        format!(
            "{create} {latest} AS\nSELECT {columns}\nFROM {table} t\nJOIN {root} r ON t.{key} = r.{key} AND t.drop_id = r.drop_id;\n",
            latest = name(&format!("{}_latest", t.name)),
            columns = column_list(t, "t."),
            table = name(t.name),
            root = name(&format!("{}_latest", t.root)),
        )
    }
}

/// The drop folder name of a drop root (`.../YYYY/MM/DD/HH/<YYYY-MM-DD-HH-mm-ss>-<uuid>`),
/// checked against the layout: the value of its partitions.
pub fn drop_name(drop_root: &str) -> Result<&str, String> {
    let root = drop_root.trim_end_matches('/');
    let name = root.rsplit('/').next().unwrap_or_default();
    let (stamp, id) = (name.get(..19).unwrap_or_default(), name.get(20..));
    let stamp_ok = stamp.len() == 19
        && stamp.char_indices().all(|(i, c)| {
            if matches!(i, 4 | 7 | 10 | 13 | 16) {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let id_ok = id.is_some_and(|id| {
        id.len() == 36
            && id.char_indices().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    });
    if !stamp_ok || !id_ok || name.as_bytes().get(19) != Some(&b'-') {
        return Err(format!(
            "{drop_root:?} does not end in a drop folder (YYYY-MM-DD-HH-mm-ss-<uuid>)"
        ));
    }
    let hour_path = format!(
        "{}/{}/{}/{}",
        &stamp[0..4],
        &stamp[5..7],
        &stamp[8..10],
        &stamp[11..13]
    );
    if !root[..root.len() - name.len()]
        .trim_end_matches('/')
        .ends_with(&hour_path)
    {
        return Err(format!(
            "{drop_root:?}: the drop folder must sit under its hour {hour_path}/"
        ));
    }
    if root.contains('\'') {
        return Err(format!("{drop_root:?} contains a quote"));
    }
    Ok(name)
}

/// The Athena statements that register one committed drop: one `ADD PARTITION` per table of
/// its source, located at the drop's table folder. `drop_root` is the drop's URI, e.g.
/// `s3://bucket/prefix/2026/11/21/11/2026-11-21-11-18-22-<uuid>`; run them after
/// `upload.complete` exists (an S3 notification on that suffix is the natural trigger).
/// `IF NOT EXISTS` makes registering a drop twice harmless.
pub fn athena_add_partitions(drop_root: &str, tables: &[&TableDef]) -> Result<String, String> {
    let name = drop_name(drop_root)?;
    Ok(tables
        .iter()
        .map(|t| {
            format!(
                "ALTER TABLE {DATABASE}.{table} ADD IF NOT EXISTS PARTITION ({PARTITION_COLUMN} = '{name}') LOCATION '{location}';\n",
                table = t.name,
                location = partition_location(drop_root, t.name),
            )
        })
        .collect())
}

fn athena(mapping: Option<&ColumnMapping>) -> String {
    let mut out = format!(
        "-- lpdrop: Athena (Glue) DDL, schema version {SCHEMA_VERSION}. Generated by `lpdrop schema --format athena`.\n\
         --\n\
         -- Replace {ATHENA_ROOT} with the drop prefix (the folder above YYYY/). Run the\n\
         -- statements one at a time (Athena runs one statement per query).\n\
         --\n\
         -- Drops are laid out as {{prefix}}/YYYY/MM/DD/HH/<drop>/parquet/<table>/part-NNNNN.parquet,\n\
         -- with manifest.json and upload.complete at the drop root. Each table below is\n\
         -- partitioned by drop: `{PARTITION_COLUMN}` is the drop folder name (YYYY-MM-DD-HH-mm-ss-<uuid>),\n\
         -- and each partition points at one drop's table folder. Register every committed drop\n\
         -- (once its upload.complete exists, never before) with one ADD PARTITION per table of its\n\
         -- source; see the example at the end of each source. The table LOCATION is only the\n\
         -- prefix: Athena reads the partitions' locations, never the table's.\n\
         --\n\
         -- A conversation still open at extraction appears in several drops; query the\n\
         -- `<table>_latest` views to get, per entity, the rows of its newest drop.\n\
         \nCREATE DATABASE IF NOT EXISTS {DATABASE};\n"
    );
    let name = |t: &str| format!("{DATABASE}.{t}");
    for source in SOURCES {
        source_banner(&mut out, source, "");
        for t in mapped(mapping, source) {
            let t = athena_table(t);
            let list = |columns: &[AthenaColumn], sep: &str| {
                columns
                    .iter()
                    .map(|c| format!("{} {} COMMENT '{}'", c.name, c.ty, c.comment))
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            let properties = t
                .properties
                .iter()
                .map(|(k, v)| format!("'{k}' = '{v}'"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "\nCREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.{name} (\n  {columns}\n)\nCOMMENT '{description}'\nPARTITIONED BY ({partitions})\nSTORED AS PARQUET\nLOCATION '{ATHENA_ROOT}/'\nTBLPROPERTIES ({properties});\n",
                name = t.name,
                columns = list(&t.columns, ",\n  "),
                description = t.comment,
                partitions = list(&t.partition_keys, ", "),
            ));
        }
        for t in mapped(mapping, source)
            .into_iter()
            .filter(|t| t.has_latest_view())
        {
            out.push('\n');
            out.push_str(&latest_view(t, "CREATE OR REPLACE VIEW", &name));
        }
        let example = athena_add_partitions(
            &format!("{ATHENA_ROOT}/{EXAMPLE_DROP}"),
            &mapped(mapping, source),
        )
        .expect("the example drop root is valid");
        out.push_str(&format!(
            "\n-- Registering one committed {} drop (here {ATHENA_ROOT}/{EXAMPLE_DROP}):\n",
            source.as_str()
        ));
        for line in example.lines() {
            out.push_str(&format!("-- {line}\n"));
        }
    }
    out
}

fn spark(mapping: Option<&ColumnMapping>) -> String {
    let mut out = format!(
        "-- lpdrop: Spark SQL DDL, schema version {SCHEMA_VERSION}. Generated by `lpdrop schema --format spark`.\n\
         --\n\
         -- Replace {SPARK_ROOT} with the drop prefix (the folder above YYYY/; a local folder\n\
         -- works too) and set spark.sql.session.timeZone=UTC: timestamps are UTC instants.\n\
         --\n\
         -- `<table>_files` reads every drop's files through a glob with the fixed schema (columns a\n\
         -- file lacks read as NULL). `<table>` keeps the rows of committed drops only: those whose\n\
         -- upload.complete marker exists. `<table>_latest` keeps, per entity, the rows of its\n\
         -- newest drop. Spark checks a glob when a table is created, so run a source's block once\n\
         -- at least one drop of that source exists.\n\
         \nCREATE DATABASE IF NOT EXISTS {DATABASE};\n\
         \nCREATE TABLE IF NOT EXISTS {DATABASE}.committed_drops\nUSING json\nOPTIONS (path '{SPARK_ROOT}/{DROPS_GLOB}/upload.complete', multiLine 'true');\n"
    );
    let name = |t: &str| format!("{DATABASE}.{t}");
    for source in SOURCES {
        source_banner(&mut out, source, NEEDS_A_DROP);
        for t in mapped(mapping, source) {
            let columns: Vec<String> = t
                .all_columns()
                .map(|c| {
                    format!(
                        "  {} {} COMMENT '{}'",
                        c.name,
                        spark_type(c.ty),
                        comment(c.description)
                    )
                })
                .collect();
            out.push_str(&format!(
                "\nCREATE TABLE IF NOT EXISTS {DATABASE}.{name}_files (\n{columns}\n)\nUSING parquet\nOPTIONS (path '{SPARK_ROOT}/{DROPS_GLOB}/parquet/{name}/')\nCOMMENT '{description}';\n\
                 \nCREATE OR REPLACE VIEW {DATABASE}.{name} AS\nSELECT {list}\nFROM {DATABASE}.{name}_files\nWHERE drop_id IN (SELECT drop_id FROM {DATABASE}.committed_drops);\n",
                name = t.name,
                columns = columns.join(",\n"),
                description = comment(t.description),
                list = column_list(t, ""),
            ));
        }
        for t in mapped(mapping, source)
            .into_iter()
            .filter(|t| t.has_latest_view())
        {
            out.push('\n');
            out.push_str(&latest_view(t, "CREATE OR REPLACE VIEW", &name));
        }
    }
    out
}

fn duckdb(mapping: Option<&ColumnMapping>) -> String {
    let mut out = format!(
        "-- lpdrop: DuckDB DDL, schema version {SCHEMA_VERSION}. Generated by `lpdrop schema --format duckdb`.\n\
         --\n\
         -- Replace {DUCKDB_ROOT} with the drop prefix (the folder above YYYY/; a local folder\n\
         -- works too). For S3: INSTALL httpfs; LOAD httpfs; and CREATE SECRET (TYPE s3, ...).\n\
         --\n\
         -- `<table>` reads every committed drop (its upload.complete marker exists) through a\n\
         -- glob, with the exact column types (columns older files lack read as NULL).\n\
         -- `<table>_latest` keeps, per entity, the rows of its newest drop. DuckDB checks a glob\n\
         -- when a view is created, so run a source's block once at least one drop of that source\n\
         -- exists.\n\
         \nCREATE OR REPLACE VIEW lpdrop_committed_drops AS\nSELECT drop_id\nFROM read_json('{DUCKDB_ROOT}/{DROPS_GLOB}/upload.complete', columns = {{'drop_id': 'VARCHAR'}});\n"
    );
    let name = |t: &str| t.to_string();
    for source in SOURCES {
        source_banner(&mut out, source, NEEDS_A_DROP);
        for t in mapped(mapping, source) {
            let typed: Vec<String> = t
                .all_columns()
                .map(|c| format!("CAST({0} AS {1}) AS {0}", c.name, duckdb_type(c.ty)))
                .collect();
            let empty: Vec<String> = t
                .all_columns()
                .map(|c| format!("CAST(NULL AS {}) AS {}", duckdb_type(c.ty), c.name))
                .collect();
            out.push_str(&format!(
                "\nCREATE OR REPLACE VIEW {name} AS\nSELECT {typed}\nFROM (\n  -- A typed empty relation first, so that a column no file has yet still exists.\n  SELECT {empty} WHERE false\n  UNION ALL BY NAME\n  SELECT * FROM read_parquet('{DUCKDB_ROOT}/{DROPS_GLOB}/parquet/{name}/part-*.parquet', union_by_name = true)\n)\nWHERE drop_id IN (SELECT drop_id FROM lpdrop_committed_drops);\n",
                name = t.name,
                typed = typed.join(", "),
                empty = empty.join(", "),
            ));
        }
        for t in mapped(mapping, source)
            .into_iter()
            .filter(|t| t.has_latest_view())
        {
            out.push('\n');
            out.push_str(&latest_view(t, "CREATE OR REPLACE VIEW", &name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> &'static TableDef {
        all_tables().iter().find(|t| t.name == name).unwrap()
    }

    /// The text of the statement that starts with `head`.
    fn statement<'a>(ddl: &'a str, head: &str) -> &'a str {
        let start = ddl
            .find(head)
            .unwrap_or_else(|| panic!("no statement {head:?}"));
        let end = ddl[start..].find(";\n").unwrap();
        &ddl[start..start + end]
    }

    #[test]
    fn types_map_exactly() {
        let athena = render(SchemaFormat::Athena, None);
        let spark = render(SchemaFormat::Spark, None);
        let duckdb = render(SchemaFormat::Duckdb, None);
        let conversations_athena = statement(
            &athena,
            "CREATE EXTERNAL TABLE IF NOT EXISTS lpdrop.conversations (",
        );
        let conversations_spark = statement(
            &spark,
            "CREATE TABLE IF NOT EXISTS lpdrop.conversations_files (",
        );
        let conversations_duckdb = statement(&duckdb, "CREATE OR REPLACE VIEW conversations AS");
        for (column, a, s, d) in [
            ("conversation_id", "string", "STRING", "VARCHAR"),
            ("start_time", "timestamp", "TIMESTAMP", "TIMESTAMPTZ"),
            ("duration_ms", "bigint", "BIGINT", "BIGINT"),
            ("csat_rate", "double", "DOUBLE", "DOUBLE"),
            ("first_conversation", "boolean", "BOOLEAN", "BOOLEAN"),
            ("extracted_at", "timestamp", "TIMESTAMP", "TIMESTAMPTZ"),
        ] {
            assert!(
                conversations_athena.contains(&format!("\n  {column} {a} COMMENT")),
                "athena {column}"
            );
            assert!(
                conversations_spark.contains(&format!("\n  {column} {s} COMMENT")),
                "spark {column}"
            );
            assert!(
                conversations_duckdb.contains(&format!("CAST({column} AS {d}) AS {column}")),
                "duckdb {column}"
            );
        }
        for ty in [
            ColumnType::Utf8,
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::Boolean,
            ColumnType::TimestampMs,
        ] {
            let expected = match ty {
                ColumnType::Utf8 => ("string", "STRING", "VARCHAR"),
                ColumnType::Int64 => ("bigint", "BIGINT", "BIGINT"),
                ColumnType::Float64 => ("double", "DOUBLE", "DOUBLE"),
                ColumnType::Boolean => ("boolean", "BOOLEAN", "BOOLEAN"),
                ColumnType::TimestampMs => ("timestamp", "TIMESTAMP", "TIMESTAMPTZ"),
            };
            assert_eq!((athena_type(ty), spark_type(ty), duckdb_type(ty)), expected);
        }
    }

    #[test]
    fn every_table_and_column_is_in_every_format() {
        let athena = render(SchemaFormat::Athena, None);
        let spark = render(SchemaFormat::Spark, None);
        let duckdb = render(SchemaFormat::Duckdb, None);
        for t in all_tables() {
            let a = statement(
                &athena,
                &format!("CREATE EXTERNAL TABLE IF NOT EXISTS lpdrop.{} (", t.name),
            );
            let s = statement(
                &spark,
                &format!("CREATE TABLE IF NOT EXISTS lpdrop.{}_files (", t.name),
            );
            let d = statement(&duckdb, &format!("CREATE OR REPLACE VIEW {} AS", t.name));
            for c in t.all_columns() {
                assert!(
                    a.contains(&format!("\n  {} ", c.name)),
                    "athena {}.{}",
                    t.name,
                    c.name
                );
                assert!(
                    s.contains(&format!("\n  {} ", c.name)),
                    "spark {}.{}",
                    t.name,
                    c.name
                );
                assert!(
                    d.contains(&format!(
                        "CAST({0} AS {1}) AS {0}",
                        c.name,
                        duckdb_type(c.ty)
                    )),
                    "duckdb {}.{}",
                    t.name,
                    c.name
                );
            }
            assert_eq!(a.matches(" COMMENT '").count(), t.all_columns().count() + 1);
            assert!(a.contains("PARTITIONED BY (drop_name string"), "{}", t.name);
            assert!(
                !t.all_columns().any(|c| c.name == PARTITION_COLUMN),
                "{}: the partition column must not be a data column",
                t.name
            );
            assert!(
                s.contains(&format!("/*/*/*/*/*/parquet/{}/'", t.name)),
                "spark glob {}",
                t.name
            );
            assert!(
                d.contains(&format!("/*/*/*/*/*/parquet/{}/part-*.parquet'", t.name)),
                "duckdb glob {}",
                t.name
            );
            let latest = t.has_latest_view();
            assert_eq!(
                athena.contains(&format!("VIEW lpdrop.{}_latest AS", t.name)),
                latest
            );
            assert_eq!(
                spark.contains(&format!("VIEW lpdrop.{}_latest AS", t.name)),
                latest
            );
            assert_eq!(
                duckdb.contains(&format!("VIEW {}_latest AS", t.name)),
                latest
            );
        }
        // Only committed drops: the marker filter in Spark and DuckDB.
        assert_eq!(
            spark
                .matches("WHERE drop_id IN (SELECT drop_id FROM lpdrop.committed_drops)")
                .count(),
            all_tables().len()
        );
        assert_eq!(
            duckdb
                .matches("WHERE drop_id IN (SELECT drop_id FROM lpdrop_committed_drops)")
                .count(),
            all_tables().len()
        );
    }

    #[test]
    fn latest_views_follow_the_root_row() {
        let athena = render(SchemaFormat::Athena, None);
        let root = statement(
            &athena,
            "CREATE OR REPLACE VIEW lpdrop.conversations_latest AS",
        );
        assert!(root.contains(
            "row_number() OVER (PARTITION BY conversation_id ORDER BY extracted_at DESC, drop_id DESC)"
        ));
        assert!(root.contains("WHERE lpdrop_rank = 1"));
        assert!(
            !root.contains("SELECT lpdrop_rank"),
            "the rank is not a view column"
        );
        let child = statement(&athena, "CREATE OR REPLACE VIEW lpdrop.messages_latest AS");
        assert!(child.contains(
            "JOIN lpdrop.conversations_latest r ON t.conversation_id = r.conversation_id AND t.drop_id = r.drop_id"
        ));
        let duckdb = render(SchemaFormat::Duckdb, None);
        let chat = statement(&duckdb, "CREATE OR REPLACE VIEW chat_lines_latest AS");
        assert!(chat.contains("JOIN chats_latest r ON t.engagement_id = r.engagement_id"));
        let spark = render(SchemaFormat::Spark, None);
        let bridge = statement(
            &spark,
            "CREATE OR REPLACE VIEW lpdrop.agent_skills_latest AS",
        );
        assert!(bridge.contains("JOIN lpdrop.agents_latest r ON t.agent_id = r.agent_id"));
        // A view lists exactly the table's columns, lineage included.
        assert!(child.contains(&column_list(table("messages"), "t.")));
    }

    #[test]
    fn athena_partitions_point_at_one_drops_table_folders() {
        let root = "s3://acme-bi/thrive-air/2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001";
        let ddl = athena_add_partitions(root, tables_of(Source::Messaging)).unwrap();
        assert_eq!(ddl.lines().count(), tables_of(Source::Messaging).len());
        assert_eq!(
            ddl.lines().nth(1).unwrap(),
            "ALTER TABLE lpdrop.messages ADD IF NOT EXISTS PARTITION (drop_name = '2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001') LOCATION 's3://acme-bi/thrive-air/2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001/parquet/messages/';"
        );
        assert_eq!(
            athena_add_partitions(&format!("{root}/"), tables_of(Source::Messaging)).unwrap(),
            ddl
        );
        for bad in [
            "s3://acme-bi/thrive-air",
            "s3://acme-bi/thrive-air/2026/01/02/03",
            "s3://acme-bi/2026/01/02/04/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001",
            "s3://acme-bi/2026/01/02/03/2026-01-02-03-04-05-not-a-uuid",
            "s3://acme'bi/2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001",
        ] {
            assert!(
                athena_add_partitions(bad, tables_of(Source::Chat)).is_err(),
                "{bad}"
            );
        }
        // The printed DDL shows the same statements as a worked, commented-out example.
        let athena = render(SchemaFormat::Athena, None);
        assert!(athena.contains(
            "-- ALTER TABLE lpdrop.chats ADD IF NOT EXISTS PARTITION (drop_name = '2026-11-21-11-18-22-b2b0985b-ee2f-4ef6-9490-57395b3d3310')"
        ));
    }

    #[test]
    fn statements_are_well_formed_and_quotes_cannot_break_out() {
        for format in [
            SchemaFormat::Athena,
            SchemaFormat::Spark,
            SchemaFormat::Duckdb,
        ] {
            let ddl = render(format, None);
            let code: String = ddl
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            assert_eq!(code.matches('(').count(), code.matches(')').count());
            // Every literal is closed: an even number of single quotes per statement.
            for stmt in code.split(";\n") {
                assert_eq!(stmt.matches('\'').count() % 2, 0, "{stmt}");
            }
            assert!(code.trim_end().ends_with(';'));
        }
        assert_eq!(comment("the consumer's"), "the consumer\u{2019}s");
    }

    #[test]
    fn markdown_is_the_data_dictionary() {
        let md = render(SchemaFormat::Markdown, None);
        assert_eq!(md, data_dictionary(all_tables()));
        assert!(md.contains("### sde_events"));
        let json: Vec<serde_json::Value> =
            serde_json::from_str(&render(SchemaFormat::Json, None)).unwrap();
        assert_eq!(json.len(), all_tables().len());
    }
}

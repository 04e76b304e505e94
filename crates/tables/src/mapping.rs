//! Column mappings: a team's own columns, taken by path from SDE or `contextData` fields, and
//! columns renamed or dropped (`--column-mapping FILE`, a TOML file).
//!
//! ```toml
//! [[add]]
//! table = "conversations"              # a root table: one value per entity
//! column = "customer_status"
//! path = "sdes.events[*].customerInfo.customerInfo.customerStatus"
//! type = "string"                      # string, int64, float64, boolean, timestamp_ms_utc
//! pick = "last"                        # first, last (default) or all (a JSON array string)
//! description = "Customer status from the newest customer-info SDE."
//!
//! [rename.conversations]
//! mcs = "meaningful_connection_score"
//!
//! [drop]
//! conversations = ["browser", "operating_system"]
//! ```
//!
//! Added columns live on root tables only (`conversations`, `chats`, `agents`, `skills`,
//! `agent_groups`), whose rows are whole records: a path is read from the record as the API
//! sent it, so any field works, documented or not. A value that is missing, a placeholder, or
//! not of the column's type is NULL. Keys (the entity key and the grain) and the lineage
//! columns can be neither renamed nor dropped: the `*_latest` views and every loader rely on
//! them. The mapped tables replace the built-in ones everywhere: in the files, the manifest
//! (which also records the mapping), `lpdrop schema` and the DDL.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use lpdrop_liveperson::lenient::is_placeholder;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::buffer::ColumnBuilder;
use crate::schema::{Column, ColumnType, LINEAGE, Source, TableDef};

/// Longest column name accepted (Glue allows 255; shorter names travel better).
const MAX_NAME: usize = 128;

/// How one value is chosen when a path matches several (through `[*]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    First,
    /// The newest, for lists that grow over a conversation's life (SDE events, messages).
    #[default]
    Last,
    /// Every match, as a JSON array (a `string` column).
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    add: Vec<AddSpec>,
    #[serde(default)]
    rename: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    drop: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddSpec {
    table: String,
    column: String,
    path: String,
    #[serde(rename = "type", default = "default_type")]
    ty: String,
    #[serde(default)]
    pick: Pick,
    description: Option<String>,
}

fn default_type() -> String {
    "string".into()
}

/// One step of a path: a member, an array index, or every element (`[*]`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Each,
}

/// An added column: where its value comes from.
#[derive(Debug)]
struct Added {
    ty: ColumnType,
    path: Vec<Step>,
    pick: Pick,
}

/// What a mapping changed, for the manifest: readers see that a drop's tables differ from
/// the built-in schema files, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingSummary {
    /// SHA-256 of the mapping file's text.
    pub sha256: String,
    /// `table.column` of each added column.
    pub added: Vec<String>,
    /// `table.old -> new`.
    pub renamed: Vec<String>,
    /// `table.column`.
    pub dropped: Vec<String>,
}

/// One table as mapped.
#[derive(Debug)]
pub struct TableMapping {
    base: &'static TableDef,
    def: &'static TableDef,
    /// The base data columns kept, in order (indices into `base.columns`).
    kept: Vec<usize>,
    added: Vec<Added>,
}

/// A loaded and checked mapping.
#[derive(Debug)]
pub struct ColumnMapping {
    tables: Vec<TableMapping>,
    summary: MappingSummary,
}

/// The added values of one record, in column order (`None`: NULL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddedValues(Vec<Option<Value>>);

impl ColumnMapping {
    /// Reads and checks a mapping file; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("column mapping {}: {e}", path.display()))?;
        Self::parse(&text)
            .map(Arc::new)
            .map_err(|e| format!("column mapping {}: {e}", path.display()))
    }

    /// Parses and checks a mapping against the built-in tables.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: MappingFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut summary = MappingSummary {
            sha256: hex(&Sha256::digest(text.as_bytes())),
            added: Vec::new(),
            renamed: Vec::new(),
            dropped: Vec::new(),
        };
        let mut named: Vec<&str> = file
            .add
            .iter()
            .map(|a| a.table.as_str())
            .chain(file.rename.keys().map(String::as_str))
            .chain(file.drop.keys().map(String::as_str))
            .collect();
        named.sort_unstable();
        named.dedup();
        let mut tables = Vec::new();
        for name in named {
            let base = crate::all_tables()
                .iter()
                .copied()
                .find(|t| t.name == name)
                .ok_or_else(|| format!("no table named {name:?} (see `lpdrop schema`)"))?;
            let adds: Vec<&AddSpec> = file.add.iter().filter(|a| a.table == name).collect();
            let empty = BTreeMap::new();
            let renames = file.rename.get(name).unwrap_or(&empty);
            let drops = file.drop.get(name).map_or(&[][..], Vec::as_slice);
            tables.push(map_table(base, &adds, renames, drops, &mut summary)?);
        }
        Ok(ColumnMapping { tables, summary })
    }

    pub fn summary(&self) -> &MappingSummary {
        &self.summary
    }

    /// The mapping of one table, when it has one.
    pub fn table(&self, name: &str) -> Option<&TableMapping> {
        self.tables.iter().find(|t| t.base.name == name)
    }

    /// `tables` with each mapped table replaced by its mapped definition, order kept.
    pub fn apply_to(&self, tables: &[&'static TableDef]) -> Vec<&'static TableDef> {
        tables
            .iter()
            .map(|t| self.table(t.name).map_or(*t, |m| m.def))
            .collect()
    }

    /// The tables of `source` as mapped.
    pub fn tables_of(&self, source: Source) -> Vec<&'static TableDef> {
        self.apply_to(crate::tables_of(source))
    }
}

impl TableMapping {
    /// The mapped definition.
    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    /// Whether the table has added columns (and so needs each record's values).
    pub fn adds_columns(&self) -> bool {
        !self.added.is_empty()
    }

    /// The added values of one record, read from the record as sent.
    pub fn values(&self, record: &RawValue) -> AddedValues {
        if self.added.is_empty() {
            return AddedValues::default();
        }
        // The record was decoded already, so it is JSON; an unreadable one gives NULLs.
        let Ok(record) = serde_json::from_str::<Value>(record.get()) else {
            return AddedValues(vec![None; self.added.len()]);
        };
        AddedValues(self.added.iter().map(|a| a.value(&record)).collect())
    }

    /// A builder for the added columns of this table's rows.
    pub fn builder(&self) -> AddedColumns {
        AddedColumns {
            columns: self
                .added
                .iter()
                .map(|a| ColumnBuilder::new(a.ty))
                .collect(),
            rows: 0,
        }
    }

    /// A batch of the built-in table turned into one of the mapped table: kept columns, then
    /// the added ones (`added`, as many rows), then lineage.
    pub fn apply(&self, batch: &RecordBatch, added: Vec<ArrayRef>) -> RecordBatch {
        assert_eq!(added.len(), self.added.len(), "one array per added column");
        let data = self.base.columns.len();
        let arrays: Vec<ArrayRef> = self
            .kept
            .iter()
            .map(|&i| batch.column(i).clone())
            .chain(added)
            .chain((data..data + LINEAGE.len()).map(|i| batch.column(i).clone()))
            .collect();
        RecordBatch::try_new(self.def.arrow_schema(), arrays).unwrap_or_else(|e| {
            panic!(
                "mapped table {} does not match its batch: {e}",
                self.def.name
            )
        })
    }
}

/// The added columns of a table's buffered rows.
pub struct AddedColumns {
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl AddedColumns {
    pub fn push(&mut self, values: &AddedValues) {
        for (i, column) in self.columns.iter_mut().enumerate() {
            column.append_json(values.0.get(i).and_then(Option::as_ref));
        }
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The arrays of the rows pushed so far; the builder is then empty.
    pub fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        self.columns.iter_mut().map(ColumnBuilder::finish).collect()
    }
}

impl Added {
    /// The column's value in `record`: the match chosen by `pick`, converted to the type.
    fn value(&self, record: &Value) -> Option<Value> {
        let mut matches = Vec::new();
        collect(record, &self.path, &mut matches);
        matches.retain(|v| !is_null(v));
        match self.pick {
            Pick::First => matches.first().and_then(|v| convert(self.ty, v)),
            Pick::Last => matches.last().and_then(|v| convert(self.ty, v)),
            Pick::All if matches.is_empty() => None,
            Pick::All => Some(Value::String(
                Value::Array(matches.into_iter().cloned().collect()).to_string(),
            )),
        }
    }
}

fn is_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => is_placeholder(s) || s.is_empty(),
        _ => false,
    }
}

/// Every value at `path` under `node`, in document order.
fn collect<'a>(node: &'a Value, path: &[Step], out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = path.split_first() else {
        out.push(node);
        return;
    };
    match (step, node) {
        (Step::Key(k), Value::Object(m)) => {
            if let Some(v) = m.get(k) {
                collect(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            if let Some(v) = a.get(*i) {
                collect(v, rest, out);
            }
        }
        (Step::Each, Value::Array(a)) => a.iter().for_each(|v| collect(v, rest, out)),
        _ => {}
    }
}

/// `v` as a value of type `ty` (a JSON value the column builder appends), or `None` when it
/// is not one: numbers sent as strings and the reverse are read, as everywhere in lpdrop.
fn convert(ty: ColumnType, v: &Value) -> Option<Value> {
    let text = v.as_str().map(str::trim);
    match ty {
        ColumnType::Utf8 => Some(Value::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ColumnType::Int64 => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).and_then(exact_i64))
            .or_else(|| text.and_then(|t| t.parse().ok()))
            .map(Value::from),
        ColumnType::Float64 => v
            .as_f64()
            .or_else(|| text.and_then(|t| t.parse().ok()))
            .filter(|f| f.is_finite())
            .map(Value::from),
        ColumnType::Boolean => match (v, text.map(str::to_ascii_lowercase).as_deref()) {
            (Value::Bool(b), _) => Some(*b),
            (_, Some("true")) => Some(true),
            (_, Some("false")) => Some(false),
            _ => None,
        }
        .map(Value::from),
        ColumnType::TimestampMs => v
            .as_i64()
            .or_else(|| text.and_then(|t| t.parse().ok()))
            .or_else(|| {
                text.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|d| d.timestamp_millis())
            })
            .filter(|ms| *ms > 0)
            .map(Value::from),
    }
}

fn exact_i64(f: f64) -> Option<i64> {
    (f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn check_name(table: &str, name: &str) -> Result<(), String> {
    let ok = name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{table}: column name {name:?} must be snake_case: a-z, 0-9 and _, starting with a \
             letter, at most {MAX_NAME} characters"
        ))
    }
}

/// Parses `a.b[0].c[*]`: members separated by dots, each followed by any `[N]` or `[*]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("path {path:?}: {why}");
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut brackets) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() {
            return Err(bad("every part needs a member name (a.b[0].c)"));
        }
        if key.contains(']') {
            return Err(bad("unbalanced ]"));
        }
        steps.push(Step::Key(key.to_string()));
        while !brackets.is_empty() {
            let end = brackets.find(']').ok_or_else(|| bad("unclosed ["))?;
            let inside = &brackets[1..end];
            steps.push(match inside {
                "*" => Step::Each,
                n => Step::Index(
                    n.parse()
                        .map_err(|_| bad("an index is a number or *, as in [0] or [*]"))?,
                ),
            });
            brackets = &brackets[end + 1..];
            if !brackets.is_empty() && !brackets.starts_with('[') {
                return Err(bad("text after ] (a dot must separate members)"));
            }
        }
    }
    Ok(steps)
}

fn parse_type(table: &str, column: &str, ty: &str) -> Result<ColumnType, String> {
    [
        ColumnType::Utf8,
        ColumnType::Int64,
        ColumnType::Float64,
        ColumnType::Boolean,
        ColumnType::TimestampMs,
    ]
    .into_iter()
    .find(|t| t.name() == ty)
    .ok_or_else(|| {
        format!(
            "{table}.{column}: type {ty:?} is not one of string, int64, float64, boolean, \
             timestamp_ms_utc"
        )
    })
}

/// A base table with its columns added, renamed and dropped; the definition is leaked, as the
/// built-in ones are static (one mapping is loaded per process).
fn map_table(
    base: &'static TableDef,
    adds: &[&AddSpec],
    renames: &BTreeMap<String, String>,
    drops: &[String],
    summary: &mut MappingSummary,
) -> Result<TableMapping, String> {
    let t = base.name;
    let protected = |column: &str| {
        column == base.entity_key
            || base.grain.contains(&column)
            || LINEAGE.iter().any(|l| l.name == column)
    };
    let exists = |column: &str| base.all_columns().any(|c| c.name == column);
    for old in renames
        .keys()
        .map(String::as_str)
        .chain(drops.iter().map(String::as_str))
    {
        if !exists(old) {
            return Err(format!("{t}: no column named {old:?}"));
        }
        if protected(old) {
            return Err(format!(
                "{t}.{old} is a key or lineage column: it can be neither renamed nor dropped"
            ));
        }
    }
    if let Some(both) = drops.iter().find(|d| renames.contains_key(*d)) {
        return Err(format!("{t}.{both} is both renamed and dropped"));
    }
    if !adds.is_empty() && base.root != base.name {
        return Err(format!(
            "{t}: columns can be added to root tables only (one row per entity: \
             conversations, chats, agents, skills, agent_groups); for a value from a list, \
             use a [*] path with pick = \"first\", \"last\" or \"all\""
        ));
    }

    let mut columns = Vec::new();
    let mut kept = Vec::new();
    for (i, c) in base.columns.iter().enumerate() {
        if drops.iter().any(|d| d == c.name) {
            summary.dropped.push(format!("{t}.{}", c.name));
            continue;
        }
        kept.push(i);
        match renames.get(c.name) {
            None => columns.push(*c),
            Some(new) => {
                check_name(t, new)?;
                summary.renamed.push(format!("{t}.{} -> {new}", c.name));
                columns.push(Column {
                    name: leak(new.clone()),
                    description: leak(format!("{} (renamed from `{}`)", c.description, c.name)),
                    ..*c
                });
            }
        }
    }
    let mut added = Vec::new();
    for a in adds {
        check_name(t, &a.column)?;
        let ty = parse_type(t, &a.column, &a.ty)?;
        if a.pick == Pick::All && ty != ColumnType::Utf8 {
            return Err(format!(
                "{t}.{}: pick = \"all\" gives a JSON array, so its type must be string",
                a.column
            ));
        }
        let path = parse_path(&a.path).map_err(|e| format!("{t}.{}: {e}", a.column))?;
        summary.added.push(format!("{t}.{}", a.column));
        columns.push(Column {
            name: leak(a.column.clone()),
            ty,
            nullable: true,
            source: leak(format!("{} (column mapping, pick {:?})", a.path, a.pick).to_lowercase()),
            description: leak(
                a.description
                    .clone()
                    .unwrap_or_else(|| format!("Added by the column mapping from `{}`.", a.path)),
            ),
        });
        added.push(Added {
            ty,
            path,
            pick: a.pick,
        });
    }
    let mut seen = HashSet::new();
    for name in columns
        .iter()
        .chain(LINEAGE)
        .map(|c| c.name.to_ascii_lowercase())
    {
        if !seen.insert(name.clone()) {
            return Err(format!(
                "{t}: two columns would be named {name:?} (names must be unique, ignoring case)"
            ));
        }
    }
    let def = Box::leak(Box::new(TableDef {
        columns: Box::leak(columns.into_boxed_slice()),
        ..*base
    }));
    Ok(TableMapping {
        base,
        def,
        kept,
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_refuse_clearly() {
        assert_eq!(
            parse_path("sdes.events[*].x[0][*]").unwrap(),
            vec![
                Step::Key("sdes".into()),
                Step::Key("events".into()),
                Step::Each,
                Step::Key("x".into()),
                Step::Index(0),
                Step::Each
            ]
        );
        for bad in ["", "a..b", "[0]", "a[x]", "a[0", "a[0]b", "a]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_picked_and_typed_leniently() {
        let record: Value = serde_json::json!({
            "sdes": {"events": [
                {"customerInfo": {"customerInfo": {"customerStatus": "silver", "balance": "12.5"}}},
                {"personalInfo": {}},
                {"customerInfo": {"customerInfo": {"customerStatus": "gold", "balance": 7}}},
                {"customerInfo": {"customerInfo": {"customerStatus": "undefined"}}}
            ]},
            "info": {"mcs": "42", "flag": "TRUE", "when": "2026-11-01T00:00:00Z", "bad": "x"}
        });
        let value = |path: &str, ty: ColumnType, pick: Pick| {
            Added {
                ty,
                path: parse_path(path).unwrap(),
                pick,
            }
            .value(&record)
        };
        let status = "sdes.events[*].customerInfo.customerInfo.customerStatus";
        assert_eq!(
            value(status, ColumnType::Utf8, Pick::Last),
            Some("gold".into())
        );
        assert_eq!(
            value(status, ColumnType::Utf8, Pick::First),
            Some("silver".into())
        );
        assert_eq!(
            value(status, ColumnType::Utf8, Pick::All),
            Some(r#"["silver","gold"]"#.into())
        );
        let balance = "sdes.events[*].customerInfo.customerInfo.balance";
        assert_eq!(
            value(balance, ColumnType::Float64, Pick::First),
            Some(12.5.into())
        );
        assert_eq!(
            value(balance, ColumnType::Int64, Pick::Last),
            Some(7.into())
        );
        assert_eq!(
            value("info.mcs", ColumnType::Int64, Pick::Last),
            Some(42.into())
        );
        assert_eq!(
            value("info.flag", ColumnType::Boolean, Pick::Last),
            Some(true.into())
        );
        assert_eq!(
            value("info.when", ColumnType::TimestampMs, Pick::Last),
            Some(1_793_491_200_000i64.into())
        );
        assert_eq!(value("info.bad", ColumnType::Int64, Pick::Last), None);
        assert_eq!(value("info.missing", ColumnType::Utf8, Pick::Last), None);
        assert_eq!(
            value("sdes.events[1].x", ColumnType::Utf8, Pick::Last),
            None
        );
        assert_eq!(
            value("sdes.events[1]", ColumnType::Utf8, Pick::Last),
            Some("{\"personalInfo\":{}}".into())
        );
    }

    #[test]
    fn mapped_definitions_keep_keys_and_lineage() {
        let mapping = ColumnMapping::parse(
            r#"
            [[add]]
            table = "conversations"
            column = "customer_status"
            path = "sdes.events[*].customerInfo.customerInfo.customerStatus"
            [rename.conversations]
            mcs = "meaningful_connection_score"
            [drop]
            messages = ["device"]
            "#,
        )
        .unwrap();
        let conversations = mapping.table("conversations").unwrap().def();
        let names: Vec<&str> = conversations.all_columns().map(|c| c.name).collect();
        assert!(names.contains(&"meaningful_connection_score"));
        assert!(!names.contains(&"mcs"));
        assert_eq!(names[names.len() - 4], "customer_status");
        assert_eq!(
            &names[names.len() - 3..],
            ["account_id", "drop_id", "extracted_at"]
        );
        let messages = mapping.table("messages").unwrap().def();
        assert!(!messages.all_columns().any(|c| c.name == "device"));
        assert_eq!(
            mapping.summary().renamed,
            ["conversations.mcs -> meaningful_connection_score"]
        );
        assert_eq!(mapping.summary().dropped, ["messages.device"]);
        let mapped = mapping.tables_of(Source::Messaging);
        assert!(std::ptr::eq(mapped[0], conversations));
        assert_eq!(mapped.len(), crate::MESSAGING_TABLES.len());
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let refused = |text: &str, needle: &str| {
            let e = ColumnMapping::parse(text).unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        refused("[drop]\nnope = [\"x\"]", "no table named \"nope\"");
        refused(
            "[drop]\nconversations = [\"nope\"]",
            "no column named \"nope\"",
        );
        refused(
            "[drop]\nconversations = [\"conversation_id\"]",
            "key or lineage column",
        );
        refused("[drop]\nmessages = [\"drop_id\"]", "key or lineage column");
        refused(
            "[rename.conversations]\nmcs = \"Bad Name\"",
            "must be snake_case",
        );
        refused(
            "[rename.conversations]\nmcs = \"status\"",
            "two columns would be named \"status\"",
        );
        refused(
            "[[add]]\ntable = \"messages\"\ncolumn = \"x\"\npath = \"a\"",
            "root tables only",
        );
        refused(
            "[[add]]\ntable = \"conversations\"\ncolumn = \"x\"\npath = \"a\"\ntype = \"int\"",
            "is not one of",
        );
        refused(
            "[[add]]\ntable = \"conversations\"\ncolumn = \"x\"\npath = \"a\"\ntype = \"int64\"\npick = \"all\"",
            "must be string",
        );
        refused(
            "[[add]]\ntable = \"conversations\"\ncolumn = \"x\"\npath = \"a[\"",
            "unclosed [",
        );
        refused(
            "[[add]]\ntable = \"conversations\"\ncolum = \"x\"",
            "unknown field",
        );
        refused("[renames]", "unknown field");
    }
}

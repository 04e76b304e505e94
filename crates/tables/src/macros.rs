//! The `table!` macro and the small helpers every table module uses.
//!
//! Each table is declared with [`table!`]: a column's name, type, source and description sit
//! next to the expression that fills it, so definitions and row code cannot drift apart.

use lpdrop_liveperson::lenient::{Int, RawJson, Text};

macro_rules! col_type {
    (utf8) => {
        $crate::schema::ColumnType::Utf8
    };
    (int64) => {
        $crate::schema::ColumnType::Int64
    };
    (float64) => {
        $crate::schema::ColumnType::Float64
    };
    (boolean) => {
        $crate::schema::ColumnType::Boolean
    };
    (timestamp_ms) => {
        $crate::schema::ColumnType::TimestampMs
    };
}

macro_rules! nullable {
    () => {
        true
    };
    (required) => {
        false
    };
}

/// Declares a table definition and the function that writes one row of it.
///
/// `entity: Source("root_table", "key_column")` says which API the rows come from, and which
/// root table's newest row per key decides the current drop of an entity (see
/// [`crate::schema::TableDef::root`]).
macro_rules! table {
    (
        $(#[$meta:meta])*
        $def:ident, fn $fill:ident($w:ident $(, $arg:ident : $argty:ty)*),
        name: $name:literal,
        entity: $source:ident($root:literal, $key:literal),
        grain: [$($grain:literal),*],
        description: $desc:literal,
        columns: {
            $( $col:literal : $ty:ident $([$req:ident])? = $expr:expr => $src:literal, $cdesc:literal; )*
        }
    ) => {
        $(#[$meta])*
        pub static $def: $crate::schema::TableDef = $crate::schema::TableDef {
            name: $name,
            source: $crate::schema::Source::$source,
            root: $root,
            entity_key: $key,
            grain: &[$($grain),*],
            description: $desc,
            columns: &[$($crate::schema::Column {
                name: $col,
                ty: col_type!($ty),
                nullable: nullable!($($req)?),
                source: $src,
                description: $cdesc,
            }),*],
        };

        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $fill($w: &mut $crate::buffer::RowWriter<'_> $(, $arg: $argty)*) {
            $( $w.$ty($expr); )*
        }
    };
}

pub(crate) fn s(t: &Text) -> Option<&str> {
    t.0.as_deref()
}

pub(crate) fn raw(r: &RawJson) -> Option<&str> {
    r.0.as_deref()
}

/// A list of strings as a JSON array; `None` when the list is empty.
pub(crate) fn text_list_json(items: &[Text]) -> Option<String> {
    let list: Vec<&str> = items.iter().filter_map(s).collect();
    (!list.is_empty()).then(|| serde_json::to_string(&list).expect("strings serialize"))
}

/// A list of integers as a JSON array; `None` when the list is empty.
pub(crate) fn int_list_json(items: &[Int]) -> Option<String> {
    let list: Vec<i64> = items.iter().filter_map(|i| i.0).collect();
    (!list.is_empty()).then(|| serde_json::to_string(&list).expect("integers serialize"))
}

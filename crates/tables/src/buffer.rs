//! Row buffers: typed Arrow builders for one table, filled row by row, finished into batches.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;

use crate::schema::{ColumnType, LINEAGE, TableDef};

/// Values that are the same for every row of a drop, appended when a batch is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub account_id: String,
    pub drop_id: String,
    pub extracted_at_ms: i64,
}

pub(crate) enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    TimestampMs(TimestampMillisecondBuilder),
}

impl ColumnBuilder {
    pub(crate) fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Utf8 => ColumnBuilder::Utf8(StringBuilder::new()),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnType::TimestampMs => {
                ColumnBuilder::TimestampMs(TimestampMillisecondBuilder::new().with_timezone("UTC"))
            }
        }
    }

    /// Appends a value already converted to the column's type ([`crate::mapping`]); `None`,
    /// or a value of another type, is NULL.
    pub(crate) fn append_json(&mut self, v: Option<&serde_json::Value>) {
        match self {
            ColumnBuilder::Utf8(b) => b.append_option(v.and_then(|v| v.as_str())),
            ColumnBuilder::Int64(b) => b.append_option(v.and_then(|v| v.as_i64())),
            ColumnBuilder::Float64(b) => b.append_option(v.and_then(|v| v.as_f64())),
            ColumnBuilder::Boolean(b) => b.append_option(v.and_then(|v| v.as_bool())),
            ColumnBuilder::TimestampMs(b) => b.append_option(v.and_then(|v| v.as_i64())),
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::TimestampMs(b) => Arc::new(b.finish()),
        }
    }
}

/// Rows of one table not yet turned into a batch.
pub struct TableBuffer {
    def: &'static TableDef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// Rough size of the buffered values, to cut batches by bytes as well as rows.
    approx_bytes: usize,
}

impl TableBuffer {
    pub fn new(def: &'static TableDef) -> Self {
        TableBuffer {
            def,
            columns: def
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.ty))
                .collect(),
            rows: 0,
            approx_bytes: 0,
        }
    }

    pub fn def(&self) -> &'static TableDef {
        self.def
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Starts a row; every data column must then be written once, in order.
    pub fn row(&mut self) -> RowWriter<'_> {
        RowWriter {
            buffer: self,
            next: 0,
        }
    }

    /// Turns the buffered rows into a batch (lineage columns added) and empties the buffer.
    pub fn finish_batch(&mut self, lineage: &Lineage) -> RecordBatch {
        let n = self.rows;
        let mut arrays: Vec<ArrayRef> =
            self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        debug_assert_eq!(LINEAGE.len(), 3);
        let mut account = StringBuilder::with_capacity(n, n * lineage.account_id.len());
        let mut drop = StringBuilder::with_capacity(n, n * lineage.drop_id.len());
        let mut at = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        for _ in 0..n {
            account.append_value(&lineage.account_id);
            drop.append_value(&lineage.drop_id);
            at.append_value(lineage.extracted_at_ms);
        }
        arrays.push(Arc::new(account.finish()));
        arrays.push(Arc::new(drop.finish()));
        arrays.push(Arc::new(at.finish()));
        self.rows = 0;
        self.approx_bytes = 0;
        RecordBatch::try_new(self.def.arrow_schema(), arrays).unwrap_or_else(|e| {
            panic!(
                "table {} built a batch that does not match its schema: {e}",
                self.def.name
            )
        })
    }
}

/// The buffer of `def` among `buffers` (one per table of `tables`, in order).
pub(crate) fn buffer_of<'a>(
    tables: &[&'static TableDef],
    buffers: &'a mut [TableBuffer],
    def: &'static TableDef,
) -> &'a mut TableBuffer {
    let i = tables
        .iter()
        .position(|t| std::ptr::eq(*t, def))
        .unwrap_or_else(|| panic!("table {} is not in this source's list", def.name));
    &mut buffers[i]
}

/// Writes one row, column by column, in definition order.
pub struct RowWriter<'a> {
    buffer: &'a mut TableBuffer,
    next: usize,
}

impl RowWriter<'_> {
    /// The builder of the next column, checked against the definition.
    fn next(&mut self, ty: ColumnType, is_null: bool) -> &mut ColumnBuilder {
        let def = self.buffer.def;
        let column = def
            .columns
            .get(self.next)
            .unwrap_or_else(|| panic!("table {}: more values than columns", def.name));
        assert_eq!(
            column.ty, ty,
            "table {} column {}: written as {ty:?}",
            def.name, column.name
        );
        assert!(
            column.nullable || !is_null,
            "table {} column {} is required but got no value",
            def.name,
            column.name
        );
        self.next += 1;
        &mut self.buffer.columns[self.next - 1]
    }

    pub fn utf8(&mut self, v: Option<&str>) {
        self.buffer.approx_bytes += v.map_or(0, str::len) + 4;
        if let ColumnBuilder::Utf8(b) = self.next(ColumnType::Utf8, v.is_none()) {
            b.append_option(v);
        }
    }

    pub fn int64(&mut self, v: Option<i64>) {
        self.buffer.approx_bytes += 8;
        if let ColumnBuilder::Int64(b) = self.next(ColumnType::Int64, v.is_none()) {
            b.append_option(v);
        }
    }

    pub fn float64(&mut self, v: Option<f64>) {
        self.buffer.approx_bytes += 8;
        if let ColumnBuilder::Float64(b) = self.next(ColumnType::Float64, v.is_none()) {
            b.append_option(v);
        }
    }

    pub fn boolean(&mut self, v: Option<bool>) {
        self.buffer.approx_bytes += 1;
        if let ColumnBuilder::Boolean(b) = self.next(ColumnType::Boolean, v.is_none()) {
            b.append_option(v);
        }
    }

    pub fn timestamp_ms(&mut self, v: Option<i64>) {
        self.buffer.approx_bytes += 8;
        if let ColumnBuilder::TimestampMs(b) = self.next(ColumnType::TimestampMs, v.is_none()) {
            b.append_option(v);
        }
    }
}

impl Drop for RowWriter<'_> {
    fn drop(&mut self) {
        // A short row would shift every later value into the wrong column: refuse it loudly.
        if !std::thread::panicking() {
            assert_eq!(
                self.next,
                self.buffer.def.columns.len(),
                "table {}: row has {} values for {} columns",
                self.buffer.def.name,
                self.next,
                self.buffer.def.columns.len()
            );
        }
        self.buffer.rows += 1;
    }
}

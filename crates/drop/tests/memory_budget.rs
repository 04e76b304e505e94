//! The writer's memory budget: the open row groups of all tables together stay under
//! `WriterOptions::memory_budget_bytes`, the largest are written out first, and every row
//! still reaches its file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use lpdrop_drop::{
    DropInfo, DropLayout, DropWriter, LocalStore, Manifest, Prefix, SourceInfo, WriterOptions,
};
use lpdrop_tables::{MESSAGING_TABLES, TableDef};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn info() -> DropInfo {
    DropInfo {
        job: None,
        source: SourceInfo {
            account_id: "12345678".into(),
            api: "messaging_interactions".into(),
            window_from: "2026-11-20T00:00:00.000Z".into(),
            window_to: "2026-11-21T00:00:00.000Z".into(),
            time_basis: "conversation_start".into(),
            filters: serde_json::json!({}),
            conversations: 0,
            open_conversations: 0,
        },
    }
}

fn table(name: &str) -> &'static TableDef {
    MESSAGING_TABLES
        .iter()
        .copied()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
}

/// Deterministic noise (splitmix64), so that values neither repeat nor compress.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn text(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

/// `rows` rows for `def`, every column filled, strings of `text_len` hex characters.
fn batch(def: &TableDef, rows: usize, text_len: usize, noise: &mut Noise) -> RecordBatch {
    let schema = def.arrow_schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|_| noise.text(text_len)),
                )),
                DataType::Int64 => Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|_| (noise.next() >> 1) as i64),
                )),
                DataType::Float64 => Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|_| (noise.next() >> 11) as f64),
                )),
                DataType::Boolean => Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|_| Some(noise.next() & 1 == 1)),
                )),
                DataType::Timestamp(TimeUnit::Millisecond, tz) => Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        (0..rows).map(|_| (noise.next() >> 24) as i64),
                    )
                    .with_timezone_opt(tz.clone()),
                ),
                other => panic!("no test values for {other}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn layout() -> DropLayout {
    DropLayout::new(Prefix::default(), chrono::Utc::now(), uuid::Uuid::new_v4())
}

/// Encoded sizes of the row groups of every file of `table`, file by file.
fn row_groups(root: &Path, manifest: &Manifest, table: &str) -> Vec<Vec<i64>> {
    let entry = manifest.tables.iter().find(|t| t.name == table).unwrap();
    entry
        .files
        .iter()
        .map(|f| {
            let reader = SerializedFileReader::new(File::open(root.join(&f.key)).unwrap()).unwrap();
            let meta = reader.metadata();
            (0..meta.num_row_groups())
                .map(|i| meta.row_group(i).compressed_size())
                .collect()
        })
        .collect()
}

fn rows_of(manifest: &Manifest, table: &str) -> u64 {
    manifest
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap()
        .rows
}

/// Writes `batches` of (table, batch) and checks the budget after every one.
fn write_checked(writer: &mut DropWriter, budget: usize, batches: &[(&str, RecordBatch)]) {
    for (name, batch) in batches {
        writer.write_batch(name, batch).unwrap();
        let stats = writer.memory_stats();
        assert!(
            stats.buffered_bytes <= budget,
            "{name}: {} bytes held after a write, over the budget of {budget}",
            stats.buffered_bytes
        );
    }
}

#[test]
fn open_row_groups_stay_within_the_budget_across_tables() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 3 << 20;
    let options = WriterOptions {
        memory_budget_bytes: budget,
        min_row_group_bytes: 1 << 20,
        // Finished pages stay in memory here, so every batch adds to what is held.
        spill_pages: false,
        ..Default::default()
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout(),
        &MESSAGING_TABLES,
        options,
    );
    let names = [
        "messages",
        "message_statuses",
        "conversations",
        "agent_participants",
        "transfers",
    ];
    let mut noise = Noise(7);
    let mut batches = Vec::new();
    for round in 0..40 {
        for (i, name) in names.iter().enumerate() {
            // messages grows fastest, transfers slowest.
            let rows = 400 / (i + 1) + round % 3;
            batches.push((*name, batch(table(name), rows, 24, &mut noise)));
        }
    }
    // What one batch can add: the most any of them holds alone in a fresh writer (where it
    // also pays for setting up its table's column encoders).
    let one_batch = batches
        .iter()
        .map(|(name, b)| {
            let probe_dir = tempfile::tempdir().unwrap();
            let mut probe = DropWriter::new(
                Arc::new(LocalStore::new(probe_dir.path())),
                layout(),
                &MESSAGING_TABLES,
                WriterOptions {
                    spill_pages: false,
                    memory_budget_bytes: usize::MAX,
                    ..Default::default()
                },
            );
            probe.write_batch(name, b).unwrap();
            probe.memory_stats().buffered_bytes
        })
        .max()
        .unwrap();
    write_checked(&mut writer, budget, &batches);
    let stats = writer.memory_stats();
    assert!(stats.budget_flushes > 0, "the budget was never reached");
    assert!(
        stats.peak_buffered_bytes <= budget + one_batch,
        "peak {} over budget {budget} + one batch {one_batch}",
        stats.peak_buffered_bytes
    );
    let manifest = writer.commit(info()).unwrap().manifest;
    // Every row reached its file.
    for name in names {
        let expected: usize = batches
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, b)| b.num_rows())
            .sum();
        assert_eq!(rows_of(&manifest, name), expected as u64, "{name}");
    }
    // The fastest-growing table was cut most often.
    let groups = |name| -> usize {
        row_groups(dir.path(), &manifest, name)
            .iter()
            .map(Vec::len)
            .sum()
    };
    assert!(groups("messages") > 1);
    assert!(groups("messages") >= groups("transfers"));
}

#[test]
fn a_small_table_is_not_cut_while_a_big_one_holds_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 2 << 20;
    let options = WriterOptions {
        memory_budget_bytes: budget,
        min_row_group_bytes: 512 << 10,
        spill_pages: false,
        ..Default::default()
    };
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout(),
        &MESSAGING_TABLES,
        options,
    );
    let mut noise = Noise(11);
    let mut batches = Vec::new();
    for _ in 0..60 {
        batches.push(("messages", batch(table("messages"), 300, 40, &mut noise)));
        batches.push(("intents", batch(table("intents"), 2, 40, &mut noise)));
    }
    write_checked(&mut writer, budget, &batches);
    assert!(writer.memory_stats().budget_flushes >= 3);
    let manifest = writer.commit(info()).unwrap().manifest;
    let messages = row_groups(dir.path(), &manifest, "messages");
    let intents = row_groups(dir.path(), &manifest, "intents");
    assert_eq!(
        intents,
        vec![vec![intents[0][0]]],
        "intents was cut: {intents:?}"
    );
    let cut: Vec<i64> = messages.concat();
    assert!(cut.len() >= 3, "messages: {cut:?}");
    // Every row group but the last was written out at a useful size.
    for size in &cut[..cut.len() - 1] {
        assert!(*size >= 256 << 10, "a tiny row group: {cut:?}");
    }
    assert_eq!(rows_of(&manifest, "messages"), 60 * 300);
    assert_eq!(rows_of(&manifest, "intents"), 60 * 2);
}

#[test]
fn spilled_pages_keep_row_groups_large_and_memory_small() {
    let dir = tempfile::tempdir().unwrap();
    let row_group = 24 << 20;
    let options = WriterOptions {
        row_group_bytes: row_group,
        memory_budget_bytes: 12 << 20,
        ..Default::default()
    };
    assert!(options.spill_pages, "spilling is the default");
    let mut writer = DropWriter::new(
        Arc::new(LocalStore::new(dir.path())),
        layout(),
        &MESSAGING_TABLES,
        options,
    );
    let mut noise = Noise(3);
    let mut written = Vec::new();
    while written
        .iter()
        .map(RecordBatch::get_array_memory_size)
        .sum::<usize>()
        < 3 * row_group
    {
        let b = batch(table("message_scores"), 2000, 32, &mut noise);
        writer.write_batch("message_scores", &b).unwrap();
        written.push(b);
    }
    let stats = writer.memory_stats();
    // The pages were on disk: the encoders alone never came near the row group size, and
    // the budget never had to cut a row group.
    assert!(
        stats.peak_buffered_bytes < row_group / 3,
        "held {} with spilled pages",
        stats.peak_buffered_bytes
    );
    assert_eq!(stats.budget_flushes, 0);
    let manifest = writer.commit(info()).unwrap().manifest;
    let groups = row_groups(dir.path(), &manifest, "message_scores").concat();
    assert!(groups.len() >= 2, "{groups:?}");
    for size in &groups[..groups.len() - 1] {
        assert!(*size as usize >= row_group * 3 / 4, "{groups:?}");
    }
    // And the pages came back intact: the file reads back to what was written.
    let entry = manifest
        .tables
        .iter()
        .find(|t| t.name == "message_scores")
        .unwrap();
    let mut read = Vec::new();
    for f in &entry.files {
        let file = File::open(dir.path().join(&f.key)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        read.extend(reader.map(Result::unwrap));
    }
    let schema = written[0].schema();
    let expected = arrow::compute::concat_batches(&schema, &written).unwrap();
    let actual = arrow::compute::concat_batches(&schema, &read).unwrap();
    assert_eq!(expected, actual);
}

/// The heap limit counts the process's real heap (the allocator's own figure), not the encoders'
/// estimate: below what the process holds, every look at the heap writes row groups out
/// early, the writer never spins, and every row still reaches its file. Other tests of this
/// binary allocate at the same time, which only adds to the heap seen.
#[cfg(not(target_env = "msvc"))]
#[test]
fn a_heap_limit_below_the_heap_writes_row_groups_out_early_and_loses_nothing() {
    let write = |heap_limit_bytes| {
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions {
            heap_limit_bytes,
            min_row_group_bytes: 1 << 20,
            ..Default::default()
        };
        let mut writer = DropWriter::new(
            Arc::new(LocalStore::new(dir.path())),
            layout(),
            &MESSAGING_TABLES,
            options,
        );
        let mut noise = Noise(5);
        let mut rows = 0;
        for _ in 0..30 {
            let b = batch(table("messages"), 500, 32, &mut noise);
            rows += b.num_rows() as u64;
            writer.write_batch("messages", &b).unwrap();
            // The heap is looked at no more often than every few milliseconds.
            std::thread::sleep(std::time::Duration::from_millis(6));
        }
        let stats = writer.memory_stats();
        let manifest = writer.commit(info()).unwrap().manifest;
        assert_eq!(rows_of(&manifest, "messages"), rows);
        let groups: usize = row_groups(dir.path(), &manifest, "messages")
            .iter()
            .map(Vec::len)
            .sum();
        (stats, groups)
    };
    let (limited, limited_groups) = write(Some(1));
    assert!(limited.peak_heap_bytes > 0, "the heap was never looked at");
    assert!(limited.heap_flushes >= 10, "{limited:?}");
    assert!(limited_groups >= 10, "{limited_groups} row groups");
    assert_eq!(
        limited.budget_flushes, 0,
        "the estimate's budget was not the cause"
    );

    let (unlimited, unlimited_groups) = write(None);
    assert_eq!(unlimited.heap_flushes, 0);
    assert_eq!(unlimited.peak_heap_bytes, 0, "no limit, no look");
    assert_eq!(unlimited_groups, 1);
}

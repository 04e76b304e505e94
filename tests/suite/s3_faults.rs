//! Reliability under S3 faults: publishing goes through a fault-injecting proxy in front of
//! moto (`lpdrop_testkit::fault_proxy`) that answers 500 InternalError or 503 SlowDown, resets
//! connections, or resets them after S3 has executed the request (the answer to a completed
//! write is lost).
//!
//! The store retries every request that failed for a passing reason (8 attempts by default),
//! and checks a write whose last attempt failed before reporting it: an object equal to what
//! was sent means the write landed. So at fault rates up to 30% on every write, every run must
//! commit a drop whose content equals a fault-free reference and that `lpdrop verify` accepts.
//!
//! The real binary runs `demo` (every file a `PutObject`) and `convert` with the hidden
//! `--s3-multipart-threshold 0` (every file a multipart upload: `UploadPart`,
//! `CompleteMultipartUpload`). Files of several parts are exercised in process, through the
//! same `S3Store` the binary uses, with one file large enough for three parts.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Arc;

use lpdrop_drop::{
    DropError, DropInfo, DropLayout, DropWriter, MARKER_NAME, ObjectStore, Prefix, RetryBudget,
    S3Store, S3WriteOptions, SourceInfo, WriterOptions,
};
use lpdrop_tables::{Lineage, MESSAGING_TABLES, MessagingTables};
use lpdrop_testkit::Moto;
use lpdrop_testkit::fault_proxy::{Fault, FaultProxy, FaultStats, Injection, RequestKind, Rule};
use sha2::{Digest, Sha256};

const BUCKET: &str = "lpdrop-faults";
/// Small enough that a run takes about a second without faults.
const PER_DAY: &str = "120";

/// The binary with `moto`'s credentials, talking to `endpoint` (moto itself or a proxy).
fn lpdrop(moto: &Moto, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lpdrop"));
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL", endpoint);
    // Nothing from the developer's shell leaks into a run.
    for var in [
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
        "LPDROP_S3_ROLE_ARN",
        "LPDROP_S3_SSE",
        "LP_ACCOUNT_ID",
        "LP_DOMAIN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("lpdrop runs")
}

/// Every rule kind fails at `rate`, with each of the four faults equally likely.
fn rules(rate: f64) -> Vec<Rule> {
    RequestKind::FAULTABLE
        .iter()
        .map(|kind| Rule::new(*kind, rate, &Fault::ALL))
        .collect()
}

/// A client for `endpoint` configured like the binary's. Its standard retry mode is turned off
/// by [`S3Store::new`] (the store retries itself); its own retry partition keeps runs in one
/// test process apart all the same.
fn client(endpoint: &str, partition: String) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(RetryConfig::standard())
        .retry_partition(RetryPartition::new(partition))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn keys_under(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("list (directly on moto)");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys
}

/// Roots of the drops under `prefix` that have an `upload.complete`.
async fn committed_roots(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    keys_under(s3, prefix)
        .await
        .iter()
        .filter_map(|k| k.strip_suffix(&format!("/{MARKER_NAME}")))
        .map(str::to_string)
        .collect()
}

/// An object's bytes, read directly from moto. They are a `bytes::Bytes`, which the parquet
/// reader takes as an in-memory file (this package does not depend on `bytes` by name).
async fn get(
    s3: &aws_sdk_s3::Client,
    key: &str,
) -> impl parquet::file::reader::ChunkReader + std::ops::Deref<Target = [u8]> + 'static {
    s3.get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
}

/// What a drop holds, independent of its id and time.
#[derive(Debug)]
struct Contents {
    /// Window start of the source: the demo syncs "yesterday", so two runs on either side of
    /// midnight UTC read different data.
    window_from: String,
    rows: BTreeMap<String, u64>,
    /// Per table, its rows as sorted lines of their non-lineage values.
    lines: BTreeMap<String, Vec<String>>,
}

/// Reads a committed drop back from S3 (directly from moto, never through the proxy), checks
/// each file's size, SHA-256 and row count against the manifest, and returns its content.
async fn drop_contents(s3: &aws_sdk_s3::Client, root: &str) -> Contents {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(s3, &format!("{root}/manifest.json")).await).unwrap();
    let lineage = ["account_id", "drop_id", "extracted_at"];
    let mut contents = Contents {
        window_from: manifest["source"]["window_from"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        rows: BTreeMap::new(),
        lines: BTreeMap::new(),
    };
    for table in manifest["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap().to_string();
        let mut lines = Vec::new();
        let mut rows = 0;
        for file in table["files"].as_array().unwrap() {
            let key = file["key"].as_str().unwrap();
            let data = get(s3, key).await;
            assert_eq!(data.len() as u64, file["bytes"].as_u64().unwrap(), "{key}");
            let sha: String = Sha256::digest(&*data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(sha, file["sha256"].as_str().unwrap(), "{key}");
            let reader = ParquetRecordBatchReaderBuilder::try_new(data)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                rows += batch.num_rows() as u64;
                let schema = batch.schema();
                // Timestamps compare as epoch milliseconds (formatting a zone needs chrono-tz).
                let arrays: Vec<_> = (0..batch.num_columns())
                    .filter(|&i| !lineage.contains(&schema.field(i).name().as_str()))
                    .map(|i| match batch.column(i).data_type() {
                        arrow::datatypes::DataType::Timestamp(..) => arrow::compute::cast(
                            batch.column(i),
                            &arrow::datatypes::DataType::Int64,
                        )
                        .unwrap(),
                        _ => batch.column(i).clone(),
                    })
                    .collect();
                let columns: Vec<_> = arrays
                    .iter()
                    .map(|a| {
                        ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).unwrap()
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
        assert_eq!(rows, table["rows"].as_u64().unwrap(), "rows of {name}");
        lines.sort();
        contents.rows.insert(name.clone(), rows);
        contents.lines.insert(name, lines);
    }
    contents
}

fn show(injections: &[Injection]) -> String {
    injections
        .iter()
        .map(|i| {
            format!(
                "#{} {} {} ({}){}",
                i.request,
                i.fault,
                i.method,
                i.target,
                i.upstream_status
                    .map(|s| format!(", upstream answered {s}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n    ")
}

/// What a one-shot run publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OneShot {
    /// `lpdrop demo`: every file a `PutObject`.
    Demo,
    /// `lpdrop convert` of saved pages, every file a multipart upload.
    Convert,
}

impl OneShot {
    /// Runs it (with `-v`, so that retries are logged) through `endpoint` into `prefix`.
    fn run(self, moto: &Moto, endpoint: &str, pages: &std::path::Path, prefix: &str) -> Output {
        let out = format!("s3://{BUCKET}/{prefix}");
        let mut cmd = lpdrop(moto, endpoint);
        cmd.arg("-v");
        match self {
            OneShot::Demo => cmd.args(["demo", "--per-day", PER_DAY, "--out", &out]),
            OneShot::Convert => cmd
                .args(["convert", "--s3-multipart-threshold", "0", "--input"])
                .arg(pages)
                .args(["--out", &out]),
        };
        output(&mut cmd)
    }
}

struct Run {
    kind: OneShot,
    seed: u64,
    rate: f64,
    prefix: String,
    out: Output,
    stats: FaultStats,
    injections: Vec<Injection>,
}

/// Retries the store logged in a `-v` run's stderr.
fn retries_logged(stderr: &str) -> usize {
    stderr.matches("failed, retrying").count()
}

#[test]
fn demo_and_convert_commit_through_s3_faults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    let dumped = output(
        lpdrop(&moto, &moto.url)
            .args(["emulator", "dump", "--conversations", "300", "--out"])
            .arg(&pages),
    );
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );

    // The fault-free references, straight to moto.
    let reference_run = |kind: OneShot, prefix: &str| {
        let out = kind.run(&moto, &moto.url, &pages, prefix);
        assert!(
            out.status.success(),
            "reference run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let roots = rt.block_on(committed_roots(&s3, &format!("{prefix}/")));
        assert_eq!(roots.len(), 1, "one reference drop");
        rt.block_on(drop_contents(&s3, &roots[0]))
    };
    let convert_reference = reference_run(OneShot::Convert, "ref-convert");
    let mut demo_references = vec![reference_run(OneShot::Demo, "ref")];
    assert!(demo_references[0].rows["conversations"] > 0);
    assert!(convert_reference.rows["conversations"] > 0);

    // Runs in parallel, each through its own proxy (so each has its own seed and counts).
    let rates = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30];
    let scenarios: Vec<(OneShot, u64, f64)> = [OneShot::Demo, OneShot::Convert]
        .iter()
        .flat_map(|&kind| rates.iter().map(move |&rate| (kind, rate)))
        .zip(1u64..)
        .map(|((kind, rate), seed)| (kind, seed, rate))
        .collect();
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|&(kind, seed, rate)| {
                let (moto, pages) = (&moto, &pages);
                scope.spawn(move || {
                    let proxy = FaultProxy::start(&moto.url, seed, rules(rate));
                    let prefix = format!("run-{seed:02}");
                    let out = kind.run(moto, proxy.url(), pages, &prefix);
                    Run {
                        kind,
                        seed,
                        rate,
                        prefix,
                        out,
                        stats: proxy.stats(),
                        injections: proxy.injections(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut total = FaultStats::default();
    let mut retries = 0;
    for run in &runs {
        total.add(&run.stats);
        let stderr = String::from_utf8_lossy(&run.out.stderr);
        retries += retries_logged(&stderr);
        let roots = rt.block_on(committed_roots(&s3, &format!("{}/", run.prefix)));
        let context = format!(
            "{:?} run {} (seed {}, rate {}): exit {:?}; {} retries logged; {}\n  faults:\n    {}",
            run.kind,
            run.prefix,
            run.seed,
            run.rate,
            run.out.status.code(),
            retries_logged(&stderr),
            run.stats,
            show(&run.injections)
        );
        eprintln!("{context}");
        assert_eq!(
            run.stats.proxy_errors, 0,
            "the proxy itself failed: {context}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{context}\n  stderr:\n{stderr}"
        );
        assert!(
            run.out.status.success(),
            "every run commits despite the faults: {context}\n  stderr:\n{stderr}"
        );
        assert_eq!(roots.len(), 1, "exactly one committed drop: {context}");
        let contents = rt.block_on(drop_contents(&s3, &roots[0]));
        let reference = match run.kind {
            OneShot::Convert => &convert_reference,
            OneShot::Demo => {
                // Past midnight UTC the demo syncs another day: compare with that day's.
                if !demo_references
                    .iter()
                    .any(|r| r.window_from == contents.window_from)
                {
                    let prefix = format!("ref-{}", demo_references.len());
                    demo_references.push(reference_run(OneShot::Demo, &prefix));
                }
                demo_references
                    .iter()
                    .find(|r| r.window_from == contents.window_from)
                    .expect("a reference for the run's window")
            }
        };
        assert_eq!(contents.rows, reference.rows, "row counts: {context}");
        assert!(
            contents.lines == reference.lines,
            "the drop's content differs from the reference: {context}"
        );
        let verify = output(
            lpdrop(&moto, &moto.url).args(["verify", &format!("s3://{BUCKET}/{}", roots[0])]),
        );
        assert!(
            verify.status.success(),
            "verify: {}\n{context}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }

    eprintln!(
        "FIGURES (binary: {} demo and convert runs, all committed): {retries} retries logged; \
         {total}",
        runs.len()
    );
    // Not vacuous: every faultable write got faults, of every type, and the store retried.
    for kind in RequestKind::FAULTABLE {
        assert!(
            total.faults_of(kind) > 0,
            "no {kind} fault injected: {total}"
        );
    }
    for fault in Fault::ALL {
        assert!(
            total.faults_of_type(fault) > 0,
            "no {fault} injected: {total}"
        );
    }
    assert!(retries > 0, "no retry logged");
}

// ---------------------------------------------------------------------------------------------
// The multipart path, in process.

fn source() -> SourceInfo {
    SourceInfo {
        account_id: "12345678".into(),
        api: "messaging_interactions".into(),
        window_from: "2026-11-20T00:00:00.000Z".into(),
        window_to: "2026-11-21T00:00:00.000Z".into(),
        time_basis: "conversation_start".into(),
        filters: serde_json::json!({}),
        conversations: 0,
        open_conversations: 0,
    }
}

/// A deterministic, poorly compressible text (so the `messages` file spans several parts).
fn text(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// The conversations every in-process drop holds: 200, three messages each, about 13 MB of
/// message text, so the `messages` file goes up in three 5 MiB parts.
fn records() -> Vec<serde_json::Value> {
    (0..200i64)
        .map(|i| {
            let messages: Vec<_> = (0..3i64)
                .map(|m| {
                    serde_json::json!({
                        "messageId": format!("m{m}"),
                        "timeL": 1_763_600_000_100i64 + i * 1000 + m,
                        "messageData": {"msg": {"text": text((i * 3 + m) as u64, 22_000)}}
                    })
                })
                .collect();
            serde_json::json!({
                "info": {"conversationId": format!("c{i:04}"), "startTimeL": 1_763_600_000_000i64 + i * 1000},
                "messageRecords": messages,
                "transfers": [{"timeL": 1_763_600_000_200i64 + i * 1000, "reason": "Skill"}]
            })
        })
        .collect()
}

/// Every file through the multipart path (threshold 0), 5 MiB parts (S3's minimum), 4 at once.
fn multipart_options() -> S3WriteOptions {
    S3WriteOptions {
        multipart_threshold: 0,
        part_size: 5 << 20,
        upload_concurrency: 4,
        ..S3WriteOptions::default()
    }
}

/// Writes and commits one drop of [`records`] under `prefix` through `client` (blocking: the
/// writer waits on `runtime` for the store, so this must not run on one of its worker threads).
fn write_drop(
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Handle,
    prefix: &str,
    records: &[serde_json::Value],
) -> (DropLayout, Result<lpdrop_drop::CommittedDrop, DropError>) {
    let store = Arc::new(S3Store::new(
        &client,
        BUCKET,
        multipart_options(),
        RetryBudget::default(),
    ));
    // The writer waits for the store on the runtime it is made in.
    let _in_runtime = runtime.enter();
    let layout = DropLayout::new(
        Prefix::parse(prefix).unwrap(),
        chrono::Utc::now(),
        uuid::Uuid::new_v4(),
    );
    let lineage = Lineage {
        account_id: "12345678".into(),
        drop_id: layout.id().to_string(),
        extracted_at_ms: 0,
    };
    let mut writer = DropWriter::new(
        store,
        layout.clone(),
        &MESSAGING_TABLES,
        WriterOptions::default(),
    );
    let mut tables = MessagingTables::new();
    for record in records {
        tables.append(&serde_json::from_value(record.clone()).unwrap());
    }
    for buffer in tables.buffers_mut() {
        let batch = buffer.finish_batch(&lineage);
        if let Err(e) = writer.write_batch(buffer.def().name, &batch) {
            return (layout, Err(e));
        }
    }
    let mut source = source();
    source.conversations = records.len() as u64;
    let result = writer.commit(DropInfo { source, job: None });
    (layout, result)
}

/// A store straight on moto (no proxy), for checks.
fn direct(s3: &aws_sdk_s3::Client) -> S3Store {
    S3Store::new(s3, BUCKET, S3WriteOptions::default(), RetryBudget::none())
}

struct MultipartRun {
    seed: u64,
    rate: f64,
    prefix: String,
    layout: DropLayout,
    result: Result<(), DropError>,
    stats: FaultStats,
    injections: Vec<Injection>,
}

#[test]
fn multipart_drops_commit_through_s3_faults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    let records = records();

    let (layout, reference) = write_drop(
        client(&moto.url, "reference".into()),
        rt.handle().clone(),
        "ref",
        &records,
    );
    reference.expect("the fault-free reference drop");
    let reference = rt.block_on(drop_contents(&s3, &layout.root()));
    let messages_key = format!("{}/parquet/messages/part-00000.parquet", layout.root());
    let head = rt
        .block_on(s3.head_object().bucket(BUCKET).key(&messages_key).send())
        .unwrap();
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "the messages file went up in three parts: {:?}",
        head.e_tag()
    );

    let scenarios: [(u64, f64); 6] = [
        (11, 0.05),
        (12, 0.10),
        (13, 0.15),
        (14, 0.20),
        (15, 0.25),
        (16, 0.30),
    ];
    let handle = rt.handle().clone();
    let runs: Vec<MultipartRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|&(seed, rate)| {
                let (moto, handle, records) = (&moto, handle.clone(), &records);
                scope.spawn(move || {
                    let proxy = FaultProxy::start(&moto.url, seed, rules(rate));
                    let prefix = format!("mp-{seed:02}");
                    let (layout, result) = write_drop(
                        client(proxy.url(), format!("run-{seed}")),
                        handle,
                        &prefix,
                        records,
                    );
                    MultipartRun {
                        seed,
                        rate,
                        prefix,
                        layout,
                        result: result.map(|_| ()),
                        stats: proxy.stats(),
                        injections: proxy.injections(),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut total = FaultStats::default();
    for run in &runs {
        let MultipartRun {
            seed,
            rate,
            prefix,
            layout,
            result,
            stats,
            injections,
        } = run;
        total.add(stats);
        let roots = rt.block_on(committed_roots(&s3, &format!("{prefix}/")));
        let pending = rt.block_on(direct(&s3).pending_uploads(&format!("{prefix}/")));
        let context = format!(
            "run {prefix} (seed {seed}, rate {rate}): {:?}; {stats}\n  faults:\n    {}\n  \
             multipart uploads left open: {}",
            result.as_ref().map_err(ToString::to_string),
            show(injections),
            pending.as_ref().map_or(0, Vec::len),
        );
        eprintln!("{context}");
        assert_eq!(stats.proxy_errors, 0, "the proxy itself failed: {context}");
        assert!(
            result.is_ok(),
            "every run commits despite the faults: {context}"
        );
        assert!(
            pending.as_ref().is_ok_and(Vec::is_empty),
            "a committed run leaves no multipart upload open: {context}"
        );
        assert_eq!(roots, vec![layout.root()], "{context}");
        let contents = rt.block_on(drop_contents(&s3, &layout.root()));
        assert_eq!(contents.rows, reference.rows, "row counts: {context}");
        assert!(
            contents.lines == reference.lines,
            "the drop's content differs from the reference: {context}"
        );
        let report = rt
            .block_on(lpdrop_drop::verify(&direct(&s3), &layout.root()))
            .unwrap();
        assert!(report.ok(), "verify: {:?}\n{context}", report.problems);
    }

    eprintln!(
        "FIGURES (in-process multipart): {} runs, all committed; {total}",
        runs.len()
    );
    // Not vacuous: the multipart requests got faults of every type. (Only the manifest and
    // the marker go up with PutObject here, two requests a run: the binary's test covers it.)
    for kind in [
        RequestKind::UploadPart,
        RequestKind::CompleteMultipartUpload,
    ] {
        assert!(
            total.faults_of(kind) > 0,
            "no {kind} fault injected: {total}"
        );
    }
    for fault in Fault::ALL {
        assert!(
            total.faults_of_type(fault) > 0,
            "no {fault} injected: {total}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic reproductions of the lost-answer cases.

/// The answer to the marker's create-only write is lost after S3 wrote it: the store's retry
/// meets our own marker (412). The run committed, so it must succeed (found by this suite).
#[test]
fn a_lost_answer_to_the_marker_write_is_not_a_failure() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    // The first marker write reaches S3; its answer is lost; the retry passes through.
    let proxy = FaultProxy::start(
        &moto.url,
        0,
        vec![
            Rule::new(RequestKind::PutObject, 1.0, &[Fault::ResetAfterForward])
                .key_contains(MARKER_NAME)
                .at_most(1),
        ],
    );
    let out = output(lpdrop(&moto, proxy.url()).args([
        "demo",
        "--per-day",
        "20",
        "--out",
        &format!("s3://{BUCKET}/marker"),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}\nstderr:\n{stderr}", show(&proxy.injections()));
    assert_eq!(proxy.stats().faults_of(RequestKind::PutObject), 1);
    let roots = rt.block_on(committed_roots(&s3, "marker/"));
    assert_eq!(roots.len(), 1, "the marker was written");
    assert!(
        out.status.success(),
        "the run committed its drop, so it must not fail: {stderr}"
    );
}

/// A short retry budget, so that tests whose requests fail every time end quickly.
fn quick_retries(attempts: u32) -> RetryBudget {
    RetryBudget {
        attempts,
        first_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(40),
    }
}

/// A local file of `len` poorly compressible bytes and its SHA-256 (hex).
fn file_of(dir: &std::path::Path, len: usize) -> (std::path::PathBuf, Vec<u8>, String) {
    let path = dir.join("object");
    let data = text(1, len).into_bytes();
    std::fs::write(&path, &data).unwrap();
    let sha = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (path, data, sha)
}

/// The first `kind` request reaches S3 and its answer is lost; every attempt after it gets
/// 500 InternalError. The store's `put_file` of `len` bytes (in one request or in parts, as
/// `options` says) must succeed, because the object landed.
fn lost_answer_then_errors(kind: RequestKind, len: usize, options: S3WriteOptions) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    let proxy = FaultProxy::start(
        &moto.url,
        0,
        vec![
            Rule::new(kind, 1.0, &[Fault::ResetAfterForward]).at_most(1),
            Rule::new(kind, 1.0, &[Fault::InternalError]),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (path, data, sha) = file_of(dir.path(), len);
    let attempts = 4;
    let store = S3Store::new(
        &client(proxy.url(), format!("{kind}")),
        BUCKET,
        options,
        quick_retries(attempts),
    );
    let result = rt.block_on(store.put_file("lost/object", &path, &sha));
    eprintln!("{}\nresult: {result:?}", show(&proxy.injections()));
    let stats = proxy.stats();
    assert_eq!(stats.faults_of(kind), u64::from(attempts), "{stats}");
    assert_eq!(
        stats.faults.get(&(kind, Fault::ResetAfterForward)),
        Some(&1),
        "{stats}"
    );
    let stored = rt.block_on(get(&s3, "lost/object"));
    assert!(*stored == data[..], "the first attempt landed");
    result.expect("the object landed, so put_file must not fail");
    assert!(
        rt.block_on(direct(&s3).pending_uploads("lost/"))
            .unwrap()
            .is_empty(),
        "no upload left open"
    );
}

/// A lost answer to `CompleteMultipartUpload` after S3 completed the upload, and 500s for
/// every retry (whatever S3 answers a repeated Complete, `NoSuchUpload` or an error): the
/// object is there, whole, so the upload is done.
#[test]
fn a_lost_answer_to_complete_multipart_upload_then_errors_is_a_success() {
    lost_answer_then_errors(
        RequestKind::CompleteMultipartUpload,
        6 << 20,
        multipart_options(),
    );
}

/// The same for the `PutObject` of a data file.
#[test]
fn a_lost_answer_to_a_data_file_put_then_errors_is_a_success() {
    lost_answer_then_errors(RequestKind::PutObject, 200 << 10, S3WriteOptions::default());
}

/// The control: a `CompleteMultipartUpload` that never reaches S3 fails once the budget is
/// spent, names the object, and aborts its upload.
#[test]
fn a_write_that_never_landed_fails_and_aborts_its_upload() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    let proxy = FaultProxy::start(
        &moto.url,
        0,
        vec![Rule::new(
            RequestKind::CompleteMultipartUpload,
            1.0,
            &[Fault::InternalError, Fault::Reset],
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let (path, _, sha) = file_of(dir.path(), 1 << 20);
    let store = S3Store::new(
        &client(proxy.url(), "never".into()),
        BUCKET,
        multipart_options(),
        quick_retries(3),
    );
    let err = rt
        .block_on(store.put_file("never/object", &path, &sha))
        .expect_err("nothing landed");
    assert_eq!(
        proxy
            .stats()
            .faults_of(RequestKind::CompleteMultipartUpload),
        3
    );
    assert!(
        err.to_string()
            .contains(&format!("s3://{BUCKET}/never/object")),
        "{err}"
    );
    assert!(rt.block_on(keys_under(&s3, "never/")).is_empty());
    assert!(
        rt.block_on(direct(&s3).pending_uploads("never/"))
            .unwrap()
            .is_empty(),
        "the upload was aborted"
    );
}

/// With `-v`, each retry is logged with the operation, the attempt and the cause; the budget
/// flags reach the store (`--store-attempts 1`: no retry, the run fails cleanly).
#[test]
fn retries_are_logged_at_verbose_and_the_budget_is_configurable() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let s3 = rt.block_on(moto.create_bucket(BUCKET));
    let two_slowdowns = || {
        FaultProxy::start(
            &moto.url,
            0,
            vec![Rule::new(RequestKind::PutObject, 1.0, &[Fault::SlowDown]).at_most(2)],
        )
    };

    let proxy = two_slowdowns();
    let out = output(
        lpdrop(&moto, proxy.url())
            .args([
                "-v",
                "demo",
                "--per-day",
                "20",
                "--store-retry-delay",
                "10ms",
            ])
            .args(["--out", &format!("s3://{BUCKET}/logged")]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("failed, retrying"))
        .collect();
    assert_eq!(retries.len(), 2, "{stderr}");
    for (line, attempt) in retries.iter().zip(1..) {
        eprintln!("{line}");
        assert!(
            line.contains("PutObject")
                && line.contains(&format!("attempt={attempt}"))
                && line.contains("SlowDown")
                && line.contains("logged/"),
            "names the operation, the key, the attempt and the cause: {line}"
        );
    }

    let proxy = two_slowdowns();
    let out = output(
        lpdrop(&moto, proxy.url())
            .env("LPDROP_STORE_ATTEMPTS", "1")
            .args(["-v", "demo", "--per-day", "20"])
            .args(["--out", &format!("s3://{BUCKET}/once")]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "one attempt cannot pass a SlowDown");
    assert!(!stderr.contains("failed, retrying"), "{stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains("SlowDown"),
        "{stderr}"
    );
    assert!(rt.block_on(committed_roots(&s3, "once/")).is_empty());
}

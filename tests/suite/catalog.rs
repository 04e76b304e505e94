//! The Glue Data Catalog end to end: the real binary registers its drops in moto's Glue (the
//! same moto server as S3), checked through the real aws-sdk-glue client against `schemas/`
//! and the drops' manifests.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use lpdrop_testkit::Moto;

const BUCKET: &str = "bi-catalog-bucket";

fn lpdrop(moto: &Moto) -> Command {
    let mut cmd = lpdrop_testkit::cli::clean_command(env!("CARGO_BIN_EXE_lpdrop"));
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn demo(moto: &Moto, prefix: &str, glue_database: Option<&str>) -> Output {
    let mut cmd = lpdrop(moto);
    cmd.args([
        "demo",
        "--per-day",
        "60",
        "--out",
        &format!("s3://{BUCKET}/{prefix}"),
    ]);
    if let Some(db) = glue_database {
        cmd.args(["--glue-database", db]);
    }
    run(&mut cmd)
}

/// `schemas/<table>.json` as (column, Athena type), written out here rather than taken from
/// the code under test.
fn schema_columns(table: &str) -> Vec<(String, String)> {
    let path = format!("{}/schemas/{table}.json", env!("CARGO_MANIFEST_DIR"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ty = match c["type"].as_str().unwrap() {
                "string" => "string",
                "int64" => "bigint",
                "float64" => "double",
                "boolean" => "boolean",
                "timestamp_ms_utc" => "timestamp",
                other => panic!("unknown type {other}"),
            };
            (c["name"].as_str().unwrap().to_string(), ty.to_string())
        })
        .collect()
}

/// The manifests of the committed drops under `prefix`, by drop root.
async fn manifests(moto: &Moto, prefix: &str) -> BTreeMap<String, serde_json::Value> {
    let s3 = moto.s3();
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        if let Some(root) = key.strip_suffix("/upload.complete") {
            let body = s3
                .get_object()
                .bucket(BUCKET)
                .key(format!("{root}/manifest.json"))
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            out.insert(root.to_string(), serde_json::from_slice(&body).unwrap());
        }
    }
    out
}

async fn keys_under(moto: &Moto, prefix: &str) -> Vec<String> {
    let listed = moto
        .s3()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    keys
}

/// Every table of `database`, by name: (columns, partitions as (drop_name, location)).
type Tables = BTreeMap<String, (Vec<(String, String)>, Vec<(String, String)>)>;

async fn catalog(moto: &Moto, database: &str) -> Tables {
    let glue = moto.glue();
    let tables = glue
        .get_tables()
        .database_name(database)
        .send()
        .await
        .unwrap();
    let mut out = Tables::new();
    for t in tables.table_list() {
        let sd = t.storage_descriptor().unwrap();
        assert_eq!(
            sd.serde_info().unwrap().serialization_library(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
        assert_eq!(t.table_type(), Some("EXTERNAL_TABLE"));
        let keys: Vec<&str> = t.partition_keys().iter().map(|k| k.name()).collect();
        assert_eq!(keys, ["drop_name"]);
        let columns = sd
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.r#type().unwrap().to_string()))
            .collect();
        let parts = glue
            .get_partitions()
            .database_name(database)
            .table_name(t.name())
            .send()
            .await
            .unwrap();
        let mut partitions: Vec<(String, String)> = parts
            .partitions()
            .iter()
            .map(|p| {
                (
                    p.values()[0].clone(),
                    p.storage_descriptor()
                        .unwrap()
                        .location()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        partitions.sort();
        assert!(
            out.insert(t.name().to_string(), (columns, partitions))
                .is_none(),
            "table {} twice",
            t.name()
        );
    }
    out
}

/// Each table once, with the columns and types of `schemas/`, and one partition per table per
/// committed drop, located where exactly that drop's files of that table are.
async fn assert_registered(moto: &Moto, database: &str, prefix: &str, drops: usize) {
    let manifests = manifests(moto, prefix).await;
    assert_eq!(manifests.len(), drops);
    let tables = catalog(moto, database).await;
    let expected_tables: Vec<String> = manifests.values().next().unwrap()["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let mut names: Vec<&String> = tables.keys().collect();
    let mut expected_sorted: Vec<&String> = expected_tables.iter().collect();
    names.sort();
    expected_sorted.sort();
    assert_eq!(names, expected_sorted);
    for (name, (columns, partitions)) in &tables {
        assert_eq!(columns, &schema_columns(name), "{name}");
        assert_eq!(partitions.len(), drops, "{name}: {partitions:?}");
        for (root, manifest) in &manifests {
            let drop_name = root.rsplit('/').next().unwrap();
            let location = format!("s3://{BUCKET}/{root}/parquet/{name}/");
            assert!(
                partitions.contains(&(drop_name.to_string(), location.clone())),
                "{name}: no partition {drop_name} at {location}: {partitions:?}"
            );
            let mut listed: Vec<String> = manifest["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name.as_str())
                .unwrap()["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["key"].as_str().unwrap().to_string())
                .collect();
            listed.sort();
            assert_eq!(
                keys_under(moto, &format!("{root}/parquet/{name}/")).await,
                listed,
                "{name} in {root}: the partition holds exactly the manifest's files"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_demo_drops_are_registered_once_and_an_uncommitted_one_never() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    // The first drop names the database with the flag, the second in the config file.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lpdrop.toml");
    std::fs::write(&config, "glue_database = \"lpdrop_bi\"\n").unwrap();
    let first = demo(&moto, "athena", Some("lpdrop_bi"));
    let mut cmd = lpdrop(&moto);
    cmd.arg("--config").arg(&config).args([
        "demo",
        "--per-day",
        "60",
        "--out",
        &format!("s3://{BUCKET}/athena"),
    ]);
    let second = run(&mut cmd);
    for out in [first, second] {
        assert!(out.status.success());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("registered in Glue database lpdrop_bi"),
            "{stdout}"
        );
    }
    // A third drop dies after its manifest, before upload.complete: never registered.
    let mut cmd = lpdrop(&moto);
    cmd.env("LPDROP_TEST_CRASH_AT", "manifest").args([
        "demo",
        "--per-day",
        "60",
        "--out",
        &format!("s3://{BUCKET}/athena"),
        "--glue-database",
        "lpdrop_bi",
    ]);
    let crashed = run(&mut cmd);
    assert!(!crashed.status.success());
    let all = keys_under(&moto, "athena/").await;
    assert_eq!(
        all.iter().filter(|k| k.ends_with("/manifest.json")).count(),
        3,
        "the third drop got as far as its manifest"
    );
    assert_registered(&moto, "lpdrop_bi", "athena/", 2).await;

    // `catalog sync` over the same prefix finds nothing left to do, and skips the uncommitted.
    let out = run(lpdrop(&moto).args([
        "catalog",
        "sync",
        &format!("s3://{BUCKET}/athena"),
        "--glue-database",
        "lpdrop_bi",
    ]));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 drops registered in Glue database lpdrop_bi, 2 registered already, 1 uncommitted skipped, 0 failed"),
        "{stdout}"
    );
    assert_registered(&moto, "lpdrop_bi", "athena/", 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_sync_registers_drops_written_without_the_flag_once() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    for _ in 0..2 {
        assert!(demo(&moto, "plain", None).status.success());
    }
    let prefix = format!("s3://{BUCKET}/plain");
    let dry = run(lpdrop(&moto).args([
        "catalog",
        "sync",
        &prefix,
        "--glue-database",
        "lpdrop_late",
        "--dry-run",
    ]));
    assert!(dry.status.success());
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        stdout.matches("would register s3://").count(),
        2,
        "{stdout}"
    );
    let dbs = moto.glue().get_databases().send().await.unwrap();
    assert!(
        dbs.database_list().is_empty(),
        "a dry run changes nothing: {dbs:?}"
    );

    let first =
        run(lpdrop(&moto).args(["catalog", "sync", &prefix, "--glue-database", "lpdrop_late"]));
    assert!(first.status.success());
    assert!(
        String::from_utf8_lossy(&first.stdout)
            .contains("2 drops registered in Glue database lpdrop_late, 0 registered already"),
    );
    assert_registered(&moto, "lpdrop_late", "plain/", 2).await;
    let before = catalog(&moto, "lpdrop_late").await;
    let again =
        run(lpdrop(&moto).args(["catalog", "sync", &prefix, "--glue-database", "lpdrop_late"]));
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("0 drops registered in Glue database lpdrop_late, 2 registered already"),
    );
    assert_eq!(
        catalog(&moto, "lpdrop_late").await,
        before,
        "a second run changes nothing"
    );
}

#[test]
fn glue_database_needs_an_s3_destination() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        lpdrop_testkit::cli::clean_command(env!("CARGO_BIN_EXE_lpdrop")).args([
            "demo",
            "--per-day",
            "10",
            "--out",
            dir.path().to_str().unwrap(),
            "--glue-database",
            "lpdrop",
        ]),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--glue-database needs an s3:// destination")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn glue_5xx_and_throttling_are_retried_and_register_everything_once() {
    use lpdrop_testkit::fault_proxy::{Fault, FaultProxy, RequestKind, Rule};
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let proxy = FaultProxy::start(
        &moto.url,
        7,
        vec![
            Rule::new(
                RequestKind::Glue,
                1.0,
                &[Fault::InternalError, Fault::SlowDown],
            )
            .at_most(3),
        ],
    );
    let mut cmd = lpdrop(&moto);
    cmd.env("AWS_ENDPOINT_URL_GLUE", proxy.url()).args([
        "demo",
        "--per-day",
        "60",
        "--out",
        &format!("s3://{BUCKET}/flaky"),
        "--glue-database",
        "lpdrop_flaky",
    ]);
    let out = run(&mut cmd);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("registered in Glue database lpdrop_flaky")
    );
    assert_eq!(
        proxy.stats().faults_of(RequestKind::Glue),
        3,
        "the faults happened"
    );
    assert_registered(&moto, "lpdrop_flaky", "flaky/", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_leaves_drops_committed_with_registration_pending_until_catalog_sync() {
    use lpdrop_testkit::fault_proxy::{Fault, FaultProxy, RequestKind, Rule};
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let denied = FaultProxy::start(
        &moto.url,
        1,
        vec![Rule::new(RequestKind::Glue, 1.0, &[Fault::AccessDenied])],
    );

    // One-shot: the drop is committed, the command succeeds and says what to run.
    let mut cmd = lpdrop(&moto);
    cmd.env("AWS_ENDPOINT_URL_GLUE", denied.url()).args([
        "demo",
        "--per-day",
        "60",
        "--out",
        &format!("s3://{BUCKET}/denied"),
        "--glue-database",
        "lpdrop_denied",
    ]);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "a refused registration never fails the drop"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("registration pending (the drop is committed)"),
        "{stdout}"
    );
    assert!(stdout.contains("access denied"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "complete it with: lpdrop catalog sync s3://{BUCKET}/denied --glue-database lpdrop_denied"
        )),
        "{stdout}"
    );
    assert_eq!(
        denied.stats().faults_of(RequestKind::Glue),
        1,
        "access denied is not retried"
    );
    assert_eq!(manifests(&moto, "denied/").await.len(), 1);

    // Worker: the job ends uploaded, with its registration pending, shown by jobs show/list.
    let emulator = crate::RunningEmulator::start(40);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let queue = queue.to_str().unwrap();
    let with_moto = |cmd: &mut Command| {
        for (k, v) in moto.env() {
            cmd.env(k, v);
        }
    };
    let mut add = crate::with_queue(queue, emulator.url());
    with_moto(&mut add);
    add.args([
        "jobs",
        "add",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        &format!("s3://{BUCKET}/denied"),
    ]);
    assert!(run(&mut add).status.success());
    let mut worker = crate::with_queue(queue, emulator.url());
    with_moto(&mut worker);
    worker
        .env("AWS_ENDPOINT_URL_GLUE", denied.url())
        .env("LPDROP_GLUE_DATABASE", "lpdrop_denied")
        .args(["worker", "--once"]);
    assert!(run(&mut worker).status.success());
    let jobs_json = || {
        let out = run(crate::with_queue(queue, emulator.url()).args(["jobs", "list", "--json"]));
        let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        jobs.as_array().unwrap()[0].clone()
    };
    let job = jobs_json();
    assert_eq!(job["state"], "uploaded");
    let pending = job["catalog_pending"].as_str().unwrap_or_default();
    assert!(pending.contains("access denied"), "{job}");
    let show = run(crate::with_queue(queue, emulator.url()).args(["jobs", "show", "1"]));
    assert!(String::from_utf8_lossy(&show.stdout).contains("registration pending"));
    assert_eq!(manifests(&moto, "denied/").await.len(), 2);

    // With the permission back, catalog sync registers both and completes the job's mark.
    let mut sync = lpdrop(&moto);
    sync.env("LPDROP_QUEUE", queue).args([
        "catalog",
        "sync",
        &format!("s3://{BUCKET}/denied"),
        "--glue-database",
        "lpdrop_denied",
    ]);
    let out = run(&mut sync);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 drops registered in Glue database lpdrop_denied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 jobs' pending catalog registrations completed"),
        "{stdout}"
    );
    assert!(jobs_json()["catalog_pending"].is_null());
    assert_registered(&moto, "lpdrop_denied", "denied/", 2).await;
}

/// `schedule --glue-database` completes the registrations left pending by workers (no listing
/// of the prefix): one that fails again stays pending and is reported, and once Glue answers
/// the job's mark is cleared and its drop registered.
#[tokio::test(flavor = "multi_thread")]
async fn schedule_completes_pending_registrations() {
    use lpdrop_testkit::fault_proxy::{Fault, FaultProxy, RequestKind, Rule};
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let denied = FaultProxy::start(
        &moto.url,
        1,
        vec![Rule::new(RequestKind::Glue, 1.0, &[Fault::AccessDenied])],
    );
    let emulator = crate::RunningEmulator::start(40);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    let queue = queue.to_str().unwrap();
    let out_prefix = format!("s3://{BUCKET}/scheduled");
    let command = |glue_endpoint: &str| {
        let mut cmd = crate::with_queue(queue, emulator.url());
        for (k, v) in moto.env() {
            cmd.env(k, v);
        }
        cmd.env("AWS_ENDPOINT_URL_GLUE", glue_endpoint)
            .env("LPDROP_GLUE_DATABASE", "lpdrop_scheduled");
        cmd
    };
    let mut add = command(&moto.url);
    add.args([
        "jobs",
        "add",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        &out_prefix,
    ]);
    assert!(run(&mut add).status.success());
    assert!(
        run(command(denied.url()).args(["worker", "--once"]))
            .status
            .success()
    );

    // Nothing due (the first window of the schedule ends after --now): only registrations.
    let schedule = |glue_endpoint: &str| {
        run(command(glue_endpoint).args([
            "schedule",
            "--out",
            &out_prefix,
            "--start",
            "2026-03-02",
            "--now",
            "2026-03-02T00:05:00Z",
        ]))
    };
    let again_denied = schedule(denied.url());
    let stdout = String::from_utf8_lossy(&again_denied.stdout);
    assert!(again_denied.status.success(), "{stdout}");
    assert!(
        stdout.contains("catalog registration still pending"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Completed 0 pending catalog registrations"),
        "{stdout}"
    );

    let completed = schedule(&moto.url);
    let stdout = String::from_utf8_lossy(&completed.stdout);
    assert!(completed.status.success(), "{stdout}");
    assert!(
        stdout
            .contains("Completed 1 pending catalog registration in Glue database lpdrop_scheduled"),
        "{stdout}"
    );
    let list = run(crate::with_queue(queue, emulator.url()).args(["jobs", "list", "--json"]));
    let jobs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(jobs[0]["catalog_pending"].is_null(), "{jobs}");
    assert_registered(&moto, "lpdrop_scheduled", "scheduled/", 1).await;
    // A run with nothing pending says nothing about the catalog.
    let quiet = schedule(&moto.url);
    assert!(!String::from_utf8_lossy(&quiet.stdout).contains("catalog"));
}

/// `lpdrop listen --glue-database`: each webhook drop is registered as it is committed, its
/// four `webhook_*` tables and one partition each.
#[tokio::test(flavor = "multi_thread")]
async fn listen_registers_each_webhook_drop() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    let env = moto.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("LPDROP_GLUE_DATABASE", "lpdrop_webhooks"));
    let (listener, addr) = crate::listen::listen(
        "127.0.0.1:0",
        std::path::Path::new(&format!("s3://{BUCKET}/webhooks")),
        &dir.path().join("spool"),
        &["--roll-every", "1h"],
        &env,
    );
    for name in [
        "consumer-text-seq0.json",
        "agent-read-seq1.json",
        "conversation-open.json",
    ] {
        let body = std::fs::read(crate::listen::fixtures().join(name)).unwrap();
        let signature = crate::listen::signed(&body);
        let headers = [("X-LivePerson-Signature", signature.as_str())];
        assert_eq!(crate::listen::post(addr, "POST", "/", &headers, &body), 200);
    }
    listener.signal("TERM");
    let (status, lines) = listener.wait(std::time::Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registered in Glue database lpdrop_webhooks")),
        "{lines:#?}"
    );
    assert_registered(&moto, "lpdrop_webhooks", "webhooks/", 1).await;
}

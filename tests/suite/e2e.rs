//! End-to-end tests: the real `lpdrop` binary against the real emulator, in a fresh temp dir.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use lpdrop_testkit::cli::{committed_drops, output_text, run};

use crate::lpdrop;
use sha2::{Digest, Sha256};

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    lpdrop_testkit::cli::files_under(dir).into_iter().collect()
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a drop against the contract: layout, marker, manifest, every file's size, checksum
/// and row count, and nothing unlisted. Returns the manifest.
fn check_drop(out_root: &Path, drop: &Path) -> serde_json::Value {
    let rel = drop
        .strip_prefix(out_root)
        .unwrap()
        .to_string_lossy()
        .to_string();
    let parts: Vec<&str> = rel.split('/').collect();
    assert_eq!(parts.len(), 5, "YYYY/MM/DD/HH/<stamp>-<uuid>: {rel}");
    let stamp = format!("{}-{}-{}-{}-", parts[0], parts[1], parts[2], parts[3]);
    assert!(parts[4].starts_with(&stamp), "{rel}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(drop.join("manifest.json")).unwrap()).unwrap();
    let marker: serde_json::Value =
        serde_json::from_slice(&fs::read(drop.join("upload.complete")).unwrap()).unwrap();
    assert_eq!(marker["drop_id"], manifest["drop_id"]);
    assert_eq!(
        marker["manifest_sha256"].as_str().unwrap(),
        sha256_hex(&drop.join("manifest.json"))
    );
    assert_eq!(manifest["root"].as_str().unwrap(), rel);
    assert_eq!(manifest["producer"]["name"], "lpdrop");
    assert!(manifest["schema_version"].as_u64().unwrap() >= 1);

    let mut listed = BTreeSet::new();
    listed.insert(drop.join("manifest.json"));
    listed.insert(drop.join("upload.complete"));
    let mut total_rows = 0;
    for table in manifest["tables"].as_array().unwrap() {
        let mut table_rows = 0;
        for file in table["files"].as_array().unwrap() {
            let path = out_root.join(file["key"].as_str().unwrap());
            assert_eq!(path, drop.join(file["path"].as_str().unwrap()));
            assert!(file["path"].as_str().unwrap().starts_with(&format!(
                "parquet/{}/part-",
                table["name"].as_str().unwrap()
            )));
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                file["bytes"].as_u64().unwrap()
            );
            assert_eq!(sha256_hex(&path), file["sha256"].as_str().unwrap());
            let reader =
                parquet::file::reader::SerializedFileReader::new(fs::File::open(&path).unwrap())
                    .unwrap();
            use parquet::file::reader::FileReader;
            assert_eq!(
                reader.metadata().file_metadata().num_rows() as u64,
                file["rows"].as_u64().unwrap()
            );
            assert!(
                marker["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k == &file["key"])
            );
            table_rows += file["rows"].as_u64().unwrap();
            listed.insert(path);
        }
        assert_eq!(table_rows, table["rows"].as_u64().unwrap());
        total_rows += table_rows;
    }
    if let Some(q) = manifest["quarantine"]["file"].as_object() {
        listed.insert(out_root.join(q["key"].as_str().unwrap()));
    }
    assert_eq!(total_rows, manifest["totals"]["rows"].as_u64().unwrap());
    assert_eq!(
        files_under(drop),
        listed,
        "the drop holds exactly what the manifest lists"
    );
    manifest
}

fn table_rows(manifest: &serde_json::Value, name: &str) -> u64 {
    manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("table {name} in the manifest"))["rows"]
        .as_u64()
        .unwrap()
}

#[test]
fn demo_publishes_one_committed_drop() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(lpdrop().args(["demo", "--out"]).arg(dir.path().join("out")));
    assert!(out.status.success());
    let drops = committed_drops(&dir.path().join("out"));
    assert_eq!(drops.len(), 1);
    let manifest = check_drop(&dir.path().join("out"), &drops[0]);
    let conversations = table_rows(&manifest, "conversations");
    assert!(
        conversations >= 1000,
        "the demo syncs at least 1,000 conversations"
    );
    assert_eq!(
        manifest["source"]["conversations"].as_u64().unwrap(),
        conversations
    );
    for child in [
        "messages",
        "agent_participants",
        "consumer_participants",
        "transfers",
        "message_scores",
        "conversation_surveys",
    ] {
        assert!(table_rows(&manifest, child) > 0, "{child} has rows");
    }
    // Issue 13, bug 5: the demo shows every table and every column filled.
    assert_every_table_and_column_filled(&drops[0], &manifest);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(drops[0].to_str().unwrap()),
        "prints where the drop is"
    );
    assert!(stdout.contains("duckdb"), "prints how to query it");
}

/// Every table of the drop has rows, and every column holds a value in some row (from the
/// parquet statistics' null counts).
fn assert_every_table_and_column_filled(drop: &Path, manifest: &serde_json::Value) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tables = manifest["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 32, "every messaging table is in the drop");
    let mut always_null = Vec::new();
    for table in tables {
        let name = table["name"].as_str().unwrap();
        assert!(table["rows"].as_u64().unwrap() > 0, "{name} has no rows");
        let mut nulls: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for file in table["files"].as_array().unwrap() {
            let path = drop.join(file["path"].as_str().unwrap());
            let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
            for group in reader.metadata().row_groups() {
                for column in group.columns() {
                    let null_count = column
                        .statistics()
                        .and_then(|s| s.null_count_opt())
                        .expect("null counts in the statistics");
                    let entry = nulls.entry(column.column_path().string()).or_default();
                    entry.0 += null_count;
                    entry.1 += group.num_rows() as u64;
                }
            }
        }
        for (column, (null_count, rows)) in nulls {
            if null_count == rows {
                always_null.push(format!("{name}.{column}"));
            }
        }
    }
    assert!(
        always_null.is_empty(),
        "NULL in every row of the demo drop: {always_null:?}"
    );
}

/// `lpdrop emulator` on a free port, stopped when dropped.
struct RunningEmulator(lpdrop_testkit::EmulatorProcess);

impl RunningEmulator {
    fn start(per_day: u32) -> Self {
        Self::with_args(&["--per-day", &per_day.to_string()])
    }

    fn with_args(args: &[&str]) -> Self {
        let bin = crate::bin();
        RunningEmulator(lpdrop_testkit::EmulatorProcess::start(bin, args))
    }

    fn url(&self) -> &str {
        &self.0.url
    }
}

fn sync_cmd(url: &str, secret: &str) -> Command {
    let mut cmd = lpdrop();
    cmd.env("LP_DOMAIN", url)
        .env("LP_ACCOUNT_ID", "12345678")
        .env("LP_APP_KEY", "emulator")
        .env("LP_APP_SECRET", secret)
        .env("LP_ACCESS_TOKEN", "emulator")
        .env("LP_ACCESS_TOKEN_SECRET", "emulator");
    cmd
}

#[test]
fn sync_from_a_running_emulator_matches_its_data_set() {
    let emulator = RunningEmulator::start(500);
    let dir = tempfile::tempdir().unwrap();
    // Deliberately unaligned bounds across two days: sub-windows, rounding overlap, exact filter.
    let (from, to) = ("2026-03-01T10:03:00Z", "2026-03-02T13:07:30Z");
    let out = run(sync_cmd(emulator.url(), "emulator")
        .args(["sync", "--from", from, "--to", to, "--out"])
        .arg(dir.path()));
    assert!(out.status.success());
    let drops = committed_drops(dir.path());
    assert_eq!(drops.len(), 1);
    let manifest = check_drop(dir.path(), &drops[0]);

    let dataset = lpdrop_emulator::Dataset::new(&lpdrop_emulator::EmulatorConfig {
        per_day: 500,
        ..Default::default()
    });
    let from_ms = chrono::DateTime::parse_from_rfc3339(from)
        .unwrap()
        .timestamp_millis();
    let to_ms = chrono::DateTime::parse_from_rfc3339(to)
        .unwrap()
        .timestamp_millis();
    let expected = dataset.index_range(from_ms, to_ms - 1);
    assert_eq!(
        table_rows(&manifest, "conversations"),
        expected.end - expected.start,
        "exactly the emulator's conversations in [from, to), each once"
    );
    assert_eq!(
        manifest["source"]["window_from"],
        "2026-03-01T10:03:00.000Z"
    );
    assert_eq!(manifest["source"]["window_to"], "2026-03-02T13:07:30.000Z");
}

#[test]
fn chat_sync_over_more_than_a_month_holds_every_ended_chat_once() {
    let emulator = RunningEmulator::with_args(&["--chats-per-day", "40"]);
    let dir = tempfile::tempdir().unwrap();
    // 40 days: more than the Engagement History API's one-month limit, so the client splits.
    let (from, to) = ("2026-01-10T06:00:00Z", "2026-02-19T06:00:00Z");
    let out = run(sync_cmd(emulator.url(), "emulator")
        .args([
            "sync", "--source", "chat", "--from", from, "--to", to, "--out",
        ])
        .arg(dir.path()));
    assert!(out.status.success());
    let drops = committed_drops(dir.path());
    assert_eq!(drops.len(), 1);
    let manifest = check_drop(dir.path(), &drops[0]);
    assert_eq!(manifest["source"]["api"], "engagement_history");
    assert_eq!(manifest["source"]["time_basis"], "chat_start");
    let dataset = lpdrop_emulator::Dataset::new(&lpdrop_emulator::EmulatorConfig {
        chats_per_day: 40,
        ..Default::default()
    });
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    let expected = dataset.chat_index_range(ms(from), ms(to) - 1);
    assert!(expected.end - expected.start > 1_500, "{expected:?}");
    assert_eq!(
        table_rows(&manifest, "chats"),
        expected.end - expected.start
    );
    assert_eq!(
        manifest["source"]["conversations"],
        expected.end - expected.start
    );
    let tables: Vec<&str> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(tables.contains(&"chat_lines") && !tables.contains(&"conversations"));
    assert!(table_rows(&manifest, "chat_lines") > table_rows(&manifest, "chats"));
}

#[test]
fn dimension_sync_holds_every_agent_skill_and_group_deleted_ones_included() {
    let emulator = RunningEmulator::start(10);
    let dir = tempfile::tempdir().unwrap();
    let out = run(sync_cmd(emulator.url(), "emulator")
        .args([
            "sync",
            "--source",
            "dimensions",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-21",
        ])
        .arg("--out")
        .arg(dir.path()));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("users, skills and agent groups"),
        "{stdout}"
    );
    let drops = committed_drops(dir.path());
    assert_eq!(drops.len(), 1);
    let manifest = check_drop(dir.path(), &drops[0]);
    assert_eq!(manifest["source"]["api"], "account_configuration");
    for (table, entity) in [
        ("agents", "users"),
        ("skills", "skills"),
        ("agent_groups", "agentGroups"),
    ] {
        let served = lpdrop_emulator::account_config_list(entity).unwrap();
        assert!(
            served
                .iter()
                .any(|e| e["deleted"] == true || e["deleted"] == "true")
        );
        assert_eq!(table_rows(&manifest, table), served.len() as u64, "{table}");
    }
}

#[test]
fn sync_with_a_wrong_secret_fails_clearly_and_commits_nothing() {
    let emulator = RunningEmulator::start(200);
    let dir = tempfile::tempdir().unwrap();
    let out = run(sync_cmd(emulator.url(), "not-the-secret")
        .args([
            "sync",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--out",
        ])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "secrets never reach errors"
    );
    assert!(committed_drops(dir.path()).is_empty());
}

#[test]
fn plain_http_to_a_remote_domain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(sync_cmd("http://api.liveperson.net", "emulator")
        .args([
            "sync",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--out",
        ])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only on loopback"));
}

#[test]
fn bad_windows_and_destinations_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(sync_cmd("http://127.0.0.1:9", "x")
        .args([
            "sync",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-01",
            "--out",
        ])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty or inverted"));
    let out = run(lpdrop().args([
        "sync",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        "x",
    ]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing credentials is a usage error"
    );
}

#[test]
fn schema_json_matches_the_schema_files() {
    let out = run(lpdrop().args(["schema", "--format", "json"]));
    assert!(out.status.success());
    let tables: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for t in &tables {
        let file: serde_json::Value = serde_json::from_slice(
            &fs::read(root.join(format!("{}.json", t["table"].as_str().unwrap()))).unwrap(),
        )
        .unwrap();
        assert_eq!(&file, t);
    }
    let json_files = fs::read_dir(&root)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(tables.len(), json_files);
}

#[test]
fn verify_accepts_a_fresh_drop_and_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    assert!(
        run(lpdrop()
            .args(["demo", "--per-day", "200", "--out"])
            .arg(&out_root))
        .status
        .success()
    );
    let drop = committed_drops(&out_root).remove(0);
    let out = run(lpdrop().arg("verify").arg(&drop));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: drop "));

    // One flipped byte in a data file and one stray file: both reported, exit 1.
    let file = drop.join("parquet/messages/part-00000.parquet");
    let mut bytes = fs::read(&file).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&file, bytes).unwrap();
    fs::write(drop.join("parquet/transfers/notes.txt"), "stray").unwrap();
    let out = run(lpdrop().arg("verify").arg(&drop));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("parquet/messages/part-00000.parquet: SHA-256"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notes.txt is in the drop but not in the manifest"),
        "{stdout}"
    );

    // Without the marker the drop is not committed, whatever its files say.
    fs::remove_file(drop.join("upload.complete")).unwrap();
    let out = run(lpdrop().arg("verify").arg(&drop));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("upload.complete is missing"));
}

#[test]
fn gc_removes_old_uncommitted_drops_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    assert!(
        run(lpdrop()
            .args(["demo", "--per-day", "100", "--out"])
            .arg(&out_root))
        .status
        .success()
    );
    let committed = committed_drops(&out_root).remove(0);
    // An abandoned drop from a crashed run two days ago, and one being written right now.
    let old =
        out_root.join("2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001");
    fs::create_dir_all(old.join("parquet/messages")).unwrap();
    fs::write(old.join("parquet/messages/part-00000.parquet"), "partial").unwrap();
    let now = chrono::Utc::now();
    let fresh = out_root.join(format!(
        "{}/{}-0b6f3c1e-aaaa-4bbb-8ccc-000000000002",
        now.format("%Y/%m/%d/%H"),
        now.format("%Y-%m-%d-%H-%M-%S")
    ));
    fs::create_dir_all(fresh.join("parquet/messages")).unwrap();
    fs::write(
        fresh.join("parquet/messages/part-00000.parquet"),
        "in progress",
    )
    .unwrap();

    let out = run(lpdrop()
        .arg("gc")
        .arg(&out_root)
        .args(["--older-than", "24h", "--dry-run"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("would remove uncommitted drop"));
    assert!(old.exists(), "a dry run removes nothing");

    let out = run(lpdrop()
        .arg("gc")
        .arg(&out_root)
        .args(["--older-than", "24h"]));
    assert!(out.status.success());
    assert!(!old.exists(), "the abandoned drop is gone");
    assert!(
        !out_root.join("2026/01").exists(),
        "and so are the folders it leaves empty"
    );
    assert!(
        fresh.exists(),
        "a recent uncommitted drop may still be in progress"
    );
    assert!(run(lpdrop().arg("verify").arg(&committed)).status.success());
}

/// Every table of a drop as sorted lines of its non-lineage values, for comparing two drops
/// of the same records (drop ids and times differ, the data must not).
/// The drop checked against its manifest, then its rows per table (lineage left out).
fn table_contents(out_root: &Path, drop: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    check_drop(out_root, drop);
    lpdrop_testkit::contents::table_contents(drop)
}

#[test]
fn convert_of_saved_pages_writes_the_same_tables_as_sync_of_the_same_records() {
    const PER_DAY: u32 = 400;
    let dir = tempfile::tempdir().unwrap();
    // The first 250 conversations of the data set, saved as pages...
    let pages = dir.path().join("pages");
    assert!(
        run(lpdrop()
            .args([
                "emulator",
                "dump",
                "--conversations",
                "250",
                "--per-day",
                &PER_DAY.to_string(),
                "--out"
            ])
            .arg(&pages))
        .status
        .success()
    );
    let dataset = lpdrop_emulator::Dataset::new(&lpdrop_emulator::EmulatorConfig {
        per_day: PER_DAY,
        ..Default::default()
    });
    let from = lpdrop_liveperson::window::fmt_ms(dataset.start_time_ms(0));
    let to = lpdrop_liveperson::window::fmt_ms(dataset.start_time_ms(250));
    let converted = dir.path().join("converted");
    let out = run(lpdrop()
        .args(["convert", "--input"])
        .arg(&pages)
        .arg("--out")
        .arg(&converted)
        .args(["--from", &from, "--to", &to]));
    assert!(out.status.success());
    // ...and the same window synced from the emulator over HTTP.
    let emulator = RunningEmulator::start(PER_DAY);
    let synced = dir.path().join("synced");
    let out = run(sync_cmd(emulator.url(), "emulator")
        .args(["sync", "--from", &from, "--to", &to, "--out"])
        .arg(&synced));
    assert!(out.status.success());

    let a = table_contents(&converted, &committed_drops(&converted)[0]);
    let b = table_contents(&synced, &committed_drops(&synced)[0]);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert_eq!(a["conversations"].len(), 250);
    for (name, rows) in &a {
        assert_eq!(rows.len(), b[name].len(), "{name}: row counts differ");
        assert!(
            rows == &b[name],
            "{name}: contents differ between convert and sync"
        );
    }
}

/// A saved page whose records hold invalid UTF-8 (which makes serde_json refuse a whole
/// document) and an unreadable field: only those records go to quarantine, byte for byte, and
/// every other record of the page is converted.
#[test]
fn convert_quarantines_records_with_invalid_utf8_and_keeps_the_rest_of_the_page() {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    fs::create_dir(&pages).unwrap();
    let record = |id: &str, extra: &[u8]| -> Vec<u8> {
        let mut r = format!(
            r#"{{"info":{{"conversationId":"{id}","brandId":"123","startTimeL":1760000000000,"status":"CLOSE""#
        )
        .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"}}");
        r
    };
    let bad_utf8 = record("bad-utf8", b",\"device\":\"caf\xe9 \xff\"");
    let bad_field = record("bad-field", b",\"mcs\":{\"not\":\"a number\"}");
    let mut body = b"{\"_metadata\":{\"count\":\"5\"},\"conversationHistoryRecords\":[".to_vec();
    let records = [
        record("good-1", b""),
        bad_utf8.clone(),
        record("good-2", b",\"device\":\"\xc3\xa9t\xc3\xa9\""),
        bad_field,
        record("good-3", b""),
    ];
    body.extend_from_slice(&records.join(&b","[..]));
    body.extend_from_slice(b"]}");
    fs::write(pages.join("page-0001.json"), &body).unwrap();

    let out_root = dir.path().join("out");
    let out = run(lpdrop()
        .args(["convert", "--input"])
        .arg(&pages)
        .arg("--out")
        .arg(&out_root));
    assert!(out.status.success(), "a bad record never fails the job");
    let drops = committed_drops(&out_root);
    assert_eq!(drops.len(), 1);
    let manifest = check_drop(&out_root, &drops[0]);
    assert_eq!(table_rows(&manifest, "conversations"), 3);
    assert_eq!(manifest["quarantine"]["records"].as_u64(), Some(2));

    let key = manifest["quarantine"]["file"]["key"].as_str().unwrap();
    let lines: Vec<serde_json::Value> = fs::read_to_string(out_root.join(key))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let utf8 = &lines[0];
    let reason = utf8["reason"].as_str().unwrap();
    assert!(reason.starts_with("invalid UTF-8: byte 0xE9"), "{reason}");
    assert!(utf8["origin"].as_str().unwrap().ends_with("record 1"));
    let exact = BASE64_STANDARD
        .decode(utf8["record_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(exact, bad_utf8, "the record exactly as received");
    assert!(utf8["record"].as_str().unwrap().contains("caf\u{FFFD}"));
    assert!(lines[1]["reason"].as_str().unwrap().contains("info.mcs"));
    assert!(lines[1].get("record_base64").is_none());
}

/// A column mapping adds columns by path to a root table, renames and drops columns: the
/// files, the manifest, `verify` and every `lpdrop schema` format follow it, and a bad
/// mapping is refused as bad usage.
#[test]
fn column_mapping_adds_renames_and_drops_columns_everywhere() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let mapping = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/column-mapping.toml");
    let out_root = dir.path().join("out");
    let out = run(lpdrop()
        .arg("--column-mapping")
        .arg(&mapping)
        .args(["demo", "--per-day", "300", "--out"])
        .arg(&out_root));
    assert!(out.status.success());
    let drop = &committed_drops(&out_root)[0];
    let manifest = check_drop(&out_root, drop);
    let summary = &manifest["column_mapping"];
    assert_eq!(
        summary["added"],
        serde_json::json!([
            "conversations.customer_status",
            "conversations.first_message_text",
            "conversations.bot_intents"
        ])
    );
    assert_eq!(
        summary["renamed"],
        serde_json::json!(["conversations.mcs -> meaningful_connection_score"])
    );
    assert_eq!(summary["dropped"], serde_json::json!(["messages.device"]));
    assert_eq!(
        summary["sha256"].as_str().unwrap(),
        sha256_hex(&mapping),
        "the manifest names the mapping file by its hash"
    );

    // The parquet files: added columns before the lineage, filled where the records have the
    // field; the renamed column under its new name; the dropped one gone.
    let columns_and_values = |table: &str| -> (Vec<String>, Vec<usize>) {
        let folder = drop.join("parquet").join(table);
        let mut names = Vec::new();
        let mut non_null = Vec::new();
        for entry in fs::read_dir(&folder).unwrap() {
            let reader =
                SerializedFileReader::new(fs::File::open(entry.unwrap().path()).unwrap()).unwrap();
            let schema = reader.metadata().file_metadata().schema_descr();
            names = schema
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            non_null.resize(names.len(), 0);
            for rg in reader.metadata().row_groups() {
                for (i, c) in rg.columns().iter().enumerate() {
                    let nulls = c.statistics().and_then(|s| s.null_count_opt()).unwrap();
                    non_null[i] += (rg.num_rows() as u64 - nulls) as usize;
                }
            }
        }
        (names, non_null)
    };
    let (names, non_null) = columns_and_values("conversations");
    let at = |n: &str| names.iter().position(|c| c == n);
    let tail: Vec<&str> = names[names.len() - 6..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "customer_status",
            "first_message_text",
            "bot_intents",
            "account_id",
            "drop_id",
            "extracted_at"
        ]
    );
    for added in ["customer_status", "first_message_text", "bot_intents"] {
        assert!(non_null[at(added).unwrap()] > 0, "{added} is never filled");
    }
    assert!(at("meaningful_connection_score").is_some() && at("mcs").is_none());
    let (message_columns, _) = columns_and_values("messages");
    assert!(!message_columns.iter().any(|c| c == "device"));
    assert!(message_columns.iter().any(|c| c == "message_id"));

    assert!(
        run(lpdrop().arg("verify").arg(drop)).status.success(),
        "verify accepts a mapped drop"
    );

    // Every schema format shows the mapped tables.
    for format in ["json", "markdown", "athena", "spark", "duckdb"] {
        let out = run(lpdrop()
            .arg("--column-mapping")
            .arg(&mapping)
            .args(["schema", "--format", format]));
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        for name in [
            "customer_status",
            "bot_intents",
            "meaningful_connection_score",
        ] {
            assert!(text.contains(name), "{format} lacks {name}");
        }
        let plain =
            String::from_utf8(run(lpdrop().args(["schema", "--format", format])).stdout).unwrap();
        assert!(!plain.contains("bot_intents"), "{format} without a mapping");
    }

    // A bad mapping: exit 2, naming the file and the problem, before any work.
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, "[drop]\nconversations = [\"conversation_id\"]\n").unwrap();
    let out = run(lpdrop()
        .arg("--column-mapping")
        .arg(&bad)
        .args(["demo", "--out"])
        .arg(dir.path().join("never")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("key or lineage column"),
        "{err}"
    );
    assert!(!dir.path().join("never").exists());
}

/// The global parquet flags reach the files: codec, row-group and file sizes; a row group
/// larger than its file is bad usage (exit 2) before any work.
#[test]
fn parquet_flags_set_the_codec_and_the_row_group_and_file_sizes() {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    assert!(
        run(lpdrop()
            .args(["emulator", "dump", "--conversations", "1500", "--out"])
            .arg(&pages))
        .status
        .success()
    );
    // The messages table's files: (bytes, row groups' encoded sizes, codecs seen).
    let convert = |flags: &[&str], name: &str| {
        let out_root = dir.path().join(name);
        let out = run(lpdrop()
            .args(flags)
            .args(["convert", "--input"])
            .arg(&pages)
            .arg("--out")
            .arg(&out_root));
        assert!(out.status.success(), "{}", output_text(&out));
        let drop = &committed_drops(&out_root)[0];
        let manifest = check_drop(&out_root, drop);
        let messages = manifest["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "messages")
            .unwrap()
            .clone();
        messages["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| {
                let path = drop.join(file["path"].as_str().unwrap());
                let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
                let meta = reader.metadata();
                let groups: Vec<i64> = meta
                    .row_groups()
                    .iter()
                    .map(|g| g.compressed_size())
                    .collect();
                let codecs: BTreeSet<String> = meta
                    .row_groups()
                    .iter()
                    .flat_map(|g| g.columns().iter().map(|c| format!("{:?}", c.compression())))
                    .collect();
                (file["bytes"].as_u64().unwrap(), groups, codecs)
            })
            .collect::<Vec<_>>()
    };

    let small = convert(
        &[
            "--row-group-mb",
            "1",
            "--max-file-mb",
            "2",
            "--compression",
            "none",
        ],
        "small",
    );
    let groups: Vec<i64> = small.iter().flat_map(|(_, g, _)| g.clone()).collect();
    assert!(groups.len() >= 2, "messages in row groups of {groups:?}");
    for (bytes, groups, codecs) in &small {
        // Cut once past the limit, between the batches the table buffers hand over: never
        // far past it.
        assert!(groups.iter().all(|g| *g < 4 << 20), "{groups:?}");
        assert!(*bytes < 8 << 20, "{bytes}");
        assert_eq!(codecs, &BTreeSet::from(["UNCOMPRESSED".to_string()]));
    }
    let zstd = convert(&["--compression", "zstd"], "zstd");
    assert_eq!(zstd.len(), 1);
    assert!(
        zstd[0].2.iter().all(|c| c.starts_with("ZSTD")),
        "{:?}",
        zstd[0].2
    );
    assert!(zstd[0].0 < small.iter().map(|(b, _, _)| b).sum::<u64>() / 2);

    let out = run(lpdrop()
        .args([
            "--row-group-mb",
            "512",
            "--max-file-mb",
            "256",
            "convert",
            "--input",
        ])
        .arg(&pages)
        .arg("--out")
        .arg(dir.path().join("never")));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--row-group-mb 512"), "{err}");
    assert!(!dir.path().join("never").exists());
}

/// Issue 13, bug 3: a reader that goes away (`lpdrop schema | head -1`) ends the command
/// quietly, as Unix tools do: no "panicked ... Broken pipe", exit 0. The pipe is closed before
/// the first byte is read, so every command's first write meets it.
#[test]
fn commands_exit_quietly_when_the_reader_of_stdout_goes_away() {
    for args in [
        vec!["schema"],
        vec!["schema", "--format", "json"],
        vec!["completions", "bash"],
        vec!["--help"],
    ] {
        let mut child = lpdrop()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Issue 13, bug 1: a Postgres URL may carry its password as a query parameter; `config
/// check` shows the queue with it masked (and the connection error names the queue masked too).
#[test]
fn config_check_masks_a_password_given_as_a_query_parameter() {
    let out = run(lpdrop().args([
        "--queue",
        "postgres://u@127.0.0.1:1/db?password=hunter2-secret&sslmode=disable",
        "config",
        "check",
    ]));
    let all = output_text(&out);
    assert!(!all.contains("hunter2-secret"), "{all}");
    assert!(all.contains("password=***"), "{all}");
}

/// `lpdrop copy` between local folders: the copy verifies under the new folder with the same
/// drop id and byte-identical files; a source manifest of a newer format is refused (the
/// rewrite would lose what this release does not know), and nothing is committed for it.
#[test]
fn copy_between_folders_keeps_the_drop_and_refuses_a_newer_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    assert!(
        run(lpdrop()
            .args(["demo", "--per-day", "100", "--out"])
            .arg(&src))
        .status
        .success()
    );
    let drops = committed_drops(&src);
    assert_eq!(drops.len(), 1);
    let copied = run(lpdrop().arg("copy").arg(&drops[0]).arg("--out").arg(&dst));
    assert!(copied.status.success(), "{}", output_text(&copied));
    let copies = committed_drops(&dst);
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].strip_prefix(&dst).unwrap(),
        drops[0].strip_prefix(&src).unwrap(),
        "the dated folder is kept"
    );
    assert!(run(lpdrop().arg("verify").arg(&copies[0])).status.success());
    let manifest = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(d.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(
        manifest(&copies[0])["drop_id"],
        manifest(&drops[0])["drop_id"]
    );
    for f in files_under(&drops[0]) {
        if f.extension().is_some_and(|e| e == "parquet") {
            let rel = f.strip_prefix(&drops[0]).unwrap();
            assert_eq!(sha256_hex(&f), sha256_hex(&copies[0].join(rel)), "{rel:?}");
        }
    }

    let mut newer = manifest(&drops[0]);
    newer["format_version"] = serde_json::json!(99);
    fs::write(
        drops[0].join("manifest.json"),
        serde_json::to_vec_pretty(&newer).unwrap(),
    )
    .unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let refused = run(lpdrop()
        .arg("copy")
        .arg(&drops[0])
        .arg("--out")
        .arg(&elsewhere));
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("format version 99"),
        "{}",
        output_text(&refused)
    );
    assert!(committed_drops(&elsewhere).is_empty());
}

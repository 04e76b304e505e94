//! LivePerson's bad days, end to end: the real binary syncs from an emulator that injects 429s,
//! 5xx, dropped connections, truncated bodies, slow answers, `isPartial` records and partial
//! shard results. Every run either commits a drop holding exactly the rows of a fault-free run
//! (every table compared row by row, lineage columns left out) or fails with a clear error and
//! commits nothing. Retry delays are scaled down with the `--api-*` flags, not faked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lpdrop_testkit::EmulatorProcess;
use lpdrop_testkit::contents::table_contents;

const PER_DAY: &str = "600";
/// Unaligned bounds over two days: sub-windows, 10-minute rounding, exact filtering.
const FROM: &str = "2026-02-10T07:13:00Z";
const TO: &str = "2026-02-12T01:02:00Z";

use crate::bin;

fn sync(emulator: &EmulatorProcess, out: &Path, extra: &[&str]) -> Output {
    let out = Command::new(bin())
        .env("LP_DOMAIN", &emulator.url)
        .env("LP_ACCOUNT_ID", "12345678")
        .env("LP_APP_KEY", "emulator")
        .env("LP_APP_SECRET", "emulator")
        .env("LP_ACCESS_TOKEN", "emulator")
        .env("LP_ACCESS_TOKEN_SECRET", "emulator")
        .env_remove("LPDROP_CONFIG")
        .args(["sync", "--from", FROM, "--to", TO, "--out"])
        .arg(out)
        // LivePerson's delays (1 s after a 429, 5 s after a 5xx) scaled down for a test.
        .args(["--api-throttle-delay", "20ms", "--api-retry-delay", "30ms"])
        .args(["--api-timeout", "5s"])
        .args(extra)
        .output()
        .expect("lpdrop runs");
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn committed(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "upload.complete") {
                out.push(p.parent().unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

#[test]
fn every_kind_of_api_fault_gives_the_fault_free_drop_or_a_clean_failure() {
    let dir = tempfile::tempdir().unwrap();
    let clean = EmulatorProcess::start(bin(), &["--per-day", PER_DAY]);
    let reference_out = dir.path().join("reference");
    assert!(sync(&clean, &reference_out, &[]).status.success());
    let reference = table_contents(&committed(&reference_out)[0]);
    let conversations = reference["conversations"].len();
    assert!(conversations > 900, "{conversations} conversations");

    // Rates high enough that every kind fires many times over the run's ~30 pages and their
    // retries; `shards` and `partial` make the client fetch pages and records again.
    let specs = [
        "429=0.15,500=0.1,503=0.05,drop=0.05,truncate=0.05,seed=1",
        "shards=0.3,partial=0.2,seed=2",
        "429ra=0.1,retry-after=0,slow=0.1,slow-delay=300ms,500=0.1,partial=0.05,seed=3",
        "drop=0.15,truncate=0.15,shards=0.1,seed=4",
        "429=0.1,500=0.1,503=0.1,drop=0.05,truncate=0.05,shards=0.1,partial=0.1,slow=0.05,slow-delay=200ms,latency=5ms,seed=5",
    ];
    let (mut same, mut failed, mut total_retries) = (0, 0, 0);
    for (n, spec) in specs.iter().enumerate() {
        let emulator = EmulatorProcess::start(bin(), &["--per-day", PER_DAY, "--faults", spec]);
        let out_dir = dir.path().join(format!("run-{n}"));
        let out = sync(&emulator, &out_dir, &["-v"]);
        let drops = committed(&out_dir);
        // Not vacuous: the client met the faults and retried.
        let retries = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("retrying"))
            .count();
        assert!(retries > 0, "{spec}: no retry: the faults did not fire");
        total_retries += retries;
        if out.status.success() {
            assert_eq!(drops.len(), 1, "{spec}: one committed drop");
            let got = table_contents(&drops[0]);
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                reference.keys().collect::<Vec<_>>()
            );
            for (table, rows) in &reference {
                assert_eq!(
                    got[table].len(),
                    rows.len(),
                    "{spec}: {table} has {} rows, the fault-free run {}",
                    got[table].len(),
                    rows.len()
                );
                assert!(
                    got[table] == *rows,
                    "{spec}: {table} differs from the fault-free run"
                );
            }
            same += 1;
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(drops.is_empty(), "{spec}: a failed run committed {drops:?}");
            assert!(
                stderr.contains("error: ") && !stderr.contains("panicked"),
                "{stderr}"
            );
            failed += 1;
        }
    }
    eprintln!(
        "FIGURES: {} fault specs, {total_retries} retried requests: {same} drops identical to \
         the fault-free one, {failed} clean failures; {conversations} conversations in each",
        specs.len()
    );
    // Retries absorb these rates: every run must end with the full drop.
    assert_eq!(
        same,
        specs.len(),
        "runs failed although retries could recover"
    );
}

#[test]
fn retries_running_out_fail_clearly_and_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(bin(), &["--per-day", PER_DAY, "--faults", "503=1"]);
    let out = sync(&emulator, dir.path(), &["--api-attempts", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gave up after 3 attempts") && stderr.contains("503"),
        "names the attempts and the last error: {stderr}"
    );
    assert!(stderr.contains("MI search"), "names the request: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("gave up after"))
        .unwrap();
    assert_eq!(
        line.matches("MI search").count(),
        1,
        "names the request once: {line}"
    );
    assert!(committed(dir.path()).is_empty());
}

/// Records holding bytes that are not UTF-8 (a page serde_json alone would refuse whole),
/// mixed with 5xx retries: the job commits, exactly those records are in quarantine with
/// their exact bytes, and every other row of every table equals the fault-free run.
#[test]
fn records_with_invalid_utf8_are_quarantined_and_every_other_row_is_kept() {
    use base64::prelude::{BASE64_STANDARD, Engine as _};
    let dir = tempfile::tempdir().unwrap();
    let clean = EmulatorProcess::start(bin(), &["--per-day", PER_DAY]);
    let reference_out = dir.path().join("reference");
    assert!(sync(&clean, &reference_out, &[]).status.success());
    let reference = table_contents(&committed(&reference_out)[0]);

    let faulty = EmulatorProcess::start(
        bin(),
        &[
            "--per-day",
            PER_DAY,
            "--faults",
            "badutf8=0.03,500=0.1,seed=4",
        ],
    );
    let out_root = dir.path().join("faulty");
    let out = sync(&faulty, &out_root, &[]);
    assert!(out.status.success(), "bad records never fail the job");
    let drop = committed(&out_root).pop().expect("one committed drop");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(drop.join("manifest.json")).unwrap()).unwrap();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(drop.join("quarantine/records.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert!(lines.len() >= 10, "{} quarantined", lines.len());
    assert_eq!(
        manifest["quarantine"]["records"].as_u64(),
        Some(lines.len() as u64)
    );
    let mut quarantined = Vec::new();
    for line in &lines {
        let reason = line["reason"].as_str().unwrap();
        assert!(reason.starts_with("invalid UTF-8: byte 0xE9"), "{reason}");
        let exact = BASE64_STANDARD
            .decode(line["record_base64"].as_str().unwrap())
            .unwrap();
        assert!(
            exact.windows(2).any(|w| w == b"\xff\xfe"),
            "the bytes as sent"
        );
        assert!(std::str::from_utf8(&exact).is_err());
        // The text copy is JSON (U+FFFD for the bad bytes): the id is readable.
        let record: serde_json::Value =
            serde_json::from_str(line["record"].as_str().unwrap()).unwrap();
        quarantined.push(
            record["info"]["conversationId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // Every table: the reference rows, less those of the quarantined conversations.
    let got = table_contents(&drop);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &reference {
        let expected: Vec<&String> = rows
            .iter()
            .filter(|row| !quarantined.iter().any(|id| row.contains(id.as_str())))
            .collect();
        assert_eq!(
            got[table].iter().collect::<Vec<_>>(),
            expected,
            "{table}: every row but the quarantined conversations'"
        );
    }
    let kept = got["conversations"].len();
    assert_eq!(kept + quarantined.len(), reference["conversations"].len());
}
